"""CUDA C for the instructions of a fused elementwise program (decorators/fusion/ir.py).

A program becomes one `__host__ __device__` element function: its parameters are the values
of the live inputs and constants, its reference parameters the outputs, and each live
instruction is one `const` local in the compute type of its dtype. The expressions follow the
OpenCL generator (backends/opencl/fused_codegen.py) and the unfused CuPy ops they replace:
floor-style remainder/floor_divide, NaN-propagating maximum/minimum, round half to even,
sign(NaN) = 0, relu(NaN) = NaN, narrow integers wrap (signed arithmetic runs unsigned, where
overflow is defined), comparisons give bool, integer x / 0 gives 0. float16 values are
computed in float and rounded to half after every instruction (and after every step of the
ops CuPy runs as compositions: sigmoid, silu, rsqrt, gelu, gelu_tanh), as the unfused op's
store into a float16 array does. Kernels are compiled with --fmad=false, so a fused float
chain gives the bits of the op-by-op chain.

Because the function is __host__ __device__, the tests compile it with nvcc for the CPU and
compare it with NumPy on machines without a GPU (tests/test_cuda_fused_codegen.py).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...core import dtype as dt
from ...core.dtype import DType
from ...core.errors import DTypeError
from ...decorators.fusion.ir import live_slots

#: the C type a value of each dtype is computed in (float16 in float, rounded per instruction)
CTYPE = {dt.bool_: "bool", dt.uint8: "unsigned char", dt.int8: "signed char", dt.int16: "short",
         dt.int32: "int", dt.int64: "long long", dt.float16: "float", dt.float32: "float",
         dt.float64: "double"}
#: the unsigned type an integer dtype's arithmetic wraps in (C promotes narrow types to int)
UTYPE = {dt.uint8: "unsigned int", dt.int8: "unsigned int", dt.int16: "unsigned int",
         dt.int32: "unsigned int", dt.int64: "unsigned long long"}

_HELPERS = Path(__file__).with_name("fused_ops.cu")

# Expression templates: {a}, {b} operands, {T} compute type, {U} unsigned type, {S} the math
# function suffix ("f" for float and float16, "" for double).
_FLOAT_UNARY = {
    "neg": "-{a}", "exp": "exp{S}({a})", "log": "log{S}({a})", "sqrt": "sqrt{S}({a})",
    "sin": "sin{S}({a})", "cos": "cos{S}({a})", "tanh": "tanh{S}({a})", "erf": "erf{S}({a})",
    "abs": "fabs{S}({a})",
    "sign": "{a} > ({T})0 ? ({T})1 : ({a} < ({T})0 ? ({T})-1 : ({T})0)",
    "reciprocal": "({T})1 / {a}", "floor": "floor{S}({a})", "ceil": "ceil{S}({a})",
    "round": "rint{S}({a})", "trunc": "trunc{S}({a})",
    "relu": "{a} != {a} ? {a} : ({a} > ({T})0 ? {a} : ({T})0)",
    "log1p": "log1p{S}({a})", "expm1": "expm1{S}({a})", "tan": "tan{S}({a})",
    "isnan": "{a} != {a}", "isinf": "strata_isinf({a})", "logical_not": "{a} == ({T})0",
}
# isnan/isinf of integers: false, with the operand named (else nvcc warns that its local is
# never referenced)
_FALSE = "((void){a}, false)"
_INT_UNARY = {
    "neg": "({T})(({U})0 - ({U}){a})",
    "abs": "{a} < ({T})0 ? ({T})(({U})0 - ({U}){a}) : {a}",
    "sign": "{a} > ({T})0 ? ({T})1 : ({a} < ({T})0 ? ({T})-1 : ({T})0)",
    "floor": "{a}", "ceil": "{a}", "round": "{a}", "trunc": "{a}",
    "relu": "{a} > ({T})0 ? {a} : ({T})0", "isnan": _FALSE, "isinf": _FALSE,
    "bitwise_not": "~{a}", "logical_not": "{a} == ({T})0",
}
# unsigned types: no `x < 0` (always false, and nvcc warns about it)
_UINT_UNARY = dict(_INT_UNARY, abs="{a}", sign="{a} > ({T})0 ? ({T})1 : ({T})0", relu="{a}")
_BOOL_UNARY = {
    "abs": "{a}", "sign": "{a}", "floor": "{a}", "ceil": "{a}", "round": "{a}", "trunc": "{a}",
    "relu": "{a}", "isnan": _FALSE, "isinf": _FALSE, "bitwise_not": "!{a}",
    "logical_not": "!{a}",
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
    "pow": "pow{S}({a}, {b})",
    "maximum": "({a} != {a} || {b} != {b}) ? {a} + {b} : ({a} > {b} ? {a} : {b})",
    "minimum": "({a} != {a} || {b} != {b}) ? {a} + {b} : ({a} < {b} ? {a} : {b})",
    "remainder": "strata_remainder_f({a}, {b})",
    "floor_divide": "strata_floor_divide_f({a}, {b})",
}
_INT_BINARY = {
    "add": "({T})(({U}){a} + ({U}){b})", "sub": "({T})(({U}){a} - ({U}){b})",
    "mul": "({T})(({U}){a} * ({U}){b})",
    "maximum": "{a} > {b} ? {a} : {b}", "minimum": "{a} < {b} ? {a} : {b}",
    "bitwise_and": "{a} & {b}", "bitwise_or": "{a} | {b}", "bitwise_xor": "{a} ^ {b}",
    "pow": "strata_pow_i<{T}, {U}>({a}, {b})",
    "remainder": "strata_remainder_i<{T}, {U}>({a}, {b})",
    "floor_divide": "strata_floor_divide_i<{T}, {U}>({a}, {b})",
}
_BOOL_BINARY = {
    "add": "{a} || {b}", "mul": "{a} && {b}", "maximum": "{a} || {b}", "minimum": "{a} && {b}",
    "bitwise_and": "{a} && {b}", "bitwise_or": "{a} || {b}", "bitwise_xor": "{a} != {b}",
}
# float ops the CuPy backend runs as several rounded steps (ArrayBackend / Backend defaults)
_COMPOSED = frozenset(("sigmoid", "silu", "rsqrt", "gelu", "gelu_tanh"))

# Backend.gelu's constants, computed as it computes them (the same float64 bits)
_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def helpers() -> str:
    """fused_ops.cu: the helper functions every generated element function may call."""
    global _HELPER_TEXT
    if _HELPER_TEXT is None:
        _HELPER_TEXT = _HELPERS.read_text()
    return _HELPER_TEXT


_HELPER_TEXT: str | None = None


def literal(v: float, d: DType) -> str:
    """A float constant of dtype d, rounded to d as the unfused op rounds its scalar operand;
    the shortest repr of the rounded value reads back to exactly that value."""
    if d is dt.float64:
        return repr(float(v))
    r = float(np.float16(v)) if d is dt.float16 else float(np.float32(v))
    return repr(r) + "f"


def _tables(d: DType, arity: int) -> dict:
    if d.kind == 2:
        return _FLOAT_UNARY if arity == 1 else _FLOAT_BINARY
    if d.kind == 1:
        if arity == 1:
            return _INT_UNARY if d.is_signed else _UINT_UNARY
        return _INT_BINARY
    return _BOOL_UNARY if arity == 1 else _BOOL_BINARY


def defined(op: str, d: DType) -> bool:
    """Whether the generator has `op` for operands of dtype d (the IR's op names; compare and
    logical ops, isnan/isinf, where and cast exist for every dtype)."""
    if op in ("cast", "where", "isnan", "isinf") or op in _COMPARE:
        return True
    if op in _COMPOSED:
        return d.kind == 2
    return op in _tables(d, 1) or op in _tables(d, 2)


class Codegen:
    """The CUDA C lines of one program's live instructions."""

    def __init__(self, program, live: set, who: str = "CuPy()"):
        self.p = program
        self.live = live
        self.who = who
        self._n_tmp = 0

    def _undefined(self, op: str, d: DType) -> DTypeError:
        hint = "; cast to a floating dtype first" if d.kind != 2 else ""
        if d.kind == 2 and op in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"):
            hint = "; cast to an integer dtype first"
        return DTypeError(f"{op} is not defined for {d.name} tensors on {self.who}{hint}")

    def expr(self, op: str, args: tuple, d: DType, names: list) -> tuple:
        """(lines before, expression) of one instruction; raises DTypeError for an op its
        operand dtype does not have (as the unfused op would)."""
        p = self.p
        ds = [p.slot_dtype(a) for a in args]
        xs = [names[a] for a in args]
        a0 = ds[0]
        T = CTYPE[a0]
        if op == "cast":
            return [], _cast(xs[0], a0, d)
        if op == "where":
            if a0 is not dt.bool_:
                raise DTypeError(f"where: the condition must be bool, got {a0.name}")
            return [], f"{xs[0]} ? {xs[1]} : {xs[2]}"
        if op in _COMPARE:
            return [], _COMPARE[op].format(a=xs[0], b=xs[1], T=T)
        if op in _COMPOSED:
            if a0.kind != 2:
                raise self._undefined(op, a0)
            return self._composed(op, xs[0], a0)
        tpl = _tables(a0, len(args)).get(op)
        if tpl is None:
            raise self._undefined(op, a0)
        return [], tpl.format(a=xs[0], b=xs[1] if len(xs) > 1 else "", T=T,
                              U=UTYPE.get(a0, ""), S="" if a0 is dt.float64 else "f")

    def _composed(self, op: str, x: str, d: DType) -> tuple:
        # the unfused ops' steps, each rounded to d: sigmoid as ArrayBackend.sigmoid (the
        # exp(-|x|) form), silu = x * sigmoid(x), rsqrt = 1 / sqrt(x), gelu and gelu_tanh as
        # Backend.gelu's default composition
        T = CTYPE[d]
        S = "" if d is dt.float64 else "f"
        k = self._n_tmp
        self._n_tmp += 1
        lines: list = []

        def step(e: str) -> str:
            name = f"u{k}_{len(lines)}"
            lines.append(f"const {T} {name} = {_round(d, e)};")
            return name

        def c(v: float) -> str:
            return literal(v, d)

        if op in ("sigmoid", "silu"):
            e = step(f"exp{S}(-fabs{S}({x}))")
            sig = f"({x} >= ({T})0 ? ({T})1 : {e}) / {step(f'({T})1 + {e}')}"
            return lines, sig if op == "sigmoid" else f"{x} * {step(sig)}"
        if op == "rsqrt":
            return lines, f"({T})1 / {step(f'sqrt{S}({x})')}"
        if op == "gelu":
            half = step(f"{x} * {c(0.5)}")
            scaled = step(f"{x} * {c(_SQRT1_2)}")
            e = step(f"erf{S}({scaled})")
            return lines, f"{half} * {step(f'{e} + ({T})1')}"
        sq = step(f"{x} * {x}")
        cube = step(f"{sq} * {x}")
        term = step(f"{cube} * {c(0.044715)}")
        inner = step(f"{step(f'{x} + {term}')} * {c(_SQRT_2_PI)}")
        half = step(f"{x} * {c(0.5)}")
        th = step(f"tanh{S}({inner})")
        return lines, f"{half} * {step(f'{th} + ({T})1')}"

    def body(self, names: list) -> list:
        """Lines computing every live instruction; names[s] is the expression of slot s
        (inputs and constants filled in by the caller), instruction slots are appended."""
        p = self.p
        first = p.first_instr_slot
        lines: list = []
        for k, (op, args, d) in enumerate(p.instrs):
            names.append(f"t{k}")
            if first + k not in self.live:
                continue
            pre, e = self.expr(op, args, d, names)
            lines += pre
            lines.append(f"const {CTYPE[d]} t{k} = {_round(d, e)};")
        return lines


