"""OpenCL(): the OpenCL base backend (pyopencl), with kernels in the .cl files beside it.

A primitive is a CLArray: device storage plus a strided Layout (backends/strided.py), so
reshape of dense data, permute, expand, slice and flip are views, and every kernel reads
strided and broadcast operands directly. Work is enqueued on one in-order queue and never
waited for except by sync(), to_numpy() and from_numpy().

This file holds construction, transfer/creation and the elementwise ops; reductions and
indexing are in reduce_index.py, matmul/conv/pool/softmax/layer norm in nn_ops.py, fused
elementwise programs (the Fusion decorator's kernels) in fused.py.
"""
from __future__ import annotations

import threading

import numpy as np

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.memo import memo
from ...core.dtype import DType
from ...core.errors import DTypeError, ShapeError, UnsupportedError
from ...core.shape import broadcast_shapes, numel
from ..strided import Layout
from . import runtime as rt
from .array import CLArray, broadcast_layout, collapse
from .fused import FusedOps
from .fused_matmul import FusedMatmulOps
from .nn_ops import NNOps
from .reduce_index import ReduceIndexOps

MAX_DIMS = 16

_FLOAT_UNARY = ("neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "abs", "sign",
                "reciprocal", "floor", "ceil", "round", "trunc", "relu", "sigmoid", "silu",
                "log1p", "expm1", "tan", "rsqrt")
_INT_UNARY = ("neg", "abs", "sign", "bitwise_not", "relu")
_BOOL_UNARY = ("abs", "sign", "bitwise_not", "relu")
_IDENTITY_ON_INTEGERS = ("floor", "ceil", "round", "trunc")
_TO_BOOL_UNARY = ("logical_not", "isnan", "isinf")
# float ops with an 8-lane kernel (ops.cl vop_*): one vectorised builtin call per 8 elements
_VECTOR_UNARY = ("exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "log1p", "expm1", "tan",
                 "rsqrt", "sigmoid", "silu")
_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")
_FLOAT_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder",
                 "floor_divide")
_INT_BINARY = ("add", "sub", "mul", "pow", "maximum", "minimum", "remainder", "floor_divide",
               "bitwise_and", "bitwise_or", "bitwise_xor")
_BOOL_BINARY = ("add", "mul", "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor")


def _unary_ops(d: DType) -> tuple:
    base = _FLOAT_UNARY if d.kind == 2 else (_INT_UNARY if d.kind == 1 else _BOOL_UNARY)
    return base + _TO_BOOL_UNARY + ("copy",)


def _binary_ops(d: DType) -> tuple:
    return (_FLOAT_BINARY if d.kind == 2 else (_INT_BINARY if d.kind == 1 else _BOOL_BINARY)) + _COMPARE


_RUNTIMES: dict = {}
_RUNTIMES_LOCK = threading.Lock()


class _Runtime:
    """Context, queue and program cache of one device, shared by every OpenCL() on it."""

    def __init__(self, cl, platform, device):
        self.cl = cl
        self.platform = platform
        self.device = device
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(self.ctx, device)
        self.programs = rt.ProgramCache(cl, self.ctx, device)
        ext = device.extensions.split()
        self.fp64 = "cl_khr_fp64" in ext
        self.fp16 = "cl_khr_fp16" in ext
        self.is_cpu = bool(device.type & cl.device_type.CPU)
        # read once: every device attribute read is a driver call, and launches consult these
        self.max_compute_units = device.max_compute_units
        self.max_parameter_size = device.max_parameter_size
        # what launches work out once and look up after (core/memo.py bounds the tables):
        # fused kernels by program structure; launch plans by layout (fused, elementwise,
        # matmul); validated (program, layouts) keys; matmul tiles; epilogue structures
        self.fused_kernels: dict = {}
        self.fused_checked: set = set()
        self.fused_valid: set = set()
        self.fused_plans: dict = {}
        self.ew_plans: dict = {}
        self.matmul_plans: dict = {}
        self.matmul_tiles: dict = {}
        self.epilogue_specs: dict = {}


_scalar = rt.scalar_arg


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float, bool, np.number, np.bool_))


def _vec16(values) -> np.ndarray:
    out = np.zeros(16, np.int64)
    out[:len(values)] = values
    return out


