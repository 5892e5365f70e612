"""Reference evaluation of fused programs for tests/test_opencl_fusion.py: the program run
op by op on the backend's unfused kernels, and in NumPy float64/int64 with each value rounded
or wrapped to its dtype; inputs reaching the kernel as broadcast, strided or flipped views."""
from __future__ import annotations

import math

import numpy as np

from strata.core import dtype as dt
from strata.core.backend import Backend
from strata.decorators.fusion import ProgramBuilder


def unfused(B, program, ins, shape):
    """The same program run op by op with the backend's own unfused kernels."""
    return Backend.fused_elementwise(B, program, ins, shape)


# ---------------------------------------------------------------------------- NumPy reference
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _int_pow(a, b):
    a, b = np.broadcast_arrays(a, b)
    pos = np.power(a, np.abs(b))
    neg = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 != 0, -1, 1), 0))
    return np.where(b < 0, neg, pos)


_NP = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "erf": _erf, "abs": np.abs,
    "sign": lambda x: np.nan_to_num(np.sign(x)), "reciprocal": lambda x: 1.0 / x,
    "floor": np.floor, "ceil": np.ceil, "round": np.rint, "trunc": np.trunc,
    "relu": lambda x: np.where(np.isnan(x), x, np.maximum(x, 0)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "silu": lambda x: x / (1 + np.exp(-x)),
    "log1p": np.log1p, "expm1": np.expm1, "tan": np.tan, "rsqrt": lambda x: 1 / np.sqrt(x),
    "isnan": np.isnan, "isinf": np.isinf, "logical_not": np.logical_not,
    "bitwise_not": np.invert,
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                  * (x + 0.044715 * x ** 3))),
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "remainder": np.remainder,
    "floor_divide": np.floor_divide, "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor, "eq": np.equal,
    "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor, "where": np.where,
}


def _settle(v, d):
    """A float64/int64 value as dtype d holds it: rounded to d, narrow integers wrapped."""
    if d is dt.bool_:
        return np.asarray(v) != 0
    if d.is_floating_point:
        return np.asarray(v, np.float64).astype(d.np).astype(np.float64)
    return np.asarray(v).astype(np.int64).astype(d.np).astype(np.int64)


def np_eval(program, arrays, shape):
    slots = [_settle(a, d) for a, d in zip(arrays, program.input_dtypes)]
    slots += [_settle(v, d) for v, d in zip(program.consts, program.const_dtypes)]
    for op, args, d in program.instrs:
        vals = [slots[a] for a in args]
        src = program.slot_dtype(args[0])
        if op == "cast":
            v = vals[0]
            r = (v != 0) if d is dt.bool_ else (np.trunc(v) if v.dtype == np.float64 and
                                               not d.is_floating_point else v)
        elif src is dt.bool_ and op == "bitwise_not":
            r = np.logical_not(vals[0])
        elif src is dt.bool_ and op not in ("where",):
            # bool math in 0/1 integers, settled back to bool (add is or, mul is and ...)
            r = _NP[op](*[np.asarray(v, np.int64) for v in vals])
        elif op == "pow" and not src.is_floating_point:
            r = _int_pow(*vals)
        else:
            with np.errstate(all="ignore"):
                r = _NP[op](*vals)
        slots.append(_settle(r, d))
    return [np.broadcast_to(slots[s], shape) for s in program.outputs]


def sample(rng, shape, d, lo=-3.0, hi=3.0):
    if d is dt.bool_:
        return rng.random(shape) < 0.5
    if d.is_floating_point:
        return rng.uniform(lo, hi, shape).astype(d.np)
    info = np.iinfo(d.np)
    return rng.integers(max(int(lo * 40), info.min), min(int(hi * 40), info.max) + 1,
                        shape).astype(d.np)


def make_input(B, rng, d, shape, kind):
    """(primitive, array) of one input reaching the kernel as a broadcast or strided view."""
    if kind == "bcast":   # fewer dims and size-1 dims
        a = sample(rng, (1,) + shape[1:-1] + (1,) if len(shape) > 1 else (), d)
        return B.from_numpy(a, d), a
    if kind == "row":     # fewer dims
        a = sample(rng, shape[1:], d)
        return B.from_numpy(a, d), a
    if kind == "scalar":
        a = sample(rng, (), d)
        return B.from_numpy(a, d), a
    a = sample(rng, shape, d)
    if kind == "transposed":
        p = B.from_numpy(np.ascontiguousarray(np.moveaxis(a, 0, -1)), d)
        return B.permute(p, (len(shape) - 1,) + tuple(range(len(shape) - 1))), a
    if kind == "strided":  # every other element, flipped along the last dim
        big = np.repeat(a, 2, axis=-1)[..., ::-1]
        p = B.from_numpy(np.ascontiguousarray(big), d)
        n = len(shape)
        v = B.flip(B.slice(p, (0,) * n, big.shape, (1,) * (n - 1) + (2,)), (n - 1,))
        return v, big[..., ::2][..., ::-1]
    return B.from_numpy(a, d), a


