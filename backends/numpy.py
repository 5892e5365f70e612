"""NumPy(): the default CPU backend. Primitives are plain numpy.ndarray objects."""
from __future__ import annotations

import numpy as np

from . import malloc_tuning, xp_fused
from .xp import ArrayBackend


class NumPy(ArrayBackend):
    """CPU backend on NumPy (BLAS matmul through NumPy's OpenBLAS/MKL build).

    Every dtype of strata.core.dtype is supported. `set_allocator(pool)` routes elementwise,
    reduction and matmul outputs through `pool.empty(shape, np_dtype)`.
    """

    # measured on a 5-op chain (NumPy() vs Fusion(NumPy())): 2.9x slower fused at 1K
    # elements, 1.35x at 32K, 1.10x at 128K, 0.92x at 512K, 0.80x at 4M
    fusion_eager_below = 1 << 18

    def __init__(self):
        super().__init__(np)
        malloc_tuning.tune()  # see malloc_tuning.py: fresh pages per array cost up to 8x

    def _ctor_args(self) -> tuple:
        return ()

    def device_name(self) -> str:
        return "cpu (NumPy)"

    def fused_elementwise(self, program, inputs, shape):
        # in-place evaluation: a chain reuses a few buffers instead of one array per op
        return xp_fused.fused_elementwise(self, program, inputs, shape, self.allocator)

    def fused_update(self, program, inputs, shape, donate):
        # write updated values into the donated buffers: an optimizer step then allocates
        # nothing (fresh large arrays page-fault on every step)
        return xp_fused.fused_elementwise(self, program, inputs, shape, self.allocator, donate)


__all__ = ["NumPy"]
