"""Elementwise kernels of ArrayBackend, built once per backend instance as plain closures.

The hot path is a closure stored on the instance under the op's name, so `B.add(a, b)` costs
one Python call on top of the ufunc. Three flavours, chosen by `ArrayBackend._install`:

* numpy mode: `uf(a, b, out=..., casting="no")`. `out=...` makes NumPy return a 0-d array
  instead of a NumPy scalar; `casting="no"` turns the contract (operands of one dtype; Python
  scalars are weak, NEP 50) into a free check: a violation fails in C and only then do we pay
  for a Python fallback that wraps out-of-range integer scalars like torch, converts NumPy
  scalars, compares ints with float scalars exactly, or raises DTypeError.
* generic mode (CuPy, or any namespace without NEP 50 scalars): Python scalars are converted
  to a NumPy scalar of the array's dtype before the call and the result dtype is checked.
* allocator mode: as above, with the output taken from `allocator.empty(shape, dtype)`.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import DTypeError
from ..core.shape import broadcast_shapes

# strata op -> ufunc name. COMPARE ops return bool.
UNARY = {"neg": "negative", "exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin",
         "cos": "cos", "tanh": "tanh", "abs": "absolute", "floor": "floor", "ceil": "ceil",
         "logical_not": "logical_not", "bitwise_not": "invert", "log1p": "log1p",
         "expm1": "expm1", "tan": "tan", "trunc": "trunc", "isnan": "isnan", "isinf": "isinf",
         "_reciprocal": "reciprocal", "_rint": "rint"}
BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
          "pow": "power", "maximum": "maximum", "minimum": "minimum",
          "_remainder": "remainder", "_floor_divide": "floor_divide",
          "bitwise_and": "bitwise_and", "bitwise_or": "bitwise_or", "bitwise_xor": "bitwise_xor"}
COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
           "gt": "greater", "ge": "greater_equal", "logical_and": "logical_and",
           "logical_or": "logical_or", "logical_xor": "logical_xor"}
BOOL_OUT = {"logical_not", "isnan", "isinf"} | set(COMPARE)

_BOOL = np.dtype(bool)


def _public(name: str) -> str:
    return name.lstrip("_")


def _type_error(name: str, operands, err: Exception | None = None) -> DTypeError:
    descs = ", ".join(str(getattr(v, "dtype", type(v).__name__)) for v in operands)
    why = f" ({err})" if err is not None else ""
    return DTypeError(
        f"{_public(name)}({descs}) is not defined on this backend{why}. Operands must share one "
        f"dtype (Python scalars take the tensor's dtype); exp/log/div-like ops need a floating "
        f"dtype, bitwise ops an integer or bool dtype: cast first, e.g. x.float()")


def coerce_scalar(v, dtype: np.dtype, name: str):
    """A Python scalar as a NumPy scalar of `dtype`; integers wrap like torch (uint8 - 1 -> 255)."""
    if isinstance(v, np.generic):
        v = v.item()
    kind = dtype.kind
    if kind == "f":
        return dtype.type(v)
    if isinstance(v, float):
        raise _type_error(name, (dtype.type(0), v),
                          ValueError("a float scalar with a non-floating tensor"))
    if kind == "b":
        return np.bool_(v)
    bits = dtype.itemsize * 8
    v = int(v) % (1 << bits)
    if kind == "i" and v >= 1 << (bits - 1):
        v -= 1 << bits
    return dtype.type(v)


def _is_scalar(v, arr_type) -> bool:
    return not isinstance(v, arr_type)


def _numpy_fallback(name, uf, a, b, err, compare):
    # slow path after the C-level contract check failed; see the module docstring
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    a_arr, b_arr = isinstance(a, np.ndarray), isinstance(b, np.ndarray)
    if a_arr and b_arr or not (a_arr or b_arr):
        raise _type_error(name, (a, b), err) from None
    arr = a if a_arr else b
    if compare:
        # exact mixed comparison (int tensor < 1.5), like torch
        return uf(a, b, out=...)
    try:
        if a_arr:
            return uf(a, coerce_scalar(b, arr.dtype, name), out=..., casting="no")
        return uf(coerce_scalar(a, arr.dtype, name), b, out=..., casting="no")
    except TypeError as e2:
        raise _type_error(name, (a, b), e2) from None


def numpy_unary(name: str, uf, alloc=None):
    if alloc is None:
        def op(x):
            try:
                return uf(x, out=..., casting="no")
            except TypeError as e:
                raise _type_error(name, (x,), e) from None
    else:
        boolean = name in BOOL_OUT

        lim = getattr(alloc, "min_bytes", 0)

        def op(x):
            try:
                if x.nbytes < lim:   # a small output: the library's allocator is faster
                    return uf(x, out=..., casting="no")
                out = alloc.empty(x.shape, _BOOL if boolean else x.dtype)
                return uf(x, out=out, casting="no")
            except TypeError as e:
                raise _type_error(name, (x,), e) from None
    op.__name__ = op.__qualname__ = name
    return op


def numpy_binary(name: str, uf, alloc=None):
    compare = name in COMPARE
    if alloc is None:
        def op(a, b):
            try:
                return uf(a, b, out=..., casting="no")
            except (TypeError, OverflowError) as e:
                return _numpy_fallback(name, uf, a, b, e, compare)
    else:
        lim = getattr(alloc, "min_bytes", 0)

        def op(a, b):
            sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
            big = a if isinstance(a, np.ndarray) else b
            try:
                if big.nbytes < lim and (sa == sb or not (sa and sb)):
                    return uf(a, b, out=..., casting="no")   # small: the library allocates
                dtype = _BOOL if compare else big.dtype
                out = alloc.empty(sa if sa == sb else broadcast_shapes(sa, sb, name), dtype)
                return uf(a, b, out=out, casting="no")
            except (TypeError, OverflowError) as e:
                return _numpy_fallback(name, uf, a, b, e, compare)
    op.__name__ = op.__qualname__ = name
    return op


def generic_unary(name: str, uf, arr_type, alloc=None):
    boolean = name in BOOL_OUT

    def op(x):
        want = _BOOL if boolean else x.dtype
        try:
            if alloc is None:
                r = uf(x)
            else:
                r = uf(x, out=alloc.empty(x.shape, want))
        except TypeError as e:
            raise _type_error(name, (x,), e) from None
        if r.dtype != want:
            raise _type_error(name, (x,))
        return r if isinstance(r, arr_type) else np.asarray(r)  # NumPy scalar from 0-d input
    op.__name__ = op.__qualname__ = name
    return op


def generic_binary(name: str, uf, arr_type, alloc=None):
    compare = name in COMPARE

    def op(a, b):
        if _is_scalar(b, arr_type):
            dtype = a.dtype
            if not (compare and dtype.kind != "f" and isinstance(b, float)):
                b = coerce_scalar(b, dtype, name)
        elif _is_scalar(a, arr_type):
            dtype = b.dtype
            if not (compare and dtype.kind != "f" and isinstance(a, float)):
                a = coerce_scalar(a, dtype, name)
        else:
            dtype = a.dtype
            if b.dtype != dtype:
                raise _type_error(name, (a, b))
        want = _BOOL if compare else dtype
        try:
            if alloc is None:
                r = uf(a, b)
            else:
                sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
                r = uf(a, b, out=alloc.empty(broadcast_shapes(sa, sb, name), want))
        except TypeError as e:
            raise _type_error(name, (a, b), e) from None
        if r.dtype != want:
            raise _type_error(name, (a, b))
        return r if isinstance(r, arr_type) else np.asarray(r)
    op.__name__ = op.__qualname__ = name
    return op
