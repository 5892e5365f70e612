"""Autodiff over fused programs: the forward runs as the inner backend's fused kernel and the
backward is the symbolic derivative of the program (fusion/grad.py), run as one more fused
kernel — so `Fusion(Autodiff(B))` fuses its backward pass too."""
from __future__ import annotations

from ..core import grad_mode
from ..core.memo import memo
from .autodiff_engine import Node, Tracked, edge
from .autodiff_rules import rule, unbroadcast
from .fusion.grad import backward_program
from .fusion.ir import Program

_state = grad_mode._state
# (program structure, constants, output index, differentiated inputs) -> (program, kept)
_cache: dict = {}


def _derivative(program, k, active):
    return memo(_cache, (program.key, program.consts, k, active),
                lambda: backward_program(program, active, {k}))


@rule("FusedBackward")
def fused_bw(B, saved, g, nx):
    program, k, vals, shape, shapes, wrt = saved
    active = tuple(i for i, e in zip(wrt, nx) if e is not None)
    bp, kept = _derivative(program, k, active)
    by_input = dict(zip(kept, B.fused_elementwise(bp, list(vals) + [g], shape))) if kept else {}
    # an input that reaches the output only through flat ops (sign, floor ...) gets zeros,
    # as in torch, not None
    return tuple(unbroadcast(B, by_input[i], shapes[i]) if i in by_input
                 else B.full(shapes[i], 0, B.dtype(vals[i])) for i in wrt)


def fused_elementwise(self, program, inputs, shape):
    vals = [x.value for x in inputs]
    outs = self.inner.fused_elementwise(program, vals, shape)
    if not _state.enabled or not any(x.requires_grad for x in inputs):
        return [Tracked(o) for o in outs]
    return _record(self, program, inputs, vals, outs, shape)


def _record(self, program, inputs, vals, outs, shape) -> list:
    """Tracked outputs of a program run on the inner backend, each with its FusedBackward."""
    inner = self.inner
    wrt = tuple(i for i, x in enumerate(inputs)
                if x.requires_grad and inner.dtype(x.value).is_floating_point)
    edges = tuple(edge(inputs[i]) for i in wrt)
    shapes = [inner.shape(v) for v in vals]
    res = []
    for k, o in enumerate(outs):
        if not program.slot_dtype(program.outputs[k]).is_floating_point:
            res.append(Tracked(o))
            continue
        node = Node(fused_bw, edges, (program, k, tuple(vals), tuple(shape), shapes, wrt))
        res.append(Tracked(o, node, True))
    return res


def fused_reduce(self, program, inputs, shape, op, axes, keepdims):
    """Untracked: the inner backend's fused elementwise+reduce kernel. Tracked: the fused
    elementwise program (differentiated as above), then the recorded reduction."""
    if not _state.enabled or not any(x.requires_grad for x in inputs):
        return Tracked(self.inner.fused_reduce(program, [x.value for x in inputs], shape, op,
                                               axes, keepdims))
    (v,) = fused_elementwise(self, program, inputs, shape)
    return getattr(self, op)(v, axes, keepdims)


def fused_matmul(self, program, a, b, inputs, shape):
    """Untracked: the inner backend's matmul with the program as its epilogue. Tracked: the
    same one kernel, writing the product too (the epilogue's derivative replays the program
    from it); the product is recorded as a matmul and the outputs as the program."""
    inner = self.inner
    vals = [x.value for x in inputs]
    if not _state.enabled or not (a.requires_grad or b.requires_grad
                                  or any(x.requires_grad for x in inputs)):
        return [Tracked(o) for o in inner.fused_matmul(program, a.value, b.value, vals, shape)]
    *outs, product = inner.fused_matmul(_with_product(program), a.value, b.value, vals, shape)
    if a.requires_grad or b.requires_grad:
        p = self._record_matmul(a, b, product)
    else:
        p = Tracked(product)
    return _record(self, program, [p] + list(inputs), [product] + vals, outs, shape)


_PRODUCT: dict = {}   # program structure -> the program with input 0 as an extra output


def _with_product(program):
    hit = memo(_PRODUCT, program.key, lambda: Program(
        program.input_dtypes, program.const_dtypes, program.consts, program.instrs,
        program.outputs + (0,)))
    return hit.with_consts(program.consts)


def fused_update(self, program, inputs, shape, donate):
    """Updates run untracked (optimizer steps under no_grad) and may reuse donated buffers;
    a recorded op must keep its inputs intact, so it takes the ordinary path."""
    if _state.enabled and any(x.requires_grad for x in inputs):
        return fused_elementwise(self, program, inputs, shape)
    return [Tracked(o) for o in self.inner.fused_update(program, [x.value for x in inputs],
                                                         shape, donate)]
