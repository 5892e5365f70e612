"""RMSprop and Adagrad (torch.optim semantics)."""
from __future__ import annotations

from ..core.creation import zeros_like
from .optimizer import Optimizer, _check


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check("learning rate", lr)
        _check("epsilon value", eps)
        _check("momentum value", momentum)
        _check("weight_decay value", weight_decay)
        _check("alpha value", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update_group(self, group: dict) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        wd, mom, centered, maximize = (group["weight_decay"], group["momentum"], group["centered"],
                                       group["maximize"])
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if maximize:
                g = -g
            st = self._state(p)
            if not st:
                st["step"] = 0
                st["square_avg"] = zeros_like(p.detach())
                if mom > 0:
                    st["momentum_buffer"] = zeros_like(p.detach())
                if centered:
                    st["grad_avg"] = zeros_like(p.detach())
            st["step"] += 1
            if wd != 0:
                g = g.add(p.detach(), alpha=wd)
            sq = st["square_avg"]
            sq.mul_(alpha).addcmul_(g, g, value=1 - alpha)
            if centered:
                ga = st["grad_avg"]
                ga.lerp_(g, 1 - alpha)
                avg = sq.addcmul(ga, ga, value=-1).sqrt() + eps
            else:
                avg = sq.sqrt() + eps
            if mom > 0:
                buf = st["momentum_buffer"]
                buf.mul_(mom).addcdiv_(g, avg)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(g, avg, value=-lr)


class Adagrad(Optimizer):
    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None) -> None:
        _check("learning rate", lr)
        _check("lr_decay value", lr_decay)
        _check("weight_decay value", weight_decay)
        _check("initial_accumulator_value value", initial_accumulator_value)
        _check("epsilon value", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))

    def _init_group_state(self, group: dict) -> None:
        for p in group["params"]:
            st = self._state(p)
            st["step"] = 0
            st["sum"] = zeros_like(p.detach()) + group["initial_accumulator_value"]

    def _update_group(self, group: dict) -> None:
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        wd, maximize = group["weight_decay"], group["maximize"]
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if maximize:
                g = -g
            st = self._state(p)
            st["step"] += 1
            if wd != 0:
                g = g.add(p.detach(), alpha=wd)
            clr = lr / (1 + (st["step"] - 1) * lr_decay)
            s = st["sum"]
            s.addcmul_(g, g, value=1)
            std = s.sqrt() + eps
            p.addcdiv_(g, std, value=-clr)
