"""Device names and the bf16 check."""
import torch

from streamact.device import slow_bf16_warning


def test_slow_bf16_is_a_cpu_without_bf16_instructions(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    message = slow_bf16_warning("cpu", option="--amp")
    assert message.startswith("--amp: this CPU has no bf16 instructions (AVX-512 BF16 or AMX; it has ")
    assert slow_bf16_warning("cuda", option="--amp") is None  # GPUs are not judged by the CPU's instructions
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert slow_bf16_warning("cpu", option="--amp") is None
