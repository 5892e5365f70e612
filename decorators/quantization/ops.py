"""Quantized matmul, linear and conv2d on any backend stack B.

Two paths, chosen per call and recorded (see `last_path()` / `path_counts()`):

* integer — when the activations have static quantization parameters (from calibration) and
  the weight has one scale per output channel or per tensor: activations are quantized to
  int8 codes, the product of codes is accumulated exactly, and one rescale per output channel
  gives the result (y = sx * sw[o] * (xq @ wq^T - zx * colsum(wq)) + b). Exact accumulation runs
  as "int32" (the default on OpenCL and WGPU: the backend's int8_matmul, OpenCL's int8.cl
  kernel; on WGPU packed int8 dot products with dot4I8Packed where the adapter compiles it,
  recorded as "dot4I8Packed") or as "float32-exact" (the default on NumPy and CuPy:
  integer-valued float32 operands in the BLAS/float kernel, exact while
  K * max|xq| * max|wq| < 2^24; NumPy's integer matmul has no BLAS and is ~200x slower than its
  float32 one), or "float64-exact" when the float32 bound fails. Both give the same bits
  wherever float32-exact is exact.
  conv2d on "int32": the uncentred codes xq are padded with zx (the code of x = 0), one
  index_select lays out the im2col (rows (n, ho, wo), columns (c, i, j) of a group), each group's
  rows go through int8_matmul, and zx * colsum(wq) is subtracted in int32. Its weight codes
  must be int8: an affine int8 weight (code - zero point up to 255) takes the float conv below.
  conv2d on "float32-exact" / "float64-exact": the backend's float conv2d of the centred codes
  xq - zx, whose zero padding stands for x = 0.
  Quantizing the activations and the rescale after the product are one fused program each
  (run op by op where the base does not fuse at that size), the zero-point term taken in the
  accumulator's own type. Measured speeds: README, "PoolAllocator and Quantization".
* dequantize — everything else (no calibration: weight-only quantization; per-block scales,
  which change inside a dot product): the weight is dequantized to float32 and the float op runs.
"""
from __future__ import annotations

import math
import numbers
import threading
from dataclasses import dataclass

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.errors import ShapeError
from ...core.memo import memo
from ...core.shape import conv2d_output_hw
from ..fusion.ir import ProgramBuilder
from .qtensor import QTensor, dequantize, from_work, int_values
from .scheme import QuantSchemeError

_F32_EXACT = 1 << 24
_I32_LIMIT = 1 << 31
_tls = threading.local()
_counts: dict = {}
_counts_lock = threading.Lock()


