"""Backward rules of the Autodiff decorator: elementwise ops, reductions, movement, indexing.

A rule is `rule(B, saved, g, nx) -> tuple` with one gradient (or None) per input edge: B is
the INNER backend, `saved` what the forward kept, `g` the gradient of the output (an inner
primitive), `nx` the node's edges (`nx[i] is None`: input i needs no gradient). Rules use
only primitives of B, so when B is itself an Autodiff they are recorded and differentiable
again (higher-order gradients). Scalars always go second in binary ops (the protocol allows a
scalar operand; only the right-hand position is universal), and a scalar that must be a
tensor is lifted with `lift`.

Savers `save(B, a, b, out, ta, tb)` pick what a binary rule keeps; a, b are inner primitives
or Python scalars, ta/tb say which are tensors.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import AutodiffError


def rule(name: str, tensors: bool = True):
    """Name a rule (torch's grad_fn name) and say whether `saved` holds tensors to free."""
    def deco(fn):
        fn.grad_fn_name = name
        fn.frees = tensors
        return fn
    return deco


_SCALAR = (int, float, bool, np.number, np.bool_)


def is_scalar(x) -> bool:
    return isinstance(x, _SCALAR)


def lift(B, s, like):
    """Scalar s as a tensor of like's shape and dtype."""
    return B.full(B.shape(like), s, B.dtype(like))


def unbroadcast(B, g, shape):
    """Sum g down to `shape` (undo broadcasting of an operand)."""
    gs = B.shape(g)
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and gs[i + lead] != 1)
    if axes:
        g = B.sum(g, axes, True)
    return B.reshape(g, shape)


def zeros(B, g):
    return B.full(B.shape(g), 0, B.dtype(g))


def rev_cumsum(B, x, axis):
    return B.flip(B.cumsum(B.flip(x, (axis,)), axis), (axis,))


def keep_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


# ---------------------------------------------------------------- savers for binary ops
def save_shapes(B, a, b, out, ta, tb):
    return (B.shape(a) if ta else None, B.shape(b) if tb else None)


def save_ab(B, a, b, out, ta, tb):
    return (a, b, B.shape(a) if ta else None, B.shape(b) if tb else None)


def save_abo(B, a, b, out, ta, tb):
    return (a, b, out, B.shape(a) if ta else None, B.shape(b) if tb else None)


# ---------------------------------------------------------------- unary
@rule("NegBackward", tensors=False)
def neg_bw(B, s, g, nx):
    return (B.neg(g),)


@rule("ExpBackward")
def exp_bw(B, s, g, nx):
    return (B.mul(g, s[0]),)


@rule("LogBackward")
def log_bw(B, s, g, nx):
    return (B.div(g, s[0]),)


@rule("SqrtBackward")
def sqrt_bw(B, s, g, nx):
    return (B.div(g, B.mul(s[0], 2.0)),)


@rule("SinBackward")
def sin_bw(B, s, g, nx):
    return (B.mul(g, B.cos(s[0])),)


@rule("CosBackward")
def cos_bw(B, s, g, nx):
    return (B.neg(B.mul(g, B.sin(s[0]))),)


def _one_minus(B, x):
    return B.neg(B.sub(x, 1.0))


@rule("TanhBackward")
def tanh_bw(B, s, g, nx):
    y = s[0]
    return (B.mul(g, _one_minus(B, B.mul(y, y))),)


@rule("ErfBackward")
def erf_bw(B, s, g, nx):
    x = s[0]
    return (B.mul(g, B.mul(B.exp(B.neg(B.mul(x, x))), 2.0 / math.sqrt(math.pi))),)


@rule("AbsBackward")
def abs_bw(B, s, g, nx):
    return (B.mul(g, B.sign(s[0])),)


def _zero_rule(name):
    @rule(name, tensors=False)
    def zero_bw(B, s, g, nx):
        return (zeros(B, g),)
    return zero_bw


sign_bw = _zero_rule("SignBackward")
floor_bw = _zero_rule("FloorBackward")
ceil_bw = _zero_rule("CeilBackward")
round_bw = _zero_rule("RoundBackward")
trunc_bw = _zero_rule("TruncBackward")


@rule("ReciprocalBackward")
def reciprocal_bw(B, s, g, nx):
    y = s[0]
    return (B.neg(B.mul(g, B.mul(y, y))),)


@rule("SigmoidBackward")
def sigmoid_bw(B, s, g, nx):
    y = s[0]
    return (B.mul(g, B.mul(y, _one_minus(B, y))),)


@rule("ReluBackward")
def relu_bw(B, s, g, nx):
    return (B.where(B.gt(s[0], 0), g, 0.0),)


