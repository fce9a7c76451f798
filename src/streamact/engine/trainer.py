"""The training loop: explicit, single file, a few callbacks, no hook registry.

    records ──► VideoDataset(sampler (ACS), transform (CrossNorm, MixUp, views)) ──► DataLoader
       ──► TrainStep: model ──► CE or metric loss (+ RSC, view consistency, distillation) ──► backward
       (accumulate, clip or AGC, step, schedule, head-only stage) ──► ACS scores ──► metrics.jsonl / .csv
       ──► checkpoint (atomic) each epoch

With `data.joint`, the records of several datasets are shuffled together and every sample is scored by its
dataset's head (LIGAR multi-head training); each dataset's val split is evaluated with its own head.

Runs single-process (on `device`: the CPU or a CUDA GPU) or under `torchrun` (DDP over gloo, on CPU). bf16 autocast
with `amp=True`.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from streamact.data.acs import ACSClipSampler, ACSScoreStore
from streamact.data.datasets import build_records
from streamact.data.frame_cache import FrameCache
from streamact.data.loader import VideoDataset, build_loader, set_epoch
from streamact.data.multi import join_records, split_by_dataset
from streamact.data.records import frame_labels
from streamact.data.sampling import ClipSampler, StreamWindowSampler
from streamact.device import resolve_device, slow_bf16_warning
from streamact.engine import distributed as dist
from streamact.engine.build import build_model_from_config
from streamact.engine.checkpoint import load_checkpoint, save_checkpoint
from streamact.engine.config import ConfigError, DataConfig, TrainConfig, config_to_dict, save_config
from streamact.engine.optim import build_optimizer, build_scheduler, freeze_backbone
from streamact.engine.regularizers import adaptive_clip_grad_, bn_eval, js_consistency_loss, rsc_features
from streamact.engine.tasks import DetectionTask, is_detection
from streamact.errors import UserError
from streamact.evaluation.meters import ClassificationMeter
from streamact.losses.classification import MetricLearningLoss, PolyScale
from streamact.losses.distillation import kd_loss, load_teacher
from streamact.transforms.presets import build_transform, default_scale_size
from streamact.transforms.regularizers import BackgroundMixUp, CrossNorm, MultiViewAugment, load_background_images

__all__ = ["Trainer", "TrainStep", "NonFiniteLossError", "build_dataset", "evaluate"]

log = logging.getLogger(__name__)
LOG_EVERY_S = 60.0  # without progress bars, a line about the running epoch this often


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; training stops and keeps the last good checkpoint."""


