"""Conformance cases: matmul family, convolution, pooling, creation, casts and random numbers."""
from __future__ import annotations

import numpy as np

from ..core import dtype as dt
from ..core import philox
from . import reference as ref
from .spec import ALL, FLOATS, NUMERIC, Arg, Case, sample

MM_DTYPES = NUMERIC


def mm(name, run, refn, *shapes, dtypes=MM_DTYPES, transposed=(), tol=2.0, dref=None):
    args = tuple(Arg(s, "small", transposed=i in transposed) for i, s in enumerate(shapes))
    return Case(name, run, refn, args, dtypes=dtypes, tol=tol, dref=dref, group="linalg")


def _int8_codes(rng, d):
    """Full-range int8 codes (-128..127) held as d; k = 19 is not a multiple of 4 or 16."""
    return [rng.integers(-128, 128, (5, 19)).astype(d.np),
            rng.integers(-128, 128, (7, 19)).astype(d.np)]


def _int8_matmul(st, F, a, w):
    # the protocol op Quantization's integer GEMMs call (no Tensor method exposes it), with
    # the right operand a transposed view, as a quantized weight is stored
    B = a.backend
    return st.Tensor._make(B.int8_matmul(a._p, w.transpose(0, 1)._p), B)


LINALG = [
    Case("int8_matmul", _int8_matmul, lambda a, w: a @ w.T, (),
         dtypes=(dt.int8, dt.int32, dt.float32), out=dt.int32, tol=0.0, grad=False,
         make=_int8_codes, group="linalg"),
    mm("matmul", lambda st, F, a, b: a @ b, np.matmul, (4, 5), (5, 3),
       dref=lambda g, a, b: (g @ b.T, a.T @ g)),
    mm("matmul(batch broadcast)", lambda st, F, a, b: st.matmul(a, b), np.matmul,
       (2, 1, 3, 4), (3, 4, 2)),
    mm("matmul(vec, mat)", lambda st, F, a, b: a @ b, np.matmul, (4,), (2, 4, 3)),
    mm("matmul(mat, vec)", lambda st, F, a, b: a @ b, np.matmul, (3, 4), (4,)),
    mm("matmul(transposed)", lambda st, F, a, b: a @ b, np.matmul, (4, 5), (5, 3),
       transposed=(0, 1)),
    mm("mm", lambda st, F, a, b: st.mm(a, b), np.matmul, (3, 6), (6, 2)),
    mm("bmm", lambda st, F, a, b: a.bmm(b), np.matmul, (2, 3, 4), (2, 4, 5)),
    mm("dot", lambda st, F, a, b: st.dot(a, b), np.dot, (7,), (7,)),
    mm("outer", lambda st, F, a, b: st.outer(a, b), np.outer, (3,), (4,)),
    mm("einsum(bij,bjk->bik)", lambda st, F, a, b: st.einsum("bij,bjk->bik", a, b),
       lambda a, b: np.einsum("bij,bjk->bik", a, b), (2, 3, 4), (2, 4, 2)),
    mm("einsum(ij,kj->ik)", lambda st, F, a, b: st.einsum("ij,kj->ik", a, b),
       lambda a, b: np.einsum("ij,kj->ik", a, b), (3, 4), (2, 4), dtypes=FLOATS),
    mm("einsum(ii->i)", lambda st, F, a: st.einsum("ii->i", a),
       lambda a: np.einsum("ii->i", a), (4, 4), dtypes=FLOATS),
    mm("einsum(bi->)", lambda st, F, a: st.einsum("bi->", a), lambda a: np.einsum("bi->", a),
       (3, 4), dtypes=FLOATS),
]


def nn(name, run, refn, *shapes, tol=4.0, dtypes=FLOATS, grad=True, out=None):
    return Case(name, run, refn, tuple(Arg(s) for s in shapes), dtypes=dtypes, tol=tol,
                grad=grad, out=out, group="nn")


