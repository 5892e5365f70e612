"""QTensor, the primitive of the Quantization layer, and quantize / dequantize.

Layout. Values are stored in a "work layout": the quantization axis moved to the front and the
rest flattened, (C, R) — C channels (1 for per-tensor) of R values. Per-block schemes pad R to
a multiple of block_size and keep one scale per (channel, block). int4 packs two values per
byte along R (R padded to even), low nibble first, each nibble holding q + 8. A Linear weight
(out, in) quantized per output channel is its own work layout, so quantized GEMMs use the
stored integers as they are.

Scales and zero points are computed on the host in float64 (calibration is a one-off), data
and scales live on the backend as primitives, and dequantization runs with the backend's own
primitive ops, so it works on every stack.
"""
from __future__ import annotations

import numpy as np

from ...core import dtype as dt
from ...core.errors import DTypeError, ShapeError
from .scheme import QuantScheme


class QTensor:
    """A quantized tensor: integer data, scales and zero points as backend primitives."""

    __slots__ = ("data", "scale", "zero_point", "scheme", "shape", "backend", "_cache",
                 "_host", "__weakref__")

    def __init__(self, data, scale, zero_point, scheme: QuantScheme, shape: tuple, backend,
                 host: dict | None = None):
        self.data = data              # int8 (C, Rp) or uint8 packed (C, Rp // 2)
        self.scale = scale            # float32 (C, 1) or (C, nblocks, 1)
        self.zero_point = zero_point  # float32 like scale, or None (symmetric); int8 on the host
        self.scheme = scheme
        self.shape = tuple(shape)
        self.backend = backend
        self._cache: dict = {}        # operands derived for a quantized GEMM (constant weights)
        self._host = host or {}       # host copies (int values, scales) for checkpoints

    # ------------------------------------------------------------------ layout facts
    @property
    def channels(self) -> int:
        return work_shape(self.shape, self.scheme)[0]

    @property
    def row(self) -> int:
        """R: values per channel before padding."""
        return work_shape(self.shape, self.scheme)[1]

    @property
    def nbytes(self) -> int:
        """Bytes of data + scales + zero points (what a checkpoint stores)."""
        h = self._host
        n = h["data"].nbytes + h["scale"].nbytes
        if h.get("zero_point") is not None:
            n += h["zero_point"].nbytes
        return n

    def __repr__(self) -> str:
        return f"QTensor(shape={self.shape}, scheme={self.scheme.kwargs_repr() or 'int8'})"


