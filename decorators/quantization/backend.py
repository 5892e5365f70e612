"""Quantization(inner, scheme=None, **options): the decorator that owns quantized tensors.

    B = Quantization(Autodiff(NumPy()), dtype="int4", granularity="per_block")
    B = strata.backend("Quantization(OpenCL(), dtype='int8')")

Float primitives are the inner backend's own and every float op is the inner backend's bound
method (no cost per op). The layer adds the QTensor primitive and its ops — quantize,
dequantize, quantized_matmul / _linear / _conv2d — and the default QuantScheme used by
`strata.quantization` for tensors of this stack. The same ops run on a stack without this
layer (strata.quantization accepts any stack); putting it in the stack sets the scheme once
and makes `str(B)` record it.
"""
from __future__ import annotations

import numpy as np

from ...core.backend import Backend
from .ops import ActQuant, qconv2d, qmatmul_core
from .qtensor import QTensor, dequantize, make_qtensor
from .scheme import QuantScheme

_OWN = frozenset({"base", "quantize", "dequantize", "quantized_matmul", "quantized_linear",
                  "quantized_conv2d", "is_qtensor", "scheme"})


def _forwarded() -> list:
    return [n for n in dir(Backend)
            if not n.startswith("_") and n not in _OWN and callable(getattr(Backend, n))]


_FORWARDED = _forwarded()


class Quantization(Backend):
    """Quantized tensors (int8 / packed int4) over any stack; options: see QuantScheme."""

    def __init__(self, inner: Backend, scheme: QuantScheme | dict | str | None = None, **options):
        if not isinstance(inner, Backend):
            raise TypeError(f"Quantization wraps a backend, got {type(inner).__name__}; "
                            f"e.g. Quantization(NumPy())")
        self.inner = inner
        self.scheme = QuantScheme.build(scheme, **options)
        d = self.__dict__
        for n in _FORWARDED:
            d[n] = getattr(inner, n)

    def __repr__(self) -> str:
        extra = self.scheme.kwargs_repr()
        return f"Quantization({self.inner!r}{', ' + extra if extra else ''})"

    __str__ = __repr__

    # ------------------------------------------------------------------ the QTensor primitive
    @staticmethod
    def is_qtensor(x) -> bool:
        return type(x) is QTensor

    def quantize(self, x, scheme: QuantScheme | None = None) -> QTensor:
        """A QTensor of the float primitive x (scales from x's own range)."""
        return make_qtensor(self, np.asarray(self.to_numpy(x)), scheme or self.scheme)

    def dequantize(self, q: QTensor):
        return dequantize(self, q)

    def quantized_matmul(self, a, q: QTensor, act: ActQuant | None = None):
        """a (..., K) @ q (K, M)."""
        return qmatmul_core(self, a, q, None, act, transpose=False, op="matmul")

    def quantized_linear(self, x, q: QTensor, bias=None, act: ActQuant | None = None):
        """x (..., in) @ q^T + bias for a quantized weight q (out, in)."""
        return qmatmul_core(self, x, q, bias, act, transpose=True, op="linear")

    def quantized_conv2d(self, x, q: QTensor, bias, stride: tuple, padding: tuple,
                         dilation: tuple, groups: int, act: ActQuant | None = None):
        return qconv2d(self, x, q, bias, stride, padding, dilation, groups, act)


__all__ = ["Quantization"]
