"""The OpenCL primitive: a shared device Storage plus a strided Layout and a dtype."""
from __future__ import annotations

from ...core.dtype import DType
from ..strided import Layout


class CLArray:
    """A view of a device buffer. Views made by reshape/permute/expand/slice/flip share storage."""

    __slots__ = ("storage", "layout", "dtype", "__weakref__")

    def __init__(self, storage, layout: Layout, dtype: DType):
        self.storage = storage
        self.layout = layout
        self.dtype = dtype

    @property
    def shape(self) -> tuple:
        return self.layout.shape

    @property
    def buf(self):
        return self.storage.buf

    def __repr__(self) -> str:
        lay = self.layout
        return (f"CLArray(shape={lay.shape}, strides={lay.strides}, offset={lay.offset}, "
                f"dtype={self.dtype.name})")


def broadcast_layout(lay: Layout, shape: tuple) -> Layout:
    """lay viewed with the (broadcast) shape: leading dims added with stride 0, size-1 dims expanded."""
    extra = len(shape) - len(lay.shape)
    if extra:
        lay = Layout((1,) * extra + lay.shape, (0,) * extra + lay.strides, lay.offset)
    if lay.shape == shape:
        return lay
    return lay.expand(shape)


def collapse(shape: tuple, strides_list: list) -> list:
    """Merge dims that every operand walks contiguously; drop size-1 dims.

    Returns [(size, [stride per operand]), ...] outermost first. A dense elementwise problem
    collapses to one dim with unit strides, so its kernel needs no index arithmetic.
    """
    merged: list = []
    for i, s in enumerate(shape):
        if s == 1:
            continue
        sts = [st[i] for st in strides_list]
        if merged:
            ps, psts = merged[-1]
            if all(p == q * s for p, q in zip(psts, sts)):
                merged[-1] = (ps * s, sts)
                continue
        merged.append((s, sts))
    return merged
