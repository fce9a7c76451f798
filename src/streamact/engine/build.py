"""Build a recipe's model, and rebuild a trained one from its checkpoint.

    TrainConfig + class names ──► build_model_from_config ──► model (pretrained_cfg: input size, sampling, labels)
    checkpoint.pt ──► load_checkpoint ──► config_from_dict ──► build_model_from_config ──► load_state_dict ──► eval()
    checkpoint.pt | registered name ──► load_model (refuses an untrained classifier) ──► model to run

The trainer, the distillation teachers, `eval`, `recognize`, `demo` and `export` all build models here, so this
module imports none of them. Everything that runs a model for a user (`recognize`, `demo`, `export`, later `serve`
and `detect`) gets it from `load_model`, which is where a classifier that was never trained is refused.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import ConfigError, TrainConfig, config_from_dict
from streamact.errors import UserError
from streamact.models import WEIGHTS, create_model, is_model, list_models, load_weights, model_weights

__all__ = ["build_model_from_config", "load_trained_model", "load_model", "load_model_for_eval"]


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
    if d.format == "detection":  # a tubelet detector: K clips of t frames, no recognizer options
        kind = dict(num_clips=d.num_clips, clip_len=d.clip_len)
    else:
        kind = dict(num_segments=d.clip_len, dropout=m.dropout, partial_bn=m.partial_bn)
    try:
        model = create_model(
            m.name,
            pretrained=m.pretrained if pretrained is None else pretrained,
            num_classes=[len(c) for c in joint_class_names] if num_heads > 1 else len(class_names),
            label_names=class_names,
            img_size=d.input_size,
            **kind,
            **m.kwargs,
        )
    except (TypeError, ValueError) as exc:
        if num_heads == 1:
            raise
        raise ConfigError(f"{needs_heads}: building it with {num_heads} heads failed ({exc})") from exc
    if num_heads > 1 and "dataset_id" not in inspect.signature(model.forward_head).parameters:
        raise ConfigError(f"{needs_heads}: its forward_head takes no dataset_id")
    if d.format != "detection":
        model.pretrained_cfg = model.pretrained_cfg.replace(
            frame_interval=d.frame_interval, num_segments=d.clip_len if d.sampling == "segment" else None)
    if m.init_weights:
        load_weights(model, m.init_weights, head=m.init_head)
    return model


def load_trained_model(path: str | Path) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model of a `streamact train` checkpoint with its weights, in eval mode, and its config.

    Args:
        path: a checkpoint written by `streamact train` (``model``, ``config`` and ``class_names`` entries).

    Returns:
        The model (its ``pretrained_cfg`` carries the preprocessing and labels) and the training config.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a streamact checkpoint, lacks its config or class names, or its weights do not
            fit the model its config describes.
    """
    ckpt = load_checkpoint(path)
    missing = [key for key in ("config", "class_names") if not ckpt.get(key)]
    if missing:
        raise ValueError(f"{path}: the checkpoint has no {' or '.join(missing)}; it was not written by "
                         "`streamact train`")
    cfg = config_from_dict(ckpt["config"], source=str(path))
    class_names = [str(name) for name in ckpt["class_names"]]
    model = build_model_from_config(cfg, class_names, joint_class_names=ckpt.get("joint_class_names", ()),
                                    pretrained=False)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit {cfg.model.name} as configured ({e})") from e
    return model.eval(), cfg


def load_model(model: str | Path, *, allow_untrained: bool = False) -> tuple[nn.Module, str]:
    """The model a user asked to run: a `streamact train` checkpoint, or a registered model with its own weights.

    Args:
        model: path of a checkpoint, or a registered name (`streamact models`); a file of that name wins.
        allow_untrained: run a registered model whose classifier was never trained on actions (ImageNet backbone
            or random weights) instead of refusing it; its predictions are meaningless, which a smoke test or an
            export for later fine-tuning may accept.

    Returns:
        (model in eval mode, its registered architecture name).

    Raises:
        UserError: no checkpoint at `model` and no registered model of that name, or a registered model without
            action-trained weights (unless `allow_untrained`).
        ValueError: the file is not a usable checkpoint (see `load_trained_model`).
    """
    name = str(model)
    if Path(model).is_file() or not is_model(name):
        if not Path(model).exists() and not name.endswith((".pt", ".pth")):
            raise UserError(f"{name}: no such checkpoint file, and no registered model has that name; see "
                            "`streamact models` for the names and which of them carry trained weights")
        trained, cfg = load_trained_model(model)
        return trained, cfg.model.name
    weights = model_weights(name)
    if weights != "action" and not allow_untrained:
        ready = ", ".join(n for n in list_models() if model_weights(n) == "action")
        raise UserError(
            f"{name} has no action-trained classifier (weights: {WEIGHTS[weights]}), so its predictions would be "
            f"meaningless. Train or fine-tune it (streamact train CONFIG.yaml --model.name={name}) and pass the "
            f"checkpoint (e.g. runs/<run>/best.pt), use a model with bundled action weights ({ready}), or add "
            "--allow-untrained to run it anyway")
    return create_model(name, pretrained=weights != "none").eval(), name


def load_model_for_eval(model: str | Path) -> tuple[nn.Module, TrainConfig]:
    """A model to evaluate on clips and the data settings that feed it the clips it was trained on.

    Args:
        model: a `streamact train` checkpoint (its training config), or a registered model with action-trained
            weights: its config is rebuilt from the model's pretrained config (input size, and segment sampling of
            num_segments frames or dense sampling of clip_len frames every frame_interval; a detector: the
            detection format with its K clips of t frames).

    Raises:
        UserError: a registered model without action-trained weights (see `load_model`).
        FileNotFoundError, ValueError: as for `load_trained_model`.
    """
    if Path(model).is_file() or not is_model(str(model)):
        return load_trained_model(model)
    from streamact.models.amma import AMMA

    trained, name = load_model(model)
    pcfg, cfg = trained.pretrained_cfg, TrainConfig()
    cfg.model.name, cfg.data.input_size = name, pcfg.input_size[-1]
    if isinstance(trained, AMMA):  # a detector: tubelets of K clips of t frames from a detection dataset
        cfg.data.format, cfg.data.num_clips, cfg.data.clip_len = "detection", trained.num_clips, trained.clip_len
        return trained, cfg
    if pcfg.num_segments:
        cfg.data.sampling, cfg.data.clip_len = "segment", pcfg.num_segments
    else:
        cfg.data.sampling, cfg.data.clip_len, cfg.data.frame_interval = "dense", pcfg.clip_len, pcfg.frame_interval
    return trained, cfg
