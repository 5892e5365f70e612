"""Activation functions and softmax (torch.nn.functional names and arguments)."""
from __future__ import annotations

import math

from ..core import dtype as dt
from ..core import ops_elementwise as E
from ..core.errors import DTypeError
from ..core.shape import norm_dim
from ..core.tensor import Tensor

_make = Tensor._make

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float(x: Tensor, name: str) -> Tensor:
    if x.dtype.kind != 2:
        raise DTypeError(f"{name}: expects a floating point tensor, got {x.dtype.name}; "
                         f"call .float() first")
    return x


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return E.relu(x)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    return E.clamp(x, 0.0, 6.0)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    _float(x, "leaky_relu")
    return E.where(E.gt(x, 0), x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _float(x, "elu")
    # where(), not minimum(): at x == 0 torch takes the exponential branch's gradient, and the
    # masked input keeps expm1 finite for large x (an inf there would poison the gradient)
    pos = E.gt(x, 0)
    return E.where(pos, x, E.expm1(E.where(pos, 0.0, x)) * alpha)


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    _float(x, "celu")
    pos = E.gt(x, 0)
    return E.where(pos, x, E.expm1(E.where(pos, 0.0, x) / alpha) * alpha)


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    return elu(x, _SELU_ALPHA) * _SELU_SCALE


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _float(x, "gelu")
    return _make(x._b.gelu(x._p, approximate), x._b)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    _float(x, "silu")
    return _make(x._b.silu(x._p), x._b)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    _float(x, "softplus")
    bx = x * beta if beta != 1 else x
    # log1p(exp(-|bx|)) + max(bx, 0) never overflows; written with where() so the gradient
    # at 0 is sigmoid(0) = 0.5 like torch; above threshold torch returns x
    pos = E.gt(bx, 0)
    soft = E.log1p(E.exp(E.where(pos, -bx, bx))) + E.where(pos, bx, 0.0)
    if beta != 1:
        soft = soft / beta
    return E.where(E.gt(bx, threshold), x, soft)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    return x * E.tanh(softplus(x))


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    _float(x, "hardsigmoid")
    return E.clamp(x / 6.0 + 0.5, 0.0, 1.0)


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    return x * hardsigmoid(x)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace=False) -> Tensor:
    return E.clamp(x, min_val, max_val)


def logsigmoid(x: Tensor) -> Tensor:
    return -softplus(-x)


def softsign(x: Tensor) -> Tensor:
    return x / (E.abs(x) + 1.0)


def tanhshrink(x: Tensor) -> Tensor:
    return x - E.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return E.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return E.tanh(x)


def _softmax_input(x: Tensor, dim, dtype, name):
    if dtype is not None:
        x = x._cast(dt.as_dtype(dtype))
    elif x.dtype.kind != 2:
        x = x._cast(dt.float32)
    if dim is None:
        raise TypeError(f"{name}: pass dim= explicitly (implicit dim choice is deprecated in torch)")
    return x, norm_dim(dim, x.ndim, name)


def softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    x, d = _softmax_input(x, dim, dtype, "softmax")
    if x.ndim == 0:
        # through a 1-element axis so the result stays in the graph (gradient 0, like torch)
        return softmax(x.reshape(1), 0).reshape(())
    return _make(x._b.softmax(x._p, d), x._b)


def log_softmax(x: Tensor, dim=None, dtype=None) -> Tensor:
    x, d = _softmax_input(x, dim, dtype, "log_softmax")
    if x.ndim == 0:
        return log_softmax(x.reshape(1), 0).reshape(())
    return _make(x._b.log_softmax(x._p, d), x._b)


def softmin(x: Tensor, dim=None, dtype=None) -> Tensor:
    return softmax(-x, dim, dtype)


def glu(x: Tensor, dim: int = -1) -> Tensor:
    a, b = x.chunk(2, dim)
    return a * E.sigmoid(b)


def threshold(x: Tensor, threshold: float, value: float, inplace=False) -> Tensor:
    return E.where(E.gt(x, threshold), x, value)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    w = weight
    if x.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return E.where(E.gt(x, 0), x, x * w)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    n = x.norm(p, dim, keepdim=True)
    return x / E.clamp_min(n, eps)


__all__ = ["relu", "relu6", "leaky_relu", "elu", "celu", "selu", "gelu", "silu", "softplus",
           "mish", "hardsigmoid", "hardswish", "hardtanh", "logsigmoid", "softsign",
           "tanhshrink", "sigmoid", "tanh", "softmax", "log_softmax", "softmin", "glu",
           "threshold", "prelu", "normalize"]
