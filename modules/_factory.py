"""Creating parameter storage on the requested (or default) backend and dtype."""
from __future__ import annotations

from ..core.tensor import Tensor
from .module import Parameter


def empty_param(shape: tuple, backend=None, dtype=None, requires_grad: bool = True) -> Parameter:
    from .. import zeros
    return Parameter(zeros(tuple(shape), dtype=dtype, backend=backend), requires_grad=requires_grad)


def buffer(shape: tuple, value, backend=None, dtype=None) -> Tensor:
    from .. import full
    return full(tuple(shape), value, dtype=dtype, backend=backend)
