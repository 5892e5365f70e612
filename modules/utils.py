"""Gradient clipping (torch.nn.utils names): clip_grad_norm_, clip_grad_value_, and vector helpers."""
from __future__ import annotations

import math
from typing import Iterable

from ..core.grad_mode import no_grad
from ..core.tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so their total `norm_type` norm is at most max_norm;
    returns the total norm before clipping (a 0-d tensor), as torch."""
    params = _grads(parameters)
    from .. import tensor as make_tensor
    if not params:
        return make_tensor(0.0)
    norm_type = float(norm_type)
    with no_grad():
        grads = [p.grad for p in params]
        if math.isinf(norm_type):
            norms = [g.abs().max() for g in grads]
            total = norms[0]
            for n in norms[1:]:
                total = total.maximum(n)
        else:
            total = None
            for g in grads:
                s = (g.abs() ** norm_type).sum() if norm_type != 2.0 else (g * g).sum()
                total = s if total is None else total + s
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite:
            tn = float(total.item())
            if not math.isfinite(tn):
                raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                                   f"`parameters` is non-finite, so it cannot be clipped. To disable "
                                   f"this error and scale the gradients by the non-finite norm anyway, "
                                   f"set `error_if_nonfinite=False`")
        # multiply unconditionally by min(coef, 1) like torch: no host sync in the hot path
        coef = (float(max_norm) / (total + 1e-6)).clamp(max=1.0)
        for p in params:
            p.grad = p.grad * coef
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float, foreach=None) -> None:
    clip_value = float(clip_value)
    with no_grad():
        for p in _grads(parameters):
            p.grad = p.grad.clamp(min=-clip_value, max=clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    from .. import cat
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    if vec.ndim != 1:
        raise TypeError(f"expected a 1-D vector, got shape {tuple(vec.shape)}")
    i = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p._assign(vec[i:i + n].reshape(tuple(p.shape)))
            i += n
