"""Elementwise ops of the frontend: type promotion, scalar handling, unary math, clamp & co."""
from __future__ import annotations

import math

import numpy as np

from . import dtype as dt
from .errors import BackendError, DTypeError
from .shape import broadcast_shapes
from .tensor import Tensor, _check_supported

_make = Tensor._make

_CMP = frozenset(("eq", "ne", "lt", "le", "gt", "ge"))
_LOGICAL = frozenset(("logical_and", "logical_or", "logical_xor"))
_BITWISE = frozenset(("bitwise_and", "bitwise_or", "bitwise_xor"))


def _scalar(v, d: dt.DType):
    """A Python scalar as a value of dtype d (numpy scalars and 0-d arrays included)."""
    if d.kind == 2:
        return float(v)
    if d.kind == 1:
        return int(v)
    return bool(v)


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float, bool, np.number, np.bool_))


def _backend_of(a, b):
    ta, tb = type(a) is Tensor or isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a._b is not b._b and a._b != b._b:
            raise BackendError(f"an op mixes tensors of two backend stacks: {a._b} and {b._b}; "
                               f"move one with .to(other.backend)")
        return a._b
    return a._b if ta else b._b


def _lift(v, B):
    """Non-tensor operands: scalars stay scalars; arrays and lists become tensors on B."""
    if isinstance(v, Tensor) or _is_scalar(v):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        from .creation import tensor
        return tensor(v, backend=B)
    raise TypeError(f"unsupported operand type {type(v).__name__} for a strata op; "
                    f"use a Tensor, a Python number, a list or a NumPy array")


def _binary(op: str, a, b):
    B = _backend_of(a, b) if isinstance(a, Tensor) and isinstance(b, Tensor) else (
        a._b if isinstance(a, Tensor) else b._b)
    a = _lift(a, B)
    b = _lift(b, B)
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb:
        if a._b is not b._b and a._b != b._b:
            raise BackendError(f"an op mixes tensors of two backend stacks: {a._b} and {b._b}; "
                               f"move one with .to(other.backend)")
        da, db = B.dtype(a._p), B.dtype(b._p)
        d = dt.promote_types(da, db)
        # a 0-d tensor of a higher category lifts the category only, like torch
        sa, sb = B.shape(a._p), B.shape(b._p)
        if da.kind == db.kind and (sa == () or sb == ()) and sa != sb:
            d = db if sa == () else da
    elif ta:
        d = dt.result_type_scalar(B.dtype(a._p), b)
    else:
        d = dt.result_type_scalar(B.dtype(b._p), a)
    if op in _LOGICAL:
        d = dt.bool_
    elif op in _BITWISE and d.kind == 2:
        raise DTypeError(f"{op} is only defined on integer and bool tensors, got {d.name}")
    elif op == "div" and d.kind != 2:
        d = dt.float32
    elif op == "sub" and d is dt.bool_:
        raise DTypeError("subtraction of bool tensors is not supported: use logical_xor() or "
                         "cast with .int() first")
    elif op in ("floor_divide", "remainder", "pow") and d is dt.bool_:
        d = dt.int64
    if not ta and not tb:
        raise TypeError("at least one operand must be a tensor")
    if ta and tb:
        broadcast_shapes(B.shape(a._p), B.shape(b._p), op)
    pa = _cast_p(a, d, B) if ta else _scalar(a, d)
    pb = _cast_p(b, d, B) if tb else _scalar(b, d)
    if op == "pow" and d.kind == 1 and not tb and pb < 0:
        raise ValueError("Integers to negative integer powers are not allowed: use a float tensor")
    return _make(getattr(B, op)(pa, pb), B)


def _cast_p(t: Tensor, d: dt.DType, B):
    if B.dtype(t._p) is d:
        return t._p
    _check_supported(B, d)
    return B.cast(t._p, d)


# ----------------------------------------------------------------------- binary functions
def add(input, other, *, alpha=1):
    return _binary("add", input, other if alpha == 1 else _binary("mul", other, alpha))


def sub(input, other, *, alpha=1):
    return _binary("sub", input, other if alpha == 1 else _binary("mul", other, alpha))


def mul(input, other): return _binary("mul", input, other)


