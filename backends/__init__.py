"""Base backends: NumPy (default, CPU), CuPy (NVIDIA GPUs), OpenCL, WGPU.

Importing this package never imports an optional driver library: CuPy imports cupy when
constructed, and the device backends below are loaded on first access, so a missing cupy,
pyopencl or wgpu only matters to code that asks for that backend.
"""
from __future__ import annotations

import importlib

from ..core.errors import BackendError
from .cupy import CuPy
from .numpy import NumPy
from .xp import ArrayBackend

# Backends that live in their own subpackage, loaded on first attribute access.
# name -> (module relative to this package, pip extra that provides its driver)
_LAZY = {
    "OpenCL": (".opencl", "opencl"),
    "WGPU": (".wgpu", "wgpu"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra = _LAZY[name]
    try:
        mod = importlib.import_module(module, __name__)
    except ImportError as e:
        raise BackendError(f"the {name} backend could not be imported ({e}); "
                           f"install its driver with pip install strata[{extra}]") from e
    try:
        cls = getattr(mod, name)
    except AttributeError:
        raise BackendError(f"the {name} backend is not available in this build of strata "
                           f"(strata.backends{module} defines no {name})") from None
    globals()[name] = cls
    return cls


__all__ = ["ArrayBackend", "NumPy", "CuPy", "OpenCL", "WGPU"]
