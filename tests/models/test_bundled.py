"""The bundled streaming model: shipped as safetensors, loads offline, and recognises synthetic gestures."""
import numpy as np
import torch

from streamact import create_model
from streamact.data.synthetic import GESTURE_CLASSES, render_clip
from streamact.inference.streaming import StreamingEngine
from streamact.models._pretrained import WEIGHTS_DIR

NAME = "tsm_efficientnet_lite0_gestures"


def test_weights_are_shipped_small_and_load_without_network():
    weights = WEIGHTS_DIR / f"{NAME}.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 20 * 2**20
    model = create_model(NAME, pretrained=True)
    cfg = model.pretrained_cfg
    assert cfg.label_names == tuple(GESTURE_CLASSES) and cfg.frame_interval == 2
    assert not model.non_causal_layers()  # ships in its streaming form
    fresh = create_model(NAME)  # random init differs: the weights really were loaded
    assert not torch.equal(model.head.fc.weight, fresh.head.fc.weight)


def test_streams_rendered_gestures_above_chance():
    """Streamed clip by clip with reset in between, the last prediction of each clip is mostly right."""
    engine = StreamingEngine(create_model(NAME, pretrained=True), smoothing="none")
    correct = 0
    for i, name in enumerate(GESTURE_CLASSES):
        engine.reset()
        clip = render_clip(name, np.random.default_rng((123, i)), size=128, num_frames=32)
        predictions = [p for p in map(engine.push, clip) if p is not None]
        correct += predictions[-1].label == name
    assert correct / len(GESTURE_CLASSES) >= 0.5  # chance is 1/15
