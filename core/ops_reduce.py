"""Reductions with PyTorch's dim/keepdim semantics, built on the backend's sum/max/min/arg*."""
from __future__ import annotations

import math
from collections import namedtuple

from . import dtype as dt
from .errors import DTypeError
from .shape import norm_dim, norm_dims, numel
from .tensor import Tensor, _check_supported

_make = Tensor._make
MinMax = namedtuple("MinMax", ["values", "indices"])


def _axes(x: Tensor, dim, op: str):
    return norm_dims(dim, x.ndim, op)


def _accum_input(x: Tensor, dtype=None):
    """sum/prod/cumsum: bool and integer inputs accumulate in int64, like torch."""
    B = x._b
    d = B.dtype(x._p)
    if dtype is not None:
        d2 = dt.as_dtype(dtype)
    elif d.kind != 2:
        d2 = dt.int64
    else:
        return x._p
    if d2 is d:
        return x._p
    _check_supported(B, d2)
    return B.cast(x._p, d2)


def sum(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    B = x._b
    p = _accum_input(x, dtype)
    return _make(B.sum(p, _axes(x, dim, "sum"), keepdim), B)


def nansum(x: Tensor, dim=None, keepdim=False, *, dtype=None) -> Tensor:
    from .ops_elementwise import isnan, where
    return sum(where(isnan(x), 0, x), dim, keepdim, dtype=dtype)


def mean(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    d = dt.as_dtype(dtype) if dtype is not None else x.dtype
    if d.kind != 2:
        raise DTypeError(f"mean(): input dtype must be floating point, got {d.name}; "
                         f"pass dtype=strata.float32 or call .float() first")
    if x.dtype is not d:
        x = x._cast(d)
    axes = _axes(x, dim, "mean")
    shp = tuple(x.shape)
    n = numel(shp[a] for a in axes)
    B = x._b
    s = B.sum(x._p, axes, keepdim)
    return _make(B.div(s, float(n)) if n else B.mul(s, math.nan), B)


def _extreme(x: Tensor, dim, keepdim, which: str, argname: str):
    B = x._b
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(f"{which}(): cannot reduce an empty tensor without dim; "
                               f"pass dim=... or use a non-empty tensor")
        return _make(getattr(B, which)(x._p, tuple(range(x.ndim)), False), B)
    ax = norm_dim(dim, x.ndim, which)
    if x.ndim and x.shape[ax] == 0:
        raise IndexError(f"{which}(): dim {dim} has size 0; cannot take its {which}")
    if x.ndim == 0:
        return MinMax(x, _make(B.full((), 0, dt.int64), B))
    vals = _make(getattr(B, which)(x._p, (ax,), keepdim), B)
    idx = _make(getattr(B, argname)(x._p, ax, keepdim), B)
    return MinMax(vals, idx)


def max(x: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """max() -> scalar tensor; max(dim) -> (values, indices); max(other) -> maximum."""
    if isinstance(dim, Tensor):
        from .ops_elementwise import maximum
        return maximum(x, dim)
    return _extreme(x, dim, keepdim, "max", "argmax")


def min(x: Tensor, dim=None, keepdim: bool = False):
    if isinstance(dim, Tensor):
        from .ops_elementwise import minimum
        return minimum(x, dim)
    return _extreme(x, dim, keepdim, "min", "argmin")


def amax(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    axes = _axes(x, None if dim == () else dim, "amax")
    return _make(x._b.max(x._p, axes, keepdim), x._b)


def amin(x: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    axes = _axes(x, None if dim == () else dim, "amin")
    return _make(x._b.min(x._p, axes, keepdim), x._b)


def aminmax(x: Tensor, *, dim=None, keepdim=False):
    return namedtuple("aminmax", ["min", "max"])(amin(x, () if dim is None else dim, keepdim),
                                                 amax(x, () if dim is None else dim, keepdim))


def _arg(x: Tensor, dim, keepdim, name):
    B = x._b
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(f"{name}(): cannot take the {name} of an empty tensor")
        flat = B.reshape(x._p, (x.numel(),))
        r = _make(getattr(B, name)(flat, 0, False), B)
        if keepdim:
            r = _make(B.reshape(r._p, (1,) * x.ndim), B)
        return r
    if x.ndim == 0:
        norm_dim(dim, 0, name)
        return _make(B.full((), 0, dt.int64), B)
    ax = norm_dim(dim, x.ndim, name)
    if x.shape[ax] == 0:
        raise IndexError(f"{name}(): dim {dim} has size 0")
    return _make(getattr(B, name)(x._p, ax, keepdim), B)


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg(x, dim, keepdim, "argmax")


def argmin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg(x, dim, keepdim, "argmin")


def prod(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    B = x._b
    p = _accum_input(x, dtype)
    if dim is None:
        return _make(B.prod(B.reshape(p, (x.numel(),)), (0,), False), B) if not keepdim else \
            _make(B.prod(p, tuple(range(x.ndim)), True), B)
    return _make(B.prod(p, (norm_dim(dim, x.ndim, "prod"),), keepdim), B)


def var(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    if isinstance(unbiased, bool) and correction is None:
        correction = 1 if unbiased else 0
    elif correction is None:
        correction = 1
    if x.dtype.kind != 2:
        raise DTypeError(f"var(): input dtype must be floating point, got {x.dtype.name}")
    axes = _axes(x, dim, "var")
    n = numel(tuple(x.shape)[a] for a in axes)
    m = mean(x, axes, keepdim=True)
    d = x - m
    s = sum(d * d, axes, keepdim)
    return s / float(n - correction) if n - correction > 0 else s * math.nan


def std(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    from .ops_elementwise import sqrt
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    from .ops_elementwise import exp, isinf, log, where
    x = x if x.dtype.kind == 2 else x._cast(dt.float32)
    axes = _axes(x, dim, "logsumexp")
    m = amax(x, axes, keepdim=True).detach()
    m = where(isinf(m), 0.0, m)
    out = log(sum(exp(x - m), axes, keepdim=True)) + m
    if not keepdim:
        out = _squeeze_axes(out, axes)
    return out


def _squeeze_axes(t: Tensor, axes) -> Tensor:
    shp = tuple(t.shape)
    return _make(t._b.reshape(t._p, tuple(s for i, s in enumerate(shp) if i not in axes)), t._b)


def cumsum(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    B = x._b
    p = _accum_input(x, dtype)
    if x.ndim == 0:
        return _make(p, B)
    return _make(B.cumsum(p, norm_dim(dim, x.ndim, "cumsum")), B)


def cumprod(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    B = x._b
    p = _accum_input(x, dtype)
    if x.ndim == 0:
        return _make(p, B)
    return _make(B.cumprod(p, norm_dim(dim, x.ndim, "cumprod")), B)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    B = x._b
    p = x._p if x.dtype is dt.bool_ else B.ne(x._p, _zero(x.dtype))
    if x.numel() == 0:
        return _make(B.full(_red_shape(x, dim, keepdim), True, dt.bool_), B)
    return _make(B.min(p, _axes(x, dim, "all"), keepdim), B)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    B = x._b
    p = x._p if x.dtype is dt.bool_ else B.ne(x._p, _zero(x.dtype))
    if x.numel() == 0:
        return _make(B.full(_red_shape(x, dim, keepdim), False, dt.bool_), B)
    return _make(B.max(p, _axes(x, dim, "any"), keepdim), B)


def _zero(d):
    return 0.0 if d.kind == 2 else 0


def _red_shape(x, dim, keepdim):
    from .shape import reduced_shape
    return reduced_shape(tuple(x.shape), _axes(x, dim, "reduce"), keepdim)


def count_nonzero(x: Tensor, dim=None) -> Tensor:
    from .ops_elementwise import ne
    return sum(ne(x, 0), dim)


def norm(x: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    from .ops_elementwise import abs as _abs, pow as _pow, sqrt
    if dtype is not None:
        x = x._cast(dt.as_dtype(dtype))
    if x.dtype.kind != 2:
        raise DTypeError(f"norm(): input dtype must be floating point, got {x.dtype.name}")
    if p == "fro" or p == 2 or p is None:
        return sqrt(sum(x * x, dim, keepdim))
    if p in (math.inf, "inf"):
        return amax(_abs(x), () if dim is None else dim, keepdim)
    if p in (-math.inf, "-inf"):
        return amin(_abs(x), () if dim is None else dim, keepdim)
    if p == 0:
        from .ops_elementwise import ne
        return sum(ne(x, 0)._cast(x.dtype), dim, keepdim)
    if p == 1:
        return sum(_abs(x), dim, keepdim)
    if isinstance(p, (int, float)):
        return _pow(sum(_pow(_abs(x), float(p)), dim, keepdim), 1.0 / p)
    raise ValueError(f"norm(): unsupported p={p!r}; use 'fro', a number, inf or -inf")
