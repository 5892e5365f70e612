"""Optimizer updates as fused elementwise programs.

An Adam step is a dozen elementwise ops per parameter; run one by one, each allocates a full
array. Here the whole update of one parameter is one program from the fusion IR, built once
per (dtype, options) and rerun with new constants, and handed to the backend's
`fused_elementwise`: one generated kernel on OpenCL/WGPU, one buffer-reusing pass on NumPy,
and the protocol's op-by-op interpreter on a backend without its own.
"""
from __future__ import annotations

from ..core.tensor import Tensor
from ..decorators.fusion.ir import ProgramBuilder

_templates: dict = {}


def _adam_program(d, amsgrad, maximize, wd_mode):
    b = ProgramBuilder()
    p, g, m, v = (b.input(d) for _ in range(4))
    mx = b.input(d) if amsgrad else None
    one_m_b1, b2, one_m_b2, bc2_sqrt, eps, neg_step, wd = (b.param(d) for _ in range(7))
    if maximize:
        g = b.op("neg", g)
    if wd_mode == "l2":          # Adam: weight decay joins the gradient
        g = b.op("add", g, b.op("mul", p, wd))
    elif wd_mode == "decoupled":  # AdamW: p *= 1 - lr * wd  (wd holds that factor)
        p = b.op("mul", p, wd)
    # the same op order as the unfused Tensor methods (lerp_, mul_().addcmul_(), addcdiv_)
    m2 = b.op("add", m, b.op("mul", one_m_b1, b.op("sub", g, m)))
    v2 = b.op("add", b.op("mul", v, b2), b.op("mul", b.op("mul", g, g), one_m_b2))
    outs = [None, m2, v2]
    src = v2
    if amsgrad:
        mx2 = b.op("maximum", mx, v2)
        outs.append(mx2)
        src = mx2
    denom = b.op("add", b.op("div", b.op("sqrt", src), bc2_sqrt), eps)
    outs[0] = b.op("add", p, b.op("mul", b.op("div", m2, denom), neg_step))
    return b.finish(outs)


def adam_update(p: Tensor, g: Tensor, state: list, *, b1, b2, eps, step_size, bc2_sqrt,
                weight_decay, decoupled_factor, amsgrad, maximize) -> None:
    """One Adam/AdamW step of p in a single fused program; state = [m, v] (+ [max_v])."""
    d = p.dtype
    wd_mode = "decoupled" if decoupled_factor is not None else ("l2" if weight_decay else None)
    key = ("adam", d, amsgrad, maximize, wd_mode)
    tpl = _templates.get(key)
    if tpl is None:
        tpl = _templates[key] = _adam_program(d, amsgrad, maximize, wd_mode)
    wd = decoupled_factor if decoupled_factor is not None else weight_decay
    prog = tpl.with_consts((1.0 - b1, b2, 1.0 - b2, bc2_sqrt, eps, -step_size, float(wd)))
    B = p._b
    if g.dtype is not d:
        g = g._cast(d)
    prims = [p._p, g._p] + [s._p for s in state]
    # p, m, v (and max_v) are overwritten by this step: their buffers may take the results,
    # as torch's in-place optimizer steps do
    donate = {0: 0, 1: 2, 2: 3, 3: 4} if amsgrad else {0: 0, 1: 2, 2: 3}
    outs = B.fused_update(prog, prims, tuple(p.shape), donate)
    p._assign(Tensor._make(outs[0], B))
    for s, o in zip(state, outs[1:]):
        s._assign(Tensor._make(o, B))
