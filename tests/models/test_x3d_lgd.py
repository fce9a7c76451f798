"""LIGAR (X3D MobileNetV3 + LGD-GC + metric head): architecture as the authors' code, size, heads, streaming, export."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from streamact import create_model
from streamact.complexity import count_macs, count_params
from streamact.inference.streaming import StreamingEngine
from streamact.models.x3d_lgd import InvertedResidual3d, SqueezeExcite3d, X3DLGD

T, SIZE = 4, 48


def _tiny(**kwargs):
    kwargs = {"num_classes": 5, "clip_len": T, "img_size": SIZE, **kwargs}
    return create_model("ligar_x3d_mobilenetv3", **kwargs)


def _randomise_bn(model):
    """Random affine parameters and statistics in every BatchNorm, including the zero-initialised upsample ones,
    so that the global path and every temporal kernel affect the output."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.bias.data = torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1
            m.running_mean = torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1
            m.running_var = torch.rand(m.running_var.shape, generator=g) + 0.5
    return model


def _local_path(model):
    return nn.Sequential(model.stem, *model.blocks, model.out_conv)


def test_block_output_shapes_follow_the_reference_table():
    """T x H after every block for a 16 x 224^2 clip (the authors' code), on the meta device."""
    with torch.device("meta"):
        model = create_model("ligar_x3d_mobilenetv3", num_classes=101).eval()
        shapes = []
        hooks = [b.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:4]))) for b in model.blocks]
        model(torch.zeros(1, 3, 16, 224, 224))
    for h in hooks:
        h.remove()
    expected = [(16, 16, 112), (24, 16, 56), (24, 16, 56), (40, 16, 28), (40, 8, 28), (40, 8, 28), (80, 8, 14),
                (80, 8, 14), (80, 8, 14), (80, 8, 14), (112, 4, 14), (112, 4, 14), (160, 4, 14), (160, 4, 7),
                (160, 4, 7)]
    assert shapes == expected


def test_block_internals():
    model = _tiny()
    assert isinstance(model, X3DLGD) and all(isinstance(b, InvertedResidual3d) for b in model.blocks)
    stem_conv = model.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride, stem_conv.bias) == ((1, 3, 3), (1, 2, 2), None)
    dw = [[m for m in b.conv if isinstance(m, nn.Conv3d) and m.groups > 1][0] for b in model.blocks]
    assert dw[0].kernel_size == (1, 3, 3)  # block 0: no expansion, spatial-only depthwise conv
    assert len([m for m in model.blocks[0].conv if isinstance(m, nn.Conv3d)]) == 2
    assert (dw[4].kernel_size, dw[4].stride) == ((3, 5, 5), (2, 1, 1))
    assert (dw[5].kernel_size, dw[10].stride, dw[12].stride, dw[13].stride) == ((5, 5, 5), (2, 1, 1), (1, 1, 1),
                                                                                (1, 2, 2))
    assert all(m.bias is None for b in model.blocks for m in b.conv if isinstance(m, nn.Conv3d))
    assert [b.use_residual for b in model.blocks] == [True, False, True, False, False, True, False, True, True, True,
                                                      False, True, False, False, True]
    se_blocks = [i for i, b in enumerate(model.blocks) if any(isinstance(m, SqueezeExcite3d) for m in b.conv)]
    assert se_blocks == [3, 4, 5, 10, 11, 12, 13, 14]
    se = next(m for m in model.blocks[3].conv if isinstance(m, SqueezeExcite3d))
    assert (se.conv_reduce.in_channels, se.conv_reduce.out_channels) == (72, 18)
    assert isinstance(se.gate, nn.Hardsigmoid)
    assert model.out_conv[0].out_channels == 960 and isinstance(model.out_conv[2], nn.Hardswish)


def test_squeeze_excite_gates_each_frame_separately():
    se = SqueezeExcite3d(8).eval()
    x = torch.randn(1, 8, 3, 5, 5)
    y = x.clone()
    y[:, :, 2] += 3.0
    with torch.no_grad():
        torch.testing.assert_close(se(x)[:, :, :2], se(y)[:, :, :2])  # pooled over H, W only: T is kept


