"""Shared set-up of the WGPU backend tests: a runtime dir for the Vulkan loader (lavapipe warns
without one) and the backend fixture's body."""
from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="xdg"))


def make_backend():
    """WGPU(), or a skip that says why there is none."""
    pytest.importorskip("wgpu")
    from strata.backends.wgpu import WGPU
    from strata.core.errors import BackendError
    try:
        return WGPU()
    except BackendError as e:
        pytest.skip(str(e))
