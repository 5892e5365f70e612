"""Lazy primitives of the Fusion decorator and the realisation of elementwise subgraphs."""
from __future__ import annotations

import itertools
import operator
import sys

from ...core import dtype as dt
from ...core import grad_mode
from ...core.memo import memo
from .ir import ProgramBuilder, const_key
from . import stats

_state = grad_mode._state

#: pending elementwise ops in one subgraph before Fusion runs it anyway
MAX_PENDING = 48


class Lazy:
    """A Fusion primitive: either realised (`value` is an inner primitive) or a pending
    elementwise op over other Lazy nodes and Python scalars. Shape and dtype are known
    eagerly, so shape errors surface at the line that caused them. `serial` numbers pending
    nodes in creation order, which is an evaluation order (arguments exist before users)."""

    __slots__ = ("value", "op", "args", "cast_to", "shape", "dtype", "grad_on", "rg", "size",
                 "serial", "__weakref__")

    def __init__(self, value, shape, dtype, op=None, args=None, cast_to=None, grad_on=True,
                 rg=False, size=0, serial=0):
        self.value = value
        self.op = op
        self.args = args
        self.cast_to = cast_to
        self.shape = shape
        self.dtype = dtype
        self.grad_on = grad_on
        self.rg = rg
        self.size = size
        self.serial = serial


_serials = itertools.count(1)
_serial_of = operator.attrgetter("serial")


def pending(op, args, shape, dtype, cast_to, rg, size) -> Lazy:
    """A pending elementwise node; size: pending nodes in its subgraph, itself included."""
    return Lazy(None, shape, dtype, op, args, cast_to, _state.enabled, rg, size,
                next(_serials))


def pending_matmul(a, b, shape, dtype, rg) -> Lazy:
    """A matmul whose result is not computed yet: the elementwise chain that reads it may
    become its epilogue (one kernel, the product never written to memory). a and b are
    realised inner primitives."""
    return Lazy(None, shape, dtype, "matmul", (a, b), None, _state.enabled, rg, 1,
                next(_serials))


def _run_matmul(backend, n: Lazy):
    prev = _state.enabled
    _state.enabled = n.grad_on
    try:
        n.value = backend.inner.matmul(*n.args)
    finally:
        _state.enabled = prev
    n.args = None
    stats.record_unfused("matmul")
    return n.value


# structure of a pending subgraph -> (program with placeholder constants, op names): a
# training step builds the same dozen subgraphs every time, and building a Program through
# ProgramBuilder was ~30 µs of host time per kernel on PoCL (the host is the critical path)
_TEMPLATES: dict = {}


def build_program(backend, node: Lazy, epilogue: bool = False):
    """(program, inner input primitives, op names, epilogue matmul, nodes to write too) of
    node's pending subgraph. With `epilogue`, one pending matmul of node's shape becomes the
    program's input 0 (its a, b stay on the node); other pending matmuls run first."""
    if node.value is None and node.op == "matmul":
        _run_matmul(backend, node)   # a reduction of a pending product: nothing to fuse
    if node.value is not None:
        template, _ = _cached_template(((node.dtype,), (), (), (("i", 0),), 0))
        return template, [node.value], [], None, []
    # the pending elementwise nodes of the subgraph, then in creation order (args first)
    nodes: list = []
    seen = {id(node)}
    stack = [node]
    while stack:
        n = stack.pop()
        nodes.append(n)
        for a in n.args:
            if (type(a) is Lazy and a.value is None and a.op != "matmul"
                    and id(a) not in seen):
                seen.add(id(a))
                stack.append(a)
    nodes.sort(key=_serial_of)
    in_dtypes: list = []
    inputs: list = []
    consts: list = []
    const_dtypes: list = []
    const_memo: dict = {}
    instrs: list = []    # (op, argument refs, cast_to): the subgraph's structure
    memo: dict = {}      # id(node) -> ("i", k) input / ("t", k) instruction
    dep: set = set()     # ids of nodes that read the epilogue matmul
    epi = None
    first = 0
    for n in nodes:
        refs = []
        for k, a in enumerate(n.args):
            if type(a) is not Lazy:
                d = _scalar_dtype(n, k, a)
                ck = const_key(a, d)  # equal constants share a slot, as in ProgramBuilder
                ref = const_memo.get(ck)
                if ref is None:
                    ref = const_memo[ck] = ("c", len(consts))
                    consts.append(a)
                    const_dtypes.append(d)
                refs.append(ref)
                continue
            ref = memo.get(id(a))
            if ref is None:
                # an input: a realised node, or a pending matmul (the epilogue's, or run now)
                if a.value is None and a.op == "matmul":
                    if epilogue and epi is None and a.shape == node.shape:
                        epi, first = a, len(inputs)
                        inputs.append(None)
                        dep.add(id(a))
                    else:
                        _run_matmul(backend, a)
                if a.value is not None:
                    inputs.append(a.value)
                ref = memo[id(a)] = ("i", len(in_dtypes))
                in_dtypes.append(a.dtype)
            if id(a) in dep:
                dep.add(id(n))
            refs.append(ref)
        memo[id(n)] = ("t", len(instrs))
        instrs.append((n.op, tuple(refs), n.cast_to))
    n = a = stack = None
    extra: list = []
    if epi is not None:
        nodes.append(epi)
        del inputs[first]
        extra = _read_elsewhere(nodes, node, dep, id(epi))
    outs = (memo[id(node)],) + tuple(memo[id(x)] for x in extra)
    template, ops = _cached_template((tuple(in_dtypes), tuple(const_dtypes), tuple(instrs),
                                      outs, first))
    return template.with_consts(consts), inputs, list(ops), epi, extra


