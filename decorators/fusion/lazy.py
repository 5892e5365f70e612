"""Lazy primitives of the Fusion decorator and the realisation of elementwise subgraphs."""
from __future__ import annotations

from ...core import dtype as dt
from ...core import grad_mode
from .ir import ProgramBuilder
from . import stats

_state = grad_mode._state

#: pending elementwise ops in one subgraph before Fusion runs it anyway
MAX_PENDING = 48


class Lazy:
    """A Fusion primitive: either realised (`value` is an inner primitive) or a pending
    elementwise op over other Lazy nodes and Python scalars. Shape and dtype are known
    eagerly, so shape errors surface at the line that caused them."""

    __slots__ = ("value", "op", "args", "cast_to", "shape", "dtype", "grad_on", "rg", "size",
                 "__weakref__")

    def __init__(self, value, shape, dtype):
        self.value = value
        self.op = None
        self.args = None
        self.cast_to = None
        self.shape = shape
        self.dtype = dtype
        self.grad_on = True
        self.rg = False
        self.size = 0


def pending(op, args, shape, dtype, cast_to, rg) -> Lazy:
    n = Lazy(None, shape, dtype)
    n.op = op
    n.args = args
    n.cast_to = cast_to
    n.grad_on = _state.enabled
    n.rg = rg
    size = 1
    for a in args:
        if type(a) is Lazy and a.value is None:
            size += a.size
    n.size = size
    return n


def build_program(node: Lazy):
    """(program, inner input primitives, op names) of node's pending subgraph."""
    b = ProgramBuilder()
    inputs: list = []
    memo: dict = {}
    ops: list = []
    # iterative post-order walk (deep chains must not hit the recursion limit)
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        if id(n) in memo:
            continue
        if n.value is not None:
            inputs.append(n.value)
            memo[id(n)] = b.input(n.dtype)
            continue
        if not done:
            stack.append((n, True))
            for a in n.args:
                if type(a) is Lazy and id(a) not in memo:
                    stack.append((a, False))
            continue
        refs = []
        for k, a in enumerate(n.args):
            if type(a) is Lazy:
                refs.append(memo[id(a)])
            else:
                refs.append(b.const(a, _scalar_dtype(n, k, a)))
        memo[id(n)] = b.op(n.op, *refs, dtype=n.cast_to)
        ops.append(n.op)
    return b.finish([memo[id(node)]]), inputs, ops


def realize(backend, node: Lazy):
    """The inner primitive of node, running its pending subgraph as one fused program."""
    if node.value is not None:
        return node.value
    program, inputs, ops = build_program(node)
    prev = _state.enabled
    _state.enabled = node.grad_on
    try:
        (out,) = backend.inner.fused_elementwise(program, inputs, node.shape)
    finally:
        _state.enabled = prev
    stats.record_fused(ops, program)
    node.value = out
    node.args = None
    return out


def realize_reduce(backend, node: Lazy, op: str, axes: tuple, keepdims: bool):
    """Reduce node's pending subgraph in one inner.fused_reduce call (node stays pending)."""
    program, inputs, ops = build_program(node)
    prev = _state.enabled
    _state.enabled = node.grad_on
    try:
        out = backend.inner.fused_reduce(program, inputs, node.shape, op, axes, keepdims)
    finally:
        _state.enabled = prev
    stats.record_fused(ops + [op], program)
    return out


def _scalar_dtype(n: Lazy, k: int, v):
    """A scalar operand takes the dtype of the tensor operands of its op (frontend contract);
    where's condition (argument 0) is always bool."""
    if n.op == "where" and k == 0:
        return dt.bool_
    for j, a in enumerate(n.args):
        if type(a) is Lazy and not (n.op == "where" and j == 0):
            return a.dtype
    return (dt.bool_, dt.int64, dt.float32)[dt.scalar_kind(v)]
