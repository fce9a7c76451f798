"""VTN decoder blocks: position table, LayerNorm formula, per-head attention, masking, export."""
import math

import numpy as np
import pytest
import torch

from streamact.layers.attention import (
    DecoderBlock,
    LayerNorm,
    MultiHeadSelfAttention,
    PositionalEmbedding,
    sinusoid_table,
)

D, H = 32, 4


def test_sinusoid_table_hand_values():
    table = sinusoid_table(3, 4)
    # dims 0/1 use rate 1, dims 2/3 use 10000^(-2/4) = 1/100
    expected = torch.tensor([
        [0.0, 0.0, 0.0, 0.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
    ])
    torch.testing.assert_close(table, expected)


def test_positional_embedding_is_a_trainable_table():
    pe = PositionalEmbedding(6, D)
    assert pe.weight.requires_grad and pe.num_positions == 6
    torch.testing.assert_close(pe.weight.detach(), sinusoid_table(6, D))
    x = torch.randn(2, 4, D)
    torch.testing.assert_close(pe(x), x + sinusoid_table(6, D)[:4])
    positions = torch.tensor([[0, 0, 1, 2], [3, 2, 1, 0]])
    torch.testing.assert_close(pe(x, positions), x + sinusoid_table(6, D)[positions])
    pe(x).sum().backward()
    assert pe.weight.grad[:4].abs().sum() > 0 and pe.weight.grad[4:].abs().sum() == 0


def test_layer_norm_is_the_original_formula():
    ln = LayerNorm(D)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
    z = torch.randn(3, 5, D) * 0.01  # low variance: where the formulas differ most
    expected = ln.weight * (z - z.mean(-1, keepdim=True)) / (z.std(-1, keepdim=True) + 1e-3) + ln.bias
    torch.testing.assert_close(ln(z), expected)
    standard = torch.nn.functional.layer_norm(z, (D,), ln.weight, ln.bias)
    assert (ln(z) - standard).abs().max() > 0.1  # not nn.LayerNorm in disguise
    # A 1-element sequence is normalised like any other (the original skipped it).
    torch.testing.assert_close(ln(z[:, :1]), expected[:, :1])


def _reference_attention(attn, x, temperature):
    """Head by head, as the original: Q_h = x W_q[h], softmax(Q K^T / temperature) V, heads concatenated."""
    heads = []
    for h in range(attn.num_heads):
        q, k, v = x @ attn.w_q[h], x @ attn.w_k[h], x @ attn.w_v[h]
        heads.append(torch.softmax(q @ k.transpose(1, 2) / temperature, -1) @ v)
    return torch.cat(heads, -1)


def test_attention_matches_per_head_reference():
    attn = MultiHeadSelfAttention(D, H).eval()
    with torch.no_grad():
        for w in (attn.w_q, attn.w_k, attn.w_v):
            w.normal_()  # large weights make the temperature matter
    x = torch.randn(2, 5, D)
    with torch.no_grad():
        out = attn(x)
        torch.testing.assert_close(out, _reference_attention(attn, x, math.sqrt(D)))  # sqrt(d_model) ...
        assert (out - _reference_attention(attn, x, math.sqrt(D // H))).abs().max() > 1e-3  # ... not sqrt(d_k)
    assert sum(p.numel() for p in attn.parameters()) == 3 * D * D  # no bias, no output projection


def test_attention_init_is_xavier_normal_of_head_tensors():
    attn = MultiHeadSelfAttention(512, 8)
    expected_std = math.sqrt(2.0 / (512 * 64 + 8 * 64))  # fans of an (8, 512, 64) tensor
    for w in (attn.w_q, attn.w_k, attn.w_v):
        assert w.shape == (8, 512, 64)
        assert abs(w.std().item() / expected_std - 1) < 0.02


def test_masked_keys_equal_attention_over_the_valid_elements():
    block = DecoderBlock(D, H, 2 * D).eval()
    x = torch.randn(2, 6, D)
    valid = torch.tensor([[False, False, True, True, True, True], [False, False, False, False, True, True]])
    with torch.no_grad():
        out = block(x, valid)
        for b, n in enumerate((4, 2)):
            torch.testing.assert_close(out[b, -n:], block(x[b:b + 1, -n:])[0], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(out).all()


def test_decoder_block_is_permutation_equivariant():
    """Order enters only through the positional embedding, never inside a block."""
    block = DecoderBlock(D, H, 2 * D).eval()
    x = torch.randn(1, 5, D)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(block(x[:, perm]), block(x)[:, perm], atol=1e-5, rtol=1e-5)


def test_decoder_block_dropout_only_in_training():
    block = DecoderBlock(D, H, 2 * D, dropout=0.5)
    x = torch.randn(1, 5, D)
    with torch.no_grad():
        assert not torch.allclose(block.train()(x), block.eval()(x))
        torch.testing.assert_close(block(x), block(x))


@pytest.mark.export
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter, chosen on purpose (export/onnx.py)
def test_block_with_mask_exports_to_onnx(tmp_path):
    import onnxruntime as ort

    block = DecoderBlock(D, H, 2 * D).eval()
    x, valid = torch.randn(1, 6, D), torch.tensor([[False, False, True, True, True, True]])
    path = tmp_path / "block.onnx"
    torch.onnx.export(block, (x, valid), str(path), input_names=["x", "valid"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy(), "valid": valid.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, block(x, valid).numpy(), atol=1e-5)