@rule("Log1PBackward")
def log1p_bw(B, s, g, nx):
    return (B.div(g, B.add(s[0], 1.0)),)


@rule("Expm1Backward")
def expm1_bw(B, s, g, nx):
    return (B.mul(g, B.add(s[0], 1.0)),)


@rule("TanBackward")
def tan_bw(B, s, g, nx):
    y = s[0]
    return (B.mul(g, B.add(B.mul(y, y), 1.0)),)


@rule("RsqrtBackward")
def rsqrt_bw(B, s, g, nx):
    y = s[0]
    return (B.mul(B.mul(g, B.mul(y, B.mul(y, y))), -0.5),)


@rule("SiluBackward")
def silu_bw(B, s, g, nx):
    x = s[0]
    sg = B.sigmoid(x)
    return (B.mul(g, B.mul(sg, B.add(B.mul(x, _one_minus(B, sg)), 1.0))),)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@rule("GeluBackward")
def gelu_bw(B, s, g, nx):
    x, approximate = s
    if approximate == "tanh":
        # torch's formula: d/dx [0.5 x (1 + tanh(k (x + c x^3)))]
        c = 0.044715
        x2 = B.mul(x, x)
        t = B.tanh(B.mul(B.add(x, B.mul(B.mul(x2, x), c)), _SQRT_2_OVER_PI))
        left = B.mul(B.add(t, 1.0), 0.5)
        right = B.mul(B.mul(B.mul(x, 0.5), _one_minus(B, B.mul(t, t))),
                      B.mul(B.add(B.mul(x2, 3.0 * c), 1.0), _SQRT_2_OVER_PI))
        return (B.mul(g, B.add(left, right)),)
    cdf = B.mul(B.add(B.erf(B.mul(x, 1.0 / math.sqrt(2.0))), 1.0), 0.5)
    pdf = B.mul(B.exp(B.mul(B.mul(x, x), -0.5)), _INV_SQRT_2PI)
    return (B.mul(g, B.add(cdf, B.mul(x, pdf))),)


# ---------------------------------------------------------------- binary
@rule("AddBackward", tensors=False)
def add_bw(B, s, g, nx):
    sa, sb = s
    return (unbroadcast(B, g, sa) if nx[0] is not None else None,
            unbroadcast(B, g, sb) if nx[1] is not None else None)


@rule("SubBackward", tensors=False)
def sub_bw(B, s, g, nx):
    sa, sb = s
    return (unbroadcast(B, g, sa) if nx[0] is not None else None,
            unbroadcast(B, B.neg(g), sb) if nx[1] is not None else None)


@rule("MulBackward")
def mul_bw(B, s, g, nx):
    a, b, sa, sb = s
    return (unbroadcast(B, B.mul(g, b), sa) if nx[0] is not None else None,
            unbroadcast(B, B.mul(g, a), sb) if nx[1] is not None else None)


@rule("DivBackward")
def div_bw(B, s, g, nx):
    a, b, sa, sb = s
    ga = unbroadcast(B, B.div(g, b), sa) if nx[0] is not None else None
    gb = None
    if nx[1] is not None:
        gb = unbroadcast(B, B.neg(B.div(B.mul(g, a), B.mul(b, b))), sb)
    return ga, gb


@rule("PowBackward")
def pow_bw(B, s, g, nx):
    a, b, out, sa, sb = s
    ga = gb = None
    if nx[0] is not None:
        if is_scalar(b):
            ga = zeros(B, g) if b == 0 else B.mul(g, B.mul(B.pow(a, b - 1), b))
        else:
            ga = B.where(B.eq(b, 0), 0.0, B.mul(g, B.mul(b, B.pow(a, B.sub(b, 1.0)))))
        ga = unbroadcast(B, ga, sa)
    if nx[1] is not None:
        if is_scalar(a):
            a = lift(B, a, out)
        # torch: no gradient for the exponent where the base is 0 and the exponent >= 0
        zero = B.logical_and(B.eq(a, 0), B.ge(b, 0))
        gb = unbroadcast(B, B.where(zero, 0.0, B.mul(g, B.mul(out, B.log(a)))), sb)
    return ga, gb


def _minmax_bw(B, s, g, nx, a_loses, b_loses):
    a, b, sa, sb = s
    if is_scalar(a):
        a = lift(B, a, b)
    # torch: ties split the gradient 0.5 / 0.5
    base = B.where(B.eq(a, b), B.mul(g, 0.5), g)
    ga = unbroadcast(B, B.where(a_loses(a, b), 0.0, base), sa) if nx[0] is not None else None
    gb = unbroadcast(B, B.where(b_loses(a, b), 0.0, base), sb) if nx[1] is not None else None
    return ga, gb