def build_dataset(data: DataConfig, records, *, train: bool, mean, std, num_clips: int = 1,
                  seed: int = 0, stream_context: int = 0) -> VideoDataset:
    """A dataset over `records` with the training augmentation, or the real-time test protocol (one clip,
    centre crop) when train=False; `num_clips` > 1 gives evenly spaced multi-view test clips.

    Stream sampling (`data.sampling=stream`, stream records): `data.stream_windows` windows per stream, each of
    clip_len + `stream_context` frames labelled by its last frame (`StreamWindowSampler`); pass the model's
    `stream_context` so a causal model trains on exactly what it computes when streaming. In training,
    `data.stream_outputs` > 1 lengthens the windows and labels each of their last frames.

    Training options of `data` ("LIGAR: Lightweight General-purpose Action Recognition"): ACS sampling,
    CrossNorm, background MixUp, and `views` > 1 augmented views per sample, each a random temporal crop of
    `view_span` decoded frames (clips then come as (V, C, T, H, W)).
    """
    if data.flip_pairs:
        raise ConfigError("data.flip_pairs (classes that swap under a flip) is for detection datasets; recognition "
                          "flips keep the label, so leave data.flip off for datasets with left/right classes")
    if data.reverse_pairs:
        raise ConfigError("data.reverse_pairs (classes that swap when played backwards) is for detection datasets")
    views = data.views if train else 1
    if views > 1:
        span = data.view_span or data.clip_len * 3 // 2
        if span < data.clip_len:
            raise ConfigError(f"data.view_span ({span}) must be at least data.clip_len ({data.clip_len})")
    else:
        span = data.clip_len
    if data.sampling == "stream":
        if views > 1 or data.acs:
            raise ConfigError("data.sampling=stream works with one view and without ACS")
        if any("segments" not in r.meta for r in records):
            raise ConfigError(f"data.sampling=stream needs stream annotations (ipn, thumos), not {data.format}")
        records = [r for r in records for _ in range(data.stream_windows)]
        sampler = StreamWindowSampler([frame_labels(r) for r in records], clip_len=data.clip_len,
                                      frame_interval=data.frame_interval, context=stream_context,
                                      background=records[0].meta["background"] if records else 0,
                                      background_p=data.stream_background,
                                      outputs=data.stream_outputs if train else 1)
    else:
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
    frame_cache = None
    if data.frame_cache:
        frame_cache = FrameCache(data.frame_cache, short_side=default_scale_size(data.input_size))
        frame_cache.build([r.path for r in records])  # up front, with a progress bar, instead of in the first epoch
    return VideoDataset(records, sampler, transform, train=train, seed=seed, frame_cache=frame_cache)


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
        if cfg.data.stream_outputs > 1:
            if cfg.loss.name != "ce" or self.num_heads > 1 or cfg.loss.teacher or cfg.loss.rsc or cfg.data.views > 1:
                raise ConfigError("data.stream_outputs > 1 trains with the plain cross-entropy on one dataset: not "
                                  "with loss.name=metric, loss.rsc, loss.teacher, data.joint or data.views")
            if not hasattr(model, "forward_head_steps"):
                raise ConfigError(f"data.stream_outputs > 1 needs a model that scores several frames of a window in "
                                  f"one pass (TSN family), not {cfg.model.name}")
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
            labels: (B,) classes, each in its own dataset's classes; (B, N) for stream windows labelled at their
                last N frames (the logits returned are then those of the last frame).
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
        if labels.ndim == 2:  # stream windows labelled at each of their last frames (data.stream_outputs)
            logits = self.model.forward_head_steps(features, labels.shape[1]).float()  # (B, N, K)
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), label_smoothing=self.label_smoothing)
            return loss, logits[:, -1], {}
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
             amp: bool = False, progress: bool = False, device: str = "cpu") -> tuple[ClassificationMeter, int]:
    """Run the model over a loader; multi-view clips (B, V, C, T, H, W) are averaged over V (softmax scores).

    `dataset_id` scores with that dataset's head of a multi-head model (``forward_head(features, dataset_id)``)
    instead of `model(x)`; `device` is where the model runs (it is moved there). Returns the filled meter and the
    number of samples skipped as unreadable.
    """
    model.eval().to(device)
    meter = ClassificationMeter(num_classes, class_names)
    num_bad = 0
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False):
        clips, labels = batch.clips, batch.labels
        num_bad += batch.num_bad
        if len(labels) == 0:
            continue
        views = clips.shape[1] if clips.ndim == 6 else 1
        flat = (clips.flatten(0, 1) if clips.ndim == 6 else clips).to(device)  # (B*V, C, T, H, W)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            if dataset_id is None:
                logits = model(flat).float()
            else:
                logits = model.forward_head(model.forward_features(flat), dataset_id).float()
        probs = logits.softmax(-1).view(len(labels), views, -1).mean(1)  # (B, num_classes)
        meter.update(probs.cpu().numpy(), labels.numpy())
    return meter, num_bad