def div(input, other, *, rounding_mode=None):
    if rounding_mode is None:
        return _binary("div", input, other)
    if rounding_mode == "floor":
        d = dt.promote_types(_dtype_of(input), _dtype_of(other))
        if d.kind == 2:
            # floor(a / b) differentiates (to zero) like torch; `//` deliberately does not
            return floor(_binary("div", input, other))
        return _binary("floor_divide", input, other)
    if rounding_mode == "trunc":
        q = _binary("div", input, other)
        d = dt.promote_types(_dtype_of(input), _dtype_of(other))
        return trunc(q)._cast(d) if d.kind != 2 else trunc(q)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


def _dtype_of(v):
    if isinstance(v, Tensor):
        return v.dtype
    k = dt.scalar_kind(v)
    return (dt.bool_, dt.int64, dt.float32)[k]


def true_divide(a, b): return _binary("div", a, b)
def floor_divide(a, b): return _binary("floor_divide", a, b)
def remainder(a, b): return _binary("remainder", a, b)


def pow(input, exponent): return _binary("pow", input, exponent)
def maximum(a, b): return _binary("maximum", a, b)
def minimum(a, b): return _binary("minimum", a, b)
def eq(a, b): return _binary("eq", a, b)
def ne(a, b): return _binary("ne", a, b)
def lt(a, b): return _binary("lt", a, b)
def le(a, b): return _binary("le", a, b)
def gt(a, b): return _binary("gt", a, b)
def ge(a, b): return _binary("ge", a, b)
def logical_and(a, b): return _binary("logical_and", a, b)
def logical_or(a, b): return _binary("logical_or", a, b)
def logical_xor(a, b): return _binary("logical_xor", a, b)
def bitwise_and(a, b): return _binary("bitwise_and", a, b)
def bitwise_or(a, b): return _binary("bitwise_or", a, b)
def bitwise_xor(a, b): return _binary("bitwise_xor", a, b)


def bitwise_not(x: Tensor) -> Tensor:
    return ~x


def logical_not(x: Tensor) -> Tensor:
    B = x._b
    p = x._p if B.dtype(x._p) is dt.bool_ else B.cast(x._p, dt.bool_)
    return _make(B.logical_not(p), B)


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
multiply, subtract, divide = mul, sub, div


def equal(a: Tensor, b: Tensor) -> bool:
    """True when shapes and all values are equal (torch.equal)."""
    return tuple(a.shape) == tuple(b.shape) and bool(eq(a, b).all())


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(isclose(a, b, rtol, atol, equal_nan).all())


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    diff = abs(a - b)
    close = le(diff, atol + rtol * abs(b))
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a), isnan(b)))
    return close


# ----------------------------------------------------------------------- where
def where(condition, input=None, other=None):
    if input is None and other is None:
        from .ops_index import nonzero
        return nonzero(condition, as_tuple=True)
    B = condition._b if isinstance(condition, Tensor) else _backend_of(input, other)
    if not isinstance(condition, Tensor):
        raise TypeError("where: condition must be a bool tensor")
    cond = condition._p if condition.dtype is dt.bool_ else B.cast(condition._p, dt.bool_)
    ti, to = isinstance(input, Tensor), isinstance(other, Tensor)
    for t in (input, other):
        if isinstance(t, Tensor) and t._b is not B and t._b != B:
            raise BackendError(f"where mixes backends {B} and {t._b}")
    if ti and to:
        d = dt.promote_types(input.dtype, other.dtype)
    elif ti:
        d = dt.result_type_scalar(input.dtype, other)
    elif to:
        d = dt.result_type_scalar(other.dtype, input)
    else:
        d = dt.promote_types(_dtype_of(input), _dtype_of(other))
        input = full_like_p(B, condition, input, d)
        ti = True
    pa = _cast_p(input, d, B) if ti else _scalar(input, d)
    pb = _cast_p(other, d, B) if to else _scalar(other, d)
    return _make(B.where(cond, pa, pb), B)


def full_like_p(B, like: Tensor, v, d):
    return Tensor._make(B.full(tuple(like.shape), _scalar(v, d), d), B)


# ----------------------------------------------------------------------- unary math
def _float_input(x: Tensor):
    """Float ops on int/bool tensors compute in the default float dtype, like torch."""
    B = x._b
    d = B.dtype(x._p)
    if d.kind == 2:
        return x._p
    _check_supported(B, dt.float32)
    return B.cast(x._p, dt.float32)


