"""OpenCL C for the instructions of a fused elementwise program (decorators/fusion/ir.py).

Each instruction becomes one `const` local of its dtype's OpenCL type, written with the
expressions of ops.cl / cast.cl / where.cl (floor remainder, NaN-propagating maximum,
round half to even, sign(NaN) = 0 ...) and converted to its type the way the unfused kernel's
store would (narrow integers wrap, comparisons give 0/1). Ops that the OpenCL backend runs as
compositions of primitives (gelu, gelu_tanh) are expanded into the same steps. Kernels built
from this code disable FP contraction, so a fused chain gives the bits of the op-by-op chain.

Two evaluation modes:
  scalar  one element per evaluation, every dtype and op;
  vector  eight elements at once in float8/double8 (bool values as the matching int mask
          vector), for float programs on dense data: PoCL calls builtins such as exp as
          functions, and one call of the 8-wide builtin replaces eight scalar calls.
"""
from __future__ import annotations

import math

import numpy as np

from ...core import dtype as dt
from ...core.dtype import DType
from ...core.errors import DTypeError
from .runtime import CL_TYPE

LANES = 8

# Expression templates: {a}, {b} the operands, {T} the operand type in the current mode.
_FLOAT_UNARY = {
    "neg": "-{a}", "exp": "exp({a})", "log": "log({a})", "sqrt": "sqrt({a})",
    "sin": "sin({a})", "cos": "cos({a})", "tanh": "tanh({a})", "erf": "erf({a})",
    "abs": "{a} < ({T})0 ? -{a} : ({a} == ({T})0 ? ({T})0 : {a})",
    "sign": "{a} > ({T})0 ? ({T})1 : ({a} < ({T})0 ? ({T})-1 : ({T})0)",
    "reciprocal": "({T})1 / {a}", "floor": "floor({a})", "ceil": "ceil({a})",
    "round": "rint({a})", "trunc": "trunc({a})",
    "relu": "{a} != {a} ? {a} : ({a} > ({T})0 ? {a} : ({T})0)",
    "sigmoid": "({T})1 / (({T})1 + exp(-{a}))", "silu": "{a} / (({T})1 + exp(-{a}))",
    "log1p": "log1p({a})", "expm1": "expm1({a})", "tan": "tan({a})", "rsqrt": "rsqrt({a})",
    "isnan": "{a} != {a}", "isinf": "{a} == ({T})INFINITY || {a} == ({T})-INFINITY",
    "logical_not": "{a} == ({T})0",
}
_INT_UNARY = {
    "neg": "-{a}", "abs": "{a} < ({T})0 ? -{a} : {a}",
    "sign": "{a} > ({T})0 ? ({T})1 : ({a} < ({T})0 ? ({T})-1 : ({T})0)",
    "floor": "{a}", "ceil": "{a}", "round": "{a}", "trunc": "{a}",
    "relu": "{a} > ({T})0 ? {a} : ({T})0", "isnan": "0", "isinf": "0",
    "bitwise_not": "~{a}", "logical_not": "{a} == ({T})0",
}
_BOOL_UNARY = {
    "abs": "{a}", "sign": "{a}", "floor": "{a}", "ceil": "{a}", "round": "{a}", "trunc": "{a}",
    "relu": "{a}", "isnan": "0", "isinf": "0", "bitwise_not": "{a} == ({T})0",
    "logical_not": "{a} == ({T})0",
}
_COMPARE = {
    "eq": "{a} == {b}", "ne": "{a} != {b}", "lt": "{a} < {b}", "le": "{a} <= {b}",
    "gt": "{a} > {b}", "ge": "{a} >= {b}",
    "logical_and": "({a} != ({T})0) && ({b} != ({T})0)",
    "logical_or": "({a} != ({T})0) || ({b} != ({T})0)",
    "logical_xor": "({a} != ({T})0) != ({b} != ({T})0)",
}
_FLOAT_BINARY = {
    "add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}", "div": "{a} / {b}",
    "pow": "pow({a}, {b})",
    "maximum": "({a} != {a} || {b} != {b}) ? {a} + {b} : ({a} > {b} ? {a} : {b})",
    "minimum": "({a} != {a} || {b} != {b}) ? {a} + {b} : ({a} < {b} ? {a} : {b})",
    "remainder": "remainder_{S}({a}, {b})", "floor_divide": "floor_divide_{S}({a}, {b})",
}
_INT_BINARY = {
    "add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}",
    "maximum": "{a} > {b} ? {a} : {b}", "minimum": "{a} < {b} ? {a} : {b}",
    "bitwise_and": "{a} & {b}", "bitwise_or": "{a} | {b}", "bitwise_xor": "{a} ^ {b}",
    "pow": "pow_{S}({a}, {b})", "remainder": "remainder_{S}({a}, {b})",
    "floor_divide": "floor_divide_{S}({a}, {b})",
}
_BOOL_BINARY = {
    "add": "{a} | {b}", "mul": "{a} & {b}", "maximum": "{a} | {b}", "minimum": "{a} & {b}",
    "bitwise_and": "{a} & {b}", "bitwise_or": "{a} | {b}", "bitwise_xor": "{a} ^ {b}",
}
_HELPER_OPS = frozenset(("remainder", "floor_divide", "pow"))

