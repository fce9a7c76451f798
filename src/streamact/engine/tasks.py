"""What the one trainer needs to know about a task beyond classification: spatio-temporal detection.

The trainer (`engine/trainer.py`) runs the same loop, optimizer, schedule, bf16 autocast, DDP, checkpoints and
resume for every task; a run is a detection run when ``data.format`` is ``detection``. `DetectionTask` then
supplies what differs from recognition:

    data.root/*-GT.pkl ──► DetectionAnnotations ──► TubeletDataset (K clips of t frames, box-aware augmentation,
    heatmap / movement / size targets) ──► DetectionTrainStep (AMMA ──► TubeletLoss) ──► validate: the test split
    streamed clip by clip ──► tubelets ──► per-frame detections ──► frame-mAP (the metric that selects best.pt)
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from streamact.data.datasets.detection import (
    ANNOTATION_GLOB,
    DetectionAnnotations,
    load_detection_annotations,
    read_frame,
)
from streamact.data.tubelets import TubeletDataset, collate_tubelets, training_samples
from streamact.engine.config import ConfigError, TrainConfig
from streamact.evaluation.detection import DetectionEvaluation, evaluate_detections
from streamact.inference.detection import DetectionEngine
from streamact.inference.runtimes import TorchRuntime
from streamact.inference.tubes import Tubelet
from streamact.losses.detection import TubeletLoss

__all__ = ["DETECTION_FORMAT", "DetectionTask", "DetectionTrainStep", "find_annotation_file", "detect_video",
           "evaluate_detector", "is_detection", "split_videos"]

DETECTION_FORMAT = "detection"


def is_detection(cfg: TrainConfig) -> bool:
    """Whether a recipe trains a detector (``data.format: detection``)."""
    return cfg.data.format == DETECTION_FORMAT


def find_annotation_file(root: str | Path) -> Path:
    """The one ``*-GT.pkl`` (UCF101v2-GT.pkl, JHMDB-GT.pkl, ...) in a detection dataset folder.

    Raises:
        ConfigError: none or several, naming the folder.
    """
    root = Path(root)
    found = sorted(root.glob(ANNOTATION_GLOB)) if root.is_dir() else []
    if len(found) != 1:
        names = ", ".join(p.name for p in found)
        what = f"several annotation files ({names})" if found else "no *-GT.pkl annotation file"
        raise ConfigError(f"detection dataset {root}: {what}; point data.root at a folder written by "
                          "`streamact data synth detection` or holding UCF101v2-GT.pkl / JHMDB-GT.pkl")
    return found[0]


def split_videos(ann: DetectionAnnotations, split: str) -> list[str]:
    """Videos of a split named ``train`` / ``test`` (the first split) or ``train2``, ``test3``, ... (JHMDB has 3)."""
    base = split.rstrip("0123456789")
    return ann.videos(base, int(split[len(base):] or 1) - 1)


class DetectionTrainStep(nn.Module):
    """The detector and its loss as one module (what DDP wraps)."""

    def __init__(self, model: nn.Module, loss: TubeletLoss) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, clips: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        out = self.model(clips)
        return self.loss(type(out)(*(t.float() for t in out)), targets)  # the loss in float32 under bf16 autocast


def detect_video(runtime, ann: DetectionAnnotations, video: str, *, top_k: int = 100,
                 min_score: float = 0.01) -> list[tuple[int, list[Tubelet]]]:
    """Run a detector over a video as a live stream (`DetectionEngine`, frame by frame): one step per clip of t
    frames, the last step over the final t frames, each embedding only the new clip and reusing the cached
    features of the previous K - 1.

    Args:
        runtime: a detector's runtime (`TorchRuntime`, or an exported step graph's `OpenVINORuntime` /
            `OnnxRuntime`).

    Returns:
        [(end frame, tubelets of that step, in source pixels, best first), ...].
    """
    steps: list[tuple[int, list[Tubelet]]] = []
    engine = DetectionEngine(runtime, top_k=top_k, min_score=min_score,
                             on_step=lambda frame, tubelets: steps.append((frame, tubelets)))
    for f in range(1, ann.nframes[video] + 1):
        engine.push(read_frame(ann, video, f))
    engine.finish()
    return steps


def evaluate_detector(model_or_runtime, ann: DetectionAnnotations, videos: list[str], *, amp: bool = False,
                      progress: bool = False, device: str = "cpu") -> DetectionEvaluation:
    """Stream a detector over `videos` (see `detect_video`), link its tubelets and compute frame- and video-mAP.

    Args:
        model_or_runtime: a detector (run by `TorchRuntime` with bf16 autocast if `amp`, on `device`) or a runtime.
    """
    runtime = (TorchRuntime(model_or_runtime, bf16=amp, device=device) if isinstance(model_or_runtime, nn.Module)
               else model_or_runtime)
    steps = {video: detect_video(runtime, ann, video)
             for video in tqdm(videos, desc="detect", unit="video", disable=not progress, leave=False)}
    return evaluate_detections(steps, ann, videos)


class DetectionTask:
    """Data, training step and validation of a detection run (``data.format: detection``).

    Args:
        cfg: the run's configuration: ``data.root`` (folder with the annotation pickle and frames),
            ``data.train_split`` / ``data.val_split`` (``train``, ``test``; JHMDB: ``train1``..``train3``),
            ``data.num_clips`` (K), ``data.clip_len`` (t), ``data.input_size``, ``data.flip``.

    Attributes:
        annotations: the dataset (bad tubes are skipped and reported, not fatal).
        class_names: action classes.
        monitor: validation metric that selects ``best.pt``.
    """

    monitor = "val_frame_map"

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.annotations = load_detection_annotations(find_annotation_file(cfg.data.root), on_error="skip")
        self.class_names = list(self.annotations.labels)

    def build_train_set(self, model: nn.Module) -> TubeletDataset:
        d = self.cfg.data
        videos = split_videos(self.annotations, d.train_split)
        samples = training_samples(self.annotations, videos, num_clips=d.num_clips, clip_len=d.clip_len,
                                   background=d.stream_background, seed=self.cfg.seed)
        cfg = model.pretrained_cfg
        return TubeletDataset(self.annotations, samples, num_clips=d.num_clips, clip_len=d.clip_len,
                              input_size=d.input_size, mean=cfg.mean, std=cfg.std, train=True, flip=d.flip,
                              flip_pairs=self._class_pairs("flip_pairs"),
                              reverse_pairs=self._class_pairs("reverse_pairs"), seed=self.cfg.seed)

    def _class_pairs(self, key: str) -> list[tuple[int, int]]:
        """``data.<key>`` (pairs of class names) as label ids."""
        ids = {name: i for i, name in enumerate(self.class_names)}
        pairs = []
        for pair in getattr(self.cfg.data, key):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or any(name not in ids for name in pair):
                raise ConfigError(f"data.{key}: {pair!r} is not a pair of class names of this dataset "
                                  f"({', '.join(self.class_names)})")
            pairs.append((ids[pair[0]], ids[pair[1]]))
        return pairs

    collate_fn = staticmethod(collate_tubelets)

    def build_train_step(self, model: nn.Module) -> DetectionTrainStep:
        return DetectionTrainStep(model, TubeletLoss())

    def validate(self, model: nn.Module, *, amp: bool = False, progress: bool = False, device: str = "cpu") -> dict:
        """``val_frame_map`` (frame-mAP at IoU 0.5) and ``val_video_map`` (video-mAP at 0.5) of the val split, as
        fractions, and ``val_videos``; empty without a val split."""
        videos = split_videos(self.annotations, self.cfg.data.val_split) if self.cfg.data.val_split else []
        if not videos:
            return {}
        result = evaluate_detector(model, self.annotations, videos, amp=amp, progress=progress, device=device)
        return {"val_frame_map": result.frame.map, "val_video_map": result.video.map(0.5), "val_videos": len(videos)}
