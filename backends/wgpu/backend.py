"""WGPU(): the WebGPU base backend (wgpu-py + WGSL kernels beside this file).

A primitive is a `WTensor` (buffer + strided Layout); movement ops are views. Ops are encoded
into one command batch that is submitted when a value is read (see runtime.py). dtype storage
is described in dtypes.py (no 64-bit types: int64 lives in int32, float64 is unsupported).
"""
from __future__ import annotations

import re

import numpy as np

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.dtype import DType
from ...core.errors import DTypeError, ShapeError
from ...core.shape import broadcast_many, numel
from ..strided import Layout
from . import exprs
from .dtypes import WTYPES, from_storage, scalar_bits, to_storage, unsupported
from .fused import FusedOps
from .fused_matmul import FusedMatmulOps
from .int8 import Int8Ops
from .ops_nn import NNOps
from .ops_reduce import ReduceOps
from .runtime import Runtime
from .tensor import WTensor, new_tensor, run_map, upload

_NAMES = re.compile(r"\b([abc])\b")


class WGPU(FusedMatmulOps, FusedOps, Int8Ops, NNOps, ReduceOps, Backend):
    """WebGPU backend. `WGPU(power_preference="high-performance", adapter=None)`."""

    asynchronous = True  # ops queue work; input checks wait for the next read-back

    def __init__(self, power_preference: str = "high-performance", adapter=None,
                 batch_limit: int = 256):
        self._pp = power_preference
        self.rt = Runtime(power_preference, adapter, batch_limit)
        self._f16 = self.rt.has_f16

    # ---------------------------------------------------------------- identity
    def __repr__(self) -> str:
        return "WGPU()"

    __str__ = __repr__

    @property
    def allocator(self):
        return self.rt.allocator

    @allocator.setter
    def allocator(self, value) -> None:
        self.rt.allocator = value

    def device_name(self) -> str:
        info = self.rt.adapter.info
        return f"{info.get('device', 'webgpu')} ({info.get('backend_type', '')})"

    def supports(self, dtype: DType) -> bool:
        return dtype in WTYPES and (dtype is not dt.float16 or self._f16)

    def limits(self) -> dict:
        lim = self.rt.device.limits
        return {"max_storage_buffer_binding_size": self.rt.max_binding,
                "max_compute_workgroups_per_dimension": self.rt.max_groups,
                "max_compute_invocations_per_workgroup": lim["max-compute-invocations-per-workgroup"],
                "shader_f16": self._f16, "batch_limit": self.rt.batch_limit}

    def _check(self, d: DType) -> None:
        if not self.supports(d):
            raise unsupported(d, self._f16)

    # ---------------------------------------------------------------- description
    def shape(self, x: WTensor) -> tuple:
        return x.layout.shape

    def dtype(self, x: WTensor) -> DType:
        return x.dtype

    def is_primitive(self, x) -> bool:
        return type(x) is WTensor

    # ---------------------------------------------------------------- transfer
    def from_numpy(self, a: np.ndarray, dtype: DType) -> WTensor:
        self._check(dtype)
        return upload(self.rt, to_storage(np.asarray(a), WTYPES[dtype]), dtype)

    def to_numpy(self, x: WTensor) -> np.ndarray:
        self.run_deferred_checks()
        w = x.w
        lay = x.layout
        n = lay.numel
        if n == 0:
            return np.zeros(lay.shape, dtype=x.dtype.np)
        if not lay.is_contiguous() or (lay.offset * w.size) % 4:
            x = self.contiguous(x)
            lay = x.layout
        start = lay.offset * w.size
        nbytes = n * w.size
        raw = self.rt.read(x.st.buf, start, (nbytes + 3) & ~3)
        arr = np.frombuffer(raw, dtype=w.np, count=n).reshape(lay.shape)
        return from_storage(arr, w).copy() if arr.dtype == x.dtype.np else from_storage(arr, w)

    def sync(self) -> None:
        self.rt.sync()
        self.run_deferred_checks()

    # ---------------------------------------------------------------- creation
    def full(self, shape: tuple, value, dtype: DType) -> WTensor:
        self._check(dtype)
        out = new_tensor(self.rt, shape, dtype)
        w = WTYPES[dtype]
        run_map(self.rt, self._f16, "s0", out, [], ((scalar_bits(value, w), w.comp),))
        return out

    def arange(self, start, step, n: int, dtype: DType) -> WTensor:
        # computed on the host in float64/int64 as the contract says, then uploaded
        self._check(dtype)
        if dtype.is_floating_point:
            a = float(start) + np.arange(n, dtype=np.float64) * float(step)
        else:
            a = int(start) + np.arange(n, dtype=np.int64) * int(step)
        return self.from_numpy(a.astype(dtype.np), dtype)

    def cast(self, x: WTensor, dtype: DType) -> WTensor:
        self._check(dtype)
        if dtype is x.dtype:
            return x
        src = x.w
        dst = WTYPES[dtype]
        out = new_tensor(self.rt, x.shape, dtype)
        run_map(self.rt, self._f16, _NAMES.sub("v0", exprs.cast(src.cls, dst)), out, [x])
        return out

    def contiguous(self, x: WTensor) -> WTensor:
        out = new_tensor(self.rt, x.shape, x.dtype)
        run_map(self.rt, self._f16, "v0", out, [x])
        return out

    # ---------------------------------------------------------------- elementwise machinery
    def _operands(self, vals, w, op):
        """Split operands into tensors (expanded to the broadcast shape) and scalars."""
        shapes = [v.layout.shape for v in vals if type(v) is WTensor]
        shape = broadcast_many(shapes, op) if shapes else ()
        names, tens, scal = [], [], []
        for v in vals:
            if type(v) is WTensor:
                names.append(f"v{len(tens)}")
                tens.append(self._expand_to(v, shape))
            else:
                names.append(f"s{len(scal)}")
                scal.append((scalar_bits(v, w), w.comp))
        return shape, names, tens, tuple(scal)

    def _expand_to(self, x: WTensor, shape: tuple) -> WTensor:
        lay = x.layout
        if lay.shape == shape:
            return x
        pad = len(shape) - lay.ndim
        lay = Layout((1,) * pad + lay.shape, (0,) * pad + lay.strides, lay.offset)
        return x.view(lay.expand(shape))

    def _elementwise(self, op: str, table: dict, vals: list, out_dtype=None) -> WTensor:
        t = next(v for v in vals if type(v) is WTensor)
        w = t.w
        for v in vals:
            if type(v) is WTensor and v.dtype is not t.dtype:
                raise DTypeError(f"WGPU().{op}: operands have dtypes {t.dtype.name} and "
                                 f"{v.dtype.name}; the frontend promotes before calling")
        expr = table[op].get(w.cls)
        if expr is None:
            raise DTypeError(f"WGPU().{op} is not defined for {t.dtype.name} tensors; "
                             f"cast to a floating dtype first")
        shape, names, tens, scal = self._operands(vals, w, op)
        expr = _NAMES.sub(lambda m: names["abc".index(m.group(1))], expr)
        out = new_tensor(self.rt, shape, out_dtype or t.dtype)
        run_map(self.rt, self._f16, expr, out, tens, scal)
        return out

    def _unary(self, op, x):
        return self._elementwise(op, exprs.UNARY, [x])

    def _binary(self, op, a, b):
        return self._elementwise(op, exprs.BINARY, [a, b])

    def _compare(self, op, a, b):
        return self._elementwise(op, exprs.COMPARE, [a, b], dt.bool_)

    # unary
    def neg(self, x): return self._unary("neg", x)
    def exp(self, x): return self._unary("exp", x)
    def log(self, x): return self._unary("log", x)
    def sqrt(self, x): return self._unary("sqrt", x)
    def sin(self, x): return self._unary("sin", x)
    def cos(self, x): return self._unary("cos", x)
    def tanh(self, x): return self._unary("tanh", x)
    def erf(self, x): return self._unary("erf", x)
    def abs(self, x): return self._unary("abs", x)
    def sign(self, x): return self._unary("sign", x)
    def reciprocal(self, x): return self._unary("reciprocal", x)
    def floor(self, x): return self._unary("floor", x)
    def ceil(self, x): return self._unary("ceil", x)
    def round(self, x): return self._unary("round", x)
    def trunc(self, x): return self._unary("trunc", x)
    def sigmoid(self, x): return self._unary("sigmoid", x)
    def rsqrt(self, x): return self._unary("rsqrt", x)
    def silu(self, x): return self._unary("silu", x)
    def tan(self, x): return self._unary("tan", x)

    def relu(self, x):
        return self._unary("relu", x)

    def bitwise_not(self, x):
        if x.dtype is dt.bool_:
            return self.logical_not(x)
        return self._unary("bitwise_not", x)

    def logical_not(self, x): return self._elementwise("logical_not", exprs.UNARY_BOOL, [x], dt.bool_)
    def isnan(self, x): return self._elementwise("isnan", exprs.UNARY_BOOL, [x], dt.bool_)
    def isinf(self, x): return self._elementwise("isinf", exprs.UNARY_BOOL, [x], dt.bool_)

    # binary
    def add(self, a, b): return self._binary("add", a, b)
    def sub(self, a, b): return self._binary("sub", a, b)
    def mul(self, a, b): return self._binary("mul", a, b)
    def div(self, a, b): return self._binary("div", a, b)
    def pow(self, a, b): return self._binary("pow", a, b)
    def maximum(self, a, b): return self._binary("maximum", a, b)
    def minimum(self, a, b): return self._binary("minimum", a, b)
    def remainder(self, a, b): return self._binary("remainder", a, b)
    def floor_divide(self, a, b): return self._binary("floor_divide", a, b)
    def bitwise_and(self, a, b): return self._binary("bitwise_and", a, b)
    def bitwise_or(self, a, b): return self._binary("bitwise_or", a, b)
    def bitwise_xor(self, a, b): return self._binary("bitwise_xor", a, b)
    def eq(self, a, b): return self._compare("eq", a, b)
    def ne(self, a, b): return self._compare("ne", a, b)
    def lt(self, a, b): return self._compare("lt", a, b)
    def le(self, a, b): return self._compare("le", a, b)
    def gt(self, a, b): return self._compare("gt", a, b)
    def ge(self, a, b): return self._compare("ge", a, b)
    def logical_and(self, a, b): return self._compare("logical_and", a, b)
    def logical_or(self, a, b): return self._compare("logical_or", a, b)
    def logical_xor(self, a, b): return self._compare("logical_xor", a, b)

    def where(self, cond, a, b):
        if type(cond) is not WTensor or cond.dtype is not dt.bool_:
            raise DTypeError("WGPU().where: the condition must be a bool tensor")
        t = a if type(a) is WTensor else b if type(b) is WTensor else None
        if t is None:
            raise DTypeError("WGPU().where: at least one of a, b must be a tensor "
                             "(the frontend materialises two scalars)")
        if type(a) is WTensor and type(b) is WTensor and a.dtype is not b.dtype:
            raise DTypeError(f"WGPU().where: a is {a.dtype.name} and b is {b.dtype.name}")
        w = t.w
        shape = broadcast_many([v.layout.shape for v in (cond, a, b) if type(v) is WTensor], "where")
        names, tens, scal = [], [self._expand_to(cond, shape)], []
        for v in (a, b):
            if type(v) is WTensor:
                names.append(f"v{len(tens)}")
                tens.append(self._expand_to(v, shape))
            else:
                names.append(f"s{len(scal)}")
                scal.append((scalar_bits(v, w), w.comp))
        expr = f"select({names[1]}, {names[0]}, v0 != 0u)"
        out = new_tensor(self.rt, shape, t.dtype)
        run_map(self.rt, self._f16, expr, out, tens, tuple(scal))
        return out

    def masked_fill(self, x, mask, value):
        return self.where(mask, value, x)

    # ---------------------------------------------------------------- movement (views)
    def reshape(self, x, shape: tuple):
        shape = tuple(shape)
        if numel(shape) != x.layout.numel:
            raise ShapeError(f"WGPU().reshape: cannot view {x.shape} as {shape}")
        lay = x.layout.reshape(shape)
        if lay is None:
            x = self.contiguous(x)
            lay = Layout.contiguous(shape, x.layout.offset)
        return x.view(lay)

    def permute(self, x, dims: tuple):
        return x.view(x.layout.permute(tuple(dims)))

    def expand(self, x, shape: tuple):
        return self._expand_to(x, tuple(shape))

    def slice(self, x, starts: tuple, stops: tuple, steps: tuple):
        return x.view(x.layout.slice(tuple(starts), tuple(stops), tuple(steps)))

    def flip(self, x, axes: tuple):
        return x.view(x.layout.flip(tuple(axes)))

    def pad(self, x, pads: tuple, value):
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, pads))
        out = self.full(shape, value, x.dtype)
        inner = out.layout.slice(tuple(lo for lo, _ in pads),
                                 tuple(lo + s for s, (lo, _) in zip(x.shape, pads)),
                                 (1,) * len(shape))
        run_map(self.rt, self._f16, "v0", out.view(inner), [x])
        return out

    def cat(self, xs, axis: int):
        xs = list(xs)
        d = xs[0].dtype
        for x in xs:
            if x.dtype is not d:
                raise DTypeError(f"WGPU().cat: mixed dtypes {d.name} and {x.dtype.name}")
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = new_tensor(self.rt, tuple(shape), d)
        pos = 0
        nd = len(shape)
        for x in xs:
            k = x.shape[axis]
            if k:
                st = tuple(pos if i == axis else 0 for i in range(nd))
                sp = tuple(pos + k if i == axis else s for i, s in enumerate(shape))
                run_map(self.rt, self._f16, "v0", out.view(out.layout.slice(st, sp, (1,) * nd)), [x])
            pos += k
        return out

    # ---------------------------------------------------------------- random
    def random_uniform(self, shape, seed, offset, dtype):
        return self._random(shape, seed, offset, dtype, "uniform")

    def random_normal(self, shape, seed, offset, dtype):
        return self._random(shape, seed, offset, dtype, "normal")

    def _random(self, shape, seed, offset, dtype, kind):
        self._check(dtype)
        if not dtype.is_floating_point:
            raise DTypeError(f"WGPU().random_{kind}: dtype must be floating, got {dtype.name}")
        out = new_tensor(self.rt, tuple(shape), dtype)
        n = out.layout.numel
        if n == 0:
            return out
        import struct
        w = out.w
        key = ("philox", kind, dtype)
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "philox", ENABLE="enable f16;" if w.store == "f16" else "", TO=w.store,
            STORE=w.wrap("v"), KIND=kind), "rw")
        meta = struct.pack("<5I", n, seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF,
                           offset & 0xFFFFFFFF, (offset >> 32) & 0xFFFFFFFF)
        self.rt.dispatch(pipe, meta, [out.st.buf], self.rt.grid(-(-n // 256)), keep=[out.st])
        return out