# ops the vector mode evaluates (float operands; bool results as masks)
_VECTOR_FLOAT = frozenset(("neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "abs",
                           "sign", "reciprocal", "floor", "ceil", "round", "trunc", "relu",
                           "sigmoid", "silu", "log1p", "expm1", "tan", "rsqrt", "isnan", "isinf",
                           "logical_not", "add", "sub", "mul", "div", "pow", "maximum",
                           "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
                           "logical_or", "logical_xor", "gelu", "gelu_tanh", "where", "cast"))
_VECTOR_BOOL = frozenset(("logical_not", "logical_and", "logical_or", "logical_xor", "eq", "ne"))

_GELU = 1.0 / math.sqrt(2.0)
_GELU_T = math.sqrt(2.0 / math.pi)


def suffix(d: DType) -> str:
    return d.name


def mask_type(f: DType) -> str:
    """The int vector type a float8/double8 comparison yields (-1 true, 0 false)."""
    return "int8" if f.itemsize == 4 else "long8"


def literal(v: float, d: DType) -> str:
    """An exact float constant of dtype d (its value rounded to d, as the unfused op's scalar)."""
    if d is dt.float64:
        return float.hex(float(v))
    if d is dt.float32:
        return float.hex(float(np.float32(v))) + "f"
    return f"((half){float.hex(float(np.float16(v)))}f)"