def _unary_float(name):
    def op(x: Tensor) -> Tensor:
        B = x._b
        return _make(getattr(B, name)(_float_input(x)), B)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (int and bool inputs compute in float32, like torch)."
    return op


exp = _unary_float("exp")
log = _unary_float("log")
sqrt = _unary_float("sqrt")
sin = _unary_float("sin")
cos = _unary_float("cos")
tan = _unary_float("tan")
tanh = _unary_float("tanh")
erf = _unary_float("erf")
sigmoid = _unary_float("sigmoid")
log1p = _unary_float("log1p")
expm1 = _unary_float("expm1")
rsqrt = _unary_float("rsqrt")
reciprocal = _unary_float("reciprocal")


def exp2(x): return exp(_float_t(x) * math.log(2.0))
def log2(x): return log(x) * (1.0 / math.log(2.0))
def log10(x): return log(x) * (1.0 / math.log(10.0))
def square(x): return x * x


def _float_t(x: Tensor) -> Tensor:
    return x if x.dtype.kind == 2 else x._cast(dt.float32)


def _unary_same(name, int_identity=False):
    def op(x: Tensor) -> Tensor:
        B = x._b
        if int_identity and B.dtype(x._p).kind != 2:
            return x
        return _make(getattr(B, name)(x._p), B)
    op.__name__ = name
    return op


abs = _unary_same("abs")
floor = _unary_same("floor", int_identity=True)
ceil = _unary_same("ceil", int_identity=True)
trunc = _unary_same("trunc", int_identity=True)
fix = trunc


def neg(x: Tensor) -> Tensor:
    return -x


negative = neg
absolute = abs


def sign(x: Tensor) -> Tensor:
    B = x._b
    if B.dtype(x._p) is dt.bool_:
        return x
    return _make(B.sign(x._p), B)


def round(x: Tensor, decimals: int = 0) -> Tensor:
    B = x._b
    if B.dtype(x._p).kind != 2:
        return x
    if decimals == 0:
        return _make(B.round(x._p), B)
    s = 10.0 ** decimals
    return _make(B.round(B.mul(x._p, s)), B) / s


def relu(x: Tensor) -> Tensor:
    B = x._b
    if B.dtype(x._p) is dt.bool_:
        raise DTypeError("relu is not defined on bool tensors")
    return _make(B.relu(x._p), B)


def isnan(x: Tensor) -> Tensor:
    B = x._b
    if B.dtype(x._p).kind != 2:
        return _make(B.full(B.shape(x._p), False, dt.bool_), B)
    return _make(B.isnan(x._p), B)


def isinf(x: Tensor) -> Tensor:
    B = x._b
    if B.dtype(x._p).kind != 2:
        return _make(B.full(B.shape(x._p), False, dt.bool_), B)
    return _make(B.isinf(x._p), B)


def isfinite(x: Tensor) -> Tensor:
    if x.dtype.kind != 2:
        return _make(x._b.full(tuple(x.shape), True, dt.bool_), x._b)
    return logical_not(logical_or(isnan(x), isinf(x)))


def isposinf(x): return logical_and(isinf(x), gt(x, 0))
def isneginf(x): return logical_and(isinf(x), lt(x, 0))


def nan_to_num(x: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    if x.dtype.kind != 2:
        return x
    fi = np.finfo(x.dtype.np)
    posinf = float(fi.max) if posinf is None else posinf
    neginf = float(fi.min) if neginf is None else neginf
    y = where(isnan(x), nan, x)
    y = where(isposinf(x), posinf, y)
    return where(isneginf(x), neginf, y)


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    y = x
    if min is not None:
        y = maximum(y, min)
    if max is not None:
        y = minimum(y, max)
    return y


clip = clamp


def clamp_min(x, min): return maximum(x, min)
def clamp_max(x, max): return minimum(x, max)


def lerp(input: Tensor, end, weight) -> Tensor:
    return input + weight * (end - input)


def addcmul(input, t1, t2, *, value=1):
    return input + (t1 * t2 if value == 1 else t1 * t2 * value)


def addcdiv(input, t1, t2, *, value=1):
    return input + (t1 / t2 if value == 1 else t1 / t2 * value)
