"""VTN: structure, API, streaming == offline (warm-up and sliding window, every modality), complexity, export."""
import math
import warnings

import numpy as np
import pytest
import torch
from _fixtures import randomise_bn

from streamact.complexity import count_macs, count_params
from streamact.inference.predictor import to_streaming
from streamact.inference.streaming import StreamingEngine
from streamact.layers.attention import sinusoid_table
from streamact.models import create_backbone, create_model
from streamact.models.vtn import VTN

T, SIZE = 4, 48
MODALITIES = ["rgb", "rgbdiff", "stacked"]


def tiny(modality="rgb", **kwargs):
    torch.manual_seed(0)
    model = create_model("vtn_mobilenetv2_100", num_classes=5, num_segments=T, img_size=SIZE, modality=modality,
                         **kwargs)
    return randomise_bn(model).eval()


def test_structure_follows_the_original():
    model = create_model("vtn_mobilenetv2_100")
    reduce = model.encoder.reduce
    assert (reduce.in_channels, reduce.out_channels, reduce.kernel_size) == (1280, 512, (1, 1))
    assert reduce.bias is not None
    pos = model.decoder.pos_embed.weight
    assert pos.shape == (16, 512) and pos.requires_grad and pos[0].abs().max() == 0
    torch.testing.assert_close(pos.detach(), sinusoid_table(16, 512))
    blocks = model.decoder.blocks
    assert len(blocks) == 4
    for block in blocks:
        assert block.attn.num_heads == 8 and block.attn.temperature == math.sqrt(512)
        assert block.attn.attn_drop.p == block.drop1.p == block.drop2.p == 0.1
        assert (block.ffn.fc1.in_features, block.ffn.fc1.out_features, block.ffn.fc2.out_features) == (512, 1024, 512)
    fc = model.head.fc
    assert fc.out_features == 400 and fc.bias.abs().max() == 0 and abs(fc.weight.std().item() - 0.02) < 0.001
    cfg = model.pretrained_cfg
    assert (cfg.clip_len, cfg.num_segments, cfg.frame_interval, cfg.input_size) == (16, None, 2, (3, 224, 224))
    assert (cfg.mean, cfg.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert create_model("vtn_efficientnet_lite0").pretrained_cfg.mean == (0.5, 0.5, 0.5)  # TF-ported weights


def test_resnet34_encoder_needs_no_reduction():
    encoder = create_model("vtn_resnet34").encoder
    assert isinstance(encoder.reduce, torch.nn.Identity)
    assert abs(count_params(encoder) - 21.276e6) / 21.276e6 < 0.001  # OMZ action-recognition-0001-encoder
    assert encoder(torch.randn(2, 3, 64, 64)).shape == (2, 512)


@pytest.mark.parametrize("modality", MODALITIES)
def test_forward_backward_and_api(modality):
    model = tiny(modality).train()
    x = torch.randn(2, 3, T, SIZE, SIZE)
    logits = model(x)
    assert logits.shape == (2, 5) and model.num_classes == 5
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, T, model.num_features) == (2, T, 512)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert (model(x.flip(2)) - model(x)).abs().max() > 1e-4  # frame order matters (positional embedding)


def test_bad_input_and_options():
    model = tiny()
    with pytest.raises(ValueError, match="clips of 1 to 4 frames"):
        model(torch.randn(1, 3, T + 1, SIZE, SIZE))
    with pytest.raises(ValueError, match="modality must be one of"):
        tiny("flow")
    with pytest.raises(ValueError, match="partial_bn"):
        tiny(partial_bn=True)
    with pytest.raises(ValueError, match="3 label names for 5 classes"):
        tiny(label_names=["a", "b", "c"])


def test_reset_classifier_and_labels():
    model = create_model("vtn_mobilenetv2_100", label_names=["a", "b", "c"], num_segments=2, img_size=SIZE).eval()
    assert model.num_classes == 3 and model.pretrained_cfg.label_names == ("a", "b", "c")
    model.reset_classifier(2, label_names=["x", "y"])
    x = torch.randn(1, 3, 2, SIZE, SIZE)
    assert model(x).shape == (1, 2) and model.pretrained_cfg.label_names == ("x", "y")
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_features(x).mean(1))  # time-averaged features


