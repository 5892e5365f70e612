"""NumPy evaluation of fused elementwise programs with buffer reuse.

NumPy cannot fuse loops, but most of what a fused kernel saves on a CPU is allocation and page
faults: each op of a chain normally allocates a fresh array. Here every instruction writes with
`out=` into a buffer taken from a small free list, and a buffer returns to the list after the
last instruction that reads it, so a chain of any length touches at most a few buffers.
Ops without a plain ufunc (erf, sigmoid, gelu, checked integer division ...) call the backend's
own method, so results are bit-identical to the unfused ops.
"""
from __future__ import annotations

import numpy as np

from ..core.shape import broadcast_shapes

_UFUNC = {"neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin,
          "cos": np.cos, "tanh": np.tanh, "abs": np.absolute, "floor": np.floor,
          "ceil": np.ceil, "trunc": np.trunc, "logical_not": np.logical_not,
          "bitwise_not": np.invert, "log1p": np.log1p, "expm1": np.expm1, "tan": np.tan,
          "isnan": np.isnan, "isinf": np.isinf, "add": np.add, "sub": np.subtract,
          "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
          "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
          "bitwise_xor": np.bitwise_xor, "eq": np.equal, "ne": np.not_equal, "lt": np.less,
          "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
          "logical_and": np.logical_and, "logical_or": np.logical_or,
          "logical_xor": np.logical_xor}
# float-only ufuncs that are safe with out= (the backend checks dtypes for the rest)
_FLOAT_UFUNC = {"div": np.true_divide, "pow": np.power, "reciprocal": np.reciprocal,
                "round": np.rint}


def fused_elementwise(B, program, inputs, shape, alloc=None, donate=None):
    """donate: {output index: input index} the caller gives up (see Backend.fused_update)."""
    n_in = len(inputs)
    first = program.first_instr_slot
    slots = list(inputs) + [d.np.type(v) for v, d in zip(program.consts, program.const_dtypes)]
    outputs = set(program.outputs)
    last_use = {}
    for k, (_, args, _) in enumerate(program.instrs):
        for a in args:
            last_use[a] = k
    free: dict = {}
    owned = set()  # slots whose buffer this evaluation allocated (may be recycled)
    # instruction slot -> donated input array it may write into
    into = {}
    for k_out, i_in in (donate or {}).items():
        s_out, a = program.outputs[k_out], inputs[i_in]
        if (s_out >= first and isinstance(a, np.ndarray) and a.shape == tuple(shape)
                and a.dtype == program.slot_dtype(s_out).np and a.flags.c_contiguous
                and a.flags.writeable and last_use.get(i_in, -1) <= s_out - first):
            into[s_out] = a

    new = np.empty if alloc is None else alloc.empty  # a PoolAllocator's pool when set

    def take(shp, dtype):
        lst = free.get((shp, dtype))
        return lst.pop() if lst else new(shp, dtype)

    for k, (op, args, d) in enumerate(program.instrs):
        vals = [slots[a] for a in args]
        slot = first + k
        shp = ()
        for v in vals:
            s = getattr(v, "shape", ())
            shp = s if shp == s else broadcast_shapes(shp, s, op)
        uf = _UFUNC.get(op)
        if uf is None and d.kind == 2:
            uf = _FLOAT_UFUNC.get(op)
        if uf is not None:
            dst = into.get(slot)
            if dst is not None and dst.shape == shp:
                r = uf(*vals, out=dst)
            else:
                r = uf(*vals, out=take(shp, d.np))
                owned.add(slot)
        elif op == "relu" and d.kind != 0:
            r = np.maximum(vals[0], d.np.type(0), out=take(shp, d.np))
            owned.add(slot)
        elif op == "cast":
            r = B.cast(vals[0], d) if isinstance(vals[0], np.ndarray) else np.asarray(vals[0], d.np)
        elif op == "where":
            r = B.where(*[v if isinstance(v, np.ndarray) else v.item() for v in vals])
        elif op in ("gelu", "gelu_tanh"):
            r = B.gelu(vals[0], "none" if op == "gelu" else "tanh")
        else:
            r = getattr(B, op)(*[v if isinstance(v, np.ndarray) else v.item() for v in vals])
        slots.append(r)
        # recycle buffers whose last reader was this instruction
        for a in set(args):
            if a in owned and last_use.get(a) == k and a not in outputs:
                buf = slots[a]
                free.setdefault((buf.shape, buf.dtype), []).append(buf)
                owned.discard(a)
    outs = []
    for s in program.outputs:
        v = slots[s]
        if not isinstance(v, np.ndarray) or v.ndim == 0 and n_in <= s < first:
            v = np.full(shape, v, program.slot_dtype(s).np)
        elif v.shape != tuple(shape):
            v = np.broadcast_to(v, shape)
        outs.append(v)
    return outs
