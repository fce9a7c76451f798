"""Shared test setup: one torch thread per xdist worker (2 workers on 2 cores), deterministic seeds."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def randomise_bn(model):
    """Random BatchNorm statistics: timm zero-inits some residual BNs, which would hide temporal paths in
    streaming-vs-offline comparisons."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.running_mean = torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1
    return model
