from __future__ import annotations

import pytest
from serve_helpers import ColourRuntime


@pytest.fixture
def runtime() -> ColourRuntime:
    return ColourRuntime()
