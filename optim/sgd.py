"""SGD with momentum, dampening, Nesterov, weight decay and maximize (torch.optim.SGD semantics)."""
from __future__ import annotations

from .optimizer import Optimizer, _check


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None) -> None:
        _check("learning rate", lr)
        _check("momentum value", momentum)
        _check("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _update_group(self, group: dict) -> None:
        lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            if maximize:
                g = -g
            if wd != 0:
                g = g.add(p.detach(), alpha=wd)
            if mom != 0:
                st = self._state(p)
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = g.clone().detach()
                else:
                    buf.mul_(mom).add_(g, alpha=1 - damp)
                g = g.add(buf, alpha=mom) if nesterov else buf
            p.add_(g, alpha=-lr)
