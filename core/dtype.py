"""strata dtypes and PyTorch's type-promotion rules."""
from __future__ import annotations

import numpy as np


class DType:
    """A tensor element type. Compare with `is`; there is one object per dtype."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "is_signed", "kind")

    def __init__(self, name: str, np_dtype: str, kind: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = kind == 2
        self.is_signed = kind == 2 or (kind == 1 and self.np.kind == "i")
        # 0 bool, 1 integer, 2 floating: the category used by promotion
        self.kind = kind

    def __repr__(self) -> str:
        return f"strata.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


bool_ = DType("bool", "bool", 0)
uint8 = DType("uint8", "uint8", 1)
int8 = DType("int8", "int8", 1)
int16 = DType("int16", "int16", 1)
int32 = DType("int32", "int32", 1)
int64 = DType("int64", "int64", 1)
float16 = DType("float16", "float16", 2)
float32 = DType("float32", "float32", 2)
float64 = DType("float64", "float64", 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
FLOATING = (float16, float32, float64)
INTEGER = (uint8, int8, int16, int32, int64)

_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"bool_": bool_, "float": float32, "double": float64, "half": float16,
                 "long": int64, "int": int32, "short": int16})
_BY_NP = {d.np: d for d in ALL}


def from_name(name: str) -> DType:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise TypeError(f"unknown dtype {name!r}; known: {', '.join(d.name for d in ALL)}") from None


def from_numpy(np_dtype) -> DType:
    """The strata dtype of a NumPy dtype (float64 stays float64, as torch.from_numpy does)."""
    d = _BY_NP.get(np.dtype(np_dtype))
    if d is None:
        raise TypeError(f"NumPy dtype {np.dtype(np_dtype)} has no strata equivalent; "
                        f"supported: {', '.join(d.name for d in ALL)}")
    return d


def as_dtype(d) -> DType:
    """Accept a DType, a name ('float32'), a NumPy dtype or a Python type (float, int, bool)."""
    if type(d) is DType:
        return d
    if d is float:
        return float32
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        return from_name(d)
    try:
        return from_numpy(d)
    except TypeError:
        raise TypeError(f"not a dtype: {d!r}") from None


# PyTorch's promote_types table over our dtypes.
_ORDER_INT = (uint8, int8, int16, int32, int64)


def _promote_pair(a: DType, b: DType) -> DType:
    if a is b:
        return a
    if a.kind != b.kind:
        return a if a.kind > b.kind else b
    if a.kind == 2:
        return a if a.itemsize >= b.itemsize else b
    # integers: uint8 with a signed type needs a signed type wider than 8 bits
    if a is uint8 or b is uint8:
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    return a if a.itemsize >= b.itemsize else b


_PROMOTE = {(a, b): _promote_pair(a, b) for a in ALL for b in ALL}


def promote_types(a: DType, b: DType) -> DType:
    return _PROMOTE[(a, b)]


def scalar_kind(v) -> int:
    """Promotion category of a Python scalar: 0 bool, 1 int, 2 float."""
    t = type(v)
    if t is bool or t is np.bool_:
        return 0
    if t is int or isinstance(v, np.integer):
        return 1
    if t is float or isinstance(v, np.floating):
        return 2
    raise TypeError(f"expected a tensor or a Python number, got {type(v).__name__}")


def result_type_scalar(d: DType, v, default_float: DType = float32) -> DType:
    """dtype of `tensor(d) op scalar v`: a scalar only lifts the category, never the width."""
    k = scalar_kind(v)
    if k <= d.kind:
        return d
    return int64 if k == 1 else default_float
