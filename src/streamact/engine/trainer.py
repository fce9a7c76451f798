"""The training loop: explicit, single file, a few callbacks, no hook registry.

    records ──► VideoDataset(sampler, transform) ──► DataLoader ──► model ──► CE loss ──► backward
       (accumulate, clip, step, schedule) ──► metrics.jsonl / metrics.csv ──► checkpoint (atomic) each epoch

Runs single-process or under `torchrun` (DDP over gloo on CPU). bf16 autocast on CPU with `amp=True`.
"""
from __future__ import annotations

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

from streamact.data.datasets import build_records
from streamact.data.loader import VideoDataset, build_loader, set_epoch
from streamact.data.sampling import ClipSampler
from streamact.engine import distributed as dist
from streamact.engine.checkpoint import load_checkpoint, save_checkpoint
from streamact.engine.config import DataConfig, TrainConfig, config_to_dict, save_config
from streamact.engine.optim import build_optimizer, build_scheduler
from streamact.evaluation.meters import ClassificationMeter
from streamact.models import create_model, load_weights
from streamact.transforms.presets import build_transform

__all__ = ["Trainer", "NonFiniteLossError", "build_dataset", "build_model_from_config", "evaluate"]

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; training stops and keeps the last good checkpoint."""


def build_model_from_config(cfg: TrainConfig, class_names: list[str], *, pretrained: bool | None = None) -> nn.Module:
    """The model of a recipe; its `pretrained_cfg` records the input size, sampling and labels it is trained on."""
    m, d = cfg.model, cfg.data
    model = create_model(
        m.name,
        pretrained=m.pretrained if pretrained is None else pretrained,
        num_classes=len(class_names),
        label_names=class_names,
        num_segments=d.clip_len,
        img_size=d.input_size,
        dropout=m.dropout,
        partial_bn=m.partial_bn,
        **m.kwargs,
    )
    model.pretrained_cfg = model.pretrained_cfg.replace(
        frame_interval=d.frame_interval, num_segments=d.clip_len if d.sampling == "segment" else None)
    if m.init_weights:
        load_weights(model, m.init_weights)
    return model


def build_dataset(data: DataConfig, records, *, train: bool, mean, std, num_clips: int = 1,
                  seed: int = 0) -> VideoDataset:
    """A dataset over `records` with the training augmentation, or the real-time test protocol (one clip,
    centre crop) when train=False; `num_clips` > 1 gives evenly spaced multi-view test clips."""
    sampler = ClipSampler(mode=data.sampling, clip_len=data.clip_len, frame_interval=data.frame_interval,
                          num_clips=num_clips, jitter=train and data.sampling == "dense")
    transform = build_transform(train=train, input_size=data.input_size, mean=mean, std=std,
                                flip=train and data.flip)
    return VideoDataset(records, sampler, transform, train=train, seed=seed)


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int, *, class_names=None, amp: bool = False,
             progress: bool = False) -> tuple[ClassificationMeter, int]:
    """Run the model over a loader; multi-view clips (B, V, C, T, H, W) are averaged over V (softmax scores).

    Returns the filled meter and the number of samples skipped as unreadable.
    """
    model.eval()
    meter = ClassificationMeter(num_classes, class_names)
    num_bad = 0
    for clips, labels, bad in tqdm(loader, desc="eval", disable=not progress, leave=False):
        num_bad += bad
        if len(labels) == 0:
            continue
        views = clips.shape[1] if clips.ndim == 6 else 1
        flat = clips.flatten(0, 1) if clips.ndim == 6 else clips  # (B*V, C, T, H, W)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(flat).float()
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
        torch.manual_seed(cfg.seed)

        train_records, self.class_names = build_records(cfg.data.format, root=cfg.data.root,
                                                        split=cfg.data.train_split)
        self.model = build_model_from_config(cfg, self.class_names)
        # Preprocessing comes from the model's pretrained config, the same one every runtime reuses.
        mean, std = self.model.pretrained_cfg.mean, self.model.pretrained_cfg.std
        self.train_set = build_dataset(cfg.data, train_records, train=True, mean=mean, std=std, seed=cfg.seed)
        self.val_set = None
        if cfg.data.val_split:
            val_records, _ = build_records(cfg.data.format, root=cfg.data.root, split=cfg.data.val_split)
            self.val_set = build_dataset(cfg.data, val_records, train=False, mean=mean, std=std, seed=cfg.seed)
        self.train_loader = build_loader(self.train_set, cfg.data.batch_size, shuffle=True,
                                         num_workers=cfg.data.num_workers, distributed=self.distributed,
                                         seed=cfg.seed)
        self.steps_per_epoch = max(1, math.ceil(len(self.train_loader) / cfg.optim.accumulate))
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, steps_per_epoch=self.steps_per_epoch, epochs=cfg.epochs,
                                         cfg=cfg.optim)
        self.net = nn.parallel.DistributedDataParallel(self.model) if self.distributed else self.model
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
            "epoch": self.epoch,
            "step": self.step,
            "best_top1": self.best_top1,
            "rng": torch.get_rng_state(),
        }

    def resume(self, path: str | Path | None = None) -> None:
        """Continue from a checkpoint (default: `<out_dir>/last.pt`)."""
        ckpt = load_checkpoint(path or self.out_dir / "last.pt")
        if list(ckpt["class_names"]) != list(self.class_names):
            raise ValueError("checkpoint classes differ from the dataset's; cannot resume")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step, self.best_top1 = ckpt["epoch"], ckpt["step"], ckpt["best_top1"]
        torch.set_rng_state(ckpt["rng"])
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
    def train_one_epoch(self) -> dict:
        cfg = self.cfg
        self.net.train()
        set_epoch(self.train_loader, self.epoch)
        total_loss, total_correct, total_seen, num_bad, t0 = 0.0, 0, 0, 0, time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not self.progress)
        self.optimizer.zero_grad(set_to_none=True)
        micro = 0
        for clips, labels, bad in bar:
            num_bad += bad
            if len(labels) == 0:
                continue
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
                logits = self.net(clips)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=cfg.optim.label_smoothing)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {self.epoch + 1}, step {self.step}: lower optim.lr, enable "
                    f"optim.clip_grad, or check the data; last good checkpoint: {self.out_dir / 'last.pt'}")
            (loss / cfg.optim.accumulate).backward()
            micro += 1
            total_loss += loss.item() * len(labels)
            total_correct += (logits.argmax(1) == labels).sum().item()
            total_seen += len(labels)
            if micro % cfg.optim.accumulate == 0:
                self._optimizer_step()
                self._emit("step", step=self.step, loss=loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if cfg.max_steps and self.step >= cfg.max_steps:
                    break
        if micro % cfg.optim.accumulate:
            self._optimizer_step()
        elapsed = time.perf_counter() - t0
        loss_sum, correct, seen, bad_sum = dist.all_reduce_sum([total_loss, total_correct, total_seen, num_bad])
        return {"train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1),
                "train_clips_per_s": seen / elapsed, "skipped_samples": int(bad_sum), "epoch_time_s": elapsed}

    def _optimizer_step(self) -> None:
        if self.cfg.optim.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def validate(self) -> dict:
        if self.val_set is None:
            return {}
        # Every rank scores the whole split (not a shard), so the metrics are complete wherever they are read.
        loader = build_loader(self.val_set, self.cfg.data.batch_size, shuffle=False, distributed=False,
                              num_workers=self.cfg.data.num_workers, seed=self.cfg.seed)
        meter, bad = evaluate(self.model, loader, len(self.class_names), class_names=self.class_names,
                              amp=self.cfg.amp, progress=self.progress)
        m = meter.compute()
        return {"val_top1": m["top1"], "val_top5": m["top5"], "val_mean_class_accuracy": m["mean_class_accuracy"],
                "val_skipped_samples": bad}

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