def stream(model, clip, state=None):
    state = model.init_state(clip.shape[0]) if state is None else state
    outputs = []
    for t in range(clip.shape[2]):
        logits, state = model.forward_step(clip[:, :, t], state)
        outputs.append(logits)
    return outputs, state


@pytest.mark.parametrize("modality", MODALITIES)
def test_streaming_equals_offline(modality):
    """Warm-up: after n < T frames, the offline forward of those n frames. Then the offline forward of the window."""
    model = tiny(modality)
    frames = torch.randn(2, 3, 3 * T, SIZE, SIZE)
    with torch.no_grad():
        outputs, state = stream(model, frames)
        for n in range(1, T + 1):
            torch.testing.assert_close(outputs[n - 1], model(frames[:, :, :n]), atol=1e-4, rtol=1e-4)
        for end in range(T + 1, 3 * T + 1):
            # The window's oldest frame still sees its real predecessor: encode one frame of context, drop it.
            embeddings = model.encode(frames[:, :, end - T - 1:end])[:, 1:]  # (B, T, D)
            expected = model.forward_head(model.decoder(embeddings))
            torch.testing.assert_close(outputs[end - 1], expected, atol=1e-4, rtol=1e-4)
            if modality == "rgb":
                torch.testing.assert_close(outputs[end - 1], model(frames[:, :, end - T:end]), atol=1e-4, rtol=1e-4)
    assert list(state) == (["embeddings", "count"] if modality == "rgb" else ["prev_frame", "embeddings", "count"])
    assert state["embeddings"].shape == (2, T, 512) and state["count"].tolist() == [[T], [T]]


def test_streams_warm_up_independently():
    """Zeroing one stream's state (a scene cut) restarts only that stream."""
    model = tiny("stacked")
    frames = torch.randn(2, 3, T + 2, SIZE, SIZE)
    with torch.no_grad():
        _, state = stream(model, frames[:, :, :T])
        for value in state.values():
            value[1] = 0
        outputs, _ = stream(model, frames[:, :, T:], state)
        torch.testing.assert_close(outputs[-1][1:], model(frames[1:, :, T:]), atol=1e-4, rtol=1e-4)
        context = model.encode(frames[:1, :, 1:])[:, 1:]  # frames 2 .. T+1, frame 2's difference from frame 1
        torch.testing.assert_close(outputs[-1][:1], model.forward_head(model.decoder(context)), atol=1e-4, rtol=1e-4)


def test_streaming_tools_accept_vtn():
    model = tiny()
    assert model.temporal_layers() == [] and model.non_causal_layers() == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to convert, so no accuracy warning
        assert to_streaming(model) is model
    engine = StreamingEngine(model, smoothing="none", frame_interval=1)
    rng = np.random.default_rng(0)
    predictions = [engine.push(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)) for _ in range(T + 1)]
    assert all(p is not None and p.probs.shape == (5,) for p in predictions)


def test_stacked_pretrained_keeps_imagenet_kernel():
    rgb = create_backbone("efficientnet_lite0", pretrained=True)
    model = create_model("vtn_efficientnet_lite0", pretrained=True, modality="stacked", num_segments=2)
    w = model.encoder.backbone.conv_stem.weight
    torch.testing.assert_close(w[:, :3], rgb.conv_stem.weight)
    torch.testing.assert_close(w[:, 3:], rgb.conv_stem.weight)


def test_trainer_builds_vtn():
    from streamact.engine.config import load_config
    from streamact.engine.build import build_model_from_config

    cfg = load_config(None, ["--model.name=vtn_mobilenetv2_100", "--model.pretrained=false", "--data.clip_len=4",
                             f"--data.input_size={SIZE}", "--data.sampling=dense", "--data.frame_interval=2",
                             "--model.kwargs.modality=rgbdiff"])
    model = build_model_from_config(cfg, ["a", "b"])
    assert isinstance(model, VTN) and model.modality.modality == "rgbdiff" and model.clip_len == 4
    assert model.head.drop.p == cfg.model.dropout
    pcfg = model.pretrained_cfg
    assert (pcfg.clip_len, pcfg.frame_interval, pcfg.input_size) == (4, 2, (3, SIZE, SIZE))
    assert pcfg.label_names == ("a", "b")


