"""The fused-elementwise IR: a small, backend-neutral SSA program over broadcast inputs.

Value slots are numbered: inputs first (0..n_inputs-1), then constants, then one slot per
instruction. An instruction is (op, arg_slots, dtype). Every output has the program's full
broadcast shape. `Program.key` holds the structure (ops, dtypes, wiring) but not the constant
values, so a compiled kernel is reused for any constants and any tensor sizes.
"""
from __future__ import annotations

import math

from ...core import dtype as dt
from ...core.dtype import DType
from ...core.errors import ShapeError

UNARY_OPS = frozenset(("neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "abs", "sign",
                       "reciprocal", "floor", "ceil", "round", "trunc", "logical_not",
                       "bitwise_not", "sigmoid", "relu", "log1p", "expm1", "tan", "rsqrt",
                       "silu", "isnan", "isinf", "gelu", "gelu_tanh"))
BINARY_OPS = frozenset(("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder",
                        "floor_divide", "bitwise_and", "bitwise_or", "bitwise_xor"))
COMPARE_OPS = frozenset(("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                         "logical_xor", "isnan", "isinf"))
OTHER_OPS = frozenset(("where", "cast"))
ALL_OPS = UNARY_OPS | BINARY_OPS | COMPARE_OPS | OTHER_OPS
BOOL_OUT = frozenset(("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                      "logical_xor", "logical_not", "isnan", "isinf"))


class StructureKey:
    """Program.key: the structure tuple with its hash worked out once. Kernel caches look a
    program up several times per launch, and hashing the nested tuple anew each time was a
    measurable part of a launch's host time on PoCL."""

    __slots__ = ("parts", "_hash")

    def __init__(self, parts: tuple):
        self.parts = parts
        self._hash = hash(parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or (type(other) is StructureKey and self._hash == other._hash
                                 and self.parts == other.parts)

    def __repr__(self) -> str:
        return f"StructureKey({self.parts!r})"


class Program:
    """A fused elementwise program. Build with ProgramBuilder."""

    __slots__ = ("input_dtypes", "const_dtypes", "consts", "instrs", "outputs", "key")

    def __init__(self, input_dtypes, const_dtypes, consts, instrs, outputs):
        self.input_dtypes = tuple(input_dtypes)
        self.const_dtypes = tuple(const_dtypes)
        self.consts = tuple(consts)
        self.instrs = tuple(instrs)
        self.outputs = tuple(outputs)
        self.key = StructureKey((tuple(d.name for d in self.input_dtypes),
                                 tuple(d.name for d in self.const_dtypes),
                                 tuple((op, args, d.name) for op, args, d in self.instrs),
                                 self.outputs))

    def with_consts(self, consts) -> "Program":
        """The same program (same key, same compiled kernel) with other constant values."""
        p = Program.__new__(Program)
        p.input_dtypes, p.const_dtypes, p.instrs = self.input_dtypes, self.const_dtypes, self.instrs
        p.outputs, p.key = self.outputs, self.key
        p.consts = tuple(consts)
        return p

    @property
    def n_inputs(self) -> int:
        return len(self.input_dtypes)

    @property
    def first_instr_slot(self) -> int:
        return len(self.input_dtypes) + len(self.consts)

    def slot_dtype(self, s: int) -> DType:
        n, c = len(self.input_dtypes), len(self.consts)
        if s < n:
            return self.input_dtypes[s]
        if s < n + c:
            return self.const_dtypes[s - n]
        return self.instrs[s - n - c][2]

    def output_dtypes(self) -> tuple:
        return tuple(self.slot_dtype(s) for s in self.outputs)

    def ops(self) -> list:
        return [op for op, _, _ in self.instrs]

    def __repr__(self) -> str:
        n = len(self.input_dtypes)
        names = [f"in{i}" for i in range(n)] + [repr(v) for v in self.consts]
        lines = []
        for k, (op, args, d) in enumerate(self.instrs):
            names.append(f"t{k}")
            lines.append(f"t{k} = {op}({', '.join(names[a] for a in args)}) : {d.name}")
        outs = ", ".join(names[s] for s in self.outputs)
        return "Program(\n  " + "\n  ".join(lines) + f"\n  -> {outs})"


def live_slots(program: Program, outputs) -> set:
    """Slots the given output slots depend on; dead instructions (backward programs replay
    forward work they may not need) and unread inputs stay out of a generated kernel."""
    first = program.first_instr_slot
    live = set(outputs)
    for k in range(len(program.instrs) - 1, -1, -1):
        if first + k in live:
            live.update(program.instrs[k][1])
    return live


def check_reduce(who: str, program: Program, op: str) -> None:
    """The arguments every backend's fused_reduce requires: a sum/max/min of one output."""
    if op not in ("sum", "max", "min"):
        raise ValueError(f"{who}.fused_reduce: op must be sum, max or min, got {op!r}")
    if len(program.outputs) != 1:
        raise ShapeError(f"{who}.fused_reduce: the program must have one output, it has "
                         f"{len(program.outputs)}")


def plan_outputs(program: Program, view, new, computed_inputs: int = 0) -> tuple:
    """(one result per program output, {slot: result} of the slots a kernel writes, those
    slots in order). An output that is input slot k (k >= computed_inputs) is view(k), a
    value the kernel computes is new(slot), made once however often it is output; the first
    `computed_inputs` inputs are computed by the kernel too (a matmul epilogue's product)."""
    res: list = []
    made: dict = {}
    write: list = []
    for s in program.outputs:
        if computed_inputs <= s < program.n_inputs:
            res.append(view(s))
        elif s in made:
            res.append(made[s])
        else:
            made[s] = new(s)
            write.append(s)
            res.append(made[s])
    return res, made, write


def const_key(value, dtype: DType) -> tuple:
    """What makes two constants one slot: type, value and dtype, with every NaN alike and
    -0.0 apart from 0.0 (equal as numbers, different as operands: 1 / -0.0 is -inf)."""
    if value != value:
        return ("nan", dtype)
    if not value:
        return (type(value), value, dtype, math.copysign(1.0, value))
    return (type(value), value, dtype)


def result_dtype(op: str, arg_dtypes, cast_to: DType | None = None) -> DType:
    if op in BOOL_OUT:
        return dt.bool_
    if op == "cast":
        return cast_to
    if op == "where":
        return arg_dtypes[1]
    return arg_dtypes[0]


class ProgramBuilder:
    """Accumulates instructions; identical instructions are shared (CSE)."""

    def __init__(self):
        self.input_dtypes: list = []
        self.const_dtypes: list = []
        self.consts: list = []
        self.instrs: list = []
        self._memo: dict = {}
        # refs are ("i", k), ("c", k), ("t", k) until finish() numbers the slots
        self._const_memo: dict = {}

    def input(self, dtype: DType):
        self.input_dtypes.append(dtype)
        return ("i", len(self.input_dtypes) - 1)

    def const(self, value, dtype: DType):
        key = const_key(value, dtype)
        ref = self._const_memo.get(key)
        if ref is None:
            self.consts.append(value)
            self.const_dtypes.append(dtype)
            ref = ("c", len(self.consts) - 1)
            self._const_memo[key] = ref
        return ref

    def param(self, dtype: DType):
        """A runtime constant with its own slot (never merged with equal values), so a built
        program can be rerun with new values through Program.with_consts."""
        self.consts.append(0.0 if dtype.kind == 2 else 0)
        self.const_dtypes.append(dtype)
        return ("c", len(self.consts) - 1)

    def dtype_of(self, ref) -> DType:
        kind, k = ref
        if kind == "i":
            return self.input_dtypes[k]
        if kind == "c":
            return self.const_dtypes[k]
        return self.instrs[k][2]

    def op(self, name: str, *args, dtype: DType | None = None):
        if name not in ALL_OPS:
            raise ValueError(f"fusion IR has no op {name!r}")
        d = result_dtype(name, [self.dtype_of(a) for a in args], dtype)
        key = (name, args, d.name)
        ref = self._memo.get(key)
        if ref is None:
            self.instrs.append((name, args, d))
            ref = ("t", len(self.instrs) - 1)
            self._memo[key] = ref
        return ref

    def finish(self, outputs, first_input: int = 0) -> Program:
        """The program; `first_input` names the input that becomes input 0 (a matmul epilogue
        reads the matmul's result there), the others keep their order after it."""
        n, c = len(self.input_dtypes), len(self.consts)
        f = first_input

        def slot(ref):
            kind, k = ref
            if kind == "i":
                return 0 if k == f else (k + 1 if k < f else k)
            return n + k if kind == "c" else n + c + k

        ins = self.input_dtypes
        if f:
            ins = [ins[f]] + ins[:f] + ins[f + 1:]
        instrs = [(op, tuple(slot(a) for a in args), d) for op, args, d in self.instrs]
        return Program(ins, self.const_dtypes, self.consts, instrs, [slot(o) for o in outputs])


def replay(program: Program, b: ProgramBuilder, input_refs) -> list:
    """Copy `program` into builder b over the given input refs; returns refs of all slots."""
    refs = list(input_refs)
    for v, d in zip(program.consts, program.const_dtypes):
        refs.append(b.const(v, d))
    for op, args, d in program.instrs:
        refs.append(b.op(op, *(refs[a] for a in args), dtype=d if op == "cast" else None))
    return refs
