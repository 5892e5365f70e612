"""Matmul with a fused elementwise epilogue on OpenCL: matmul.cl's kernels, with each result
handed to a generated function that evaluates the program (bias add, activation, ...) and
writes the program's outputs — the product itself is written only when the program outputs it.

The epilogue reads input 0 as the value the plain matmul would have stored (rounded to the
dtype), and evaluates with FP contraction off, so the outputs are the bits of matmul followed
by the fused program. The matmul's own loop keeps its contracted multiply-adds (the pragma
applies per function). Its other inputs are read through their (row, column) strides when
they are the same for every batch entry (a bias), or at the output's own index when they are
dense in the product's shape (a residual); other inputs take the composition. Kernels are
cached by (matmul variant, program key, outputs written, how each input is read).
"""
from __future__ import annotations

import numpy as np

from ...core.backend import Backend
from ...core.memo import memo
from ...core.shape import matmul_shape, numel
from ..strided import Layout, epilogue_read_mode
from . import runtime as rt
from .array import CLArray, broadcast_layout
from ...decorators.fusion.ir import live_slots, plan_outputs
from .fused_codegen import Codegen


def _epilogue_spec(owner, program, write, modes) -> tuple:
    """(live slots, used inputs, their read modes, constant declarations, live constants)."""
    live = live_slots(program, write)
    used = [k for k in range(1, program.n_inputs) if k in live]
    n_in = program.n_inputs
    return (live, used, tuple(modes[k] for k in used), owner._const_args(program, live)[0],
            tuple((j, d) for j, d in enumerate(program.const_dtypes) if n_in + j in live))


class _Epilogue:
    """What `NNOps._matmul` needs to run one matmul with this epilogue."""

    def __init__(self, owner, program, inputs, shape, write, outs, modes):
        self.program = program
        self.write = write                      # program slots written, in output order
        self.outputs = outs                     # their arrays
        # what depends on the program's structure only is worked out once
        skey = (program.key, tuple(write), tuple(modes[k] for k in sorted(modes)))
        spec = memo(owner._rt.epilogue_specs, skey,
                    lambda: _epilogue_spec(owner, program, write, modes))
        self.live, self.used, self.modes, self.cdecl, const_slots = spec
        self.key = (program.key, tuple(write), self.modes)   # what the kernel depends on
        cvals = [rt.scalar_arg(program.consts[j], d) for j, d in const_slots]
        args: list = [o.buf for o in outs]
        for k, mode in zip(self.used, self.modes):
            lay = broadcast_layout(inputs[k - 1].layout, shape)
            args += [inputs[k - 1].buf, np.int64(lay.offset)]
            if mode == "b":
                args += [np.int64(lay.strides[-2]), np.int64(lay.strides[-1])]
        self.args = args + cvals

    def kernel(self, owner, d, defs: str, name: str):
        key = ("matmul_epilogue", d.name, defs) + self.key
        return owner._fused_kernel(key, name, lambda: self.source(owner, d, defs))

    def source(self, owner, d, defs: str) -> str:
        p = self.program
        ty = rt.CL_TYPE
        # parameter names start with e: the matmul kernels' own names (c, c0, ...) are taken
        kparams = [f"__global {ty[p.slot_dtype(s)]}* restrict eo{j}"
                   for j, s in enumerate(self.write)]
        for k, mode in zip(self.used, self.modes):
            kparams += [f"__global const {ty[p.input_dtypes[k]]}* restrict ein{k}",
                        f"const long ef{k}"]
            if mode == "b":
                kparams += [f"const long esn{k}", f"const long esm{k}"]
        kparams += [d.replace(" c", " ec", 1) for d in self.cdecl]
        cg = Codegen(p, self.live, str(owner))
        slot_names = [f"x{k}" for k in range(p.n_inputs)] + [f"ec{j}" for j in range(len(p.consts))]
        body = cg.body(slot_names)
        # the epilogue is a statement macro at the store, not a function: PoCL made a call per
        # element of the product (measured 20-30 ns each)
        loads = [f"const {ty[p.input_dtypes[0]]} x0 = STORE_T(e_v);"] if 0 in self.live else []
        # an input is read by (row, column) strides when it is the same for every batch
        # entry ('b': a bias, a mask) or at the output's own index when it is dense in the
        # product's shape ('f': a residual)
        loads += [f"const {ty[p.input_dtypes[k]]} x{k} = "
                  + (f"ein{k}[ef{k} + e_r * esn{k} + e_col * esm{k}];" if mode == "b"
                     else f"ein{k}[ef{k} + e_i];") for k, mode in zip(self.used, self.modes)]
        stores = [f"eo{j}[e_i] = {slot_names[s]};" for j, s in enumerate(self.write)]
        dtypes = set(p.input_dtypes) | set(p.const_dtypes) | {d_ for _, _, d_ in p.instrs}
        lines = (['_Pragma("OPENCL FP_CONTRACT OFF")',
                  "const long e_r = (r), e_col = (col); const ACC e_v = (v);",
                  "const long e_i = (idx);"] + loads + body + stores)
        # helpers before the kernels; fused_ops.cl turns contraction off for the file, the
        # matmul loop wants it back on (its multiply-adds are FMAs); the epilogue block turns
        # it off for itself
        prelude = (rt.extensions_header(*dtypes) + owner._programs.source("fused_ops.cl")
                   + "\n" + cg.helper_defs() + "\n#pragma OPENCL FP_CONTRACT ON\n"
                   + f"#define EPI_KPARAMS , {', '.join(kparams)}\n"
                   + "#define STORE_C(idx, r, col, v) { " + " \\\n    ".join(lines) + " }\n")
        return owner._header(d) + defs + prelude + owner._programs.source("matmul.cl")