NN = [
    nn("F.linear", lambda st, F, x, w, b: F.linear(x, w, b), lambda x, w, b: x @ w.T + b,
       (2, 3, 5), (4, 5), (4,)),
    nn("F.linear(no bias)", lambda st, F, x, w: F.linear(x, w), lambda x, w: x @ w.T,
       (6, 5), (3, 5)),
    nn("F.conv2d", lambda st, F, x, w, b: F.conv2d(x, w, b), lambda x, w, b: ref.conv2d(x, w, b),
       (2, 3, 5, 5), (4, 3, 3, 3), (4,)),
    nn("F.conv2d(stride,pad)", lambda st, F, x, w: F.conv2d(x, w, stride=2, padding=1),
       lambda x, w: ref.conv2d(x, w, stride=2, padding=1), (1, 2, 6, 5), (3, 2, 3, 2)),
    nn("F.conv2d(dilation,groups)",
       lambda st, F, x, w: F.conv2d(x, w, padding=(1, 2), dilation=2, groups=2),
       lambda x, w: ref.conv2d(x, w, padding=(1, 2), dilation=2, groups=2),
       (1, 4, 6, 6), (4, 2, 2, 3)),
    nn("F.conv_transpose2d",
       lambda st, F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
       lambda x, w, b: ref.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
       (1, 2, 3, 4), (2, 3, 3, 3), (3,)),
    nn("F.conv_transpose2d(groups)",
       lambda st, F, x, w: F.conv_transpose2d(x, w, groups=2, dilation=(1, 2)),
       lambda x, w: ref.conv_transpose2d(x, w, groups=2, dilation=(1, 2)),
       (1, 4, 3, 3), (4, 1, 2, 2)),
    nn("F.max_pool2d", lambda st, F, x: F.max_pool2d(x, 2),
       lambda x: ref.max_pool2d(x, 2)[0], (2, 2, 4, 6)),
    nn("F.max_pool2d(k3,s2,p1)", lambda st, F, x: F.max_pool2d(x, 3, 2, 1),
       lambda x: ref.max_pool2d(x, 3, 2, 1)[0], (1, 2, 5, 6)),
    nn("F.max_pool2d(ceil,dilation)",
       lambda st, F, x: F.max_pool2d(x, (2, 3), (1, 2), (1, 1), dilation=(2, 1), ceil_mode=True),
       lambda x: ref.max_pool2d(x, (2, 3), (1, 2), (1, 1), (2, 1), True)[0], (1, 2, 5, 6)),
    nn("F.max_pool2d.indices", lambda st, F, x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[1],
       lambda x: ref.max_pool2d(x, 3, 2, 1)[1], (1, 2, 5, 6), grad=False, out="int64"),
    nn("F.conv1d", lambda st, F, x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
       lambda x, w, b: ref.conv2d(x[:, :, None], w[:, :, None], b, stride=(1, 2),
                                  padding=(0, 1))[:, :, 0], (2, 3, 7), (4, 3, 3), (4,)),
    nn("F.max_pool1d", lambda st, F, x: F.max_pool1d(x, 3, 2, 1),
       lambda x: ref.max_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1))[0][:, :, 0], (2, 3, 8)),
    nn("F.adaptive_avg_pool2d", lambda st, F, x: F.adaptive_avg_pool2d(x, (2, 3)),
       lambda x: ref.adaptive_avg_pool2d(x, (2, 3)), (1, 2, 5, 7)),
    nn("F.avg_pool2d", lambda st, F, x: F.avg_pool2d(x, 2),
       lambda x: ref.avg_pool2d(x, 2), (2, 2, 4, 6)),
    nn("F.avg_pool2d(pad,ceil)", lambda st, F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
       lambda x: ref.avg_pool2d(x, 3, 2, 1, True), (1, 2, 6, 5)),
    nn("F.avg_pool2d(no pad count)",
       lambda st, F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
       lambda x: ref.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 5, 5)),
]


# ---------------------------------------------------------------- losses (accelerated nll_loss)
_CE_W = np.array([0.5, 1.5, 1.0, 2.0, 0.25])