def check_outputs(B, program, ins, arrays, shape, got, rtol, atol_scale):
    ref = unfused(B, program, ins, shape)
    want = np_eval(program, arrays, shape)
    for g, r, w, s in zip(got, ref, want, program.outputs):
        d = program.slot_dtype(s)
        g, r = B.to_numpy(g), B.to_numpy(r)
        assert g.dtype == d.np and g.shape == tuple(shape)
        if d.is_floating_point:
            # the 8-wide builtins of PoCL may differ from its scalar ones in the last bit
            tol = 2e-6 if d is dt.float32 else 1e-14
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol, equal_nan=True)
            atol = atol_scale * (1.0 + np.max(np.abs(w[np.isfinite(w)]), initial=0.0))
            np.testing.assert_allclose(g.astype(np.float64), w, rtol=rtol, atol=atol,
                                       equal_nan=True)
        else:
            np.testing.assert_array_equal(g, r)
            np.testing.assert_array_equal(g, w.astype(d.np))


# ---------------------------------------------------------------------------- random programs
_SMOOTH_UNARY = ("neg", "sin", "cos", "tanh", "abs", "sigmoid", "relu", "erf", "silu",
                 "gelu", "gelu_tanh", "exp")


def random_float_program(rng, d, n_in, n_ops):
    b = ProgramBuilder()
    vals = [b.input(d) for _ in range(n_in)]
    for _ in range(n_ops):
        a = vals[rng.integers(len(vals))]
        c = vals[rng.integers(len(vals))]
        k = rng.integers(4)
        if k == 0:
            op = str(rng.choice(_SMOOTH_UNARY))
            if op == "exp":
                a = b.op("tanh", a)
            r = b.op(op, a)
        elif k == 1:
            r = b.op(str(rng.choice(["add", "sub", "mul", "maximum", "minimum"])), a, c)
        elif k == 2:
            r = b.op(str(rng.choice(["add", "mul", "sub"])), a,
                     b.const(float(np.float32(rng.uniform(-2, 2))), d))
        else:
            cmp = str(rng.choice(["gt", "lt", "ge", "le"]))
            r = b.op("where", b.op(cmp, a, c), a, c)  # continuous: a max or a min
        vals.append(r)
    return b.finish([vals[-1], vals[-2], vals[n_in]])


KINDS = ("plain", "bcast", "row", "transposed", "strided", "scalar")


def random_int_program(rng, d, n_in, n_ops):
    b = ProgramBuilder()
    vals = [b.input(d) for _ in range(n_in)]
    for _ in range(n_ops):
        a = vals[rng.integers(len(vals))]
        c = vals[rng.integers(len(vals))]
        k = rng.integers(5)
        if k == 0:
            r = b.op(str(rng.choice(["neg", "abs", "sign"])), a)
        elif k == 1:
            r = b.op(str(rng.choice(["add", "sub", "mul", "maximum", "minimum", "bitwise_and",
                                     "bitwise_or", "bitwise_xor"])), a, c)
        elif k == 2:
            op = str(rng.choice(["remainder", "floor_divide", "add", "mul"]))
            r = b.op(op, a, b.const(int(rng.choice([-7, -3, 2, 5, 13])), d))
        elif k == 3:
            cmp = b.op(str(rng.choice(["eq", "ne", "lt", "le", "gt", "ge"])), a, c)
            r = b.op("where", cmp, a, b.op("sub", c, b.const(1, d)))
        else:
            w = b.op("cast", a, dtype=dt.int8)
            r = b.op("cast", b.op("add", w, w), dtype=d)
        vals.append(r)
    return b.finish([vals[-1], vals[-2]])


def check_random_int_program(B, d, seed: int = 7):
    """A random 14-op integer program over strided, broadcast and transposed inputs of shape
    (6, 5, 4): B's fused kernel must give exactly the unfused ops' and NumPy's values."""
    rng = np.random.default_rng(seed)
    shape = (6, 5, 4)
    p = random_int_program(rng, d, 3, 14)
    pairs = [make_input(B, rng, d, shape, k) for k in ("strided", "bcast", "transposed")]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    check_outputs(B, p, ins, arrays, shape, B.fused_elementwise(p, ins, shape), 0, 0)
