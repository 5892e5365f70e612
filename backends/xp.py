"""ArrayBackend: the Backend protocol over an array namespace `xp` (NumPy or CuPy).

Primitives are raw `xp.ndarray` objects: no wrapper, so an op costs one Python call on top of
the array library. Elementwise ops, reductions and matmul are closures installed on the
instance (see xp_elementwise.py); `set_allocator` reinstalls them so that outputs come from a
pool, and the default path (`allocator is None`) pays nothing for the hook.

Conventions the code relies on:
* NumPy mode (`xp is numpy`) passes `out=...` so 0-d results are arrays, never NumPy scalars.
* float16 reductions, matmul, softmax and norms accumulate in float32 and round once (torch
  does the same on CPU); results keep the input dtype.
* Movement ops (reshape where the layout allows, permute, expand, slice, flip) return views.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from ..core import dtype as dt
from ..core.backend import Backend
from ..core.dtype import DType
from ..core.errors import DTypeError, ShapeError
from ..core.shape import broadcast_shapes, numel, reduced_shape
from ..core import philox
from . import xp_elementwise as ew
from . import xp_nn
from .erf import erf as _erf

# Torch computes inf/nan silently; NumPy warns. The warning is attributed to the line that
# called the ufunc, so filtering by module silences exactly this backend's kernels.
_WARN_MODULES = r"strata\.backends\.(xp|xp_elementwise|xp_nn|erf|numpy|cupy)$"


def _silence_fp_warnings() -> None:
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=_WARN_MODULES)


_silence_fp_warnings()

_STRATA_DTYPE = {d.np: d for d in dt.ALL}
_F32 = np.dtype(np.float32)
_F16 = np.dtype(np.float16)
_I64 = np.dtype(np.int64)
_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_WHERE_BITS_MIN = 2048


def _where_bits(cond, a, b):
    """np.where by bit masks: (a & m) | (b & ~m) with m all ones where cond holds. NumPy's
    where branches per element and runs at ~5 ns an element on a random mask (ReLU's backward
    mask is one); these whole-array integer passes run ~15x faster and give the same bits."""
    a, b = np.asarray(a), np.asarray(b)
    d = a.dtype
    ut = _UINT_OF_SIZE[d.itemsize]
    m = np.empty(np.broadcast_shapes(cond.shape, a.shape, b.shape), ut)
    m[...] = cond
    np.negative(m, out=m)
    out = np.bitwise_and(a.view(ut), m)
    if not (b.ndim == 0 and int(b.view(ut)) == 0):   # else b contributes no bits
        np.invert(m, out=m)
        np.bitwise_and(b.view(ut), m, out=m)
        np.bitwise_or(out, m, out=out)
    return out.view(d)

# ops installed per instance; the class attributes of the same names forward to them
_INSTALLED = tuple(ew.UNARY) + tuple(ew.BINARY) + tuple(ew.COMPARE) + ("sum", "max", "min", "matmul")


def _forwarder(name: str):
    def method(self, *args):
        return self.__dict__[name](*args)
    method.__name__ = name
    method.__doc__ = f"{name}: installed per instance by ArrayBackend._install (fast path)."
    return method


class ArrayBackend(Backend):
    """The Backend protocol for an ndarray namespace. Subclasses: NumPy, CuPy."""

    def __init__(self, xp: Any, numpy_fast_path: bool | None = None):
        """numpy_fast_path: use NumPy-only ufunc arguments (default: when xp is numpy). False
        runs NumPy through the generic code path that CuPy uses (the tests do this)."""
        self.xp = xp
        self._numpy_mode = (xp is np) if numpy_fast_path is None else bool(numpy_fast_path)
        if self._numpy_mode and xp is not np:
            raise ValueError("numpy_fast_path=True needs xp to be numpy")
        self.allocator = None
        self._install()

    # ---------------------------------------------------------------- installation
    def set_allocator(self, alloc) -> None:
        """Route elementwise, reduction and matmul outputs through `alloc.empty(shape, dtype)`;
        None restores the library's own allocation (the fast path)."""
        if alloc is not None and not callable(getattr(alloc, "empty", None)):
            raise TypeError(f"set_allocator expects an object with empty(shape, dtype) -> ndarray, "
                            f"got {type(alloc).__name__}")
        self.allocator = alloc
        self._install()

    def _install(self) -> None:
        _silence_fp_warnings()  # pytest and catch_warnings() reset the filter list
        xp, alloc, cls = self.xp, self.allocator, type(self)
        for table in (ew.UNARY, ew.BINARY, ew.COMPARE):
            unary = table is ew.UNARY
            for name, ufname in table.items():
                if self._overridden(name):
                    continue
                uf = getattr(xp, ufname)
                if self._numpy_mode:
                    fn = (ew.numpy_unary if unary else ew.numpy_binary)(name, uf, alloc)
                else:
                    fn = (ew.generic_unary if unary else ew.generic_binary)(name, uf, xp.ndarray, alloc)
                self.__dict__[name] = fn
        for name in ("sum", "max", "min"):
            if not self._overridden(name):
                self.__dict__[name] = self._make_reduce(name)
        if not self._overridden("matmul"):
            self.__dict__["matmul"] = self._make_matmul()

    def _overridden(self, name: str) -> bool:
        """Whether a subclass defines `name` itself (then no closure shadows its method)."""
        impl = getattr(type(self), name, None)
        return impl is not None and not getattr(impl, "_forwarder", False)

    def __reduce__(self):
        return (type(self), self._ctor_args())

    def _ctor_args(self) -> tuple:
        return (self.xp,)

    # ---------------------------------------------------------------- description
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    __str__ = __repr__

    def shape(self, x) -> tuple:
        return x.shape

    def dtype(self, x) -> DType:
        try:
            return _STRATA_DTYPE[x.dtype]
        except KeyError:
            raise DTypeError(f"{self}: array dtype {x.dtype} has no strata equivalent; supported: "
                             f"{', '.join(d.name for d in dt.ALL)}") from None

    def is_primitive(self, x) -> bool:
        return isinstance(x, self.xp.ndarray)

    def supports(self, dtype: DType) -> bool:
        return dtype in dt.ALL

    # ---------------------------------------------------------------- transfer and creation
    def from_numpy(self, a: np.ndarray, dtype: DType):
        return self.xp.asarray(a, dtype=dtype.np)

    def to_numpy(self, x) -> np.ndarray:
        # shares memory like torch's .numpy(); read-only views (expand) are copied
        return x if x.flags.writeable else x.copy()

    def full(self, shape: tuple, value, dtype: DType):
        if dtype.kind == 1:
            # like torch.full: floats truncate, but a value the dtype cannot hold is an error
            info = np.iinfo(dtype.np)
            if isinstance(value, float) and not math.isfinite(value) or \
                    not info.min <= int(value) <= info.max:
                raise DTypeError(f"full: cannot store {value!r} in {dtype.name} "
                                 f"(range {info.min}..{info.max})")
            value = int(value)
        try:
            return self.xp.full(shape, value, dtype=dtype.np)
        except (OverflowError, ValueError, TypeError) as e:
            raise DTypeError(f"full: cannot store {value!r} in {dtype.name} ({e})") from None

    def arange(self, start, step, n: int, dtype: DType):
        xp = self.xp
        if dtype.is_floating_point or isinstance(start, float) or isinstance(step, float):
            vals = xp.arange(n, dtype=np.float64) * step + start
        else:
            vals = xp.arange(n, dtype=np.int64) * int(step) + int(start)
        return vals.astype(dtype.np, copy=False)

    def _host_random(self, shape, seed, offset, dtype: DType, normal: bool) -> np.ndarray:
        if not dtype.is_floating_point:
            raise DTypeError(f"random {'normal' if normal else 'uniform'} needs a floating dtype, "
                             f"got {dtype.name}; draw floats and cast (or use randint)")
        n = numel(shape)
        gen = philox.normal if normal else philox.uniform
        vals = gen(int(seed), int(offset), n, double=dtype is dt.float64)
        if dtype is dt.float16:
            vals = vals.astype(np.float16)
            if not normal:
                # float32 values just below 1 round to 1.0 in float16: keep the range [0, 1)
                np.minimum(vals, np.float16(1.0 - 2.0 ** -11), out=vals)
        return vals.reshape(shape)

    def random_uniform(self, shape: tuple, seed: int, offset: int, dtype: DType):
        return self.xp.asarray(self._host_random(shape, seed, offset, dtype, False))

    def random_normal(self, shape: tuple, seed: int, offset: int, dtype: DType):
        return self.xp.asarray(self._host_random(shape, seed, offset, dtype, True))

    def cast(self, x, dtype: DType):
        # astype truncates float -> int toward zero; NaN/inf -> int is undefined (as in torch)
        return x.astype(dtype.np, copy=False)

    def sync(self) -> None:
        return None

    # ---------------------------------------------------------------- elementwise specials
    def _float_only(self, name: str, x) -> None:
        if x.dtype.kind != "f":
            raise DTypeError(f"{name} needs a floating dtype, got {x.dtype}; cast first "
                             f"(torch promotes integer inputs to float32)")

    def erf(self, x):
        self._float_only("erf", x)
        return _erf(x, self.xp)

    def reciprocal(self, x):
        self._float_only("reciprocal", x)
        return self._reciprocal(x)

    def round(self, x):
        """Half to even, like torch.round; integers and bools are returned unchanged."""
        return self._rint(x) if x.dtype.kind == "f" else x

    def sign(self, x):
        """-1, 0 or 1 in x's dtype; sign(-0.0) = 0 and sign(nan) = 0 like torch; bool -> itself."""
        kind = x.dtype.kind
        if kind == "b":
            return x
        if kind == "u":
            return (x > 0).astype(x.dtype)
        xp = self.xp
        if x.ndim == 0:
            return self.sign(x.reshape(1)).reshape(())
        pos = xp.greater(x, 0)
        r = pos.astype(x.dtype)
        r -= xp.less(x, 0).astype(x.dtype)
        return r

    def _check_int_divisor(self, name: str, a, b) -> None:
        arr = a if isinstance(a, self.xp.ndarray) else b
        if arr.dtype.kind in "iub":
            if b is not arr and isinstance(b, (int, float, np.generic)):
                zero = b == 0
            else:
                zero = bool((b == 0).any())
            if zero:
                raise ZeroDivisionError(f"{name}: integer division by zero (as in torch); "
                                        f"use a floating dtype to get inf/nan instead")

    def remainder(self, a, b):
        """Python/torch semantics: the result has the sign of the divisor."""
        self._check_int_divisor("remainder", a, b)
        return self._remainder(a, b)

    def floor_divide(self, a, b):
        self._check_int_divisor("floor_divide", a, b)
        return self._floor_divide(a, b)

    def where(self, cond, a, b):
        xp = self.xp
        a_arr, b_arr = isinstance(a, xp.ndarray), isinstance(b, xp.ndarray)
        if a_arr and b_arr:
            if a.dtype != b.dtype:
                raise DTypeError(f"where: operands have dtypes {a.dtype} and {b.dtype}; "
                                 f"cast them to one dtype first")
        elif a_arr:
            b = ew.coerce_scalar(b, a.dtype, "where")
        elif b_arr:
            a = ew.coerce_scalar(a, b.dtype, "where")
        else:
            d = dt.result_type_scalar(dt.bool_, a)
            d = dt.promote_types(d, dt.result_type_scalar(dt.bool_, b))
            a, b = ew.coerce_scalar(a, d.np, "where"), ew.coerce_scalar(b, d.np, "where")
        if self._numpy_mode and cond.size >= _WHERE_BITS_MIN:
            return _where_bits(cond, a, b)
        return xp.where(cond, a, b)

    # ---------------------------------------------------------------- reductions
    def _make_reduce(self, kind: str):
        xp, alloc, numpy_mode = self.xp, self.allocator, self._numpy_mode
        if numpy_mode:
            uf = {"sum": np.add, "max": np.maximum, "min": np.minimum}[kind]
        else:
            uf = {"sum": xp.sum, "max": xp.max, "min": xp.min}[kind]
        is_sum = kind == "sum"
        lim = getattr(alloc, "min_bytes", 0)

        def reduce(x, axes: tuple, keepdims: bool):
            if not axes:
                return x
            dtype = x.dtype
            if is_sum and dtype == _F16:
                # accumulate float16 in float32, round once
                return reduce(x.astype(_F32), axes, keepdims).astype(_F16)
            try:
                if alloc is not None and x.nbytes >= lim:   # outputs never outgrow x
                    out = alloc.empty(reduced_shape(x.shape, axes, keepdims), dtype)
                    if numpy_mode:
                        return uf.reduce(x, axis=axes, dtype=dtype, keepdims=keepdims, out=out)
                    return uf(x, axis=axes, dtype=dtype, keepdims=keepdims, out=out) if is_sum \
                        else uf(x, axis=axes, keepdims=keepdims, out=out)
                if numpy_mode:
                    return uf.reduce(x, axis=axes, dtype=dtype, keepdims=keepdims, out=...)
                if is_sum:
                    r = uf(x, axis=axes, dtype=dtype, keepdims=keepdims)
                else:
                    r = uf(x, axis=axes, keepdims=keepdims)
                return r if isinstance(r, xp.ndarray) else xp.asarray(r)
            except ValueError:
                if any(x.shape[a] == 0 for a in axes):
                    raise ShapeError(f"{kind}: cannot reduce over an empty dimension "
                                     f"(shape {x.shape}, axes {axes}); {kind} of nothing is "
                                     f"undefined") from None
                raise
        reduce.__name__ = kind
        return reduce

    def _arg(self, fn, name: str, x, axis: int, keepdims: bool):
        if x.ndim == 0:
            return self.xp.zeros((), dtype=_I64)
        if x.shape[axis] == 0:
            raise ShapeError(f"{name}: dimension {axis} of shape {x.shape} is empty")
        r = fn(x, axis=axis, keepdims=keepdims)
        return self.xp.asarray(r).astype(_I64, copy=False)

    def argmax(self, x, axis: int, keepdims: bool):
        return self._arg(self.xp.argmax, "argmax", x, axis, keepdims)

    def argmin(self, x, axis: int, keepdims: bool):
        return self._arg(self.xp.argmin, "argmin", x, axis, keepdims)

    def prod(self, x, axes: tuple, keepdims: bool):
        if not axes:
            return x
        if x.dtype == _F16:
            return self.prod(x.astype(_F32), axes, keepdims).astype(_F16)
        return self.xp.asarray(self.xp.prod(x, axis=axes, dtype=x.dtype, keepdims=keepdims))

    def _xp_scan(self, fn, x, axis: int):
        if x.ndim == 0:
            return x.copy()
        if x.dtype == _F16:
            return fn(x, axis=axis, dtype=_F32).astype(_F16)
        return fn(x, axis=axis, dtype=x.dtype)

    def cumsum(self, x, axis: int):
        return self._xp_scan(self.xp.cumsum, x, axis)

    def cumprod(self, x, axis: int):
        return self._xp_scan(self.xp.cumprod, x, axis)

    # ---------------------------------------------------------------- movement
    def reshape(self, x, shape: tuple):
        return x.reshape(shape)

    def permute(self, x, dims: tuple):
        return x.transpose(dims)

    def expand(self, x, shape: tuple):
        return self.xp.broadcast_to(x, shape)

    def slice(self, x, starts: tuple, stops: tuple, steps: tuple):
        return x[tuple(slice(a, b, c) for a, b, c in zip(starts, stops, steps))]

    def pad(self, x, pads: tuple, value):
        if not any(lo or hi for lo, hi in pads):
            return x
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pads))
        if value == 0 or value is False:
            out = self.xp.zeros(shape, dtype=x.dtype)
        else:
            out = self.full(shape, value, _STRATA_DTYPE[x.dtype])
        out[tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape, pads))] = x
        return out

    def cat(self, xs: Sequence, axis: int):
        xs = list(xs)
        d = xs[0].dtype
        for x in xs:
            if x.dtype != d:
                raise DTypeError(f"cat: inputs have dtypes {d} and {x.dtype}; cast to one dtype")
        if len(xs) == 1:
            return xs[0]
        return self.xp.concatenate(xs, axis=axis)

    def flip(self, x, axes: tuple):
        return self.xp.flip(x, axis=axes) if axes else x

    # ---------------------------------------------------------------- indexing
    def _check_index(self, name: str, index, size: int) -> None:
        if index.dtype.kind not in "iu":
            raise DTypeError(f"{name}: index must be an integer array, got {index.dtype}")
        if index.size:
            lo, hi = int(index.min()), int(index.max())
            if lo < 0 or hi >= size:
                bad = lo if lo < 0 else hi
                raise IndexError(f"{name}: index {bad} is out of range for a dimension of size "
                                 f"{size} (valid: 0..{size - 1})")

    def _check_shapes(self, name: str, x, axis: int, index, src=None) -> None:
        if index.ndim != x.ndim:
            raise ShapeError(f"{name}: index has {index.ndim} dims but the input has {x.ndim}")
        for d, n in enumerate(index.shape):
            if d != axis and n > x.shape[d]:
                raise ShapeError(f"{name}: index size {n} exceeds input size {x.shape[d]} in dim {d} "
                                 f"(index {index.shape}, input {x.shape})")
            if src is not None and n > src.shape[d]:
                raise ShapeError(f"{name}: index size {n} exceeds src size {src.shape[d]} in dim {d} "
                                 f"(index {index.shape}, src {src.shape})")

    def gather(self, x, axis: int, index):
        if x.ndim == 0:
            return self.gather(x.reshape(1), 0, index.reshape(1)).reshape(index.shape)
        self._check_shapes("gather", x, axis, index)
        self._check_index("gather", index, x.shape[axis])
        sub = x[tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))]
        return self.xp.take_along_axis(sub, index, axis)

    def _flat_targets(self, out_shape: tuple, axis: int, index):
        # flat positions in a C-contiguous array of out_shape hit by each index element
        xp = self.xp
        strides = [1] * len(out_shape)
        for d in range(len(out_shape) - 2, -1, -1):
            strides[d] = strides[d + 1] * out_shape[d + 1]
        flat = index.astype(_I64, copy=False) * strides[axis]
        for d, n in enumerate(index.shape):
            if d != axis and n > 1:
                shp = [1] * index.ndim
                shp[d] = n
                flat = flat + (xp.arange(n, dtype=_I64) * strides[d]).reshape(shp)
        return xp.broadcast_to(flat, index.shape).reshape(-1)

    def _index_add_flat(self, out_flat, flat, vals) -> None:
        """out_flat[flat] += vals with duplicates accumulated (CuPy overrides)."""
        if out_flat.dtype.kind == "f" and flat.size * 4 >= out_flat.size:
            # bincount is a single pass in float64: faster than np.add.at for dense updates
            acc = np.bincount(flat, weights=vals.astype(np.float64), minlength=out_flat.size)
            out_flat += acc.astype(out_flat.dtype)
        else:
            np.add.at(out_flat, flat, vals)

    def _scatter_prep(self, name, x, axis, index, src):
        if x.ndim == 0:
            x, index, src = x.reshape(1), index.reshape(1), src.reshape(1)
        if src.dtype != x.dtype:
            raise DTypeError(f"{name}: src dtype {src.dtype} differs from input dtype {x.dtype}")
        self._check_shapes(name, x, axis, index, src)
        self._check_index(name, index, x.shape[axis])
        out = x.copy()
        sub = src[tuple(slice(0, n) for n in index.shape)]
        return out, self._flat_targets(x.shape, axis, index), sub.reshape(-1)

    def scatter_add(self, x, axis: int, index, src):
        out, flat, vals = self._scatter_prep("scatter_add", x, axis, index, src)
        if flat.size:
            self._index_add_flat(out.reshape(-1), flat, vals)
        return out.reshape(x.shape)

    def scatter(self, x, axis: int, index, src):
        out, flat, vals = self._scatter_prep("scatter", x, axis, index, src)
        if flat.size:
            out.reshape(-1)[flat] = vals
        return out.reshape(x.shape)

    def index_select(self, x, axis: int, index):
        self._check_index("index_select", index, x.shape[axis] if x.ndim else 1)
        if x.ndim == 0:
            return self.xp.broadcast_to(x, index.shape).copy()
        return self.xp.take(x, index, axis=axis)

    def masked_fill(self, x, mask, value):
        if mask.dtype != np.bool_:
            raise DTypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
        try:
            v = ew.coerce_scalar(value, x.dtype, "masked_fill")
        except (OverflowError, ValueError) as e:
            raise DTypeError(f"masked_fill: cannot store {value!r} in {x.dtype} ({e})") from None
        r = self.xp.where(mask, v, x)
        return r if r.shape == x.shape else self.xp.broadcast_to(r, x.shape)

    # ---------------------------------------------------------------- linear algebra
    def _make_matmul(self):
        xp, alloc, numpy_mode = self.xp, self.allocator, self._numpy_mode
        lim = getattr(alloc, "min_bytes", 0)

        def matmul(a, b):
            if a.dtype != b.dtype:
                raise DTypeError(f"matmul: operands have dtypes {a.dtype} and {b.dtype}; "
                                 f"cast to one dtype first")
            if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
                raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} do not fit "
                                 f"(need (..., n, k) @ (..., k, m), both at least 2-D)")
            if a.dtype == _F16 and numpy_mode:
                # NumPy has no float16 BLAS: accumulate in float32 like torch, round once
                return xp.matmul(a.astype(_F32), b.astype(_F32)).astype(_F16)
            if alloc is None or (a.ndim == b.ndim == 2 and
                                 a.shape[0] * b.shape[1] * a.itemsize < lim):
                return xp.matmul(a, b)
            batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "matmul")
            out = alloc.empty(batch + (a.shape[-2], b.shape[-1]), a.dtype)
            return xp.matmul(a, b, out=out)
        return matmul

    # ---------------------------------------------------------------- accelerated overrides
    def sigmoid(self, x):
        """exp(-|x|) based, so no intermediate overflows and tiny outputs keep their precision."""
        self._float_only("sigmoid", x)
        xp = self.xp
        if x.ndim == 0:
            return self.sigmoid(x.reshape(1)).reshape(())
        t = xp.abs(x)
        xp.negative(t, out=t)
        xp.exp(t, out=t)  # e = exp(-|x|) in (0, 1]
        num = xp.where(x >= 0, x.dtype.type(1), t)
        t += 1
        xp.divide(num, t, out=t)
        return t

    def silu(self, x):
        return self.mul(x, self.sigmoid(x))

    def relu(self, x):
        if x.dtype.kind == "b":
            return x
        return self.maximum(x, 0)

    def softmax(self, x, axis: int):
        return xp_nn.softmax(self.xp, x, axis, log=False)

    def log_softmax(self, x, axis: int):
        return xp_nn.softmax(self.xp, x, axis, log=True)

    def linear(self, x, w, b):
        # the 2-D case in two calls: GEMM against the transposed weight view, then the bias
        # added in place into the GEMM's fresh output (no second array)
        if x.ndim == 2 and w.ndim == 2 and (b is None or (b.ndim == 1 and b.dtype == x.dtype
                                                          and b.shape[0] == w.shape[0])):
            out = self.matmul(x, w.T)
            if b is not None:
                out += b
            return out
        return super().linear(x, w, b)

    def nll_loss(self, logp, target, weight, ignore_index: int, reduction: str):
        self._float_only("nll_loss", logp)
        if self._numpy_mode:
            fast = xp_nn.nll_loss_fast(logp, target, weight, ignore_index, reduction)
            if fast is not None:
                return fast
        return super().nll_loss(logp, target, weight, ignore_index, reduction)

    def nll_loss_backward(self, g, logp, target, weight, ignore_index: int, reduction: str):
        if self._numpy_mode:
            fast = xp_nn.nll_loss_backward_fast(g, logp, target, weight, ignore_index, reduction)
            if fast is not None:
                return fast
        return super().nll_loss_backward(g, logp, target, weight, ignore_index, reduction)

    def layer_norm(self, x, normalized_ndim: int, weight, bias, eps: float):
        return xp_nn.layer_norm(self.xp, x, normalized_ndim, weight, bias, eps)

    def conv2d(self, x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
        return xp_nn.conv2d(self.xp, x, w, stride, padding, dilation, groups)

    def conv2d_weight_backward(self, x, g, wshape: tuple, stride: tuple, padding: tuple,
                               dilation: tuple, groups: int):
        return xp_nn.conv2d_weight_backward(self.xp, x, g, wshape, stride, padding, dilation,
                                            groups)

    def conv_transpose2d(self, x, w, stride: tuple, padding: tuple, output_padding: tuple,
                         dilation: tuple, groups: int):
        return xp_nn.conv_transpose2d(self.xp, x, w, stride, padding, output_padding, dilation,
                                      groups)

    def max_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                   ceil_mode: bool):
        return xp_nn.max_pool2d(self.xp, x, kernel, stride, padding, dilation, ceil_mode,
                                self._numpy_mode)

    def avg_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
                   count_include_pad: bool, divisor_override=None):
        return xp_nn.avg_pool2d(self.xp, x, kernel, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)


for _name in _INSTALLED:
    if _name not in ArrayBackend.__dict__:
        _fwd = _forwarder(_name)
        _fwd._forwarder = True
        setattr(ArrayBackend, _name, _fwd)
del _name, _fwd

__all__ = ["ArrayBackend"]