@rule("MaximumBackward")
def maximum_bw(B, s, g, nx):
    return _minmax_bw(B, s, g, nx, B.lt, B.gt)


@rule("MinimumBackward")
def minimum_bw(B, s, g, nx):
    return _minmax_bw(B, s, g, nx, B.gt, B.lt)


@rule("RemainderBackward")
def remainder_bw(B, s, g, nx):
    a, b, sa, sb = s
    ga = unbroadcast(B, g, sa) if nx[0] is not None else None
    gb = None
    if nx[1] is not None:
        if is_scalar(a):
            a = lift(B, a, b)
        gb = unbroadcast(B, B.neg(B.mul(g, B.floor_divide(a, b))), sb)
    return ga, gb


@rule("FloorDivideBackward", tensors=False)
def floor_divide_bw(B, s, g, nx):
    raise AutodiffError("derivative for floor_divide is not implemented (as in PyTorch): it is "
                        "zero almost everywhere; detach() its inputs or use div and floor")


@rule("WhereBackward")
def where_bw(B, s, g, nx):
    c, sa, sb = s
    ga = unbroadcast(B, B.where(c, g, 0.0), sa) if nx[0] is not None else None
    gb = unbroadcast(B, B.where(c, 0.0, g), sb) if nx[1] is not None else None
    return ga, gb


@rule("MaskedFillBackward")
def masked_fill_bw(B, s, g, nx):
    return (B.where(s[0], 0.0, g),)


@rule("ToCopyBackward", tensors=False)
def cast_bw(B, s, g, nx):
    return (B.cast(g, s[0]),)


@rule("CloneBackward", tensors=False)
def identity_bw(B, s, g, nx):
    return (g,)


# ---------------------------------------------------------------- reductions
@rule("SumBackward", tensors=False)
def sum_bw(B, s, g, nx):
    shape, axes, keepdims = s
    if not keepdims:
        g = B.reshape(g, keep_shape(shape, axes))
    return (B.expand(g, shape),)


def _extreme_bw(B, s, g, nx):
    # torch amax/amin: the gradient is split evenly among the tied extremes
    x, out, axes, keepdims = s
    shape = B.shape(x)
    if not keepdims:
        ks = keep_shape(shape, axes)
        out = B.reshape(out, ks)
        g = B.reshape(g, ks)
    mask = B.cast(B.eq(x, out), B.dtype(x))
    cnt = B.sum(mask, axes, True)
    return (B.mul(mask, B.div(g, cnt)),)


max_bw = rule("AmaxBackward")(lambda B, s, g, nx: _extreme_bw(B, s, g, nx))
min_bw = rule("AminBackward")(lambda B, s, g, nx: _extreme_bw(B, s, g, nx))


@rule("ProdBackward")
def prod_bw(B, s, g, nx):
    # product of all the other elements, as exclusive prefix x suffix products: exact with zeros
    x, axes, keepdims = s
    shape = B.shape(x)
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = tuple(rest + list(axes))
    rshape = tuple(shape[i] for i in rest)
    n = 1
    for a in axes:
        n *= shape[a]
    if n == 0:
        return (B.full(shape, 0, B.dtype(x)),)
    xr = B.reshape(B.permute(x, perm), rshape + (n,))
    ax = len(rshape)
    lo = ((0, 0),) * ax
    ones = (1,) * (ax + 1)
    left = B.cumprod(B.pad(xr, lo + ((1, 0),), 1), ax)
    left = B.slice(left, (0,) * (ax + 1), rshape + (n,), ones)
    right = B.cumprod(B.pad(B.flip(xr, (ax,)), lo + ((1, 0),), 1), ax)
    right = B.flip(B.slice(right, (0,) * (ax + 1), rshape + (n,), ones), (ax,))
    gx = B.mul(B.mul(left, right), B.reshape(g, rshape + (1,)))
    gx = B.reshape(gx, tuple(shape[i] for i in perm))
    inv = tuple(np.argsort(perm).tolist())
    return (B.permute(gx, inv),)


@rule("CumsumBackward", tensors=False)
def cumsum_bw(B, s, g, nx):
    return (rev_cumsum(B, g, s[0]),)