class Trainer:
    """Train a recognizer or a detector (its task: `streamact.engine.tasks`) from a `TrainConfig`.

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
        # Resolved (auto -> cuda or cpu) and written back, so config.yaml and the checkpoints record where it ran.
        cfg.device = resolve_device(cfg.device)
        if cfg.device != "cpu" and self.distributed:
            raise ConfigError(f"distributed training (torchrun) runs on the CPU (gloo); use --device cpu, or train "
                              f"on {cfg.device} in a single process")
        self.device = torch.device(cfg.device)
        if cfg.amp and self.is_main and (slow := slow_bf16_warning(cfg.device, option="amp=true")):
            log.warning("%s (--amp=false)", slow)
        torch.manual_seed(cfg.seed)

        self.sources = cfg.data.datasets()  # the primary dataset (head 0), then data.joint
        # Detection (data.format: detection) brings its own data, loss and validation; the loop is the same.
        self.task = DetectionTask(cfg) if is_detection(cfg) else None
        if self.task is not None:
            self.joint, self.class_names, self.multi_head = None, self.task.class_names, False
            self.stream_context = 0
            self.all_class_names = [self.class_names]
            self.model = build_model_from_config(cfg, self.class_names)
            self.train_set, self.val_sets = self.task.build_train_set(self.model), []
        else:
            # Labels stay local to their dataset; the dataset of a sample is looked up from its index in the batch.
            splits = {s.name: build_records(s.format, root=s.root, split=s.train_split) for s in self.sources}
            for source in self.sources:
                records = splits[source.name][0]
                if not records:
                    raise UserError(f"{source.root}: the training split '{source.train_split}' has no clips; add "
                                    f"clips to it or choose another split (data.train_split)")
                if not any(r.labelled for r in records):  # e.g. Jester's test split
                    raise UserError(f"{source.root}: the training split '{source.train_split}' is unlabelled; "
                                    f"train on a labelled split (data.train_split)")
            self.joint = join_records(splits)
            train_records, self.class_names = self.joint.records, self.joint.class_names[0]
            self.all_class_names = self.joint.class_names
            self.multi_head = len(self.sources) > 1
            self.model = build_model_from_config(cfg, self.class_names,
                                                 joint_class_names=self.joint.class_names if self.multi_head else ())
            # Preprocessing comes from the model's pretrained config, the same one every runtime reuses.
            mean, std = self.model.pretrained_cfg.mean, self.model.pretrained_cfg.std
            self.stream_context = getattr(self.model, "stream_context", 0)  # past frames a causal model's output sees
            self.train_set = build_dataset(cfg.data, train_records, train=True, mean=mean, std=std, seed=cfg.seed,
                                           stream_context=self.stream_context)
            # One val set per dataset (None without a val split, or an empty one), each scored with its own head.
            self.val_sets = [self._val_set(s, mean, std) for s in self.sources]
        self.model.to(self.device)
        # Full batches only, unless a rank gets less than one batch: then it trains on the smaller batch rather than
        # not at all. (BatchNorm over pooled vectors, LIGAR's global path and embedding, needs 2+ samples.)
        per_rank = len(self.train_set) // dist.world_size()
        if per_rank < cfg.data.batch_size and self.is_main:
            log.warning("the training split has %d clips, less than one batch (data.batch_size=%d) per process (%d): "
                        "each epoch is a single step on a smaller batch; lower --data.batch_size or add clips",
                        len(self.train_set), cfg.data.batch_size, dist.world_size())
        self.train_loader = build_loader(self.train_set, cfg.data.batch_size, shuffle=True,
                                         num_workers=cfg.data.num_workers, distributed=self.distributed,
                                         seed=cfg.seed, drop_last=per_rank > cfg.data.batch_size,
                                         **({"collate_fn": self.task.collate_fn} if self.task else {}))
        self.steps_per_epoch = max(1, math.ceil(len(self.train_loader) / cfg.optim.accumulate))
        self.total_steps = min(cfg.max_steps or math.inf, cfg.epochs * self.steps_per_epoch)
        self.optimizer = build_optimizer(self.model, cfg.optim)  # before any freezing: it holds every parameter
        self.scheduler = build_scheduler(self.optimizer, steps_per_epoch=self.steps_per_epoch, epochs=cfg.epochs,
                                         cfg=cfg.optim)
        self.train_step = (self.task.build_train_step(self.model) if self.task is not None else
                           TrainStep(self.model, cfg, steps_per_epoch=self.steps_per_epoch)).to(self.device)
        self.net: nn.Module = self.train_step
        self.frozen: bool | None = None  # backbone frozen for the head-only stage; None until the first epoch
        self.teacher = load_teacher(cfg.loss.teacher, self.class_names).to(self.device) if cfg.loss.teacher else None
        self.acs = (ACSScoreStore.from_records(train_records, min_fraction=cfg.data.acs_min_fraction,
                                               warmup_epochs=cfg.data.acs_warmup_epochs)
                    if cfg.data.acs and self.task is None else None)
        self.epoch = 0
        self.step = 0
        self.best_top1 = -1.0
        self.lr = self.optimizer.param_groups[0]["lr"]  # learning rate of the last optimizer step
        self.num_bad_total = 0

    def _val_set(self, source, mean, std) -> VideoDataset | None:
        """The test-protocol dataset of `source`'s val split; None (with a warning) when the split is empty."""
        if not source.val_split:
            return None
        records, _ = build_records(source.format, root=source.root, split=source.val_split)
        if not any(r.labelled for r in records):  # nothing to score against
            if self.is_main:
                log.warning("%s: the validation split '%s' is %s: training without validation (no val_top1, no "
                            "best.pt); %s, or pass --data.val_split= to train without one knowingly", source.root,
                            source.val_split, "empty" if not records else "unlabelled",
                            "add clips to it" if not records else "choose a labelled split")
            return None
        return build_dataset(self.cfg.data, records, train=False, mean=mean, std=std, seed=self.cfg.seed,
                             stream_context=self.stream_context)

    # -- checkpointing -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "config": config_to_dict(self.cfg),
            "class_names": list(self.class_names),
            "joint_class_names": [list(c) for c in self.all_class_names],
            "epoch": self.epoch,
            "step": self.step,
            "best_top1": self.best_top1,
            "rng": torch.get_rng_state(),
            **({"acs": self.acs.state_dict()} if self.acs is not None else {}),
        }

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from a checkpoint (default: `<out_dir>/last.pt`).

        Log lines of epochs after the checkpoint's (written before a crash cut the epoch's checkpoint short) are
        dropped, so the metrics files read as those of an uninterrupted run.
        """
        path = Path(path or self.out_dir / "last.pt")
        if not path.is_file():
            raise UserError(f"cannot resume: {path} does not exist; start without --resume (or point --out_dir "
                            f"at the run to continue)")
        ckpt = load_checkpoint(path)
        if ckpt.get("joint_class_names", [ckpt["class_names"]]) != [list(c) for c in self.all_class_names]:
            raise UserError(f"cannot resume from {path}: its classes differ from the dataset's; train into a new "
                            f"--out_dir")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step, self.best_top1 = ckpt["epoch"], ckpt["step"], ckpt["best_top1"]
        torch.set_rng_state(ckpt["rng"])
        if self.acs is not None and "acs" in ckpt:
            self.acs.load_state_dict(ckpt["acs"])
        if self.is_main:
            self._truncate_logs()
        log.info("resumed from epoch %d, step %d", self.epoch, self.step)

    def _truncate_logs(self) -> None:
        """Keep only the metrics of epochs up to `self.epoch` in metrics.jsonl and metrics.csv."""
        jsonl, table = self.out_dir / "metrics.jsonl", self.out_dir / "metrics.csv"
        if jsonl.exists():
            lines = [line for line in jsonl.read_text().splitlines(keepends=True)
                     if json.loads(line).get("epoch", 0) <= self.epoch]
            jsonl.write_text("".join(lines))
        if table.exists():
            with open(table, newline="") as f:
                rows = list(csv.reader(f))
            column = rows[0].index("epoch")
            with open(table, "w", newline="") as f:
                csv.writer(f).writerows([rows[0]] + [r for r in rows[1:] if int(r[column]) <= self.epoch])

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
        micro, last_log = 0, t0
        for batch in bar:
            num_bad += batch.num_bad
            n = len(batch.clips)
            if n < 2:  # nothing readable, or one sample: BatchNorm cannot normalise a single vector
                continue
            clips = batch.clips.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                if self.task is not None:
                    loss, parts = self.net(clips, {k: v.to(self.device) for k, v in batch.targets.items()})
                else:
                    labels = batch.labels.to(self.device)
                    teacher_logits = None
                    if self.teacher is not None:
                        with torch.no_grad():
                            teacher_logits = self.teacher(clips[:, 0] if clips.ndim == 6 else clips)
                    dataset_ids = self.joint.dataset_of(batch.index) if self.multi_head else None
                    loss, logits, parts = self.net(clips, labels, self.step, teacher_logits, dataset_ids)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step}: lower optim.lr, enable "
                    f"optim.clip_grad, or check the data; last good checkpoint: {self.out_dir / 'last.pt'}")
            (loss / cfg.optim.accumulate).backward()
            micro += 1
            total_loss += loss.item() * n
            total_seen += n
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * n
            if self.task is None:
                probs = logits.detach().float().softmax(-1)
                confidence, predicted = probs.max(-1)
                total_correct += (predicted == (labels[:, -1] if labels.ndim == 2 else labels)).sum().item()
                if self.acs is not None:
                    self.acs.update(batch.index, batch.frames, predicted, confidence, labels,
                                    num_frames=batch.num_frames)
            if micro % cfg.optim.accumulate == 0:
                self._optimizer_step()
                self._emit("step", step=self.step, loss=loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.lr:.2e}")
                if not self.progress and self.is_main and time.perf_counter() - last_log >= LOG_EVERY_S:
                    last_log = time.perf_counter()
                    log.info("epoch %d/%d, step %d of %d: loss %.3f (epoch mean %.3f), lr %.2e, %.1f clips/s",
                             self.epoch + 1, cfg.epochs, self.step, self.total_steps, loss.item(),
                             total_loss / total_seen, self.lr, total_seen / (last_log - t0))
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
        if self.task is not None:
            del metrics["train_top1"]  # a detector has no clip accuracy
        if self.acs is not None:
            self.acs.sync()  # every rank, after its last batch: all ranks end the epoch with the same scores
            metrics["acs_ready_fraction"] = self.acs.ready_fraction()
        return metrics

    def _optimizer_step(self) -> None:
        if self.cfg.optim.clip_mode == "agc":
            adaptive_clip_grad_(self.model.parameters(), self.cfg.optim.clip_grad)
        elif self.cfg.optim.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        self.lr = self.optimizer.param_groups[0]["lr"]  # what this step uses; the scheduler then sets the next
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def validate(self) -> dict:
        """The primary dataset's `val_top1`, `val_top5`, `val_mean_class_accuracy` and, with joint datasets,
        `val_top1_<name>` and `val_rank_map_<name>` of every dataset; `val_skipped_samples` counts all."""
        if self.task is not None:
            return self.task.validate(self.model, amp=self.cfg.amp, progress=self.progress, device=self.cfg.device)
        metrics: dict = {}
        for d, (source, val_set) in enumerate(zip(self.sources, self.val_sets)):
            if val_set is None:
                continue
            # Every rank scores the whole split (not a shard), so the metrics are complete wherever they are read.
            loader = build_loader(val_set, self.cfg.data.batch_size, shuffle=False, distributed=False,
                                  num_workers=self.cfg.data.num_workers, seed=self.cfg.seed)
            class_names = self.joint.class_names[d]
            meter, bad = evaluate(self.model, loader, len(class_names), class_names=class_names,
                                  dataset_id=d if self.multi_head else None, amp=self.cfg.amp, progress=self.progress,
                                  device=self.cfg.device)
            m = meter.compute()
            if d == 0:
                metrics.update(val_top1=m["top1"], val_top5=m["top5"], val_mean_class_accuracy=m["mean_class_accuracy"])
            if self.multi_head:
                metrics.update({f"val_top1_{source.name}": m["top1"], f"val_rank_map_{source.name}": m["rank_map"]})
            metrics["val_skipped_samples"] = metrics.get("val_skipped_samples", 0) + bad
        return metrics

    def fit(self, *, resume: bool = False, overwrite: bool = False) -> dict:
        """Train for `cfg.epochs`. Returns the last epoch's metrics.

        Args:
            resume: continue the run in `out_dir` from its `last.pt`.
            overwrite: replace a run already in `out_dir` (its checkpoints and metrics) instead of refusing.

        Raises:
            UserError: `out_dir` already holds a run and neither `resume` nor `overwrite` is set; `resume` without a
                `last.pt`; an epoch that made no optimizer step (the run is not saved).
        """
        cfg = self.cfg
        run_files = [self.out_dir / name for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.csv")]
        if not resume and any(f.exists() for f in run_files):
            if not overwrite:
                raise UserError(f"{self.out_dir} already holds a training run: continue it with --resume, train into "
                                f"a new --out_dir, or replace it with --overwrite")
            if self.is_main:
                for f in run_files:
                    f.unlink(missing_ok=True)
        if resume:  # first: a resume that cannot start writes nothing
            self.resume()
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")
        metrics: dict = {}
        while self.epoch < cfg.epochs:
            steps_before = self.step
            metrics = self.train_one_epoch()
            if self.step == steps_before:
                raise UserError(
                    f"epoch {self.epoch + 1} made no training step ({len(self.train_set)} training clips, "
                    f"{metrics['skipped_samples']} unreadable, data.batch_size={cfg.data.batch_size} on "
                    f"{dist.world_size()} process(es), batches need 2+ readable clips); nothing was saved: lower "
                    f"--data.batch_size, use fewer processes, or fix the data (streamact data check)")
            self.epoch += 1
            last = self.epoch == cfg.epochs or (cfg.max_steps and self.step >= cfg.max_steps)
            if (cfg.eval_every and self.epoch % cfg.eval_every == 0) or last:
                metrics.update(self.validate())
            metrics.update(event="epoch", epoch=self.epoch, step=self.step, lr=self.lr)
            self.num_bad_total += metrics["skipped_samples"]
            if metrics["skipped_samples"]:
                log.warning("epoch %d: skipped %d unreadable samples", self.epoch, metrics["skipped_samples"])
            # The best score is updated before any checkpoint is written, so last.pt carries the same state an
            # uninterrupted run has here; best.pt goes first, so a crash between the two cannot lose a new best.
            monitor = self.task.monitor if self.task is not None else "val_top1"  # best_top1: its best value
            improved = metrics.get(monitor, -1) > self.best_top1
            if improved:
                self.best_top1 = metrics[monitor]
            self._log(metrics)
            if self.is_main:
                log.info("epoch %d/%d done, step %d: %s", self.epoch, cfg.epochs, self.step, ", ".join(
                    f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and k != "lr"))
                state = self.state_dict()
                if improved:
                    save_checkpoint(state, self.out_dir / "best.pt")
                save_checkpoint(state, self.out_dir / "last.pt")
            self._emit("epoch", epoch=self.epoch, metrics=metrics)
            if last:
                break
        return metrics
