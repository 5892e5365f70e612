"""Matmul with a fused elementwise epilogue on WGPU: matmul.wgsl's register-blocked kernel,
where each result is handed to the program (bias add, activation, ...) instead of being
stored; only the program's outputs are written.

The epilogue reads input 0 as the value the plain matmul would have stored and loaded back
(rounded to the dtype), its other inputs through (row, column) strides from the metadata
block, and evaluates with the same expression snippets as the fused elementwise kernels, so
the outputs are the bits of the matmul followed by the fused program. Batched products
too, when each extra input is the same for every batch entry (read by (row, column) strides:
a bias) or dense in the product's shape (read at the output's index: a residual); other
inputs, or a program whose inputs and constants do not fit the metadata block, take the
protocol's composition (matmul, then the fused program).
"""
from __future__ import annotations

from ...core.backend import Backend
from ...core.shape import matmul_shape, numel
from ..strided import epilogue_read_mode
from .dtypes import WTYPES
from ...decorators.fusion.ir import live_slots, plan_outputs
from .fused_codegen import const_values, program_body, settle
from .runtime import kernel_source
from .ops_nn import _MAXD   # batch dims matmul.wgsl walks
from .tensor import WTensor, new_tensor

_FIRST_WORD = 40   # matmul.wgsl's own metadata ends here
_WORDS = 64        # the uniform block (META_BYTES / 4)


class _Epilogue:
    """What `NNOps._matmul` needs to run one matmul with this epilogue."""

    def __init__(self, owner, program, inputs, shape, write, outs, modes):
        self.program = program
        self.write = write
        self.outputs = outs
        self.live = live_slots(program, write)
        self.used = [k for k in range(1, program.n_inputs) if k in self.live]
        self.modes = tuple(modes[k] for k in self.used)
        ins = [owner._expand_to(inputs[k - 1], shape) for k in self.used]
        words: list = []
        for t in ins:
            words += [t.layout.offset & 0xFFFFFFFF, t.layout.strides[-2] & 0xFFFFFFFF,
                      t.layout.strides[-1] & 0xFFFFFFFF]
        self.cbase = _FIRST_WORD + len(words)
        words += const_values(program)
        self.words = words
        self.bufs = [o.st.buf for o in outs[1:]] + [t.st.buf for t in ins]
        self.keep = [o.st for o in outs] + [t.st for t in ins]
        self.kinds = "w" * (len(outs) - 1) + "r" * len(ins)
        self.ins = ins
        self.key = ("epilogue", program.key, tuple(write), self.modes)

    def fits(self, rt) -> bool:
        return (_FIRST_WORD + len(self.words) <= _WORDS
                and 3 + len(self.bufs) <= rt.max_storage)

    def parts(self, w) -> dict:
        """Template parts of matmul.wgsl: the output type, extra bindings, the store."""
        p = self.program
        outs = self.outputs
        n_out = len(outs)
        decl = [f"@group(0) @binding({4 + j - 1}) var<storage, read_write> eo{j}: "
                f"array<{o.w.store}>;" for j, o in enumerate(outs) if j]
        decl += [f"@group(0) @binding({3 + n_out + b}) var<storage, read> ein{k}: "
                 f"array<{t.w.store}>;" for b, (k, t) in enumerate(zip(self.used, self.ins))]
        consts, body, names = program_body(p, self.live, lambda j: self.cbase + j)
        stmt = [f"let x0 = {settle(w, 'x')};"] if 0 in self.live else []
        for b, (k, t, mode) in enumerate(zip(self.used, self.ins, self.modes)):
            w0 = _FIRST_WORD + 3 * b
            if mode == "b":   # the same for every batch entry: (row, column) strides
                idx = (f"u32(bitcast<i32>(M({w0}u)) + i32(row) * bitcast<i32>(M({w0 + 1}u)) "
                       f"+ i32(col + c) * bitcast<i32>(M({w0 + 2}u)))")
            else:             # dense in the product's shape: the output's own index
                idx = f"u32(bitcast<i32>(M({w0}u)) + i32(base + col + c))"
            stmt.append(f"let x{k} = {t.w.load(f'ein{k}[{idx}]')};")
        stmt += consts + body
        for j, (o, s) in enumerate(zip(outs, self.write)):
            stmt.append(f"{'out' if j == 0 else f'eo{j}'}[base + col + c] = "
                        f"{o.w.wrap(names[s])};")
        enable = "enable f16;" if w.store == "f16" or any(
            WTYPES[d].store == "f16" for d in set(p.input_dtypes) | set(p.const_dtypes)
            | {d for _, _, d in p.instrs}) else ""
        return {"ENABLE": enable, "TO": outs[0].w.store,
                "EXTRA_BINDINGS": "\n".join(decl) + "\n" + kernel_source("common"),
                "STORE_STMT": "\n            ".join(stmt)}


class FusedMatmulOps:
    """Mixin of the WGPU backend: fused_matmul."""

    def fused_matmul(self, program, a, b, inputs, shape: tuple) -> list:
        shape = tuple(shape)
        inputs = list(inputs)
        if type(a) is not WTensor or type(b) is not WTensor:
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        if (shape != matmul_shape(a.shape, b.shape) or a.dtype is not b.dtype
                or a.shape[-1] == 0 or len(shape) - 2 > _MAXD
                or program.n_inputs != len(inputs) + 1
                or program.input_dtypes[0] is not a.dtype):
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        self._fused_check(program, [a] + inputs)   # a stands in for the product (same dtype)
        modes = {k + 1: epilogue_read_mode(x.layout, shape) for k, x in enumerate(inputs)}
        if None in modes.values():
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        res, made, write = plan_outputs(
            program, lambda k: self._expand_to(inputs[k - 1], shape),
            lambda s: new_tensor(self.rt, shape, program.slot_dtype(s)), computed_inputs=1)
        if not write or numel(shape) == 0:
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        epi = _Epilogue(self, program, inputs, shape, write, [made[s] for s in write], modes)
        if not epi.fits(self.rt):
            return Backend.fused_matmul(self, program, a, b, inputs, shape)
        self._matmul(a, b, epi)
        return res