class OpenCL(FusedMatmulOps, FusedOps, NNOps, ReduceIndexOps, Backend):
    """OpenCL base backend. `platform`/`device`: None (first GPU, else first device), an index,
    or a substring of the name. Kernels are compiled once per device and cached in memory
    and on disk (~/.cache/strata/opencl, or $STRATA_CACHE_DIR/opencl)."""

    asynchronous = True  # ops queue work; input checks wait for the next read-back

    def __init__(self, platform=None, device=None):
        cl = rt.import_pyopencl()
        self._platform_arg = platform
        self._device_arg = device
        with _RUNTIMES_LOCK:
            plat, dev = rt.select_device(cl, platform, device)
            key = (plat.int_ptr, dev.int_ptr)
            r = _RUNTIMES.get(key)
            if r is None:
                r = _RUNTIMES[key] = _Runtime(cl, plat, dev)
        self._rt = r
        self._cl = cl
        self.queue = r.queue
        self.ctx = r.ctx
        self._programs = r.programs
        self.allocator = rt.DefaultAllocator(r.ctx, cl)
        self._hdr_cache: dict = {}

    # ---------------------------------------------------------------- identity
    def __repr__(self) -> str:
        args = []
        if self._platform_arg is not None:
            args.append(f"platform={self._platform_arg!r}")
        if self._device_arg is not None:
            args.append(f"device={self._device_arg!r}")
        return f"OpenCL({', '.join(args)})"

    __str__ = __repr__

    def device_name(self) -> str:
        return self._rt.device.name.strip()

    def supports(self, dtype: DType) -> bool:
        if dtype is dt.float64:
            return self._rt.fp64
        if dtype is dt.float16:
            return self._rt.fp16
        return dtype in rt.CL_TYPE

    def _check_dtype(self, d: DType) -> None:
        if not self.supports(d):
            ext = "cl_khr_fp64" if d is dt.float64 else "cl_khr_fp16"
            raise UnsupportedError(
                f"{self} on {self.device_name()} does not support {d.name}: the device does not "
                f"report {ext}; use float32 here, or the NumPy() backend for {d.name}")

    def limits(self) -> dict:
        d = self._rt.device
        return {"max_buffer_bytes": d.max_mem_alloc_size, "global_mem_bytes": d.global_mem_size,
                "max_work_group_size": d.max_work_group_size, "local_mem_bytes": d.local_mem_size,
                "compute_units": d.max_compute_units, "fp64": self._rt.fp64, "fp16": self._rt.fp16}

    # ---------------------------------------------------------------- description
    def shape(self, x: CLArray) -> tuple:
        return x.layout.shape

    def dtype(self, x: CLArray) -> DType:
        return x.dtype

    def is_primitive(self, x) -> bool:
        return type(x) is CLArray

    # ---------------------------------------------------------------- plumbing
    def _new(self, shape: tuple, dtype: DType) -> CLArray:
        st = rt.Storage(self.allocator, numel(shape) * dtype.itemsize)
        return CLArray(st, Layout.contiguous(tuple(shape)), dtype)

    def _header(self, *dtypes: DType, names=("T",)) -> str:
        key = (dtypes, names)
        h = self._hdr_cache.get(key)
        if h is None:
            h = rt.extensions_header(*dtypes) + "".join(
                rt.type_header(d, n) for d, n in zip(dtypes, names))
            self._hdr_cache[key] = h
        return h

    def _kernel(self, key: tuple, name: str, make_source):
        return self._programs.kernel(key, make_source, name)

    def _run(self, kernel, gsize, lsize, *args) -> None:
        kernel(self.queue, gsize, lsize, *args)

    def _ew_kernel(self, d: DType, op: str, mode: str):
        """Kernel `op_mode` for dtype d. One program holds all unary ops of a dtype (and fill),
        another all binary ops: PoCL's fixed cost per program build is several times that of
        one more kernel in it, and each kernel is compiled for the CPU only when first used."""
        family = "binary" if op in _binary_ops(d) else "unary"

        def source():
            un = bi = ""
            if family == "unary":
                un = " ".join(f"X({o}, {'uchar' if o in _TO_BOOL_UNARY else 'T'})" for o in _unary_ops(d))
                if d.kind == 2:
                    un += "\n#define VECTOR_OPS(X) " + " ".join(f"X({o}, T)" for o in _VECTOR_UNARY)
            else:
                bi = " ".join(f"X({o}, {'uchar' if o in _COMPARE else 'T'})" for o in _binary_ops(d))
            return (self._header(d) + f"#define UNARY_OPS(X) {un}\n#define BINARY_OPS(X) {bi}\n"
                    + self._programs.source("ops.cl", "elementwise.cl"))
        return self._kernel(("ew", d.name, family), f"{op}_{mode}" if mode else op, source)

    def _launch_1d(self, kernel, n: int, *args) -> None:
        L = 256
        self._run(kernel, (-(-n // L) * L,), (L,), *args)

    def _strided_grid(self, sizes: list):
        """Global/local sizes for the _s kernels from dims innermost first."""
        n0 = sizes[0] if sizes else 1
        n1 = sizes[1] if len(sizes) > 1 else 1
        rest = numel(sizes[2:])
        L = 64 if n0 >= 48 else (16 if n0 >= 12 else 4)
        return (-(-n0 // L) * L, n1, rest), (L, 1, 1)

    def _elementwise(self, kernel_for, key: tuple, out: CLArray, out_lay: Layout,
                     operands: list) -> None:
        """Run an elementwise kernel writing out_lay of out, reading operands.

        operands: CLArray views already broadcast to out_lay.shape (as (array, layout)), or
        NumPy scalars. kernel_for(mode) gives the kernel for mode '<t|s per operand>_<c|s>';
        `key` names those kernels (op and dtypes). The launch plan — kernel, collapsed
        strides, grid — is worked out once per (key, layouts): that arithmetic was a third of
        a plain op's host time, the critical path of a step on PoCL.
        """
        if numel(out_lay.shape) == 0:
            return
        pkey = (key, out_lay.shape, out_lay.strides,
                tuple(op[1].strides if type(op) is tuple else None for op in operands))
        plan = memo(self._rt.ew_plans, pkey, lambda: self._ew_plan(kernel_for, out_lay, operands))
        kernel, vecs, tail, grid, local = plan
        # each array: buffer, offset, and its stride vector unless the launch is dense
        args = [out.buf, np.int64(out_lay.offset)]
        if vecs is not None:
            args.append(vecs[0])
        j = 1
        for op in operands:
            if type(op) is tuple:
                args += [op[0].buf, np.int64(op[1].offset)]
                if vecs is not None:
                    args.append(vecs[j])
                    j += 1
            else:
                args.append(op)
        self._run(kernel, grid, local, *args, *tail)

    def _ew_plan(self, kernel_for, out_lay: Layout, operands: list) -> tuple:
        """(kernel, stride vectors per array or None when dense, trailing arguments, global
        size, local size) of an elementwise launch."""
        n = numel(out_lay.shape)
        tens = [op for op in operands if type(op) is tuple]
        dims = collapse(out_lay.shape, [out_lay.strides] + [lay.strides for _, lay in tens])
        pattern = "".join("t" if type(op) is tuple else "s" for op in operands)
        prefix = "" if len(operands) == 1 else pattern + "_"
        if len(dims) <= 1 and all(st == 1 for st in (dims[0][1] if dims else ())):
            L = 256
            return kernel_for(prefix + "c"), None, (np.int64(n),), (-(-n // L) * L,), (L,)
        if len(dims) > MAX_DIMS:
            raise UnsupportedError(f"{self}: an elementwise op over {len(dims)} non-mergeable "
                                   f"dims; at most {MAX_DIMS} are supported (reshape first)")
        dims = dims[::-1]  # innermost first
        sizes = [s for s, _ in dims]
        vecs = [_vec16([sts[j] for _, sts in dims]) for j in range(len(tens) + 1)]
        g, l = self._strided_grid(sizes)
        return kernel_for(prefix + "s"), vecs, (_vec16(sizes), np.int32(len(sizes))), g, l

    def _copy_into(self, dst: CLArray, dst_lay: Layout, src: CLArray) -> None:
        d = src.dtype
        self._elementwise(lambda m: self._ew_kernel(d, "copy", m), ("copy", d), dst, dst_lay,
                          [(src, broadcast_layout(src.layout, dst_lay.shape))])

    def _contiguous(self, x: CLArray) -> CLArray:
        lay = x.layout
        if lay.is_contiguous():
            return x
        out = self._new(lay.shape, x.dtype)
        self._copy_into(out, out.layout, x)
        return out

    # ---------------------------------------------------------------- transfer and creation
    def from_numpy(self, a: np.ndarray, dtype: DType) -> CLArray:
        self._check_dtype(dtype)
        a = np.asarray(a)
        if a.dtype != dtype.np:
            a = a.astype(dtype.np)
        shape = a.shape
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        out = self._new(shape, dtype)
        if a.size:
            self._cl.enqueue_copy(self.queue, out.buf, a.view(np.uint8) if dtype is dt.bool_ else a,
                                  is_blocking=True)
        return out

    def to_numpy(self, x: CLArray) -> np.ndarray:
        self.run_deferred_checks()
        lay = x.layout
        out = np.empty(lay.shape, x.dtype.np)
        if out.size == 0:
            return out
        x = self._contiguous(x)
        host = out.view(np.uint8) if x.dtype is dt.bool_ else out
        self._cl.enqueue_copy(self.queue, host, x.buf, src_offset=x.layout.offset * x.dtype.itemsize,
                              is_blocking=True)
        return out

    def full(self, shape: tuple, value, dtype: DType) -> CLArray:
        self._check_dtype(dtype)
        out = self._new(tuple(shape), dtype)
        n = out.layout.numel
        if n:
            self._launch_1d(self._ew_kernel(dtype, "fill", ""), n, out.buf, np.int64(0),
                            _scalar(value, dtype), np.int64(n))
        return out

    def arange(self, start, step, n: int, dtype: DType) -> CLArray:
        self._check_dtype(dtype)
        if dtype.kind == 2:
            host = (float(start) + np.arange(n, dtype=np.float64) * float(step)).astype(dtype.np)
        else:
            host = (int(start) + np.arange(n, dtype=np.int64) * int(step)).astype(dtype.np)
        return self.from_numpy(host, dtype)

    def _random(self, kind: str, shape: tuple, seed: int, offset: int, dtype: DType) -> CLArray:
        self._check_dtype(dtype)
        if dtype.kind != 2:
            raise DTypeError(f"random_{kind} makes floating tensors, not {dtype.name}")
        double = dtype is dt.float64
        out = self._new(tuple(shape), dtype)
        n = out.layout.numel
        if n == 0:
            return out

        def source():
            return (self._header(dtype, names=("D",)) + ("#define DOUBLE 1\n" if double else "")
                    + self._programs.source("random.cl"))
        k = self._kernel(("random", dtype.name), kind, source)
        self._launch_1d(k, n, out.buf, np.uint64(seed & (2**64 - 1)), np.uint64(offset & (2**64 - 1)),
                        np.int64(n))
        return out

    def random_uniform(self, shape: tuple, seed: int, offset: int, dtype: DType) -> CLArray:
        return self._random("uniform", shape, seed, offset, dtype)

    def random_normal(self, shape: tuple, seed: int, offset: int, dtype: DType) -> CLArray:
        return self._random("normal", shape, seed, offset, dtype)

    def cast(self, x: CLArray, dtype: DType) -> CLArray:
        self._check_dtype(dtype)
        src = x.dtype
        if src is dtype:
            return CLArray(x.storage, x.layout, dtype)
        out = self._new(x.layout.shape, dtype)
        targets = [d for d in rt.CL_TYPE if self.supports(d)]

        def source():
            casts = " ".join(f"X({d.name}, {rt.CL_TYPE[d]}, {d.kind})" for d in targets)
            ops = " ".join(f"X(to_{d.name}, {rt.CL_TYPE[d]})" for d in targets)
            return (rt.extensions_header(*targets, src) + rt.type_header(src)
                    + f"#define CASTS(X) {casts}\n"
                    f"#define UNARY_OPS(X) {ops}\n#define BINARY_OPS(X)\n"
                    + self._programs.source("cast.cl", "elementwise.cl"))
        key = ("cast", src.name)
        self._elementwise(lambda m: self._kernel(key, f"to_{dtype.name}_{m}", source),
                          ("cast", src, dtype), out, out.layout, [(x, x.layout)])
        return out

    def sync(self) -> None:
        self.queue.finish()
        self.run_deferred_checks()

    # ---------------------------------------------------------------- elementwise
    def _unary(self, op: str, x: CLArray) -> CLArray:
        d = x.dtype
        if d.kind != 2 and op in _IDENTITY_ON_INTEGERS:
            return CLArray(x.storage, x.layout, d)
        if op not in _unary_ops(d):
            raise DTypeError(f"{op} is not defined for {d.name} tensors on {self}"
                             + ("; cast to a floating dtype first" if d.kind != 2 else ""))
        out = self._new(x.layout.shape, dt.bool_ if op in _TO_BOOL_UNARY else d)
        n = out.layout.numel
        if d.kind == 2 and op in _VECTOR_UNARY and x.layout.is_contiguous() and n >= 64:
            L = 64
            self._run(self._ew_kernel(d, op, "v"), (-(-n // (8 * L)) * L,), (L,),
                      out.buf, np.int64(0), x.buf, np.int64(x.layout.offset), np.int64(n))
            return out
        self._elementwise(lambda m: self._ew_kernel(d, op, m), ("unary", op, d), out,
                          out.layout, [(x, x.layout)])
        return out

    def _binary(self, op: str, a, b) -> CLArray:
        ta, tb = type(a) is CLArray, type(b) is CLArray
        if ta and tb:
            d = a.dtype
            if b.dtype is not d:
                raise DTypeError(f"{op}: operands have dtypes {d.name} and {b.dtype.name}; the "
                                 f"backend needs one dtype (cast first)")
            shape = broadcast_shapes(a.layout.shape, b.layout.shape, op)
        elif ta:
            d, shape = a.dtype, a.layout.shape
        elif tb:
            d, shape = b.dtype, b.layout.shape
        else:
            raise TypeError(f"{op}: at least one operand must be an OpenCL primitive")
        if op not in _binary_ops(d):
            raise DTypeError(f"{op} is not defined for {d.name} tensors on {self}")
        out = self._new(shape, dt.bool_ if op in _COMPARE else d)
        ops = [(a, broadcast_layout(a.layout, shape)) if ta else _scalar(a, d),
               (b, broadcast_layout(b.layout, shape)) if tb else _scalar(b, d)]
        self._elementwise(lambda m: self._ew_kernel(d, op, m), ("binary", op, d), out,
                          out.layout, ops)
        return out

    def where(self, cond: CLArray, a, b) -> CLArray:
        if cond.dtype is not dt.bool_:
            raise DTypeError(f"where: the condition must be bool, got {cond.dtype.name}")
        ta, tb = type(a) is CLArray, type(b) is CLArray
        if ta and tb and a.dtype is not b.dtype:
            raise DTypeError(f"where: operands have dtypes {a.dtype.name} and {b.dtype.name}; "
                             f"cast to one dtype first")
        if ta or tb:
            d = a.dtype if ta else b.dtype
        else:
            kinds = (dt.scalar_kind(a), dt.scalar_kind(b))
            d = dt.float32 if 2 in kinds else (dt.int64 if 1 in kinds else dt.bool_)
        shape = cond.layout.shape
        for v in (a, b):
            if type(v) is CLArray:
                shape = broadcast_shapes(shape, v.layout.shape, "where")
        out = self._new(shape, d)
        n = numel(shape)
        if n == 0:
            return out
        layc = broadcast_layout(cond.layout, shape)
        lays = [broadcast_layout(v.layout, shape) if type(v) is CLArray else None for v in (a, b)]
        dims = collapse(shape, [out.layout.strides, layc.strides]
                        + [l.strides if l is not None else (0,) * len(shape) for l in lays])

        def source():
            return self._header(d) + self._programs.source("where.cl")
        key = ("where", d.name)
        dense = len(dims) <= 1 and all(
            st == 1 for i, st in enumerate(dims[0][1] if dims else ()) if i < 2 or lays[i - 2] is not None)
        if not dense and len(dims) > MAX_DIMS:
            raise UnsupportedError(f"{self}: where over more than {MAX_DIMS} non-mergeable dims")
        rev = dims[::-1]
        args = [out.buf, np.int64(0)]
        if not dense:
            args.append(_vec16([sts[0] for _, sts in rev]))
        args += [cond.buf, np.int64(layc.offset)]
        if not dense:
            args.append(_vec16([sts[1] for _, sts in rev]))
        for i, (v, lay) in enumerate(zip((a, b), lays)):
            if lay is not None:
                args += [v.buf, np.int64(lay.offset)]
                if not dense:
                    args.append(_vec16([sts[2 + i] for _, sts in rev]))
                args += [_scalar(0, d), np.int32(0)]
            else:
                args += [cond.buf, np.int64(0)]
                if not dense:
                    args.append(_vec16([]))
                args += [_scalar(v, d), np.int32(1)]
        if dense:
            args.append(np.int64(n))
            self._launch_1d(self._kernel(key, "where_c", source), n, *args)
        else:
            sizes = [s for s, _ in rev]
            args += [_vec16(sizes), np.int32(len(sizes))]
            g, l = self._strided_grid(sizes)
            self._run(self._kernel(key, "where_s", source), g, l, *args)
        return out

    # ---------------------------------------------------------------- movement (views)
    def reshape(self, x: CLArray, shape: tuple) -> CLArray:
        shape = tuple(shape)
        if numel(shape) != x.layout.numel:
            raise ShapeError(f"reshape: cannot view {x.layout.shape} ({x.layout.numel} elements) "
                             f"as {shape}")
        lay = x.layout.reshape(shape)
        if lay is None:
            x = self._contiguous(x)
            lay = Layout.contiguous(shape, x.layout.offset)
        return CLArray(x.storage, lay, x.dtype)

    def permute(self, x: CLArray, dims: tuple) -> CLArray:
        if sorted(dims) != list(range(x.layout.ndim)):
            raise ShapeError(f"permute: {tuple(dims)} is not a permutation of {x.layout.ndim} dims")
        return CLArray(x.storage, x.layout.permute(tuple(dims)), x.dtype)

    def expand(self, x: CLArray, shape: tuple) -> CLArray:
        shape = tuple(shape)
        old = x.layout.shape
        if len(shape) != len(old) or any(o != n and o != 1 for o, n in zip(old, shape)):
            raise ShapeError(f"expand: cannot expand {old} to {shape} (only size-1 dims grow)")
        return CLArray(x.storage, x.layout.expand(shape), x.dtype)

    def slice(self, x: CLArray, starts: tuple, stops: tuple, steps: tuple) -> CLArray:
        return CLArray(x.storage, x.layout.slice(tuple(starts), tuple(stops), tuple(steps)), x.dtype)

    def flip(self, x: CLArray, axes: tuple) -> CLArray:
        return CLArray(x.storage, x.layout.flip(tuple(axes)), x.dtype)

    def pad(self, x: CLArray, pads: tuple, value) -> CLArray:
        shape = tuple(s + lo + hi for s, (lo, hi) in zip(x.layout.shape, pads))
        out = self.full(shape, value, x.dtype)
        inner = out.layout.slice(tuple(lo for lo, _ in pads),
                                 tuple(lo + s for s, (lo, _) in zip(x.layout.shape, pads)),
                                 (1,) * len(shape))
        self._copy_into(out, inner, x)
        return out

    def cat(self, xs, axis: int) -> CLArray:
        xs = list(xs)
        d = xs[0].dtype
        base = xs[0].layout.shape
        for x in xs[1:]:
            s = x.layout.shape
            if x.dtype is not d:
                raise DTypeError(f"cat: tensors have dtypes {d.name} and {x.dtype.name}; cast first")
            if len(s) != len(base) or any(a != b for i, (a, b) in enumerate(zip(s, base)) if i != axis):
                raise ShapeError(f"cat: shapes {base} and {s} differ outside dim {axis}")
        shape = list(base)
        shape[axis] = sum(x.layout.shape[axis] for x in xs)
        out = self._new(tuple(shape), d)
        pos = 0
        for x in xs:
            k = x.layout.shape[axis]
            starts = tuple(pos if i == axis else 0 for i in range(len(shape)))
            stops = tuple(pos + k if i == axis else s for i, s in enumerate(shape))
            self._copy_into(out, out.layout.slice(starts, stops, (1,) * len(shape)), x)
            pos += k
        return out


def _make_unary(op):
    def method(self, x):
        return self._unary(op, x)
    method.__name__ = op
    return method


def _make_binary(op):
    def method(self, a, b):
        return self._binary(op, a, b)
    method.__name__ = op
    return method


for _op in set(_FLOAT_UNARY + _INT_UNARY + _BOOL_UNARY + _TO_BOOL_UNARY):
    setattr(OpenCL, _op, _make_unary(_op))
for _op in set(_FLOAT_BINARY + _INT_BINARY + _BOOL_BINARY + _COMPARE):
    setattr(OpenCL, _op, _make_binary(_op))