@dataclass(frozen=True)
class ActQuant:
    """Static int8 quantization of activations: q = clamp(round(x / scale) + zero_point)."""

    scale: float
    zero_point: int
    qmin: int = -128
    qmax: int = 127

    def __post_init__(self) -> None:
        # the integer paths hold codes in int8 (WGPU packs them into bytes): a wider range
        # would wrap silently there
        if not (isinstance(self.scale, numbers.Real) and math.isfinite(self.scale)
                and self.scale > 0):
            raise QuantSchemeError(f"ActQuant: scale must be a finite number > 0, got "
                                   f"{self.scale!r}; use ActQuant.from_range(lo, hi) or "
                                   f"calibrate_activation(batches)")
        for name in ("zero_point", "qmin", "qmax"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not -128 <= v <= 127:
                raise QuantSchemeError(f"ActQuant: {name} must be an int in -128..127 (int8 "
                                       f"codes), got {v!r}")
        if not self.qmin < self.qmax or not self.qmin <= self.zero_point <= self.qmax:
            raise QuantSchemeError(f"ActQuant: need qmin < qmax and qmin <= zero_point <= qmax, "
                                   f"got qmin={self.qmin}, qmax={self.qmax}, "
                                   f"zero_point={self.zero_point}")

    @classmethod
    def from_range(cls, lo: float, hi: float, symmetric: bool = False) -> "ActQuant":
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if symmetric:
            amax = max(-lo, hi)
            scale = amax / 127.0 if amax > 0 else 1.0
            return cls(float(_f32(scale)), 0, -127, 127)
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        scale = float(_f32(scale))
        zp = int(min(max(round(-128 - lo / scale), -128), 127))
        return cls(scale, zp)


def _f32(v):
    import numpy as np
    return np.float32(v)


# ---------------------------------------------------------------------- diagnostics
def _record(op: str, path: str, B) -> None:
    _tls.last = {"op": op, "path": path, "backend": str(B)}
    with _counts_lock:
        key = (op, path)
        _counts[key] = _counts.get(key, 0) + 1


def last_path() -> dict | None:
    """{'op', 'path', 'backend'} of the last quantized op run in this thread (None before any)."""
    return getattr(_tls, "last", None)


def path_counts() -> dict:
    """How often each (op, path) ran since the last reset_path_counts()."""
    with _counts_lock:
        return {f"{op}:{path}": n for (op, path), n in _counts.items()}


def reset_path_counts() -> None:
    with _counts_lock:
        _counts.clear()


# ---------------------------------------------------------------------- helpers
_MODES = ("auto", "int32", "float32-exact")
_mode = {"value": "auto"}


def set_int_accumulation(mode: str) -> None:
    """How integer GEMMs accumulate: "auto" (float32-exact on NumPy/CuPy, whose integer
    matmul has no BLAS; the backend's int32 matmul elsewhere), "int32" or "float32-exact"."""
    if mode not in _MODES:
        raise ValueError(f"set_int_accumulation: mode must be one of {', '.join(_MODES)}, got "
                         f"{mode!r}")
    _mode["value"] = mode


def int_mode(B) -> str:
    """How exact integer products are accumulated on B's base backend."""
    m = _mode["value"]
    if m != "auto":
        return m
    base = type(B.base()).__name__
    return "float32-exact" if base in ("NumPy", "CuPy") else "int32"


# The elementwise steps around an integer GEMM (quantizing the activations; the rescale after
# it) as fused programs of the fusion IR, built once per structure and rerun with new
# constants: one kernel each on OpenCL/WGPU instead of 4-5, also without a Fusion layer
# (Quantization(OpenCL()) ran them op by op), and the same program interpreted op by op
# where fusing does not pay.
_PROGRAMS: dict = {}


def _fuses(B, n: int) -> bool:
    """Whether a fused program pays on B's base for n elements (NumPy: only large arrays)."""
    return n >= getattr(B.base(), "fusion_eager_below", 0)


def _run_program(B, prog, inputs: list, shape: tuple):
    """prog's single output on B: one fused kernel where that pays, else the protocol's
    interpreter, op by op on B."""
    if _fuses(B, _prod(shape)):
        return B.fused_elementwise(prog, inputs, shape)[0]
    return Backend.fused_elementwise(B, prog, inputs, shape)[0]


def _quantize_program(d, zero_point: bool):
    b = ProgramBuilder()
    x = b.input(d)
    scale, zp, lo, hi = (b.param(d) for _ in range(4))
    q = b.op("round", b.op("div", x, scale))
    if zero_point:
        q = b.op("add", q, zp)
    return b.finish([b.op("minimum", b.op("maximum", q, lo), hi)])


def _exact_zero_point(acc_d) -> bool:
    # an int32 or float64 accumulator takes the zero-point term in its own dtype: exact,
    # where float32 would round both terms past 2^24 and lose digits in their difference
    return acc_d is dt.int32 or acc_d is dt.float64


def _rescale_program(acc_d, colsum_d, srow_d, bias_d):
    """(acc [- colsum * zx]) * srow * sx [+ bias] in float32 from the accumulator's dtype;
    colsum_d None: no zero-point term."""
    f = dt.float32
    exact = _exact_zero_point(acc_d)
    b = ProgramBuilder()
    acc = b.input(acc_d)
    colsum = b.input(colsum_d) if colsum_d is not None else None
    srow = b.input(srow_d)
    bias = b.input(bias_d) if bias_d is not None else None
    zp, scale = b.param(acc_d if exact else f), b.param(f)
    y = acc
    if colsum is not None and exact:
        if colsum_d is not acc_d:
            colsum = b.op("cast", colsum, dtype=acc_d)
        y = b.op("sub", y, b.op("mul", colsum, zp))
    if acc_d is not f:
        y = b.op("cast", y, dtype=f)
    if colsum is not None and not exact:
        y = b.op("sub", y, b.op("mul", colsum, zp))
    y = b.op("mul", b.op("mul", y, srow), scale)
    if bias is not None:
        y = b.op("add", y, bias)
    return b.finish([y])


def quantize_activation(B, x, act: ActQuant):
    """Integer-valued codes of x in x's dtype (round half to even, clamped)."""
    d = B.dtype(x)
    zp = bool(act.zero_point)
    prog = memo(_PROGRAMS, ("quantize", d, zp), lambda: _quantize_program(d, zp))
    prog = prog.with_consts((act.scale, float(act.zero_point), float(act.qmin), float(act.qmax)))
    return _run_program(B, prog, [x], tuple(B.shape(x)))


def _rescale(B, acc, colsum, srow, act: ActQuant, bias):
    """float32 (acc - colsum * zx) * srow * sx + bias; colsum None (or zx == 0): no zero-point
    term; bias may be None. Inputs broadcast to acc's shape."""
    if not act.zero_point:
        colsum = None
    sig = (B.dtype(acc), None if colsum is None else B.dtype(colsum), B.dtype(srow),
           None if bias is None else B.dtype(bias))
    prog = memo(_PROGRAMS, ("rescale",) + sig, lambda: _rescale_program(*sig))
    zp = act.zero_point if sig[0] is dt.int32 else float(act.zero_point)
    prog = prog.with_consts((zp, act.scale))
    inputs = [x for x in (acc, colsum, srow, bias) if x is not None]
    return _run_program(B, prog, inputs, tuple(B.shape(acc)))


def _per_output_scale(q: QTensor, out_axis: int):
    """Whether q has one scale per output channel (or one per tensor) for a GEMM whose output
    channels run along `out_axis` of q."""
    g = q.scheme.granularity
    if g == "per_tensor":
        return True
    return g == "per_channel" and q.scheme.axis % len(q.shape) == out_axis


def _gemm_operand(B, q: QTensor, mode: str, transpose: bool):
    """(operand (K, M) integer-valued, colsum (M,) float32, max |code|, scale row) cached on q."""
    key = ("gemm", mode, transpose)
    hit = q._cache.get(key)
    if hit is not None:
        return hit
    v = int_values(B, q)
    c, rp = B.shape(v)
    if rp != q.row:
        v = B.slice(v, (0, 0), (c, q.row), (1, 1))
    m = from_work(B, v, q.shape, q.scheme)          # original shape, integer-valued float32
    if transpose:
        m = B.permute(m, (1, 0))
    m = B.reshape(m, B.shape(m))                    # materialize the layout once
    colsum = B.sum(m, (0,), False)
    import numpy as np
    maxabs = float(np.abs(B.to_numpy(m)).max()) if q.row else 0.0
    if mode == "int32":
        if maxabs <= 127 and _code_dtype(B) is dt.int8:
            # int8 codes stored as (M, K) rows, viewed (K, M): int8_matmul's operand as
            # OpenCL's kernel reads it (unit stride along k) and WGPU's pack kernel too
            m = B.permute(B.cast(B.permute(m, (1, 0)), dt.int8), (1, 0))
        else:
            m = B.cast(m, dt.int32)
        colsum = B.cast(colsum, dt.int32)   # the zero-point term is then exact (_rescale)
    elif mode == "float64-exact":
        m = B.cast(m, dt.float64)
    ncol = B.shape(colsum)[0]
    if q.scheme.granularity == "per_tensor":
        srow = B.reshape(q.scale, ())
    else:
        srow = B.reshape(q.scale, (ncol,))
    hit = q._cache[key] = (m, colsum, maxabs, srow)
    return hit


def _choose(B, k: int, xmax: int, wmax: float) -> str:
    mode = int_mode(B)
    if mode == "float32-exact" and k * xmax * wmax >= _F32_EXACT:
        mode = "float64-exact" if B.supports(dt.float64) else "int32"
    return mode


# ---------------------------------------------------------------------- ops
def qmatmul_core(B, x, q: QTensor, bias, act: ActQuant | None, transpose: bool, op: str):
    """x (..., K) times the 2-D quantized matrix q ((M, K) when transpose else (K, M))."""
    if len(q.shape) != 2:
        raise ShapeError(f"quantized {op}: the quantized operand must be 2-D, got shape {q.shape}")
    k = q.shape[1] if transpose else q.shape[0]
    xs = B.shape(x)
    if not xs or xs[-1] != k:
        raise ShapeError(f"quantized {op}: input shape {tuple(xs)} does not end in {k} features "
                         f"(quantized operand {q.shape})")
    lead = tuple(xs[:-1])
    x2 = B.reshape(x, (_prod(lead), k)) if len(xs) != 2 else x
    out_axis = 0 if transpose else 1
    if act is None or not _per_output_scale(q, out_axis):
        w = dequantize(B, q)
        if transpose:
            w = B.permute(w, (1, 0))
        y = B.matmul(x2, w)
        _record(op, "dequantize-float32", B)
    else:
        mode = int_mode(B)
        m, colsum, wmax, srow = _gemm_operand(B, q, mode, transpose)
        xmax = max(abs(act.qmin), abs(act.qmax))
        chosen = _choose(B, k, xmax, wmax)
        if chosen != mode:
            m, colsum, wmax, srow = _gemm_operand(B, q, chosen, transpose)
        xq = quantize_activation(B, x2, act)
        if B.dtype(m) is dt.int8:   # _gemm_operand stored int8 codes: both operands fit
            # both operands are int8 codes (an affine weight's code - zero point can leave
            # that range): the backend's int8 product, packed dot products on WGPU
            acc = B.int8_matmul(xq, m)
            if getattr(B.base(), "int8_dot4", False):
                chosen = "dot4I8Packed"
        elif chosen == "int32":
            acc = B.matmul(B.cast(xq, dt.int32), m)
        elif chosen == "float64-exact":
            acc = B.matmul(B.cast(xq, dt.float64), m)
        else:
            acc = B.matmul(xq, m)
        y = _rescale(B, acc, colsum, srow, act, bias)
        bias = None
        _record(op, f"int8-{chosen}", B)
    if bias is not None:
        y = B.add(y, bias)
    n_out = B.shape(y)[-1]
    return B.reshape(y, lead + (n_out,)) if len(xs) != 2 else y


def _prod(t) -> int:
    n = 1
    for s in t:
        n *= s
    return n


def qconv2d(B, x, q: QTensor, bias, stride, padding, dilation, groups: int,
            act: ActQuant | None):
    """conv2d of x (N, C, H, W) with a quantized weight (O, C/groups, kh, kw)."""
    if len(q.shape) != 4:
        raise ShapeError(f"quantized conv2d: weight must be 4-D (O, C/groups, kh, kw), got {q.shape}")
    o = q.shape[0]
    if act is None or not _per_output_scale(q, 0):
        y = B.conv2d(x, dequantize(B, q), stride, padding, dilation, groups)
        _record("conv2d", "dequantize-float32", B)
    else:
        key = ("conv",)
        hit = q._cache.get(key)
        if hit is None:
            v = int_values(B, q)
            c, rp = B.shape(v)
            if rp != q.row:
                v = B.slice(v, (0, 0), (c, q.row), (1, 1))
            w = from_work(B, v, q.shape, q.scheme)
            import numpy as np
            wmax = float(np.abs(B.to_numpy(w)).max()) if q.row else 0.0
            srow = B.reshape(q.scale, ()) if q.scheme.granularity == "per_tensor" else \
                B.reshape(q.scale, (1, o, 1, 1))
            hit = q._cache[key] = (w, wmax, srow)
        w, wmax, srow = hit
        k = _prod(q.shape[1:])
        span = act.qmax - act.qmin
        # (ActQuant holds its codes in int8)
        if int_mode(B) == "int32" and wmax <= 127 and k * 255 * wmax < _I32_LIMIT:
            # both operands are int8 codes (an affine weight's code - zero point can leave
            # that range) and int32 holds every partial sum: the backend's int8 product,
            # packed dot products on WGPU
            path = "dot4I8Packed" if getattr(B.base(), "int8_dot4", False) else "int32"
        elif k * span * wmax < _F32_EXACT:
            path = "float32-exact"
        elif B.supports(dt.float64):
            path = "float64-exact"
        else:
            path = None
        if path is None:
            y = B.conv2d(x, dequantize(B, q), stride, padding, dilation, groups)
            _record("conv2d", "dequantize-float32", B)
        else:
            colsum = None
            if path in ("int32", "dot4I8Packed"):
                acc, colsum = _conv_int8(B, x, q, w, act, stride, padding, dilation, groups)
                colsum = B.reshape(colsum, (1, o, 1, 1))
            else:
                # centred codes (xq - zx): zero padding then stands for x = 0, as in the float conv
                xq = quantize_activation(B, x, act)
                if act.zero_point:
                    xq = B.sub(xq, float(act.zero_point))
                if path == "float64-exact":
                    acc = B.cast(B.conv2d(B.cast(xq, dt.float64), B.cast(w, dt.float64), stride,
                                          padding, dilation, groups), dt.float32)
                else:
                    acc = B.conv2d(xq, w, stride, padding, dilation, groups)
            y = _rescale(B, acc, colsum, srow, act,
                         None if bias is None else B.reshape(bias, (1, o, 1, 1)))
            bias = None
            _record("conv2d", f"int8-{path}", B)
    if bias is not None:
        y = B.add(y, B.reshape(bias, (1, o, 1, 1)))
    return y


def _conv_int8(B, x, q: QTensor, w, act: ActQuant, stride, padding, dilation, groups: int):
    """(sum xq * w as an int32 (N, O, Ho, Wo) view, colsum (O,) of w): the conv's exact
    accumulation by int8_matmul on an im2col of the uncentred codes xq, one product per
    group; sum (xq - zx) * w = acc - zx * colsum."""
    N, C, H, W = B.shape(x)
    O, Cg, kh, kw = q.shape
    Ho, Wo = conv2d_output_hw("quantized conv2d", (N, C, H, W), q.shape, stride, padding,
                              dilation, groups)
    mats, colsum = _conv_int8_operand(B, q, w, groups)
    geometry = (H, W, tuple(stride), tuple(padding), tuple(dilation), groups)
    index = memo(q._cache.setdefault(("im2col",), {}), geometry,
                 lambda: _im2col_index(B, q.shape, geometry, Ho, Wo), limit=8)
    # integer codes before the im2col: int8_matmul would otherwise cast each group's rows,
    # kh*kw times the size of x (int32: a cast to it is ~3x faster than to int8 on PoCL, and
    # OpenCL's int8 kernel reads either; a fused program that casts runs one element per
    # work-item there, hence the separate cast)
    xq = B.cast(quantize_activation(B, x, act), dt.int32)
    # one slot past each image holds zx, the code of x = 0, for the padded positions (centred
    # codes would cost a pass over x)
    xq = B.pad(B.reshape(xq, (N, C * H * W)), ((0, 0), (0, 1)), act.zero_point)
    # one gather instead of kh*kw strided copies: rows (n, ho, wo), columns (g, c, i, j)
    rows, kg = N * Ho * Wo, Cg * kh * kw
    col = B.reshape(B.index_select(xq, 1, index), (rows, groups * kg))
    outs = [B.int8_matmul(B.slice(col, (0, g * kg), (rows, (g + 1) * kg), (1, 1)), m)
            for g, m in enumerate(mats)]
    acc = B.cat(outs, 1) if groups > 1 else outs[0]
    # an NCHW view: the rescale reads it strided and writes the layout the float paths give
    return B.permute(B.reshape(acc, (N, Ho, Wo, O)), (0, 3, 1, 2)), colsum


def _im2col_index(B, wshape: tuple, geometry: tuple, Ho: int, Wo: int):
    """int64 index into an image flattened to (C*H*W + 1,) whose last slot is the padding:
    Ho*Wo*groups*Cg*kh*kw entries, ordered (ho, wo, g, c, i, j)."""
    import numpy as np
    H, W, (sh, sw), (ph, pw), (dh, dw), groups = geometry
    _, Cg, kh, kw = wshape
    ho, wo, c, i, j = np.ix_(np.arange(Ho), np.arange(Wo), np.arange(groups * Cg),
                             np.arange(kh), np.arange(kw))
    h = ho * sh - ph + i * dh
    v = wo * sw - pw + j * dw
    flat = c * (H * W) + h * W + v
    flat = np.where((h >= 0) & (h < H) & (v >= 0) & (v < W), flat, groups * Cg * H * W)
    return B.from_numpy(flat.reshape(-1).astype(np.int64), dt.int64)


def _code_dtype(B):
    """int8 codes where the stack stores int8, else int32 (both exact for int8_matmul)."""
    return dt.int8 if B.supports(dt.int8) else dt.int32


def _conv_int8_operand(B, q: QTensor, w, groups: int):
    """([(Cg*kh*kw, O/groups) weight codes per group], colsum (O,) int32) cached on q."""
    key = ("conv-int8", groups)
    hit = q._cache.get(key)
    if hit is not None:
        return hit
    O, Cg, kh, kw = q.shape
    og, kg = O // groups, Cg * kh * kw
    m = B.reshape(w, (O, kg))
    colsum = B.cast(B.sum(m, (1,), False), dt.int32)
    # (O, kg) rows of codes viewed (kg, O), as int8_matmul reads its right operand best
    m = B.permute(B.cast(m, _code_dtype(B)), (1, 0))
    mats = [B.slice(m, (0, g * og), (kg, (g + 1) * og), (1, 1)) for g in range(groups)]
    hit = q._cache[key] = (mats, colsum)
    return hit


__all__ = ["ActQuant", "qmatmul_core", "qconv2d", "quantize_activation", "last_path",
           "set_int_accumulation",
           "path_counts", "reset_path_counts", "int_mode"]