def test_lgd_links_and_zero_init():
    model = _tiny()
    assert sorted(map(int, model.pool)) == list(range(14))
    assert sorted(map(int, model.glob)) == list(range(1, 14))
    assert sorted(map(int, model.upsample)) == list(range(1, 15))
    assert all(u.last_bn.weight.abs().sum() == 0 and u.last_bn.bias.abs().sum() == 0 for u in model.upsample.values())
    # The global path starts as a no-op: the local path alone gives the same features.
    model.eval()
    x = torch.randn(2, 3, T, SIZE, SIZE)
    with torch.no_grad():
        local = _local_path(model)(x).mean((2, 3, 4))
        torch.testing.assert_close(model.forward_features(x), local)
        _randomise_bn(model)
        assert (model.forward_features(x) - _local_path(model)(x).mean((2, 3, 4))).abs().max() > 1e-3


def test_weight_init():
    model = _tiny()
    w = model.out_conv[0].weight  # n = 1 * 1 * 960
    assert abs(w.std().item() - math.sqrt(2 / 960)) < 0.05 * math.sqrt(2 / 960)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    zeroed = {id(u.last_bn) for u in model.upsample.values()}
    assert all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in bns if id(m) not in zeroed)


def test_complexity_matches_the_published_model():
    """Published x3d-rgb-mobilenet-v3-lgd-gc: 4.472 M params, 4.74 GFLOPs; analytic count: backbone 2.232 GMACs."""
    with torch.device("meta"):
        model = create_model("ligar_x3d_mobilenetv3", num_classes=101)
    shape = (1, 3, 16, 224, 224)
    params, macs = count_params(model), count_macs(model, shape)
    assert abs(params - 4.472e6) <= 0.05 * 4.472e6
    assert abs(2 * macs - 4.74e9) <= 0.10 * 4.74e9
    backbone_macs = count_macs(_local_path(model), shape)
    assert abs(backbone_macs - 2.232e9) <= 0.01 * 2.232e9
    assert abs(count_params(_local_path(model)) - 2.816e6) <= 0.01 * 2.816e6


def test_forward_backward_and_api():
    model = _tiny().train()
    x = torch.randn(2, 3, T, SIZE, SIZE)
    logits = model(x)
    assert logits.shape == (2, 5)
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 960)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        cos, emb = model.forward_metric(feats)
        torch.testing.assert_close(model(x), model.heads[0].inference_scale * cos)
        assert emb.shape == (2, 256)
        assert model(torch.randn(1, 3, 5, 40, 56)).shape == (1, 5)  # any clip length and size (adaptive pooling)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(2, 3, SIZE, SIZE))


def test_pretrained_cfg():
    cfg = create_model("ligar_x3d_mobilenetv3").pretrained_cfg
    assert (cfg.input_size, cfg.clip_len, cfg.num_segments, cfg.frame_interval) == ((3, 224, 224), 16, None, 2)
    np.testing.assert_allclose(np.array(cfg.mean) * 255, [123.675, 116.28, 103.53], atol=1e-3)
    np.testing.assert_allclose(np.array(cfg.std) * 255, [58.395, 57.12, 57.375], atol=1e-3)
    assert cfg.crop_pct == 0.875 and cfg.num_classes == 400
    labelled = _tiny(num_classes=None, label_names=["a", "b"], num_segments=T)  # the trainer's spelling
    assert labelled.num_classes == 2 and labelled.pretrained_cfg.label_names == ("a", "b")
    assert labelled.clip_len == labelled.pretrained_cfg.clip_len == T


def test_builder_errors():
    with pytest.raises(ValueError, match="pretrained"):
        create_model("ligar_x3d_mobilenetv3", pretrained=True)
    with pytest.raises(ValueError, match="contradicts"):
        _tiny(num_segments=8)
    with pytest.raises(ValueError, match="label names"):
        _tiny(label_names=["a"])
    with pytest.raises(ValueError, match="partial_bn"):
        _tiny(partial_bn=True)


def test_multi_head():
    model = _tiny(num_classes=[5, 3]).eval()
    assert model.head_sizes == (5, 3) and model.num_classes == 5
    x = torch.randn(2, 3, T, SIZE, SIZE)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert model(x).shape == (2, 5)
        assert model.forward_head(feats, dataset_id=1).shape == (2, 3)
        cos, _ = model.forward_metric(feats, dataset_id=1)
        assert cos.shape == (2, 3) and model.heads[1].weight.shape == (3, 256)
    with pytest.raises(IndexError, match="dataset_id 2"):
        model.forward_head(feats, dataset_id=2)