@rule("CumprodBackward")
def cumprod_bw(B, s, g, nx):
    # d out_j / d x_i = prod_{k<=j, k!=i} x_k. Before the first zero along the axis that is
    # out_j / x_i; at the first zero z it is cumprod of x with x_z replaced by 1; after it, 0.
    x, out, axis = s
    dtype = B.dtype(x)
    iz = B.cast(B.eq(x, 0), dtype)
    nz = B.cumsum(iz, axis)
    before = B.eq(nz, 0)
    first = B.logical_and(B.eq(iz, 1), B.eq(nz, 1))
    safe = B.where(before, x, 1.0)
    t_before = B.div(rev_cumsum(B, B.mul(g, out), axis), safe)
    t_first = rev_cumsum(B, B.mul(g, B.cumprod(B.where(first, 1.0, x), axis)), axis)
    return (B.where(before, t_before, B.where(first, t_first, 0.0)),)


# ---------------------------------------------------------------- movement
@rule("ReshapeBackward", tensors=False)
def reshape_bw(B, s, g, nx):
    return (B.reshape(g, s[0]),)


@rule("PermuteBackward", tensors=False)
def permute_bw(B, s, g, nx):
    return (B.permute(g, s[0]),)


@rule("ExpandBackward", tensors=False)
def expand_bw(B, s, g, nx):
    return (unbroadcast(B, g, s[0]),)


@rule("SliceBackward", tensors=False)
def slice_bw(B, s, g, nx):
    shape, starts, stops, steps = s
    nd = len(shape)
    for d in range(nd):
        st, k = starts[d], steps[d]
        m = B.shape(g)[d]
        if k > 1 and m > 0:
            # interleave k-1 zeros after every element: (.., m, ..) -> (.., m, k, ..) -> (.., m*k, ..)
            gs = B.shape(g)
            g = B.reshape(g, gs[:d + 1] + (1,) + gs[d + 1:])
            g = B.pad(g, tuple((0, k - 1) if i == d + 1 else (0, 0) for i in range(nd + 1)), 0)
            g = B.reshape(g, gs[:d] + (m * k,) + gs[d + 1:])
            keep = min(m * k, shape[d] - st)
            if keep < m * k:
                g = B.slice(g, (0,) * nd, tuple(keep if i == d else n for i, n in
                                                enumerate(B.shape(g))), (1,) * nd)
            m = keep
        after = shape[d] - st - m
        if st or after:
            g = B.pad(g, tuple((st, after) if i == d else (0, 0) for i in range(nd)), 0)
    return (g,)


@rule("ConstantPadBackward", tensors=False)
def pad_bw(B, s, g, nx):
    shape, pads = s
    starts = tuple(lo for lo, _ in pads)
    stops = tuple(lo + n for (lo, _), n in zip(pads, shape))
    return (B.slice(g, starts, stops, (1,) * len(shape)),)


@rule("CatBackward", tensors=False)
def cat_bw(B, s, g, nx):
    sizes, axis = s
    gs = B.shape(g)
    nd = len(gs)
    out = []
    off = 0
    for e, n in zip(nx, sizes):
        if e is not None:
            starts = tuple(off if i == axis else 0 for i in range(nd))
            stops = tuple(off + n if i == axis else m for i, m in enumerate(gs))
            out.append(B.slice(g, starts, stops, (1,) * nd))
        else:
            out.append(None)
        off += n
    return tuple(out)


@rule("FlipBackward", tensors=False)
def flip_bw(B, s, g, nx):
    return (B.flip(g, s[0]),)


# ---------------------------------------------------------------- indexing
@rule("GatherBackward")
def gather_bw(B, s, g, nx):
    shape, axis, index = s
    return (B.scatter_add(B.full(shape, 0, B.dtype(g)), axis, index, g),)


def _src_grad(B, g, axis, index, src_shape):
    gs = B.gather(g, axis, index)
    ishape = B.shape(index)
    if ishape != src_shape:
        gs = B.pad(gs, tuple((0, n - m) for n, m in zip(src_shape, ishape)), 0)
    return gs


@rule("ScatterAddBackward")
def scatter_add_bw(B, s, g, nx):
    axis, index, src_shape = s
    gsrc = _src_grad(B, g, axis, index, src_shape) if nx[1] is not None else None
    return g, gsrc


@rule("ScatterBackward")
def scatter_bw(B, s, g, nx):
    axis, index, src_shape = s
    gx = None
    if nx[0] is not None:
        gx = B.scatter(g, axis, index, B.full(B.shape(index), 0, B.dtype(g)))
    gsrc = _src_grad(B, g, axis, index, src_shape) if nx[1] is not None else None
    return gx, gsrc


@rule("IndexSelectBackward")
def index_select_bw(B, s, g, nx):
    shape, axis, index = s
    gs = B.shape(g)
    idx = B.reshape(index, tuple(gs[axis] if i == axis else 1 for i in range(len(gs))))
    idx = B.expand(idx, gs)
    return (B.scatter_add(B.full(shape, 0, B.dtype(g)), axis, idx, g),)
