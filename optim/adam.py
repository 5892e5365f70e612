"""Adam (with amsgrad) and AdamW (decoupled weight decay), torch.optim semantics."""
from __future__ import annotations

import math

from ..core.creation import zeros_like
from .fused import adam_update
from .optimizer import Optimizer, _check


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None) -> None:
        _check("learning rate", lr)
        _check("epsilon value", eps)
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        _check("weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update_group(self, group: dict) -> None:
        lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            st = self._state(p)
            if not st:
                st["step"] = 0
                st["exp_avg"] = zeros_like(p.detach())
                st["exp_avg_sq"] = zeros_like(p.detach())
                if amsgrad:
                    st["max_exp_avg_sq"] = zeros_like(p.detach())
            st["step"] += 1
            step = st["step"]
            state = [st["exp_avg"], st["exp_avg_sq"]] + ([st["max_exp_avg_sq"]] if amsgrad else [])
            adam_update(p, g, state, b1=b1, b2=b2, eps=eps, step_size=lr / (1 - b1 ** step),
                        bc2_sqrt=math.sqrt(1 - b2 ** step), weight_decay=wd,
                        decoupled_factor=(1 - lr * wd) if (self._decoupled and wd != 0) else None,
                        amsgrad=amsgrad, maximize=maximize)


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
