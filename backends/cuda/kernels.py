"""The pieces of a cupy.ElementwiseKernel / cupy.ReductionKernel for a fused program.

The generated element function (codegen.py) goes into the kernel's preamble with the helpers
of fused_ops.cu; the kernel's operation (or a reduction's map expression) calls it. Inputs are
array parameters of their dtype (`float16 in0`), constants scalar parameters (a float16
constant as a float32 holding the half-rounded value), outputs `out0`, `out1` ... So the source
depends only on the program's structure: other constant values and other tensor sizes reuse
the compiled kernel (CuPy compiles once per parameter types and array ranks, and caches it).

Nothing here needs cupy: the tests build these strings and compile them with nvcc.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...core import dtype as dt
from ...core.dtype import DType
from .codegen import CTYPE, UTYPE, element_function, helpers, value_function

#: NVRTC options: no FMA contraction, so a fused chain rounds like the op-by-op chain
OPTIONS = ("--fmad=false",)
FUNCTION = "strata_fused"


class MapKernel(NamedTuple):
    """ElementwiseKernel(in_params, out_params, operation, name, preamble=...), called with
    inputs[k] for k in `used`, then the constants `consts`, then one output per `write` slot."""
    in_params: str
    out_params: str
    operation: str
    preamble: str
    used: tuple      # input indices, in parameter order
    consts: tuple    # (constant index, dtype), in parameter order
    write: tuple     # program slots written, one output parameter each


class ReduceKernel(NamedTuple):
    """ReductionKernel(in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
    name, reduce_type, preamble=...), called like MapKernel without the outputs."""
    in_params: str
    out_params: str
    map_expr: str
    reduce_expr: str
    post_map_expr: str
    identity: str
    reduce_type: str
    preamble: str
    used: tuple
    consts: tuple


def write_slots(program) -> tuple:
    """The program's distinct output slots that a kernel computes (outputs that are inputs
    are views of them, no kernel work)."""
    n_in = program.n_inputs
    return tuple(dict.fromkeys(s for s in program.outputs if s >= n_in))


def _params(program, used, consts) -> tuple:
    """(parameter declarations, call arguments of the element function)."""
    decl, args = [], []
    for k in used:
        d = program.input_dtypes[k]
        decl.append(f"{d.np.name} in{k}")
        # CuPy's float16 converts to float; the element function computes in float
        args.append(f"(float)(in{k})" if d is dt.float16 else f"in{k}")
    for j in consts:
        d = program.const_dtypes[j]
        decl.append(f"{'float32' if d is dt.float16 else d.np.name} c{j}")
        args.append(f"c{j}")
    return ", ".join(decl), args


def map_kernel(program, who: str = "CuPy()") -> MapKernel:
    """The elementwise kernel computing every output slot of write_slots(program)."""
    write = write_slots(program)
    src, used, consts = element_function(program, write, FUNCTION, who)
    in_params, args = _params(program, used, consts)
    outs = [program.slot_dtype(s) for s in write]
    out_params = ", ".join(f"{d.np.name} out{j}" for j, d in enumerate(outs))
    results = [f"r{j}" for j in range(len(write))]
    op = [f"{CTYPE[d]} r{j};" for j, d in enumerate(outs)]
    op.append(f"{FUNCTION}({', '.join(args + results)});")
    # a float16 output converts from float on assignment (the value is already half-exact)
    op += [f"out{j} = r{j};" for j in range(len(write))]
    return MapKernel(in_params, out_params, "\n".join(op), helpers() + "\n" + src,
                     tuple(used), tuple((j, program.const_dtypes[j]) for j in consts), write)


def reduce_kernel(program, op: str, who: str = "CuPy()") -> ReduceKernel:
    """The reduction (sum/max/min) of the program's single output, computed on the fly."""
    (s,) = program.outputs
    d = program.slot_dtype(s)
    src, used, consts = element_function(program, (s,), FUNCTION, who)
    src += value_function(program, s, FUNCTION, used, consts)
    in_params, args = _params(program, used, consts)
    return ReduceKernel(in_params, f"{d.np.name} out0", f"{FUNCTION}_value({', '.join(args)})",
                        _combine(op, d), "out0 = a", _identity(op, d), CTYPE[d],
                        helpers() + "\n" + src, tuple(used),
                        tuple((j, program.const_dtypes[j]) for j in consts))


def _combine(op: str, d: DType) -> str:
    """REDUCE(a, b) with the unfused reductions' rules: float16 sums accumulate in float,
    integer sums wrap in the dtype, bool sums are `or`, max/min propagate NaN."""
    if op == "sum":
        if d is dt.bool_:
            return "a || b"
        if d.kind == 1:
            return f"({CTYPE[d]})(({UTYPE[d]})a + ({UTYPE[d]})b)"
        return "a + b"
    cmp = ">" if op == "max" else "<"
    pick = f"a {cmp} b ? a : b"
    if d.kind == 2:
        return f"(a != a || b != b) ? a + b : ({pick})"
    return pick


def _identity(op: str, d: DType) -> str:
    if op == "sum":
        return "false" if d is dt.bool_ else "0"
    if d is dt.bool_:
        return "false" if op == "max" else "true"
    if d.kind == 2:
        inf = "strata_inf_d()" if d is dt.float64 else "strata_inf_f()"
        return f"-{inf}" if op == "max" else inf
    info = np.iinfo(d.np)
    sfx = "LL" if d.itemsize == 8 else ""
    if op == "max":
        # the minimum of a signed type as (min + 1) - 1: its literal would not fit
        return f"({info.min + 1}{sfx} - 1)" if info.min else "0"
    return f"{info.max}{sfx}"


def const_args(program, consts) -> list:
    """The constants' kernel arguments: NumPy scalars of the declared parameter types, each
    value rounded or wrapped to its dtype as the unfused op's scalar operand is."""
    out = []
    for j, d in consts:
        v = program.consts[j]
        if d.kind == 2:
            out.append(np.float32(np.float16(v)) if d is dt.float16 else d.np.type(v))
        elif d is dt.bool_:
            out.append(np.bool_(bool(v)))
        else:
            bits = 8 * d.itemsize
            w = int(v) % (1 << bits)
            if d.is_signed and w >= 1 << (bits - 1):
                w -= 1 << bits
            out.append(d.np.type(w))
    return out
