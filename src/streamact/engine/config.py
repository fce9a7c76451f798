"""Training configuration: dataclasses with a comment per field; YAML and `--key=value` only override fields.

A recipe is a YAML file whose top-level keys are the sections below (`model`, `data`, `optim`, `loss`, plus the
top-level run fields). Unknown keys are errors that name the key; CLI overrides are type-checked against
the field's annotation. The resolved config is written to the run directory as `config.yaml`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from streamact.errors import UserError

__all__ = ["ModelConfig", "DatasetSource", "DataConfig", "OptimConfig", "LossConfig", "TrainConfig", "ConfigError",
           "load_config", "apply_overrides", "save_config", "config_to_dict", "config_from_dict"]


class ConfigError(UserError, ValueError):
    """A recipe or override names an unknown key or has a value of the wrong type."""


@dataclass
class ModelConfig:
    name: str = "tsm_efficientnet_lite0"  # a name from `streamact models`
    pretrained: bool = True  # ImageNet-initialised backbone (EfficientNet-Lite0 ships weights offline)
    dropout: float = 0.5  # dropout before the classifier (compact models overfit: the real-time mobile paper)
    partial_bn: bool = False  # freeze every BatchNorm but the first (TSN partial BN)
    kwargs: dict = field(default_factory=dict)  # extra keyword arguments for the model builder (e.g. causal: true)
    init_weights: str = ""  # start from these weights (checkpoint or .safetensors; classes must match unless
    #                         init_head is false), e.g. to fine-tune a bi-directionally trained model in its causal form
    init_head: bool = True  # with init_weights, also load the classifier; false starts a fresh one (the
    #                         weights' classes may then differ: fine-tune a trained model to new classes)


@dataclass(frozen=True)
class DatasetSource:
    """One dataset of a run: the primary one (`data.format`, `data.root`) or an entry of `data.joint`.

    Attributes:
        name: names the dataset's metrics (`val_top1_<name>`); the primary's is its root folder's name.
        format: annotation format, as `data.format`.
        root: dataset root directory.
        train_split: split used for training.
        val_split: split evaluated with this dataset's head ("" = none).
    """

    name: str
    format: str
    root: str
    train_split: str
    val_split: str


@dataclass
class DataConfig:
    format: str = "jester"  # annotation format: jester, ssv2, kinetics, ucf101, videolist, rawframes, or
    #                         detection (a folder with UCF101v2-GT.pkl / JHMDB-GT.pkl and frames: trains a detector)
    root: str = "data/gestures"  # dataset root directory
    train_split: str = "train"  # split used for training
    val_split: str = "val"  # split evaluated after each epoch ("" = none)
    sampling: str = "segment"  # segment (TSN), dense (fixed stride, what a live stream sees) or stream (windows
    #                            of continuous streams (ipn, thumos formats) labelled by their last frame)
    clip_len: int = 8  # frames per clip (= num_segments for segment sampling; detection: t, frames per clip)
    num_clips: int = 5  # detection: K clips per tubelet (AMMA: 5 on JHMDB, 3 on UCF101-24)
    frame_interval: int = 1  # stride between frames for dense sampling
    stream_windows: int = 32  # stream sampling: windows drawn from each stream per epoch
    stream_background: float = 0.25  # stream sampling: share of windows ending on a background frame (the rest
    #                                  are spread evenly over the stream's gesture classes); detection: share of
    #                                  samples without a complete action tubelet (0 = AMMA's rule, which leaves out
    #                                  every window where an action starts or ends)
    frame_cache: str = ""  # folder where each video is decoded once (uint8 .npy at the training scale) and read
    #                        by memory map: for long videos sampled many times (streams); "" = decode every sample
    stream_outputs: int = 1  # stream sampling, training: the last N frames of each window are labelled, each with
    #                          its own class, and the model is scored at all of them in one pass (causal TSN
    #                          family; the window grows by N - 1 frames); 1 = the last frame only
    input_size: int = 160  # square crop fed to the model
    flip: bool = False  # horizontal flip; keep off for direction-sensitive gestures
    flip_pairs: list = field(default_factory=lambda: [])  # detection: class-name pairs that are each other's
    #                  mirror image (e.g. [[swipe_left, swipe_right]]); a flipped sample of one trains the other
    reverse_pairs: list = field(default_factory=lambda: [])  # detection: class-name pairs that are each other's
    #                  time reversal (e.g. [[squat_down, stand_up]]); half the samples of such classes play backwards
    #                  and train the other class
    batch_size: int = 16  # clips per optimizer step (before accumulation)
    num_workers: int = 2  # DataLoader worker processes
    acs: bool = False  # Adaptive Clip Selection (LIGAR paper, Eq. 1-2): sample windows that were classified right;
    #                    needs dense sampling
    acs_min_fraction: float = 0.7  # a video is sampled by ACS once this fraction of its frames has a score
    acs_warmup_epochs: int = 1  # epochs before ACS starts collecting predictions
    crossnorm_stats: str = ""  # CrossNorm: file of per-video channel statistics (`streamact data stats`); "" = off
    crossnorm_p: float = 0.45  # probability of CrossNorm per clip (LIGAR: 0.45)
    mixup_backgrounds: str = ""  # video MixUp: folder of background images mixed into clips; "" = off
    mixup_p: float = 0.5  # probability of background MixUp per clip
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) mixing weight, folded to <= 0.5 so the video dominates
    views: int = 1  # augmented views per sample for the consistency loss (1 = off, LIGAR/AugMix: 2 or 3)
    view_span: int = 0  # frames decoded per sample for the views' random temporal crops (0 = 1.5 x clip_len)
    joint: list = field(default_factory=lambda: [])  # more datasets trained jointly, one classifier head each
    #   (LIGAR multi-head training; needs a multi-head model, ligar_*): mappings {name, format, root}, optionally
    #   train_split / val_split (default: this section's); name defaults to the root folder's name. The primary
    #   dataset above is head 0 (what `forward`, export and streaming use), the entries heads 1.. in order;
    #   batches mix all training sets. Not with loss.teacher (a teacher knows the primary's classes only).
    #   YAML: joint: [{name: coarse, format: jester, root: data/coarse}]
    #   CLI: --data.joint='[{name: coarse, format: jester, root: data/coarse}]'

    def datasets(self) -> list[DatasetSource]:
        """The primary dataset and the `joint` ones, in head order.

        Raises:
            ConfigError: a joint entry that is not a mapping, lacks format or root, has an unknown key, or a
                dataset name used twice.
        """
        primary = DatasetSource(Path(self.root).name or self.format, self.format, self.root, self.train_split,
                                self.val_split)
        sources = [primary]
        known = {f.name for f in dataclasses.fields(DatasetSource)}
        for i, entry in enumerate(self.joint):
            where = f"data.joint[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a mapping {{name, format, root}}, got {entry!r}")
            unknown = sorted(map(str, set(entry) - known))
            if unknown:
                raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
            missing = [k for k in ("format", "root") if not entry.get(k)]
            if missing:
                raise ConfigError(f"{where}: missing '{missing[0]}'")
            root = str(entry["root"])
            sources.append(DatasetSource(
                name=str(entry.get("name") or Path(root).name), format=str(entry["format"]), root=root,
                train_split=str(entry.get("train_split", self.train_split)),
                val_split=str(entry.get("val_split", self.val_split))))
        names = [s.name for s in sources]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ConfigError(f"data.joint: two datasets are named '{duplicate}' (the primary is named after its "
                              f"root folder); give the joint entries distinct names")
        return sources


@dataclass
class OptimConfig:
    optimizer: str = "sgd"  # sgd or adamw
    lr: float = 0.01  # peak learning rate (after warm-up)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # decoupled for AdamW, L2 for SGD; not applied to norms and biases
    schedule: str = "cosine"  # cosine, step or staged (LIGAR: constant head-only stage, cosine warm-up,
    #                           alpha-cosine; see engine.optim.staged_lr_factor)
    lr_steps: list = field(default_factory=lambda: [])  # epochs where the step schedule multiplies by 0.1
    warmup_epochs: float = 0.0  # warm-up from 1% of lr (linear; cosine-shaped from warmup_start in "staged")
    freeze_epochs: float = 0.0  # head-only epochs first: backbone frozen, its BatchNorm in eval mode (LIGAR: 5)
    freeze_lr_mult: float = 10.0  # "staged": lr multiplier during the head-only epochs
    warmup_start: float = 0.01  # "staged": lr multiplier where the warm-up starts
    final_lr_ratio: float = 0.01  # "staged": lr multiplier at the end of training
    alpha: float = 1.5  # "staged": exponent of the progress in the final cosine (LIGAR paper, Eq. 3)
    clip_grad: float = 20.0  # max gradient norm (0 = off); TSN/TSM use 20; with clip_mode agc the unit-wise ratio
    clip_mode: str = "norm"  # norm (global gradient norm) or agc (adaptive gradient clipping; LIGAR: 0.2)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    accumulate: int = 1  # gradient accumulation steps per optimizer step


@dataclass
class LossConfig:
    name: str = "ce"  # ce (cross-entropy) or metric (LIGAR: AM-Softmax with push losses; needs a metric head)
    margin: float = 0.35  # metric: AM-Softmax cosine margin
    scale_start: float = 30.0  # metric: AM-Softmax scale at step 0 ...
    scale_end: float = 5.0  # ... falling polynomially (power 1.2) to this ...
    scale_epochs: float = 40.0  # ... over this many epochs, then constant (LIGAR's fine-tuning schedule)
    conf_penalty: float = 0.085  # metric: weight of the entropy subtracted from each sample's loss
    local_push: float = 1.0  # metric: weight of the local push loss (0 = off)
    centre_push: float = 1.0  # metric: weight of the class-centre push loss (0 = off)
    rsc: bool = False  # Representation Self-Challenging on the pooled features (drop 0.33, half the batch)
    consistency: float = 12.0  # weight of the Jensen-Shannon consistency between data.views views
    teacher: list = field(default_factory=lambda: [])  # distillation: checkpoints whose averaged logits teach
    kd_weight: float = 0.4  # distillation: weight of T^2 KL(teacher || student)
    kd_temperature: float = 8.0  # distillation: softmax temperature T


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    epochs: int = 10  # passes over the training split
    amp: bool = False  # bf16 autocast for forward/backward
    device: str = "cpu"  # cpu, cuda or auto (cuda if torch sees a GPU); the run's config.yaml records the one used
    seed: int = 0  # seeds sampling, augmentation, initialisation and shuffling
    out_dir: str = "runs/train"  # run directory: checkpoints, metrics, resolved config
    max_steps: int = 0  # stop after this many optimizer steps (0 = no limit); for smoke runs
    eval_every: int = 1  # evaluate on val_split every N epochs (0 = only at the end)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def _set_field(obj, key: str, value, *, source: str, prefix: str = "") -> None:
    """Set dotted `key` on nested dataclass `obj`, checking that it exists and the type fits."""
    head, _, rest = key.partition(".")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if head not in fields:
        raise ConfigError(f"{source}: unknown config key '{prefix}{key}' (known: {', '.join(sorted(fields))})")
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current):
        if rest:
            _set_field(current, rest, value, source=source, prefix=f"{prefix}{head}.")
            return
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{prefix}{head}' is a section; give it a mapping")
        for k, v in value.items():
            _set_field(current, k, v, source=source, prefix=f"{prefix}{head}.")
        return
    if rest:
        if isinstance(current, dict):  # free-form kwargs: model.kwargs.causal=true -> True (YAML scalars)
            current[rest] = yaml.safe_load(value) if isinstance(value, str) else value
            return
        raise ConfigError(f"{source}: '{head}' is not a section, cannot set '{key}'")
    setattr(obj, head, _coerce(value, typing.get_type_hints(type(obj))[head], prefix + key, source))


def _coerce(value, annotation, key: str, source: str):
    origin = typing.get_origin(annotation) or annotation
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
    elif origin in (int, float) and not isinstance(value, bool):
        if isinstance(value, (int, float)) and (origin is float or float(value).is_integer()):
            return origin(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return origin(value)
    elif origin is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin in (list, dict):
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if isinstance(value, origin):
            return value
    raise ConfigError(f"{source}: '{key}' expects {getattr(origin, '__name__', origin)}, got {value!r}")


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply command-line overrides (type-checked; unknown keys are errors).

    Each is ``--section.key=value`` or ``--section.key value`` (two tokens), and a bare ``--key`` means true, so
    a boolean field is written like any on/off flag (``--amp``).
    """
    tokens = list(overrides)
    while tokens:
        item = tokens.pop(0)
        if not item.startswith("--") or item == "--":
            raise ConfigError(f"override '{item}' must look like --section.key=value or --section.key value (a "
                              "recipe file goes first)")
        key, eq, value = item[2:].partition("=")
        if not eq:
            value = tokens.pop(0) if tokens and not tokens[0].startswith("--") else "true"
        _set_field(cfg, key, value, source="command line")
    return cfg


def config_from_dict(data: dict, *, source: str = "config") -> TrainConfig:
    """Defaults overridden by a (possibly partial) nested mapping, e.g. a checkpoint's saved config."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a recipe must be a mapping of config keys")
    cfg = TrainConfig()
    for key, value in data.items():
        _set_field(cfg, key, value, source=source)
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then the YAML recipe at `path` (if any), then CLI overrides."""
    data = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
    cfg = apply_overrides(config_from_dict(data, source=str(path)), list(overrides))
    cfg.data.datasets()  # a bad data.joint entry is reported here, before any data is read
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