class Codegen:
    """Names and instruction lines of one program in one mode (vector: float dtype `vf`)."""

    def __init__(self, program, live: set, backend_name: str, vf: DType | None = None):
        self.p = program
        self.live = live
        self.who = backend_name
        self.vf = vf
        self.helpers: set = set()

    # ---------------------------------------------------------------- types
    def ctype(self, d: DType) -> str:
        if self.vf is None:
            return CL_TYPE[d]
        return mask_type(self.vf) if d is dt.bool_ else CL_TYPE[d] + "8"

    def _undefined(self, op: str, d: DType):
        hint = "; cast to a floating dtype first" if d.kind != 2 else ""
        if d.kind == 2 and op in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"):
            hint = "; cast to an integer dtype first"
        return DTypeError(f"{op} is not defined for {d.name} tensors on {self.who}{hint}")

    # ---------------------------------------------------------------- instructions
    def expr(self, op: str, args: tuple, d: DType, names: list) -> tuple:
        """(lines before, expression) of one instruction; raises DTypeError for an op its
        operand dtype does not have (as the unfused op would)."""
        p = self.p
        ds = [p.slot_dtype(a) for a in args]
        xs = [names[a] for a in args]
        a0 = ds[0]
        T = self.ctype(a0)
        if op == "cast":
            if d is a0:
                return [], xs[0]
            if d is dt.bool_:
                return [], f"{xs[0]} != ({T})0"
            return [], f"({self.ctype(d)}){xs[0]}"
        if op == "where":
            if a0 is not dt.bool_:
                raise DTypeError(f"where: the condition must be bool, got {a0.name}")
            return [], f"{xs[0]} ? {xs[1]} : {xs[2]}"
        if op in ("gelu", "gelu_tanh"):
            if a0.kind != 2:
                raise self._undefined(op, a0)
            return self._gelu(op, xs[0], a0, T)
        if op in _COMPARE:
            return [], _COMPARE[op].format(a=xs[0], b=xs[1], T=T)
        kind = a0.kind
        if len(args) == 1:
            table = _FLOAT_UNARY if kind == 2 else (_INT_UNARY if kind == 1 else _BOOL_UNARY)
        else:
            table = _FLOAT_BINARY if kind == 2 else (_INT_BINARY if kind == 1 else _BOOL_BINARY)
        tpl = table.get(op)
        if tpl is None:
            raise self._undefined(op, a0)
        if op in _HELPER_OPS and "{S}" in tpl:
            self.helpers.add(a0)
        return [], tpl.format(a=xs[0], b=xs[1] if len(xs) > 1 else "", T=T, S=suffix(a0))

    def _gelu(self, op: str, x: str, d: DType, T: str) -> tuple:
        # the protocol's default compositions, one rounding per primitive step
        k = len(self._tmp)
        c = lambda v: f"(({T}){literal(v, d)})"  # noqa: E731
        n = lambda j: f"u{k}_{j}"  # noqa: E731
        if op == "gelu":
            lines = [f"const {T} {n(0)} = {x} * {c(0.5)};",
                     f"const {T} {n(1)} = erf({x} * {c(_GELU)}) + ({T})1;"]
            self._tmp.append(op)
            return lines, f"{n(0)} * {n(1)}"
        lines = [f"const {T} {n(0)} = {x} * {x} * {x};",
                 f"const {T} {n(1)} = ({x} + {n(0)} * {c(0.044715)}) * {c(_GELU_T)};",
                 f"const {T} {n(2)} = {x} * {c(0.5)};"]
        self._tmp.append(op)
        return lines, f"{n(2)} * (tanh({n(1)}) + ({T})1)"

    def body(self, names: list) -> list:
        """Lines computing every live instruction; names[s] is the expression of slot s
        (inputs and constants filled in by the caller), instruction slots are appended."""
        self._tmp: list = []
        p = self.p
        first = p.first_instr_slot
        lines: list = []
        for k, (op, args, d) in enumerate(p.instrs):
            names.append(f"t{k}")
            if first + k not in self.live:
                continue
            pre, e = self.expr(op, args, d, names)
            lines += pre
            ty = self.ctype(d)
            lines.append(f"const {ty} t{k} = ({ty})({e});")
        return lines

    def helper_defs(self) -> str:
        out = []
        for d in sorted(self.helpers, key=lambda d: d.name):
            if d.kind == 2:
                out.append(f"DEF_FLOAT_HELPERS({CL_TYPE[d]}, {suffix(d)})")
            else:
                signed = int(np.iinfo(d.np).min < 0)
                out.append(f"DEF_INT_HELPERS({CL_TYPE[d]}, {suffix(d)}, {signed})")
        return "\n".join(out)


def vector_dtype(program, live: set):
    """The float dtype of a program the vector mode can evaluate, or None."""
    p = program
    fl = {p.slot_dtype(s) for s in live if p.slot_dtype(s).kind == 2}
    if len(fl) != 1:
        return None
    (f,) = fl
    if f not in (dt.float32, dt.float64):
        return None
    if any(p.slot_dtype(s) not in (f, dt.bool_) for s in live):
        return None
    first = p.first_instr_slot
    for k, (op, args, d) in enumerate(p.instrs):
        if first + k not in live:
            continue
        a0 = p.slot_dtype(args[0])
        if op == "cast":
            if d is not a0:
                return None
        elif op == "where":
            if a0 is not dt.bool_:
                return None
        elif a0 is dt.bool_:
            if op not in _VECTOR_BOOL:
                return None
        elif op not in _VECTOR_FLOAT:
            return None
    return f