def _logits_targets(shape, tshape, ignored=()):
    def make(rng, d):
        x = sample(rng, shape, "any", d)
        t = rng.integers(0, shape[1 if len(shape) > 1 else 0], tshape).astype(np.int64)
        for pos in ignored:
            t[pos] = -100
        return [x, t]
    return make


def _ref_log_softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


def _ref_nll(logp, t, w=None, reduction="mean", ignore_index=-100):
    cdim = 0 if logp.ndim == 1 else 1
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    picked = np.take_along_axis(logp, np.expand_dims(safe, cdim), cdim).squeeze(cdim)
    wt = keep * (1.0 if w is None else w[safe])
    loss = -picked * wt
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()


def _loss_case(name, run, refn, make):
    return Case(name, run, refn, (), dtypes=FLOATS, tol=4.0, make=make, group="nn")


def _ce_weight(st, x):
    return x.new_tensor(_CE_W)   # x's backend and dtype (the lambdas also run on torch)


LOSSES = [
    _loss_case("F.cross_entropy", lambda st, F, x, t: F.cross_entropy(x, t),
               lambda x, t: _ref_nll(_ref_log_softmax(x, 1), t), _logits_targets((6, 5), (6,))),
    _loss_case("F.cross_entropy(weight,ignore_index,sum)",
               lambda st, F, x, t: F.cross_entropy(x, t, weight=_ce_weight(st, x), reduction="sum"),
               lambda x, t: _ref_nll(_ref_log_softmax(x, 1), t, _CE_W, "sum"),
               _logits_targets((6, 5), (6,), ignored=(1, 4))),
    _loss_case("F.cross_entropy(weight,ignore_index,mean)",
               lambda st, F, x, t: F.cross_entropy(x, t, weight=_ce_weight(st, x)),
               lambda x, t: _ref_nll(_ref_log_softmax(x, 1), t, _CE_W),
               _logits_targets((6, 5), (6,), ignored=(2,))),
    _loss_case("F.nll_loss(spatial,none)",
               lambda st, F, x, t: F.nll_loss(x, t, reduction="none", ignore_index=3),
               lambda x, t: _ref_nll(x, t, reduction="none", ignore_index=3),
               _logits_targets((2, 4, 3), (2, 3))),
    _loss_case("F.nll_loss(unbatched)", lambda st, F, x, t: F.nll_loss(x, t),
               lambda x, t: _ref_nll(x, t), _logits_targets((5,), ())),
]


# ---------------------------------------------------------------- creation, casts, random
# A one-element input of the case dtype carries the backend and the dtype into the op.
def _like(rng, d):
    return [sample(rng, (2, 3), "any", d)]


def _create(name, run, refn, dtypes=ALL):
    return Case(name, run, refn, (), dtypes=dtypes, grad=False, make=_like, group="creation")


def _cast_from_f32(rng, d):
    # float32 source: every backend has it (float64 is optional, e.g. on WGSL devices)
    if d is dt.bool_:
        v = np.where(rng.random((3, 4)) < 0.5, 0.0, rng.uniform(-3, 3, (3, 4)))
    elif d is dt.uint8:
        v = rng.uniform(0, 200, (3, 4))
    else:
        v = rng.uniform(-100, 100, (3, 4))
    return [v.astype(np.float32), np.zeros((1,), d.np)]


def _trunc_cast(v, like):
    return v != 0 if like.dtype == np.bool_ else (np.trunc(v) if like.dtype.kind != "f" else v)


def _with_itemsize(rng, d):
    # the reference sees float64 copies, so the dtype's width travels as a second input
    return [sample(rng, (2, 3), "any", d), np.array(d.itemsize, np.int64)]


def _uniform_ref(x, itemsize):
    u = philox.uniform(1234, 7, 40, double=int(itemsize) == 8)
    return u.reshape(5, 8) if int(itemsize) == 8 else u.astype(_FLOAT_BY_SIZE[int(itemsize)]).reshape(5, 8)


