"""Models: one registry (`create_model`, `list_models`) over thin builder functions, plus timm backbones."""
from streamact.models import amma  # noqa: F401  (registers the AMMA detectors)
from streamact.models import tsn  # noqa: F401  (registers the TSN / TSM / MixTConv variants)
from streamact.models import vtn  # noqa: F401  (registers the VTN variants)
from streamact.models import x3d_lgd  # noqa: F401  (registers the LIGAR variant)
from streamact.models._pretrained import PretrainedCfg, load_state_dict, load_weights
from streamact.models._registry import WEIGHTS, create_model, is_model, list_models, model_weights, register_model
from streamact.models.backbones import backbone_cfg, create_backbone, list_backbones
from streamact.models.tsn import TSN

__all__ = [
    "create_model",
    "list_models",
    "is_model",
    "model_weights",
    "WEIGHTS",
    "register_model",
    "create_backbone",
    "list_backbones",
    "backbone_cfg",
    "PretrainedCfg",
    "load_state_dict",
    "load_weights",
    "TSN",
]
