"""strata.quantization: int8 / int4 quantized tensors, quantized ops and post-training
quantization of models (PyTorch-like names where PyTorch has them).

    import strata.quantization as Q
    qw = Q.quantize(w, Q.QuantScheme(dtype="int4", granularity="per_block", block_size=32))
    y = Q.linear(x, qw, bias)                 # dequantize-then-float (no activation scale)
    model = Q.quantize_model(model, "int8", calibration_data=batches)   # int8 GEMMs
    Q.save(model, "m.q.safetensors"); Q.load(fresh_float_model, "m.q.safetensors")
    Q.last_path()   # {'op': 'linear', 'path': 'int8-float32-exact', 'backend': ...}

Works on every stack; a `Quantization(...)` layer in the stack supplies the default scheme.
Quantized layers are for inference: they record no gradients.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .core import dtype as dt
from .core.errors import BackendError
from .core.tensor import Tensor
from .decorators.quantization import (ActQuant, QTensor, Quantization, QuantScheme,
                                      QuantSchemeError, last_path, path_counts,
                                      reset_path_counts)
from .decorators.quantization.checkpoint import load_quantized as load
from .decorators.quantization.checkpoint import save_quantized as save
from .decorators.quantization.model import QuantizedConv2d, QuantizedLinear, quantize_model
from .decorators.quantization.ops import qconv2d as _qconv2d
from .decorators.quantization.ops import set_int_accumulation
from .decorators.quantization.ops import qmatmul_core as _qmm
from .decorators.quantization.qtensor import dequantize as _deq
from .decorators.quantization.qtensor import dequantize_host, make_qtensor, unpack_int4_host


def _stack_scheme(B) -> QuantScheme:
    b = B
    while b is not None:
        if isinstance(b, Quantization):
            return b.scheme
        b = b.inner
    return QuantScheme()


class QuantizedTensor:
    """A quantized tensor on a stack: integer codes with scales (and zero points)."""

    __slots__ = ("_q",)

    def __init__(self, q: QTensor):
        self._q = q

    @property
    def shape(self) -> tuple:
        return self._q.shape

    @property
    def scheme(self) -> QuantScheme:
        return self._q.scheme

    @property
    def backend(self):
        return self._q.backend

    @property
    def nbytes(self) -> int:
        """Bytes of codes, scales and zero points."""
        return self._q.nbytes

    def dequantize(self) -> Tensor:
        return Tensor._make(_deq(self._q.backend, self._q), self._q.backend)

    def int_repr(self) -> np.ndarray:
        """The integer codes (int4 unpacked to int8) in the tensor's shape, as NumPy."""
        h = self._q._host
        data = unpack_int4_host(h["data"]) if self.scheme.dtype == "int4" else h["data"]
        codes = dict(h, data=data, scale=np.ones_like(h["scale"]), zero_point=None)
        s = self.scheme.model_copy(update={"dtype": "int8"})
        return np.rint(dequantize_host(codes, s, self.shape)).astype(np.int8)

    def q_scale(self):
        """Scale(s): a float for per-tensor schemes, else a NumPy array (per channel/block)."""
        s = self._q._host["scale"]
        return float(s.reshape(-1)[0]) if self.scheme.granularity == "per_tensor" else \
            s.reshape(s.shape[0], -1).squeeze(-1) if self.scheme.granularity == "per_channel" \
            else s.reshape(s.shape[0], -1)

    def q_zero_point(self):
        z = self._q._host.get("zero_point")
        if z is None:
            return 0 if self.scheme.granularity == "per_tensor" else np.zeros(
                self._q._host["scale"].shape[0], np.int64)
        z = z.astype(np.int64)
        return int(z.reshape(-1)[0]) if self.scheme.granularity == "per_tensor" else \
            z.reshape(z.shape[0], -1).squeeze(-1) if self.scheme.granularity == "per_channel" \
            else z.reshape(z.shape[0], -1)

    def q_per_channel_axis(self) -> int:
        return self.scheme.axis

    def __repr__(self) -> str:
        return f"QuantizedTensor(shape={self.shape}, {self.scheme.kwargs_repr() or 'int8'}, " \
               f"backend={self.backend})"


