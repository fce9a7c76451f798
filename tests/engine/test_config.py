from pathlib import Path

import pytest

from streamact.engine.config import ConfigError, apply_overrides, config_from_dict, load_config
from streamact.models import is_model


def test_yaml_then_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  name: tsn_mobilenetv2_100\noptim:\n  lr: 0.1\nepochs: 3\n")
    cfg = load_config(recipe, ["--optim.lr=0.02", "--data.flip=true", "--optim.lr_steps=[2, 4]"])
    assert cfg.model.name == "tsn_mobilenetv2_100"
    assert cfg.optim.lr == 0.02 and cfg.epochs == 3 and cfg.data.flip is True
    assert cfg.optim.lr_steps == [2, 4]


def test_unknown_yaml_key_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match="lrr"):
        load_config(recipe)


@pytest.mark.parametrize("override, needle", [
    ("--optim.nope=1", "optim.nope"),
    ("--epochs=ten", "epochs"),
    ("--amp=maybe", "amp"),
    ("--epochs=1.5", "epochs"),
    ("epochs=1", "--section.key=value"),
])
def test_bad_overrides_are_named(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("[", r"\[")):
        apply_overrides(load_config(), [override])


def test_roundtrip_from_dict():
    cfg = load_config(None, ["--model.kwargs.foo=3", "--seed=7"])
    from streamact.engine.config import config_to_dict

    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg and again.model.kwargs == {"foo": 3}


@pytest.mark.parametrize("recipe", sorted(Path(__file__).parents[2].joinpath("configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_recipes_load_and_name_registered_models(recipe):
    cfg = load_config(recipe)
    assert is_model(cfg.model.name)
    assert cfg.out_dir.startswith("runs/") and cfg.epochs > 0
