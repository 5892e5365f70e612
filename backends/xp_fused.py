"""NumPy evaluation of fused elementwise programs with buffer reuse.

NumPy cannot fuse loops, but most of what a fused kernel saves on a CPU is allocation and page
faults: each op of a chain normally allocates a fresh array. Here every instruction writes with
`out=` into a buffer, and a buffer is handed to a later instruction once its last reader has
run, so a chain of any length touches at most a few buffers.

What to call, with which slots, into which buffer, depends only on the program's structure and
the input shapes, so it is worked out once into a `_Plan` and cached: an optimizer step reruns
the same plan every iteration with new constants, paying one ufunc call per instruction and
nothing else. Ops without a plain ufunc (erf, sigmoid, gelu, checked integer division ...) call
the backend's own method, so results are bit-identical to the unfused ops.
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

_MAX_PLANS = 512
_plans: dict = {}   # (program.key, input layout, shape, donate) -> _Plan


class _Plan:
    """steps: (fn, arg slots, buffer id, or -1 for a backend call that allocates its result).
    buffers: (shape, numpy dtype) per buffer id; nbytes: their sizes; donors: buffer id ->
    input index."""

    __slots__ = ("steps", "buffers", "nbytes", "donors")

    def __init__(self, steps, buffers, donors):
        self.steps, self.buffers, self.donors = steps, buffers, donors
        self.nbytes = tuple(int(np.prod(shp, dtype=np.int64)) * np.dtype(d).itemsize
                            for shp, d in buffers)


def _generic(B, op, d):
    """The backend's own method for an op with no out= ufunc; scalars go in as Python values."""
    if op == "cast":
        def fn(x):
            return B.cast(x, d) if isinstance(x, np.ndarray) else np.asarray(x, d.np)
        return fn
    if op in ("gelu", "gelu_tanh"):
        mode = "none" if op == "gelu" else "tanh"
        return lambda x: B.gelu(x, mode)
    meth = getattr(B, op)
    return lambda *a: meth(*[v if isinstance(v, np.ndarray) else v.item() for v in a])


def _build(B, program, inputs, shape, donate) -> _Plan:
    first = program.first_instr_slot
    shapes = [getattr(a, "shape", ()) for a in inputs] + [()] * len(program.consts)
    last_use = {}
    for k, (_, args, _) in enumerate(program.instrs):
        for a in args:
            last_use[a] = k
    outputs = set(program.outputs)
    buffers: list = []
    donors: dict = {}
    into = {}  # instruction slot -> buffer id of the donated input it may write
    for k_out, i_in in (donate or {}).items():
        s_out, a = program.outputs[k_out], inputs[i_in]
        if (s_out >= first and isinstance(a, np.ndarray) and a.shape == tuple(shape)
                and a.dtype == program.slot_dtype(s_out).np
                and last_use.get(i_in, -1) <= s_out - first):
            into[s_out] = len(buffers)
            donors[len(buffers)] = i_in
            buffers.append((a.shape, a.dtype))
    free: dict = {}     # (shape, dtype) -> buffer ids whose value is dead
    holds: dict = {}    # slot -> buffer id it occupies (recyclable after its last read)
    steps = []
    for k, (op, args, d) in enumerate(program.instrs):
        slot = first + k
        shp = ()
        for a in args:
            s = shapes[a]
            shp = s if shp == s else broadcast_shapes(shp, s, op)
        shapes.append(shp)
        uf = _UFUNC.get(op)
        if uf is None and d.kind == 2:
            uf = _FLOAT_UFUNC.get(op)
        if uf is None and op == "relu" and d.kind != 0:
            zero = d.np.type(0)

            def uf(x, out, _z=zero):
                return np.maximum(x, _z, out=out)
        if uf is not None:
            bid = into.get(slot)
            if bid is None or buffers[bid][0] != shp:
                bid = None
                # in place over an operand read for the last time here: two memory streams
                # instead of three, and the pass stays in cache
                for a in args:
                    if (a in holds and last_use.get(a) == k and a not in outputs
                            and buffers[holds[a]] == (shp, d.np)):
                        bid = holds.pop(a)
                        break
                if bid is None:
                    lst = free.get((shp, d.np))
                    if lst:
                        bid = lst.pop()
                    else:
                        bid = len(buffers)
                        buffers.append((shp, d.np))
                holds[slot] = bid
            steps.append((uf, args, bid))
        else:
            steps.append((_generic(B, op, d), args, -1))
        for a in set(args):
            if a in holds and last_use.get(a) == k and a not in outputs:
                bid = holds.pop(a)
                free.setdefault(buffers[bid], []).append(bid)
    return _Plan(tuple(steps), tuple(buffers), donors)


def fused_elementwise(B, program, inputs, shape, alloc=None, donate=None):
    """donate: {output index: input index} the caller gives up (see Backend.fused_update)."""
    key = (program.key, tuple((getattr(a, "shape", None), getattr(a, "dtype", None))
                              for a in inputs), tuple(shape),
           tuple(sorted(donate.items())) if donate else ())
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
        plan = _plans[key] = _build(B, program, inputs, shape, donate)
    # a PoolAllocator's pool when set, for the buffers it takes (smaller ones never reach it:
    # a call into the pool only to be passed on costs more than the allocation)
    new = np.empty if alloc is None else alloc.empty
    lim = getattr(alloc, "min_bytes", 0) if alloc is not None else 0
    bufs = [None] * len(plan.buffers)
    for bid, i in plan.donors.items():
        a = inputs[i]
        if a.flags.c_contiguous and a.flags.writeable:
            bufs[bid] = a
    slots = list(inputs)
    slots.extend(d.np.type(v) for v, d in zip(program.consts, program.const_dtypes))
    for fn, args, bid in plan.steps:
        if bid < 0:
            slots.append(fn(*[slots[a] for a in args]))
            continue
        out = bufs[bid]
        if out is None:
            shp, npd = plan.buffers[bid]
            out = bufs[bid] = (np.empty if lim and plan.nbytes[bid] < lim else new)(shp, npd)
        if len(args) == 2:
            slots.append(fn(slots[args[0]], slots[args[1]], out=out))
        else:
            slots.append(fn(*[slots[a] for a in args], out=out))
    n_in = len(inputs)
    first = program.first_instr_slot
    outs = []
    for s in program.outputs:
        v = slots[s]
        if not isinstance(v, np.ndarray) or v.ndim == 0 and n_in <= s < first:
            v = np.full(shape, v, program.slot_dtype(s).np)
        elif v.shape != tuple(shape):
            v = np.broadcast_to(v, shape)
        outs.append(v)
    return outs