def work_shape(shape: tuple, scheme: QuantScheme) -> tuple:
    n = int(np.prod(shape)) if shape else 1
    if scheme.granularity == "per_tensor" or not shape:
        return (1, n)
    c = shape[scheme.axis]
    return (c, n // c if c else 0)


def _to_work(a: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    if scheme.granularity == "per_tensor" or a.ndim == 0:
        return a.reshape(1, -1)
    if not -a.ndim <= scheme.axis < a.ndim:
        raise ShapeError(f"quantize: axis {scheme.axis} is out of range for a tensor of shape "
                         f"{a.shape}; pass QuantScheme(axis=...) within [-{a.ndim}, {a.ndim - 1}]")
    return np.moveaxis(a, scheme.axis, 0).reshape(a.shape[scheme.axis], -1)


def _padded_row(r: int, scheme: QuantScheme) -> int:
    if scheme.granularity == "per_block":
        bs = scheme.block_size
        return -(-r // bs) * bs
    return r + (r % 2 if scheme.dtype == "int4" else 0)


def _ranges(w: np.ndarray, scheme: QuantScheme):
    """(lo, hi) per group: w is (C, R) or (C, nb, bs); groups reduce the last axis."""
    axis = -1
    if w.shape[-1] == 0:
        z = np.zeros(w.shape[:-1] + (1,))
        return z, z
    if scheme.calibration == "percentile":
        p = scheme.percentile
        lo = np.percentile(w, 100.0 - p, axis=axis, keepdims=True)
        hi = np.percentile(w, p, axis=axis, keepdims=True)
    else:
        lo = w.min(axis=axis, keepdims=True)
        hi = w.max(axis=axis, keepdims=True)
    return lo, hi


def qparams(lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme):
    """(scale, zero_point or None) in float64 for the observed ranges."""
    qmin, qmax = scheme.qmin, scheme.qmax
    if scheme.symmetric:
        amax = np.maximum(np.abs(lo), np.abs(hi))
        scale = amax / qmax
        zp = None
    else:
        lo = np.minimum(lo, 0.0)
        hi = np.maximum(hi, 0.0)
        scale = (hi - lo) / (qmax - qmin)
        zp = None
    scale = np.where(scale > 0, scale, 1.0)  # an all-zero group: any scale represents it
    scale = scale.astype(np.float32).astype(np.float64)  # the scale the backend will use
    if not scheme.symmetric:
        zp = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    return scale, zp


def quantize_host(a: np.ndarray, scheme: QuantScheme) -> dict:
    """Quantize a float array on the host: {'q': int values (C, Rp), 'scale', 'zero_point'}."""
    if a.dtype.kind != "f":
        raise DTypeError(f"quantize expects a floating-point tensor, got {a.dtype}; cast it with "
                         f".float() first")
    a = np.asarray(a, np.float64)
    if not np.isfinite(a).all():
        raise ValueError("quantize: the tensor holds inf or NaN, which no integer code can "
                         "represent; clean the values (torch.nan_to_num) first")
    w = _to_work(a, scheme)
    c, r = w.shape
    rp = _padded_row(r, scheme)
    if rp != r:
        w = np.concatenate([w, np.zeros((c, rp - r))], axis=1)
    if scheme.granularity == "per_block":
        g = w.reshape(c, rp // scheme.block_size, scheme.block_size)
        if r % scheme.block_size:
            # ranges of the last block ignore its padding
            lo, hi = _ranges(g[:, :-1], scheme) if g.shape[1] > 1 else (None, None)
            tail = w[:, (rp // scheme.block_size - 1) * scheme.block_size:r]
            tlo, thi = _ranges(tail.reshape(c, 1, -1), scheme)
            lo = tlo if lo is None else np.concatenate([lo, tlo], axis=1)
            hi = thi if hi is None else np.concatenate([hi, thi], axis=1)
        else:
            lo, hi = _ranges(g, scheme)
    else:
        g = w
        lo, hi = _ranges(w[:, :r], scheme)
    scale, zp = qparams(lo, hi, scheme)
    q = np.round(g / scale) + (zp if zp is not None else 0.0)
    q = np.clip(q, scheme.qmin, scheme.qmax).reshape(c, rp)
    return {"q": q.astype(np.int8), "scale": scale.astype(np.float32),
            "zero_point": None if zp is None else zp.astype(np.int8), "row": r}


def pack_int4(q: np.ndarray) -> np.ndarray:
    """(C, Rp) int values in [-8, 7] -> (C, Rp // 2) uint8, low nibble first, nibble = q + 8."""
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    return (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8)


def unpack_int4_host(p: np.ndarray) -> np.ndarray:
    lo = (p & 15).astype(np.int8) - 8
    hi = (p >> 4).astype(np.int8) - 8
    out = np.empty((p.shape[0], p.shape[1] * 2), np.int8)
    out[:, 0::2] = lo
    out[:, 1::2] = hi
    return out


def make_qtensor(B, a: np.ndarray, scheme: QuantScheme) -> QTensor:
    """Quantize host array `a` and place the result on backend stack B."""
    h = quantize_host(a, scheme)
    q = h["q"]
    data = pack_int4(q) if scheme.dtype == "int4" else q
    host = {"data": data, "scale": h["scale"], "zero_point": h["zero_point"]}
    return qtensor_from_host(B, host, scheme, a.shape)


def qtensor_from_host(B, host: dict, scheme: QuantScheme, shape: tuple) -> QTensor:
    data = host["data"]
    want = np.uint8 if scheme.dtype == "int4" else np.int8
    if data.dtype != want:
        raise DTypeError(f"quantized data of a {scheme.dtype} tensor must be {np.dtype(want)}, "
                         f"got {data.dtype}")
    d = B.from_numpy(np.ascontiguousarray(data), dt.uint8 if scheme.dtype == "int4" else dt.int8)
    s = B.from_numpy(np.ascontiguousarray(host["scale"], np.float32), dt.float32)
    zp = host.get("zero_point")
    # zero points are stored as int8 (they lie in [qmin, qmax]) and used as float32
    z = None if zp is None else B.from_numpy(np.ascontiguousarray(zp, np.float32), dt.float32)
    return QTensor(d, s, z, scheme, shape, B, host)


def int_values(B, q: QTensor):
    """The integer codes minus the zero point, in the work layout (C, Rp), as float32 (exact)."""
    v = q.data
    if q.scheme.dtype == "int4":
        v = B.cast(v, dt.int32)
        lo = B.bitwise_and(v, 15)
        hi = B.floor_divide(v, 16)
        c, h = B.shape(v)
        v = B.reshape(B.cat([B.reshape(lo, (c, h, 1)), B.reshape(hi, (c, h, 1))], 2), (c, 2 * h))
        v = B.sub(B.cast(v, dt.float32), 8.0)
    else:
        v = B.cast(v, dt.float32)
    if q.zero_point is not None:
        if q.scheme.granularity == "per_block":
            c, rp = B.shape(v)
            bs = q.scheme.block_size
            v = B.reshape(B.sub(B.reshape(v, (c, rp // bs, bs)), q.zero_point), (c, rp))
        else:
            v = B.sub(v, q.zero_point)
    return v


def dequantize(B, q: QTensor):
    """Float32 primitive of q's shape: (code - zero_point) * scale."""
    v = int_values(B, q)
    c, rp = B.shape(v)
    if q.scheme.granularity == "per_block":
        bs = q.scheme.block_size
        v = B.reshape(B.mul(B.reshape(v, (c, rp // bs, bs)), q.scale), (c, rp))
    else:
        v = B.mul(v, q.scale)
    r = q.row
    if rp != r:
        v = B.slice(v, (0, 0), (c, r), (1, 1))
    return from_work(B, v, q.shape, q.scheme)


def from_work(B, v, shape: tuple, scheme: QuantScheme):
    if scheme.granularity == "per_tensor" or not shape:
        return B.reshape(v, tuple(shape))
    ax = scheme.axis % len(shape)
    moved = (shape[ax],) + tuple(s for i, s in enumerate(shape) if i != ax)
    v = B.reshape(v, moved)
    if ax == 0:
        return v
    perm = list(range(1, len(shape)))
    perm.insert(ax, 0)
    return B.permute(v, tuple(perm))


def dequantize_host(host: dict, scheme: QuantScheme, shape: tuple) -> np.ndarray:
    """float64 reference of dequantize (tests, checkpoint inspection)."""
    data = host["data"]
    q = unpack_int4_host(data) if scheme.dtype == "int4" else data
    v = q.astype(np.float64)
    c, rp = v.shape
    scale = host["scale"].astype(np.float64)
    zp = host.get("zero_point")
    if scheme.granularity == "per_block":
        bs = scheme.block_size
        g = v.reshape(c, rp // bs, bs)
        if zp is not None:
            g = g - zp.astype(np.float64)
        v = (g * scale).reshape(c, rp)
    else:
        if zp is not None:
            v = v - zp.astype(np.float64)
        v = v * scale
    r = work_shape(shape, scheme)[1]
    v = v[:, :r]
    if scheme.granularity == "per_tensor" or not shape:
        return v.reshape(shape)
    ax = scheme.axis % len(shape)
    moved = (shape[ax],) + tuple(s for i, s in enumerate(shape) if i != ax)
    return np.moveaxis(v.reshape(moved), 0, ax)


__all__ = ["QTensor", "make_qtensor", "qtensor_from_host", "dequantize", "dequantize_host",
           "int_values", "quantize_host", "qparams", "pack_int4", "unpack_int4_host", "work_shape"]
