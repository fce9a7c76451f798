"""What each registered model's weights are (`model_weights`), checked against what `pretrained=True` loads, and
the one place (`engine.build.load_model`) that refuses to run a classifier that was never trained."""
import pytest

from streamact.engine.build import load_model
from streamact.errors import UserError
from streamact.models import WEIGHTS, create_model, list_models, model_weights, register_model


def test_every_model_declares_a_known_kind():
    assert {model_weights(n) for n in list_models()} <= set(WEIGHTS)
    assert model_weights("tsm_efficientnet_lite0_gestures") == "action"
    assert model_weights("tsm_efficientnet_lite0") == "imagenet"
    assert model_weights("tsm_mobilenetv2_100") == "none"
    with pytest.raises(KeyError):
        model_weights("nosuch")
    with pytest.raises(ValueError, match="weights must be one of"):
        register_model(weights="kinetics")


@pytest.mark.parametrize("name", [n for n in list_models() if model_weights(n) == "none"])
def test_none_means_pretrained_is_unavailable(name):
    with pytest.raises(ValueError, match="offline"):
        create_model(name, pretrained=True)


@pytest.mark.parametrize("name", [n for n in list_models() if model_weights(n) != "none"])
def test_declared_weights_are_what_pretrained_loads(name):
    """action: the shipped classifier with its labels; imagenet: an ImageNet backbone under an unnamed classifier
    (its weights differ from a random build's)."""
    model = create_model(name, pretrained=True, img_size=64)
    if model_weights(name) == "action":
        assert model.pretrained_cfg.label_names is not None and model.pretrained_cfg.weights is not None
    else:
        assert model.pretrained_cfg.label_names is None
        random = create_model(name, pretrained=False, img_size=64)
        trained, fresh = model.state_dict(), random.state_dict()
        first_conv = next(k for k, v in trained.items() if v.ndim == 4)
        assert not trained[first_conv].equal(fresh[first_conv])


def test_load_model_refuses_an_untrained_classifier():
    with pytest.raises(UserError, match="no action-trained classifier.*--allow-untrained"):
        load_model("tsm_efficientnet_lite0")
    with pytest.raises(UserError, match="no action-trained classifier"):
        load_model("tsm_mobilenetv2_100")
    model, name = load_model("tsm_mobilenetv2_100", allow_untrained=True)
    assert name == "tsm_mobilenetv2_100" and not model.training
    model, name = load_model("tsm_efficientnet_lite0_gestures")
    assert model.pretrained_cfg.label_names is not None


def test_load_model_names_a_missing_model():
    with pytest.raises(UserError, match="no registered model has that name"):
        load_model("tsm_efficientnet_lite0_gesturez")


def test_unknown_model_is_a_user_error_and_a_key_error():
    with pytest.raises(UserError, match="unknown model 'tsm_mobilenet'; did you mean tsm_mobilenetv2_100"):
        create_model("tsm_mobilenet")
    with pytest.raises(KeyError):
        create_model("tsm_mobilenet")


def test_every_model_shipping_weights_declares_them():
    """A variant whose config names a bundled weights file must be registered with weights="action", or the CLI
    would refuse it as untrained."""
    from streamact.models import tsn

    shipping = [name for name, spec in tsn.default_cfgs.items() if spec.cfg.weights is not None]
    assert shipping and all(model_weights(name) == "action" for name in shipping)
