"""Normalisation layers: BatchNorm1d/2d, LayerNorm, GroupNorm, RMSNorm (torch.nn names and state)."""
from __future__ import annotations

from ..core.errors import ShapeError
from ..core.tensor import Tensor
from ..functional import layers as FL
from . import init
from ._factory import buffer, empty_param
from .module import Module


def _affine_params(m: Module, affine: bool, bias: bool, shape: tuple, backend, dtype) -> None:
    """weight (and bias) of `shape` when affine, else both registered as None (torch's keys)."""
    m.register_parameter("weight", empty_param(shape, backend, dtype) if affine else None)
    m.register_parameter("bias", empty_param(shape, backend, dtype) if affine and bias else None)


class _BatchNorm(Module):
    _expect_dims: tuple = (2, 3)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, backend=None, dtype=None, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.use_bias = bias
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_params(self, affine, bias, (num_features,), backend, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", buffer((num_features,), 0.0, backend, dtype))
            self.register_buffer("running_var", buffer((num_features,), 1.0, backend, dtype))
            self.register_buffer("num_batches_tracked", buffer((), 0, backend, "int64"))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked._assign(self.num_batches_tracked * 0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._expect_dims:
            raise ShapeError(f"{type(self).__name__}: expected {' or '.join(f'{d}D' for d in self._expect_dims)} "
                             f"input (got {input.ndim}D input)")
        if input.shape[1] != self.num_features:
            raise ShapeError(f"{type(self).__name__}: expected {self.num_features} channels in dim 1, "
                             f"got input of shape {tuple(input.shape)}")
        use_batch = self.training or not self.track_running_stats
        track = self.training and self.track_running_stats
        return FL.batch_norm(input, self.running_mean if track or not use_batch else None,
                             self.running_var if track or not use_batch else None,
                             self.weight, self.bias, use_batch, self.momentum, self.eps,
                             num_batches_tracked=self.num_batches_tracked if track else None)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.use_bias}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    _expect_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _expect_dims = (4,)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, backend=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.use_bias = bias
        _affine_params(self, elementwise_affine, bias, self.normalized_shape, backend, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return FL.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.use_bias}")


class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 backend=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self.use_bias = bias
        _affine_params(self, affine, bias, (num_channels,), backend, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm: expected input (N, {self.num_channels}, ...), got {tuple(input.shape)}")
        return FL.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.use_bias}"


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 backend=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = empty_param(self.normalized_shape, backend, dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input: Tensor) -> Tensor:
        return FL.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