def _normal_ref(x, itemsize):
    u = philox.normal(99, 3, 40, double=int(itemsize) == 8)
    return u.reshape(5, 8) if int(itemsize) == 8 else u.astype(_FLOAT_BY_SIZE[int(itemsize)]).reshape(5, 8)


_FLOAT_BY_SIZE = {2: np.float16, 4: np.float32}


def _rand_prim(kind):
    def run(st, F, x, itemsize):
        B = x.backend
        fn = B.random_uniform if kind == "uniform" else B.random_normal
        p = fn((5, 8), 1234 if kind == "uniform" else 99, 7 if kind == "uniform" else 3, x.dtype)
        B.sync()
        return B.to_numpy(p)
    return run


def _via_other_float(st, x):
    """x cast to another float dtype the backend has and back: checks both casts' gradients."""
    others = [d for d in (st.float32, st.float64, st.float16) if d is not x.dtype]
    other = next((d for d in others if x.backend.supports(d)), None)
    return x if other is None else x.to(other).to(x.dtype)


CREATION = [
    _create("zeros_like", lambda st, F, x: st.zeros_like(x), np.zeros_like),
    _create("ones_like", lambda st, F, x: st.ones_like(x), np.ones_like),
    _create("full_like", lambda st, F, x: st.full_like(x, 1), lambda x: np.full_like(x, 1)),
    _create("zeros", lambda st, F, x: st.zeros(2, 3, dtype=x.dtype, backend=x.backend),
            lambda x: np.zeros((2, 3))),
    _create("ones", lambda st, F, x: st.ones((4,), dtype=x.dtype, backend=x.backend),
            lambda x: np.ones(4)),
    _create("full", lambda st, F, x: st.full((2, 2), 3, dtype=x.dtype, backend=x.backend),
            lambda x: np.full((2, 2), 3), NUMERIC),
    _create("arange", lambda st, F, x: st.arange(1, 11, 2, dtype=x.dtype, backend=x.backend),
            lambda x: np.arange(1, 11, 2), NUMERIC),
    _create("arange(float step)",
            lambda st, F, x: st.arange(-1.0, 1.0, 0.25, dtype=x.dtype, backend=x.backend),
            lambda x: np.arange(-1.0, 1.0, 0.25), FLOATS),
    _create("linspace", lambda st, F, x: st.linspace(-1, 2, 7, dtype=x.dtype, backend=x.backend),
            lambda x: np.linspace(-1, 2, 7), FLOATS),
    _create("eye", lambda st, F, x: st.eye(3, 4, dtype=x.dtype, backend=x.backend),
            lambda x: np.eye(3, 4)),
    _create("clone", lambda st, F, x: x.clone(), lambda x: x),
    Case("to(dtype) from float32", lambda st, F, v, like: v.to(like.dtype), _trunc_cast, (),
         dtypes=ALL, grad=False, make=_cast_from_f32, group="creation"),
    Case("to(float32)", lambda st, F, x: x.to(st.float32), lambda x: x.astype(np.float64), (),
         dtypes=ALL, out=dt.float32, grad=False, make=_like, group="creation"),
    Case("to(int32)", lambda st, F, x: x.to(st.int32), lambda x: np.trunc(x), (Arg((3, 4)),),
         dtypes=ALL, out=dt.int32, grad=False, group="creation"),
    Case("to(bool)", lambda st, F, x: x.bool(), lambda x: x != 0, (Arg((3, 4), "frac"),),
         dtypes=ALL, out="bool", grad=False, group="creation"),
    Case("float cast round trip (grad)", lambda st, F, x: _via_other_float(st, x) * 2,
         lambda x: x * 2, (Arg((3, 4), "eighths"),), dtypes=FLOATS, group="creation"),
    Case("random_uniform", _rand_prim("uniform"), _uniform_ref, (), dtypes=FLOATS, grad=False,
         make=_with_itemsize, group="creation"),
    Case("random_normal", _rand_prim("normal"), _normal_ref, (), dtypes=FLOATS, grad=False,
         make=_with_itemsize, group="creation"),
]

CASES = LINALG + NN + LOSSES + CREATION