def _cached_template(sig: tuple):
    return memo(_TEMPLATES, sig, lambda: _template(sig))


def _template(sig: tuple):
    """(Program of a subgraph structure, its op names); constants are placeholders that
    Program.with_consts fills in."""
    in_dtypes, const_dtypes, instrs, outs, first = sig
    b = ProgramBuilder()
    refs: dict = {}
    for k, d in enumerate(in_dtypes):
        refs[("i", k)] = b.input(d)
    for k, d in enumerate(const_dtypes):
        refs[("c", k)] = b.param(d)
    for k, (op, args, cast_to) in enumerate(instrs):
        refs[("t", k)] = b.op(op, *(refs[a] for a in args), dtype=cast_to)
    return b.finish([refs[o] for o in outs], first), tuple(op for op, _, _ in instrs)


def _read_elsewhere(nodes: list, root: Lazy, dep: set, epi: int) -> list:
    """The nodes between an epilogue matmul and root (the matmul included) that something
    outside the subgraph still references — a saved activation, a user's tensor, another
    pending chain. The fused kernel writes them as extra outputs: otherwise reading one later
    would run the matmul again. CPython reference counts are exact; a count too high only
    costs a write."""
    inside: dict = {}
    for n in nodes:
        for a in n.args:
            if type(a) is Lazy:
                inside[id(a)] = inside.get(id(a), 0) + 1
    out = []
    for n in nodes:
        # references here: the list `nodes`, the loop variable, getrefcount's argument, and
        # for the matmul build_program's local `epi`
        held = 4 if id(n) == epi else 3
        if n is not root and id(n) in dep and sys.getrefcount(n) - held > inside.get(id(n), 0):
            out.append(n)
    return out


def realize(backend, node: Lazy):
    """The inner primitive of node, running its pending subgraph as one fused program (with
    a pending matmul under it as the program's prologue when the inner backend fuses that)."""
    if node.value is not None:
        return node.value
    if node.op == "matmul":
        return _run_matmul(backend, node)
    program, inputs, ops, epi, extra = build_program(backend, node, backend._epilogue)
    prev = _state.enabled
    _state.enabled = node.grad_on
    try:
        if epi is None:
            outs = backend.inner.fused_elementwise(program, inputs, node.shape)
        else:
            outs = backend.inner.fused_matmul(program, epi.args[0], epi.args[1], inputs,
                                              node.shape)
            ops = ["matmul"] + ops
    finally:
        _state.enabled = prev
    stats.record_fused(ops, program)
    node.value = outs[0]
    node.args = None
    for x, v in zip(extra, outs[1:]):
        x.value = v
        x.args = None
    return node.value


def realize_reduce(backend, node: Lazy, op: str, axes: tuple, keepdims: bool):
    """Reduce node's pending subgraph in one inner.fused_reduce call (node stays pending)."""
    program, inputs, ops, _, _ = build_program(backend, node)
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
