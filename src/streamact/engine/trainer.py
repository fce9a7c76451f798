"""The training loop: explicit, single file, a few callbacks, no hook registry.

    records ──► VideoDataset(sampler (ACS), transform (CrossNorm, MixUp, views)) ──► DataLoader
       ──► TrainStep: model ──► CE or metric loss (+ RSC, view consistency, distillation) ──► backward
       (accumulate, clip or AGC, step, schedule, head-only stage) ──► ACS scores ──► metrics.jsonl / .csv
       ──► checkpoint (atomic) each epoch

With `data.joint`, the records of several datasets are shuffled together and every sample is scored by its
dataset's head (LIGAR multi-head training); each dataset's val split is evaluated with its own head.

Runs single-process or under `torchrun` (DDP over gloo on CPU). bf16 autocast on CPU with `amp=True`.
"""
from __future__ import annotations

import contextlib
import csv
import inspect
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from streamact.data.acs import ACSClipSampler, ACSScoreStore
from streamact.data.datasets import build_records
from streamact.data.loader import VideoDataset, build_loader, set_epoch
from streamact.data.multi import join_records, split_by_dataset
from streamact.data.sampling import ClipSampler
from streamact.engine import distributed as dist
from streamact.engine.checkpoint import load_checkpoint, save_checkpoint
from streamact.engine.config import ConfigError, DataConfig, TrainConfig, config_to_dict, save_config
from streamact.engine.optim import build_optimizer, build_scheduler, freeze_backbone
from streamact.engine.regularizers import adaptive_clip_grad_, bn_eval, js_consistency_loss, rsc_features
from streamact.evaluation.meters import ClassificationMeter
from streamact.losses.classification import MetricLearningLoss, PolyScale
from streamact.losses.distillation import kd_loss, load_teacher
from streamact.models import create_model, load_weights
from streamact.transforms.presets import build_transform
from streamact.transforms.regularizers import BackgroundMixUp, CrossNorm, MultiViewAugment, load_background_images

