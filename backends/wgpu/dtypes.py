"""How each strata dtype is stored in WGSL buffers and computed with in kernels.

WGSL has 32-bit scalars only (plus f16 with the `shader-f16` feature) and no 64-bit types:
  float32 -> f32;   float16 -> f16 storage, f32 arithmetic (needs shader-f16)
  int32, int16, int8 -> i32 per element;   int64 -> i32 (values must fit: checked on upload)
  uint8, bool -> u32 per element (bool holds 0 or 1)
Narrow integers (int8, int16, uint8) wrap on every store like PyTorch's, by masking or
sign-extending the 32-bit result. float64 is not supported.
"""
from __future__ import annotations

import struct

import numpy as np

from ...core import dtype as dt
from ...core.dtype import DType
from ...core.errors import DTypeError, UnsupportedError


class WType:
    __slots__ = ("dtype", "store", "comp", "np", "size", "cls")

    def __init__(self, d: DType, store: str, comp: str, np_store: str):
        self.dtype = d
        self.store = store          # WGSL element type in buffers
        self.comp = comp            # WGSL type arithmetic runs in
        self.np = np.dtype(np_store)
        self.size = self.np.itemsize
        self.cls = comp[0]          # 'f', 'i' or 'u'

    def load(self, expr: str) -> str:
        return f"f32({expr})" if self.store == "f16" else expr

    def wrap(self, expr: str) -> str:
        """Expression of storage type from an expression of compute type."""
        d = self.dtype
        if d is dt.float16:
            return f"f16({expr})"
        if d is dt.uint8:
            return f"(({expr}) & 255u)"
        if d is dt.bool_:
            return f"min({expr}, 1u)"
        if d is dt.int8:
            return f"((({expr}) << 24u) >> 24u)"
        if d is dt.int16:
            return f"((({expr}) << 16u) >> 16u)"
        return f"({expr})"


WTYPES = {
    dt.float32: WType(dt.float32, "f32", "f32", "float32"),
    dt.float16: WType(dt.float16, "f16", "f32", "float16"),
    dt.int32: WType(dt.int32, "i32", "i32", "int32"),
    dt.int64: WType(dt.int64, "i32", "i32", "int32"),
    dt.int16: WType(dt.int16, "i32", "i32", "int32"),
    dt.int8: WType(dt.int8, "i32", "i32", "int32"),
    dt.uint8: WType(dt.uint8, "u32", "u32", "uint32"),
    dt.bool_: WType(dt.bool_, "u32", "u32", "uint32"),
}
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def unsupported(d: DType, has_f16: bool) -> UnsupportedError:
    if d is dt.float64:
        return UnsupportedError("WGPU(): float64 is not supported (WGSL has no 64-bit floats); "
                                "use float32, or a NumPy() / OpenCL() backend for float64")
    if d is dt.float16 and not has_f16:
        return UnsupportedError("WGPU(): float16 needs the adapter feature 'shader-f16', which "
                                "this adapter lacks; use float32")
    return UnsupportedError(f"WGPU(): dtype {d.name} is not supported")


def check_int64(a: np.ndarray) -> None:
    if a.size and (a.min() < I32_MIN or a.max() > I32_MAX):
        raise DTypeError("WGPU(): int64 tensors are stored as int32 (WGSL has no 64-bit "
                         f"integers), and these values span [{a.min()}, {a.max()}], outside "
                         f"[{I32_MIN}, {I32_MAX}]; use NumPy() or OpenCL() for wider integers")


def to_storage(a: np.ndarray, w: WType) -> np.ndarray:
    if w.dtype is dt.int64:
        check_int64(a)
    return np.asarray(a).astype(w.np, order="C", copy=False)


def from_storage(raw: np.ndarray, w: WType) -> np.ndarray:
    return raw.astype(w.dtype.np, copy=False)


def scalar_bits(v, w: WType) -> int:
    """A Python scalar as the 32-bit pattern of the compute type of `w`."""
    if w.cls == "f":
        return struct.unpack("<I", struct.pack("<f", float(v)))[0]
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise DTypeError(f"WGPU(): cannot use {v} as a value of an {w.dtype.name} tensor")
        v = int(v)
    v = int(v)
    if w.dtype is dt.bool_:
        return 1 if v else 0
    if w.cls == "u":
        return v & 0xFFFFFFFF
    if not I32_MIN <= v <= I32_MAX:
        raise DTypeError(f"WGPU(): the scalar {v} does not fit the 32-bit integers that "
                         f"{w.dtype.name} uses on WGPU; use NumPy() or OpenCL() for wider values")
    return v & 0xFFFFFFFF