# -- complexity (OMZ driver-action-recognition-adas-0002 / action-recognition-0001 model cards) ----
def _within(value, target, tol=0.05):
    return abs(value - target) <= tol * target


@pytest.fixture(scope="module")
def meta_vtn():
    with torch.device("meta"):
        return create_model("vtn_mobilenetv2_100")


def test_mobilenetv2_encoder_complexity(meta_vtn):
    assert _within(count_params(meta_vtn.encoder), 2.863e6)  # OMZ encoder: 2.863 MParams
    assert _within(count_macs(meta_vtn.encoder, (1, 3, 224, 224)), 0.676e9 / 2)  # 0.676 GFLOPs = 0.338 GMACs


def test_decoder_complexity(meta_vtn):
    t, d, k = 16, 512, 400
    decoder, head = meta_vtn.decoder, meta_vtn.head
    per_block = 3 * 8 * d * 64 + (d * 1024 + 1024 + 1024 * d + d) + 2 * 2 * d
    assert count_params(decoder) + count_params(head) == 4 * per_block + t * d + d * k + k  # 7,567,760
    assert _within(count_params(decoder) + count_params(head), 7.57e6, 0.001)
    # OMZ's 4.405 MParams is the feed-forward blocks and the classifier only.
    ffn_params = sum(count_params(b.ffn) for b in decoder.blocks) + count_params(head)
    assert ffn_params == 4_405_648
    # MACs: the full decoder counts Q/K/V projections and attention too; OMZ's 0.147 GFLOPs (0.0735 GMACs) matches
    # the feed-forward blocks and the classifier alone, like its parameter count.
    macs = count_macs(decoder, (1, t, d))
    assert macs == 4 * (3 * t * d * d + 2 * t * t * d + 2 * t * d * 1024)  # 118.5 M
    ffn_macs = sum(count_macs(b.ffn, (1, t, d)) for b in decoder.blocks) + count_macs(head, (1, t, d))
    assert _within(ffn_macs, 0.147e9 / 2)
    assert _within(ffn_macs, 0.07e9)


# -- export -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported_vtn(tmp_path_factory):
    from streamact.export.onnx import export_onnx

    model = tiny("stacked")  # covers the previous-frame state, the warm-up mask and the position gather
    return model, export_onnx(model, tmp_path_factory.mktemp("vtn") / "step.onnx", streaming=True,
                              model_name="vtn_mobilenetv2_100")


@pytest.mark.export
def test_streaming_onnx_matches_torch(exported_vtn):
    from streamact.export.validate import check_parity, load_sidecar
    from streamact.inference.runtimes import OnnxRuntime

    model, path = exported_vtn
    assert [s["name"] for s in load_sidecar(path)["state"]] == ["prev_frame", "embeddings", "count"]
    result = check_parity(model, OnnxRuntime(path, num_threads=1), num_frames=3 * T)  # warm-up and sliding window
    assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 1.0


@pytest.mark.export
def test_streaming_openvino_matches_torch(exported_vtn):
    from streamact.export.validate import check_parity
    from streamact.inference.runtimes import OpenVINORuntime

    model, path = exported_vtn
    result = check_parity(model, OpenVINORuntime(path, precision="fp32", num_threads=1), num_frames=3 * T)
    assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 1.0


@pytest.mark.export
def test_clip_onnx_matches_torch(tmp_path):
    from streamact.export.onnx import export_onnx
    from streamact.export.validate import check_clip_parity, load_sidecar

    model = tiny("rgbdiff")
    path = export_onnx(model, tmp_path / "clip.onnx", streaming=False)
    assert load_sidecar(path)["inputs"][0]["shape"] == [1, 3, T, SIZE, SIZE]
    assert check_clip_parity(model, path, num_clips=2)["max_abs_diff"] < 1e-4