__all__ = ["Trainer", "TrainStep", "NonFiniteLossError", "build_dataset", "build_model_from_config", "evaluate"]

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; training stops and keeps the last good checkpoint."""


def build_model_from_config(cfg: TrainConfig, class_names: list[str], *,
                            joint_class_names: Sequence[Sequence[str]] = (),
                            pretrained: bool | None = None) -> nn.Module:
    """The model of a recipe; its `pretrained_cfg` records the input size, sampling and labels it is trained on.

    Args:
        cfg: the recipe.
        class_names: the (primary) dataset's classes: head 0, which `forward`, `pretrained_cfg`, export and
            streaming use.
        joint_class_names: with `data.joint`, the classes of every dataset in head order (the first are
            `class_names`); a checkpoint keeps them under "joint_class_names".
        pretrained: override `model.pretrained`.

    Raises:
        ConfigError: `data.joint` without the class names of every dataset, or a model that cannot have one head
            per dataset (its builder rejects a list of class counts, or its `forward_head` takes no dataset_id).
    """
    m, d = cfg.model, cfg.data
    num_heads = len(d.joint) + 1
    if num_heads > 1 and len(joint_class_names) != num_heads:
        raise ConfigError(f"the config trains {num_heads} datasets (data.joint) but class names of "
                          f"{len(joint_class_names)} were given; a joint checkpoint keeps them under "
                          f"'joint_class_names'")
    if num_heads > 1 and list(joint_class_names[0]) != list(class_names):
        raise ValueError("joint_class_names[0] must be the primary dataset's class_names")
    needs_heads = f"data.joint needs a model with one head per dataset (ligar_*), not {m.name}"
    try:
        model = create_model(
            m.name,
            pretrained=m.pretrained if pretrained is None else pretrained,
            num_classes=[len(c) for c in joint_class_names] if num_heads > 1 else len(class_names),
            label_names=class_names,
            num_segments=d.clip_len,
            img_size=d.input_size,
            dropout=m.dropout,
            partial_bn=m.partial_bn,
            **m.kwargs,
        )
    except (TypeError, ValueError) as exc:
        if num_heads == 1:
            raise
        raise ConfigError(f"{needs_heads}: building it with {num_heads} heads failed ({exc})") from exc
    if num_heads > 1 and "dataset_id" not in inspect.signature(model.forward_head).parameters:
        raise ConfigError(f"{needs_heads}: its forward_head takes no dataset_id")
    model.pretrained_cfg = model.pretrained_cfg.replace(
        frame_interval=d.frame_interval, num_segments=d.clip_len if d.sampling == "segment" else None)
    if m.init_weights:
        load_weights(model, m.init_weights, head=m.init_head)
    return model


def build_dataset(data: DataConfig, records, *, train: bool, mean, std, num_clips: int = 1,
                  seed: int = 0) -> VideoDataset:
    """A dataset over `records` with the training augmentation, or the real-time test protocol (one clip,
    centre crop) when train=False; `num_clips` > 1 gives evenly spaced multi-view test clips.

    Training options of `data` (LIGAR, seed 001): ACS sampling, CrossNorm, background MixUp, and `views` > 1
    augmented views per sample, each a random temporal crop of `view_span` decoded frames (clips then come as
    (V, C, T, H, W)).
    """
    views = data.views if train else 1
    if views > 1:
        span = data.view_span or data.clip_len * 3 // 2
        if span < data.clip_len:
            raise ConfigError(f"data.view_span ({span}) must be at least data.clip_len ({data.clip_len})")
    else:
        span = data.clip_len
    sampler_cls = ACSClipSampler if train and data.acs else ClipSampler
    sampler = sampler_cls(mode=data.sampling, clip_len=span, frame_interval=data.frame_interval,
                          num_clips=num_clips, jitter=train and data.sampling == "dense")
    pixel_augment = []
    if train and data.crossnorm_stats:
        pixel_augment.append(CrossNorm(data.crossnorm_stats, p=data.crossnorm_p))
    if train and data.mixup_backgrounds:
        pixel_augment.append(BackgroundMixUp(load_background_images(data.mixup_backgrounds), alpha=data.mixup_alpha,
                                             p=data.mixup_p))
    transform = build_transform(train=train, input_size=data.input_size, mean=mean, std=std,
                                flip=train and data.flip, pixel_augment=pixel_augment)
    if views > 1:
        transform = MultiViewAugment(transform, clip_len=data.clip_len, num_views=views)
    return VideoDataset(records, sampler, transform, train=train, seed=seed)


class TrainStep(nn.Module):
    """The model and its training loss as one module, so that DDP wraps a single forward.

    Per batch: features ─► [RSC: mask the features the head relies on, re-run the head with its BatchNorm in eval
    mode] ─► head ─► cross-entropy (``loss.name=ce``) or LIGAR's metric loss (``metric``: AM-Softmax with a scale
    schedule, confidence penalty, local and class-centre push) ─► + Jensen-Shannon consistency between the views
    ─► + distillation from teacher logits.

    Joint training (`data.joint`): the features are computed once for the whole mixed batch; each dataset's samples
    go through the steps above with that dataset's head, and the per-dataset losses are weighted by their sample
    counts (so the loss stays a mean over the batch).

    Args:
        model: the recognizer.
        cfg: the run's configuration (its `loss` section, label smoothing and the number of joint datasets).
        steps_per_epoch: optimizer steps per epoch (the metric scale schedule counts epochs).

    Raises:
        ConfigError: an unknown loss, the metric loss on a model without a metric head, or distillation with joint
            datasets.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, *, steps_per_epoch: int) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg.loss
        self.label_smoothing = cfg.optim.label_smoothing
        self.num_heads = len(cfg.data.joint) + 1
        if self.num_heads > 1 and cfg.loss.teacher:
            raise ConfigError("loss.teacher (distillation) does not work with data.joint: a teacher predicts the "
                              "primary dataset's classes only")
        self.metric = None
        if cfg.loss.name == "metric":
            if not hasattr(model, "forward_metric"):
                raise ConfigError(f"loss.name=metric needs a model with a metric head (ligar_*), not {cfg.model.name}")
            scale = PolyScale(cfg.loss.scale_start, cfg.loss.scale_end,
                              num_steps=max(1, round(cfg.loss.scale_epochs * steps_per_epoch)))
            self.metric = MetricLearningLoss(scale=scale, margin=cfg.loss.margin, conf_penalty=cfg.loss.conf_penalty,
                                             local_push_weight=cfg.loss.local_push,
                                             centre_push_weight=cfg.loss.centre_push)
        elif cfg.loss.name != "ce":
            raise ConfigError(f"unknown loss.name '{cfg.loss.name}' (choose ce or metric)")

    def _head(self, features: torch.Tensor, step: int,
              dataset_id: int | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Logits, and for the metric loss the cosines and embeddings (logits = current scale × cosines), of the
        head of `dataset_id` (None: the model's only head)."""
        route = {} if dataset_id is None else {"dataset_id": dataset_id}
        if self.metric is None:
            return self.model.forward_head(features, **route), None, None
        cos, embeddings = self.model.forward_metric(features, **route)
        return cos * self.metric.scale(step), cos, embeddings

    def _loss(self, features: torch.Tensor, labels: torch.Tensor, step: int, views: int, dataset_id: int | None,
              teacher_logits: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Loss of one head on the features (n*V, ...) of n samples' views (sample-major); see `forward`."""
        y = labels.repeat_interleave(views)  # (n*V,)
        # BatchNorm cannot normalise one vector: a dataset with a single sample in a mixed batch is scored with its
        # head's running statistics. RSC re-runs the head with them anyway; only the head runs inside bn_eval, so
        # only its BatchNorm layers switch to eval mode.
        with bn_eval(self.model) if self.cfg.rsc or len(y) < 2 else contextlib.nullcontext():
            if self.cfg.rsc:
                features = rsc_features(features, lambda f: self._head(f, step, dataset_id)[0], y)
            logits, cos, embeddings = self._head(features, step, dataset_id)
        logits = logits.float()
        parts: dict[str, float] = {}
        if self.metric is None:
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        else:
            centres = self.model.heads[0 if dataset_id is None else dataset_id].weight
            loss, metric_parts = self.metric(cos.float(), embeddings.float(), y, centres, step)
            parts.update({k: float(v.detach()) for k, v in metric_parts.items()})
        per_view = logits.view(len(labels), views, -1)  # (n, V, K)
        if views > 1:
            consistency = js_consistency_loss(per_view.transpose(0, 1))
            parts["consistency"] = float(consistency.detach())
            loss = loss + self.cfg.consistency * consistency
        if teacher_logits is not None:
            distill = kd_loss(per_view[:, 0], teacher_logits.float(), temperature=self.cfg.kd_temperature)
            parts["distillation"] = float(distill.detach())
            loss = loss + self.cfg.kd_weight * distill
        return loss, per_view[:, 0], parts

    def forward(self, clips: torch.Tensor, labels: torch.Tensor, step: int,
                teacher_logits: torch.Tensor | None = None,
                dataset_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Loss of a batch.

        Args:
            clips: (B, C, T, H, W) clips or (B, V, C, T, H, W) views.
            labels: (B,) classes, each in its own dataset's classes.
            step: optimizer step, 0-based (the metric scale schedule).
            teacher_logits: (B, K) distillation targets, or None.
            dataset_ids: (B,) dataset (head) of every sample when training on several datasets, else None.

        Returns:
            The loss, the first view's logits (B, K) and the loss parts (floats) for logging. With `dataset_ids`
            the logits are (B, max K): each row holds its dataset's classes, padded with -inf (softmax gives the
            padding probability 0, argmax never picks it).
        """
        batch, views = len(labels), clips.shape[1] if clips.ndim == 6 else 1
        x = clips.flatten(0, 1) if views > 1 else clips  # (B*V, C, T, H, W)
        features = self.model.forward_features(x)
        if dataset_ids is None:
            return self._loss(features, labels, step, views, None, teacher_logits)
        loss, parts, firsts, order = 0.0, {}, [], []
        width = max(h.num_classes for h in self.model.heads)
        for d, idx in enumerate(split_by_dataset(dataset_ids, self.num_heads)):
            if not len(idx):
                continue
            rows = (idx[:, None] * views + torch.arange(views)).flatten()  # (n*V,): the views of samples idx
            loss_d, first_d, parts_d = self._loss(features[rows], labels[idx], step, views, d, None)
            share = len(idx) / batch
            loss = loss + share * loss_d
            for k, v in parts_d.items():
                parts[k] = parts.get(k, 0.0) + share * v
            firsts.append(F.pad(first_d, (0, width - first_d.shape[1]), value=float("-inf")))  # (n, max K)
            order.append(idx)
        first = torch.cat(firsts)[torch.argsort(torch.cat(order))]  # (B, max K), back in batch order
        return loss, first, parts


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int, *, class_names=None, dataset_id: int | None = None,
             amp: bool = False, progress: bool = False) -> tuple[ClassificationMeter, int]:
    """Run the model over a loader; multi-view clips (B, V, C, T, H, W) are averaged over V (softmax scores).

    `dataset_id` scores with that dataset's head of a multi-head model (``forward_head(features, dataset_id)``)
    instead of `model(x)`. Returns the filled meter and the number of samples skipped as unreadable.
    """
    model.eval()
    meter = ClassificationMeter(num_classes, class_names)
    num_bad = 0
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        clips, labels = batch.clips, batch.labels
        num_bad += batch.num_bad
        if len(labels) == 0:
            continue
        views = clips.shape[1] if clips.ndim == 6 else 1
        flat = clips.flatten(0, 1) if clips.ndim == 6 else clips  # (B*V, C, T, H, W)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            if dataset_id is None:
                logits = model(flat).float()
            else:
                logits = model.forward_head(model.forward_features(flat), dataset_id).float()
        probs = logits.softmax(-1).view(len(labels), views, -1).mean(1)  # (B, num_classes)
        meter.update(probs.numpy(), labels.numpy())
    return meter, num_bad


class Trainer:
    """Train a recognizer from a `TrainConfig`.

    Args:
        cfg: resolved configuration.
        callbacks: callables `cb(event, trainer, **info)` called with event "step" (after each optimizer
            step, info: step, loss) and "epoch" (after each epoch, info: epoch, metrics). A callback may
            raise to stop training; the last completed epoch's checkpoint stays valid.
        progress: show tqdm bars (main process only).
    """

    def __init__(self, cfg: TrainConfig, *, callbacks: list[Callable] = (), progress: bool = True) -> None:
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.distributed = dist.init_distributed()
        self.is_main = dist.is_main_process()
        self.progress = progress and self.is_main
        self.out_dir = Path(cfg.out_dir)
        if cfg.optim.clip_mode not in ("norm", "agc"):
            raise ConfigError(f"unknown optim.clip_mode '{cfg.optim.clip_mode}' (choose norm or agc)")
        torch.manual_seed(cfg.seed)

        self.sources = cfg.data.datasets()  # the primary dataset (head 0), then data.joint
        # Labels stay local to their dataset; the dataset of a sample is looked up from its index in the batch.
        self.joint = join_records({s.name: build_records(s.format, root=s.root, split=s.train_split)
                                   for s in self.sources})
        train_records, self.class_names = self.joint.records, self.joint.class_names[0]
        self.multi_head = len(self.sources) > 1
        self.model = build_model_from_config(cfg, self.class_names,
                                             joint_class_names=self.joint.class_names if self.multi_head else ())
        # Preprocessing comes from the model's pretrained config, the same one every runtime reuses.
        mean, std = self.model.pretrained_cfg.mean, self.model.pretrained_cfg.std
        self.train_set = build_dataset(cfg.data, train_records, train=True, mean=mean, std=std, seed=cfg.seed)
        # One val set per dataset (None without a val split), each scored with its own head.
        self.val_sets = [
            build_dataset(cfg.data, build_records(s.format, root=s.root, split=s.val_split)[0], train=False,
                          mean=mean, std=std, seed=cfg.seed) if s.val_split else None
            for s in self.sources]
        # Full batches only: BatchNorm over pooled vectors (LIGAR's global path and embedding) needs 2+ samples.
        self.train_loader = build_loader(self.train_set, cfg.data.batch_size, shuffle=True,
                                         num_workers=cfg.data.num_workers, distributed=self.distributed,
                                         seed=cfg.seed, drop_last=len(self.train_set) > cfg.data.batch_size)
        self.steps_per_epoch = max(1, math.ceil(len(self.train_loader) / cfg.optim.accumulate))
        self.optimizer = build_optimizer(self.model, cfg.optim)  # before any freezing: it holds every parameter
        self.scheduler = build_scheduler(self.optimizer, steps_per_epoch=self.steps_per_epoch, epochs=cfg.epochs,
                                         cfg=cfg.optim)
        self.train_step = TrainStep(self.model, cfg, steps_per_epoch=self.steps_per_epoch)
        self.net: nn.Module = self.train_step
        self.frozen: bool | None = None  # backbone frozen for the head-only stage; None until the first epoch
        self.teacher = load_teacher(cfg.loss.teacher, self.class_names) if cfg.loss.teacher else None
        self.acs = (ACSScoreStore.from_records(train_records, min_fraction=cfg.data.acs_min_fraction,
                                               warmup_epochs=cfg.data.acs_warmup_epochs) if cfg.data.acs else None)
        self.epoch = 0
        self.step = 0
        self.best_top1 = -1.0
        self.num_bad_total = 0

    # -- checkpointing -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "config": config_to_dict(self.cfg),
            "class_names": list(self.class_names),
            "joint_class_names": [list(c) for c in self.joint.class_names],
            "epoch": self.epoch,
            "step": self.step,
            "best_top1": self.best_top1,
            "rng": torch.get_rng_state(),
            **({"acs": self.acs.state_dict()} if self.acs is not None else {}),
        }

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from a checkpoint (default: `<out_dir>/last.pt`)."""
        ckpt = load_checkpoint(path or self.out_dir / "last.pt")
        if ckpt.get("joint_class_names", [ckpt["class_names"]]) != self.joint.class_names:
            raise ValueError("checkpoint classes differ from the datasets'; cannot resume")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step, self.best_top1 = ckpt["epoch"], ckpt["step"], ckpt["best_top1"]
        torch.set_rng_state(ckpt["rng"])
        if self.acs is not None and "acs" in ckpt:
            self.acs.load_state_dict(ckpt["acs"])
        log.info("resumed from epoch %d, step %d", self.epoch, self.step)

    # -- logging -------------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if record.get("event") == "epoch":
            path = self.out_dir / "metrics.csv"
            row = {k: v for k, v in record.items() if not isinstance(v, (dict, list))}
            new = not path.exists()
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    writer.writeheader()
                writer.writerow(row)

    def _emit(self, event: str, **info) -> None:
        for cb in self.callbacks:
            cb(event, self, **info)

    # -- the loop ------------------------------------------------------------------------------------
    def _start_epoch(self) -> None:
        """Modes and data for the coming epoch: head-only stage, DDP wrapper, ACS snapshot, sampling seed."""
        cfg = self.cfg
        self.train_step.train()
        frozen = self.epoch < cfg.optim.freeze_epochs
        if frozen or self.frozen:  # freezing (again, after train()) or unfreezing after the head-only stage
            freeze_backbone(self.model, frozen)
        if self.distributed and frozen != self.frozen:  # DDP syncs the parameters trainable when it is built
            # A mixed batch may lack a dataset, leaving its head without gradient in that step.
            self.net = nn.parallel.DistributedDataParallel(self.train_step, find_unused_parameters=self.multi_head)
        self.frozen = frozen
        if self.acs is not None:
            self.acs.set_epoch(self.epoch)
            # Workers are re-created each epoch with a copy of the dataset, so they sample from this snapshot.
            self.train_set.sampler.snapshot = self.acs.snapshot()
        set_epoch(self.train_loader, self.epoch)

    def train_one_epoch(self) -> dict:
        cfg = self.cfg
        self._start_epoch()
        total_loss, total_correct, total_seen, num_bad, t0 = 0.0, 0, 0, 0, time.perf_counter()
        parts_sum: dict[str, float] = {}
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.progress)
        self.optimizer.zero_grad(set_to_none=True)
        micro = 0
        for batch in bar:
            labels = batch.labels
            num_bad += batch.num_bad
            if len(labels) < 2:  # nothing readable, or one sample: BatchNorm cannot normalise a single vector
                continue
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
                teacher_logits = None
                if self.teacher is not None:
                    with torch.no_grad():
                        teacher_logits = self.teacher(batch.clips[:, 0] if batch.clips.ndim == 6 else batch.clips)
                dataset_ids = self.joint.dataset_of(batch.index) if self.multi_head else None
                loss, logits, parts = self.net(batch.clips, labels, self.step, teacher_logits, dataset_ids)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step}: lower optim.lr, enable "
                    f"optim.clip_grad, or check the data; last good checkpoint: {self.out_dir / 'last.pt'}")
            (loss / cfg.optim.accumulate).backward()
            micro += 1
            total_loss += loss.item() * len(labels)
            probs = logits.detach().float().softmax(-1)
            confidence, predicted = probs.max(-1)
            total_correct += (predicted == labels).sum().item()
            total_seen += len(labels)
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * len(labels)
            if self.acs is not None:
                self.acs.update(batch.index, batch.frames, predicted, confidence, labels, num_frames=batch.num_frames)
            if micro % cfg.optim.accumulate == 0:
                self._optimizer_step()
                self._emit("step", step=self.step, loss=loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if cfg.max_steps and self.step >= cfg.max_steps:
                    break
        if micro % cfg.optim.accumulate:
            self._optimizer_step()
        elapsed = time.perf_counter() - t0
        names = sorted(parts_sum)
        loss_sum, correct, seen, bad_sum, *part_sums = dist.all_reduce_sum(
            [total_loss, total_correct, total_seen, num_bad, *(parts_sum[k] for k in names)])
        metrics = {"train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1),
                   "train_clips_per_s": seen / elapsed, "skipped_samples": int(bad_sum), "epoch_time_s": elapsed,
                   **{f"train_{k}": v / max(seen, 1) for k, v in zip(names, part_sums)}}
        if self.acs is not None:
            self.acs.sync()  # every rank, after its last batch: all ranks end the epoch with the same scores
            metrics["acs_ready_fraction"] = self.acs.ready_fraction()
        return metrics

    def _optimizer_step(self) -> None:
        if self.cfg.optim.clip_mode == "agc":
            adaptive_clip_grad_(self.model.parameters(), self.cfg.optim.clip_grad)
        elif self.cfg.optim.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def validate(self) -> dict:
        """The primary dataset's `val_top1`, `val_top5`, `val_mean_class_accuracy` and, with joint datasets,
        `val_top1_<name>` and `val_rank_map_<name>` of every dataset; `val_skipped_samples` counts all."""
        metrics: dict = {}
        for d, (source, val_set) in enumerate(zip(self.sources, self.val_sets)):
            if val_set is None:
                continue
            # Every rank scores the whole split (not a shard), so the metrics are complete wherever they are read.
            loader = build_loader(val_set, self.cfg.data.batch_size, shuffle=False, distributed=False,
                                  num_workers=self.cfg.data.num_workers, seed=self.cfg.seed)
            class_names = self.joint.class_names[d]
            meter, bad = evaluate(self.model, loader, len(class_names), class_names=class_names,
                                  dataset_id=d if self.multi_head else None, amp=self.cfg.amp, progress=self.progress)
            m = meter.compute()
            if d == 0:
                metrics.update(val_top1=m["top1"], val_top5=m["top5"], val_mean_class_accuracy=m["mean_class_accuracy"])
            if self.multi_head:
                metrics.update({f"val_top1_{source.name}": m["top1"], f"val_rank_map_{source.name}": m["rank_map"]})
            metrics["val_skipped_samples"] = metrics.get("val_skipped_samples", 0) + bad
        return metrics

    def fit(self, *, resume: bool = False) -> dict:
        """Train for `cfg.epochs` (continuing from `last.pt` when resume=True). Returns the last epoch's metrics."""
        cfg = self.cfg
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
        if resume:
            self.resume()
        metrics: dict = {}
        while self.epoch < cfg.epochs:
            metrics = self.train_one_epoch()
            self.epoch += 1
            last = self.epoch == cfg.epochs or (cfg.max_steps and self.step >= cfg.max_steps)
            if (cfg.eval_every and self.epoch % cfg.eval_every == 0) or last:
                metrics.update(self.validate())
            metrics.update(event="epoch", epoch=self.epoch, step=self.step, lr=self.scheduler.get_last_lr()[0])
            self.num_bad_total += metrics["skipped_samples"]
            if metrics["skipped_samples"]:
                log.warning("epoch %d: skipped %d unreadable samples", self.epoch, metrics["skipped_samples"])
            self._log(metrics)
            if self.is_main:
                save_checkpoint(self.state_dict(), self.out_dir / "last.pt")
                if metrics.get("val_top1", -1) > self.best_top1:
                    self.best_top1 = metrics["val_top1"]
                    save_checkpoint(self.state_dict(), self.out_dir / "best.pt")
            self._emit("epoch", epoch=self.epoch, metrics=metrics)
            if last:
                break
        return metrics