# Ops the epilogue evaluates at no measurable cost on a CPU device. It runs one element at a
# time where PoCL calls builtins (exp, erf, floor ...) as functions, while the separate fused
# kernel evaluates them eight-wide: measured on 512x1024 @ 1024x1024, the GELU epilogue took
# 1.7x the matmul + fused kernel, the bias + ReLU one 0.91x (64x784 @ 784x128: 1.07x / 0.77x).
_CPU_EPILOGUE_OPS = frozenset(("add", "sub", "mul", "div", "neg", "abs", "sign", "relu",
                               "maximum", "minimum", "reciprocal", "eq", "ne", "lt", "le", "gt",
                               "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
                               "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
                               "where", "cast", "isnan", "isinf"))


# arguments of matmul.cl's kernels before an epilogue's own
_MATMUL_ARGS = 19


class FusedMatmulOps:
    """Mixin of OpenCL: fused_matmul."""

    def fused_matmul(self, program, a, b, inputs, shape: tuple) -> list:
        shape = tuple(shape)
        inputs = list(inputs)
        if type(a) is not CLArray or type(b) is not CLArray:
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        la, lb = a.layout, b.layout
        # programs that are not over the product's shape take the composition
        if (shape != matmul_shape(la.shape, lb.shape) or a.dtype is not b.dtype
                or la.shape[-1] == 0 or program.n_inputs != len(inputs) + 1 or program.input_dtypes[0] is not a.dtype
                or (self._rt.is_cpu and not _cheap(program))):
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        # input 0 is the product: checked as a stand-in of its shape
        product = CLArray(a.storage, broadcast_layout(Layout.contiguous((1, 1)), shape), a.dtype)
        self._fused_check(program, [product] + inputs, shape, "fused_matmul")
        modes = {k + 1: epilogue_read_mode(x.layout, shape) for k, x in enumerate(inputs)}
        if None in modes.values():
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        res, made, write = plan_outputs(
            program, lambda k: CLArray(inputs[k - 1].storage,
                                       broadcast_layout(inputs[k - 1].layout, shape),
                                       inputs[k - 1].dtype),
            lambda s: self._new(shape, program.slot_dtype(s)), computed_inputs=1)
        if not write or numel(shape) == 0:
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        epi = _Epilogue(self, program, inputs, shape, write, [made[s] for s in write], modes)
        if not self._fits(_MATMUL_ARGS + len(epi.args)):
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        self._matmul(a, b, epi)
        return res


_CHEAP: dict = {}   # program structure -> whether every op is in _CPU_EPILOGUE_OPS


def _cheap(program) -> bool:
    return memo(_CHEAP, program.key, lambda: _CPU_EPILOGUE_OPS.issuperset(program.ops()))