def test_reset_classifier():
    model = _tiny()
    backbone = model.out_conv[0].weight.clone()
    model.reset_classifier(3, label_names=["x", "y", "z"])
    assert model.num_classes == 3 and model.pretrained_cfg.label_names == ("x", "y", "z")
    model.eval()
    assert model(torch.randn(1, 3, T, SIZE, SIZE)).shape == (1, 3)
    assert torch.equal(model.out_conv[0].weight, backbone)
    model.reset_classifier([4, 2])
    assert model.head_sizes == (4, 2) and model.pretrained_cfg.num_classes == 4
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, T, SIZE, SIZE)).shape == (1, 960)
    with pytest.raises(ValueError, match="label names"):
        model.reset_classifier(2, label_names=["a"])


def test_streaming_window_equals_forward():
    model = _randomise_bn(_tiny()).eval()
    frames = torch.randn(2, 3, 2 * T + 1, SIZE, SIZE)
    state = model.init_state(2)
    assert state.shapes() == {"frames": (2, 3, T, SIZE, SIZE)}
    outputs = []
    with torch.no_grad():
        for t in range(frames.shape[2]):
            logits, state = model.forward_step(frames[:, :, t], state)
            outputs.append(logits)
        for end in (T, 2 * T + 1):  # first full window, and a window after the ring buffer wrapped
            torch.testing.assert_close(outputs[end - 1], model(frames[:, :, end - T:end]), atol=1e-4, rtol=1e-4)
        padded = torch.cat([torch.zeros(2, 3, T - 1, SIZE, SIZE), frames[:, :, :1]], dim=2)
        torch.testing.assert_close(outputs[0], model(padded), atol=1e-4, rtol=1e-4)  # zero frames before the start
        assert (model(frames[:, :, :T].flip(2)) - outputs[T - 1]).abs().max() > 1e-4  # frame order matters
    with pytest.raises(ValueError, match="expected frames"):
        model.forward_step(torch.randn(2, 3, SIZE + 1, SIZE), model.init_state(2))
    assert model.make_causal() is model and model.non_causal_layers() == []


def test_streamed_frame_costs_one_clip():
    """Per-frame cost of the streaming form = full-clip MACs (measured on the step itself)."""
    model = _tiny().eval()
    state = model.init_state(1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.forward_step(torch.zeros(1, 3, SIZE, SIZE), state)
    assert counter.get_total_flops() // 2 == count_macs(model, (1, 3, T, SIZE, SIZE))


def test_streaming_engine_runs_the_model():
    model = _randomise_bn(_tiny(label_names=list("abcde"))).eval()
    engine = StreamingEngine(model, smoothing="none", frame_interval=1)
    rng = np.random.default_rng(0)
    preds = [engine.push(rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)) for _ in range(T + 2)]
    assert all(p is not None and p.label in "abcde" for p in preds)
    assert np.allclose([p.probs.sum() for p in preds], 1.0)


@pytest.mark.export
def test_export_matches_torch(tmp_path):
    """Clip and step graphs (GC softmax over T·H·W, mean pooling, opset 17) agree with PyTorch to 1e-4."""
    from streamact.export.onnx import export_onnx
    from streamact.export.openvino import export_openvino
    from streamact.export.validate import check_clip_parity, check_parity, load_sidecar
    from streamact.inference.runtimes import load_runtime

    model = _randomise_bn(_tiny(num_classes=4, img_size=32)).eval()
    clip_path = export_onnx(model, tmp_path / "clip.onnx", streaming=False, model_name="ligar_x3d_mobilenetv3")
    assert load_sidecar(clip_path)["opset"] == 17
    assert load_sidecar(clip_path)["inputs"][0]["shape"] == [1, 3, T, 32, 32]
    result = check_clip_parity(model, clip_path, num_clips=2)
    assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 1.0
    step_path = export_onnx(model, tmp_path / "step.onnx", streaming=True)
    assert [s["name"] for s in load_sidecar(step_path)["state"]] == ["frames"]
    for path in (step_path, export_openvino(model, tmp_path / "ov" / "step.xml", streaming=True)):
        rt = load_runtime(path, precision="fp32", num_threads=1)
        result = check_parity(model, rt, num_frames=2 * T)  # through the warm-up and past a full window
        assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 1.0, (path.name, result)