def _round(d: DType, e: str) -> str:
    """`e` as a value of dtype d: float16 rounded to half (kept in float), others converted
    to their C type (narrow integers wrap, bool is e != 0)."""
    if d is dt.float16:
        return f"strata_h({e})"
    return f"({CTYPE[d]})({e})"


def _cast(x: str, src: DType, dst: DType) -> str:
    """The unfused cast: float -> int truncates toward zero (through int64, so narrow
    integers wrap like NumPy's); anything -> bool is x != 0; bool -> 0/1."""
    if src is dst:
        return x
    if dst is dt.bool_:
        return f"{x} != ({CTYPE[src]})0"
    T = CTYPE[dst]
    if src is dt.bool_:
        return f"({x} ? ({T})1 : ({T})0)"
    if dst.kind == 2:
        # float16 targets: _round rounds; a float64 source goes in as double (one rounding)
        if dst is dt.float16:
            return x if src.kind == 2 else f"(float)({x})"
        return f"({T})({x})"
    if src.kind == 2 and dst is not dt.int64:
        return f"({T})(long long)({x})"
    return f"({T})({x})"


def element_function(program, write, name: str, who: str = "CuPy()") -> tuple:
    """(source, used inputs, live constants) of `void name(inputs..., constants..., &outputs)`
    computing the program's slots `write` (constant or instruction slots, not inputs). The
    parameters are the compute types of CTYPE: float16 values are passed as float."""
    p = program
    n_in = p.n_inputs
    write = tuple(write)
    live = live_slots(p, write)
    used = [k for k in range(n_in) if k in live]
    consts = [j for j in range(len(p.consts)) if n_in + j in live]
    names = [f"x{k}" for k in range(n_in)] + [f"c{j}" for j in range(len(p.consts))]
    body = Codegen(p, live, who).body(names)
    params = [f"const {CTYPE[p.input_dtypes[k]]} x{k}" for k in used]
    params += [f"const {CTYPE[p.const_dtypes[j]]} c{j}" for j in consts]
    params += [f"{CTYPE[p.slot_dtype(s)]} &r{j}" for j, s in enumerate(write)]
    body += [f"r{j} = {names[s]};" for j, s in enumerate(write)]
    src = (f"__host__ __device__ __forceinline__ void {name}({', '.join(params)}) {{\n    "
           + "\n    ".join(body) + "\n}\n")
    return src, used, consts


def value_function(program, slot: int, name: str, used, consts) -> str:
    """`T name_value(inputs..., constants...)`: element function `name` (written for the one
    output `slot`) as an expression, for a reduction's map expression."""
    p = program
    T = CTYPE[p.slot_dtype(slot)]
    params = [f"const {CTYPE[p.input_dtypes[k]]} x{k}" for k in used]
    params += [f"const {CTYPE[p.const_dtypes[j]]} c{j}" for j in consts]
    args = [f"x{k}" for k in used] + [f"c{j}" for j in consts] + ["r"]
    return (f"__host__ __device__ __forceinline__ {T} {name}_value({', '.join(params)}) {{\n"
            f"    {T} r;\n    {name}({', '.join(args)});\n    return r;\n}}\n")
