"""A module for every activation in strata.functional (torch.nn names and arguments)."""
from __future__ import annotations

from ..core.tensor import Tensor
from .module import Module


def _F():
    from .. import functional
    return functional


class _Inplace(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def _out(self, input: Tensor, out: Tensor) -> Tensor:
        if self.inplace:
            from ..core.grad_mode import no_grad
            with no_grad():
                input.copy_(out)
            return input
        return out

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        return self._out(input, _F().relu(input)) if self.inplace else _F().relu(input)


class LeakyReLU(_Inplace):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, input: Tensor) -> Tensor:
        out = _F().leaky_relu(input, self.negative_slope)
        return self._out(input, out) if self.inplace else out

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(_Inplace):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, input: Tensor) -> Tensor:
        out = _F().elu(input, self.alpha)
        return self._out(input, out) if self.inplace else out

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        out = _F().selu(input)
        return self._out(input, out) if self.inplace else out


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return _F().gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        out = _F().silu(input)
        return self._out(input, out) if self.inplace else out


class Mish(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        out = _F().mish(input)
        return self._out(input, out) if self.inplace else out


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return _F().softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardswish(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        out = _F().hardswish(input)
        return self._out(input, out) if self.inplace else out


class Hardsigmoid(_Inplace):
    def forward(self, input: Tensor) -> Tensor:
        out = _F().hardsigmoid(input)
        return self._out(input, out) if self.inplace else out


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return _F().sigmoid(input)


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return _F().tanh(input)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return _F().softmax(input, self.dim if self.dim is not None else _legacy_dim(input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return _F().log_softmax(input, self.dim if self.dim is not None else _legacy_dim(input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _legacy_dim(input: Tensor) -> int:
    # torch's implicit-dim rule for Softmax(dim=None)
    return 0 if input.ndim in (0, 1, 3) else 1


__all__ = ["ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Softplus", "Hardswish",
           "Hardsigmoid", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"]