def quantize(x: Tensor, scheme: QuantScheme | dict | str | None = None, **options) -> QuantizedTensor:
    """Quantize a float tensor with scales from its own range (min/max or percentile)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"quantize expects a strata Tensor, got {type(x).__name__}")
    s = QuantScheme.build(scheme if scheme is not None else _stack_scheme(x._b), **options)
    return QuantizedTensor(make_qtensor(x._b, np.asarray(x.detach().numpy()), s))


def dequantize(q: QuantizedTensor) -> Tensor:
    return q.dequantize()


def _check(x: Tensor, q: QuantizedTensor, op: str) -> None:
    if not isinstance(q, QuantizedTensor):
        raise TypeError(f"quantization.{op}: the weight must be a QuantizedTensor (from "
                        f"strata.quantization.quantize), got {type(q).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"quantization.{op}: input must be a strata Tensor, got {type(x).__name__}")
    if x._b != q.backend:
        raise BackendError(f"quantization.{op}: input is on {x._b}, the quantized tensor on "
                           f"{q.backend}; move one with .to(...)")
    if x.dtype is not dt.float32:
        raise TypeError(f"quantization.{op}: input must be float32, got {x.dtype.name}")


def matmul(x: Tensor, q: QuantizedTensor, act: ActQuant | None = None) -> Tensor:
    """x (..., K) @ q (K, M); int8 GEMM when `act` gives the input's scale and zero point and q
    has one scale per column (axis=1) or per tensor."""
    _check(x, q, "matmul")
    B = x._b
    return Tensor._make(_qmm(B, x.detach()._p, q._q, None, act, False, "matmul"), B)


def linear(x: Tensor, q: QuantizedTensor, bias: Tensor | None = None,
           act: ActQuant | None = None) -> Tensor:
    """x (..., in) @ q^T + bias for q (out, in), like torch.nn.functional.linear."""
    _check(x, q, "linear")
    B = x._b
    b = None if bias is None else bias.detach()._p
    return Tensor._make(_qmm(B, x.detach()._p, q._q, b, act, True, "linear"), B)


def conv2d(x: Tensor, q: QuantizedTensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1, act: ActQuant | None = None) -> Tensor:
    """torch.nn.functional.conv2d with a quantized weight (O, C/groups, kh, kw)."""
    _check(x, q, "conv2d")
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    B = x._b
    b = None if bias is None else bias.detach()._p
    return Tensor._make(_qconv2d(B, x.detach()._p, q._q, b, pair(stride), pair(padding),
                                 pair(dilation), groups, act), B)


def calibrate_activation(batches: Iterable, symmetric: bool = False) -> ActQuant:
    """Static int8 parameters from the min/max of example inputs."""
    lo, hi = np.inf, -np.inf
    for b in batches:
        a = np.asarray(b.detach().numpy() if isinstance(b, Tensor) else b)
        lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if not np.isfinite(lo):
        raise ValueError("calibrate_activation: no data")
    return ActQuant.from_range(lo, hi, symmetric)


def checkpoint_nbytes(model) -> int:
    """Bytes of the quantized layers' codes/scales/zero points plus the other float tensors."""
    n = 0
    for m in model.modules():
        if isinstance(m, (QuantizedLinear, QuantizedConv2d)):
            n += m.qweight.nbytes
    for v in model.state_dict().values():
        n += int(np.prod(v.shape)) * v.dtype.itemsize
    return n


__all__ = ["QuantScheme", "QuantSchemeError", "Quantization", "QuantizedTensor", "ActQuant",
           "quantize", "dequantize", "matmul", "linear", "conv2d", "quantize_model",
           "QuantizedLinear", "QuantizedConv2d", "save", "load", "last_path", "path_counts",
           "reset_path_counts", "calibrate_activation", "checkpoint_nbytes", "set_int_accumulation"]
