"""WGSL for the instructions of a fused elementwise program (decorators/fusion/ir.py).

Each instruction becomes one `let` in the compute type of its dtype, built from the same
expression snippets (exprs.py, common.wgsl) as the unfused op, and then rounded or wrapped to
its dtype exactly as the unfused op's store + reload would do (float16 rounds to f16, narrow
integers wrap, bool clamps to 0/1). So a fused program gives the bits of the op-by-op chain.
Ops that the WGPU backend runs as compositions of primitives (log1p, expm1, gelu, gelu_tanh)
are expanded into the same primitive steps, each rounded the same way.
"""
from __future__ import annotations

import math
import re

from ...core import dtype as dt
from ...core.errors import DTypeError
from . import exprs
from .dtypes import WTYPES, WType, scalar_bits

_NAMES = re.compile(r"\b([abc])\b")
_F32 = WTYPES[dt.float32]


def f32_literal(v: float) -> str:
    """An exact f32 constant: the bit pattern, as the unfused op gets its scalar operand."""
    return f"bitcast<f32>({scalar_bits(v, _F32)}u)"


def settle(w: WType, expr: str) -> str:
    """The compute-type value that storing `expr` as w and loading it back would give."""
    d = w.dtype
    if d is dt.float32 or d is dt.int32 or d is dt.int64:
        return expr
    return w.load(w.wrap(expr))


def const_values(program) -> list:
    """Each program constant as the 32-bit pattern of its compute type (the unfused ops' rule
    for scalar operands)."""
    return [scalar_bits(v, WTYPES[d]) for v, d in zip(program.consts, program.const_dtypes)]


class _Emitter:
    def __init__(self, program, names: list, lines: list, suffix: str):
        self.p = program
        self.names = names
        self.lines = lines
        self.suffix = suffix
        self.n_tmp = 0

    def let(self, w: WType, expr: str) -> str:
        name = f"u{self.n_tmp}{self.suffix}"
        self.n_tmp += 1
        self.lines.append(f"let {name}: {w.comp} = {settle(w, expr)};")
        return name

    def apply(self, table: dict, op: str, w_arg: WType, args: list) -> str:
        snippet = table[op].get(w_arg.cls)
        if snippet is None:
            hint = "cast to an integer dtype first" if w_arg.cls == "f" else \
                "cast to a floating dtype first"
            raise DTypeError(f"WGPU().{op} is not defined for {w_arg.dtype.name} tensors; {hint}")
        return _NAMES.sub(lambda m: args["abc".index(m.group(1))], snippet)


def _float_only(op: str, w: WType) -> None:
    if w.cls != "f":
        raise DTypeError(f"WGPU().{op} is not defined for {w.dtype.name} tensors; "
                         f"cast to a floating dtype first")


def emit_instruction(e: _Emitter, op: str, args: tuple, d) -> str:
    """Lines for one instruction appended to e.lines; returns the expression of its value."""
    p = e.p
    ws = [WTYPES[p.slot_dtype(a)] for a in args]
    xs = [e.names[a] for a in args]
    first = p.first_instr_slot
    n_in = p.n_inputs
    if args and all(n_in <= a < first for a in args) and op != "cast":
        # the protocol's interpreter materialises an all-constant op's first operand as a
        # tensor of its dtype (rounded or wrapped): do the same
        xs[0] = settle(ws[0], xs[0])
    w_out = WTYPES[d]
    if op == "cast":
        return xs[0] if d is ws[0].dtype else _NAMES.sub(xs[0], exprs.cast(ws[0].cls, w_out))
    if op == "where":
        if ws[0].dtype is not dt.bool_:
            raise DTypeError("WGPU().where: the condition must be a bool tensor")
        return f"select({xs[2]}, {xs[1]}, {xs[0]} != 0u)"
    if op == "bitwise_not" and ws[0].dtype is dt.bool_:
        op = "logical_not"
    if op in exprs.UNARY:
        return e.apply(exprs.UNARY, op, ws[0], xs)
    if op in exprs.UNARY_BOOL:
        return e.apply(exprs.UNARY_BOOL, op, ws[0], xs)
    if op in exprs.BINARY:
        return e.apply(exprs.BINARY, op, ws[0], xs)
    if op in exprs.COMPARE:
        return e.apply(exprs.COMPARE, op, ws[0], xs)
    w = ws[0]
    x = xs[0]
    _float_only(op, w)
    # compositions the backend inherits from core/backend.py, step by step
    if op == "log1p":
        return f"f_log({e.let(w, f'{x} + 1.0')})"
    if op == "expm1":
        return f"{e.let(w, f'exp({x})')} - 1.0"
    if op == "gelu":
        half = e.let(w, f"{x} * {f32_literal(0.5)}")
        u = e.let(w, f"{x} * {f32_literal(1.0 / math.sqrt(2.0))}")
        s = e.let(w, f"{e.let(w, f'f_erf({u})')} + 1.0")
        return f"{half} * {s}"
    if op == "gelu_tanh":
        x3 = e.let(w, f"{e.let(w, f'{x} * {x}')} * {x}")
        inner = e.let(w, f"{x} + {e.let(w, f'{x3} * {f32_literal(0.044715)}')}")
        inner = e.let(w, f"{inner} * {f32_literal(math.sqrt(2.0 / math.pi))}")
        half = e.let(w, f"{x} * {f32_literal(0.5)}")
        s = e.let(w, f"{e.let(w, f'f_tanh({inner})')} + 1.0")
        return f"{half} * {s}"
    raise DTypeError(f"WGPU(): fused programs have no op {op!r}")


def program_body(program, live: set, const_word, suffix: str = "") -> tuple:
    """(const lines, instruction lines, slot names) for the live part of `program`.
    Inputs are named x<k><suffix> (the caller loads them); constant j is c<j>, read from meta
    word const_word(j); values are named with `suffix` so that several elements can be
    evaluated side by side in one invocation."""
    n_in = program.n_inputs
    names = [f"x{k}{suffix}" for k in range(n_in)]
    consts = []
    for j, d in enumerate(program.const_dtypes):
        names.append(f"c{j}")
        if n_in + j in live:
            consts.append(f"let c{j} = bitcast<{WTYPES[d].comp}>(M({const_word(j)}u));")
    lines: list = []
    e = _Emitter(program, names, lines, suffix)
    first = program.first_instr_slot
    for k, (op, args, d) in enumerate(program.instrs):
        names.append(f"t{k}{suffix}")
        if first + k not in live:
            continue
        expr = emit_instruction(e, op, args, d)
        lines.append(f"let t{k}{suffix}: {WTYPES[d].comp} = {settle(WTYPES[d], expr)};")
    return consts, lines, names


def uses_f16(program) -> bool:
    return any(d is dt.float16 for d in program.input_dtypes + program.const_dtypes) or \
        any(d is dt.float16 for _, _, d in program.instrs)
