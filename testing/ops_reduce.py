"""Conformance cases: reductions, scans, softmax family and normalisation."""
from __future__ import annotations

import numpy as np

from ..core import dtype as dt
from .spec import ALL, FLOATS, NUMERIC, Arg, Case

R = (3, 4, 5)


def red(name, run, ref, dtypes=FLOATS, domain="any", shape=R, out=None, grad=True, tol=1.0,
        dref=None):
    return Case(name, run, ref, (Arg(shape, domain),), dtypes=dtypes, out=out, grad=grad,
                tol=tol, dref=dref, group="reduce")


def _lse(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _softmax_vjp(g, x, axis):
    s = _softmax(x, axis)
    return (s * (g - np.sum(g * s, axis=axis, keepdims=True)),)


def _layer_norm(x, w, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def _batch_norm(x, w, b, eps=1e-5):
    axes = (0, 2, 3)
    m = x.mean(axes, keepdims=True)
    v = ((x - m) ** 2).mean(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)


def _distinct(rng, d):
    """A permutation of spread-out values: no ties, so max/argmax have one answer."""
    n = int(np.prod(R))
    if d.is_floating_point:
        v = (rng.permutation(n) - n / 2) / 16.0
    elif d is dt.uint8:
        v = rng.permutation(n) % 256
    elif d is dt.int8:
        v = rng.permutation(n) - 30
    else:
        v = rng.permutation(n) * 3 - 90
    return [v.reshape(R).astype(d.np)]


def _ties_max(rng, d):
    return [rng.integers(0, 3, R).astype(d.np)] if d is not dt.bool_ else [rng.random(R) < 0.5]


CASES = [
    red("sum", lambda st, F, x: x.sum(), np.sum, ALL, out="sum", tol=4.0,
        dref=lambda g, x: (np.broadcast_to(g, x.shape),)),
    red("sum(dim=1)", lambda st, F, x: x.sum(dim=1), lambda x: x.sum(1), ALL, out="sum"),
    red("sum(dim=(0,2),keepdim)", lambda st, F, x: x.sum(dim=(0, 2), keepdim=True),
        lambda x: x.sum((0, 2), keepdims=True), NUMERIC, out="sum"),
    red("sum(dim=-1)", lambda st, F, x: st.sum(x, -1), lambda x: x.sum(-1), NUMERIC, out="sum"),
    red("mean", lambda st, F, x: x.mean(), np.mean, tol=4.0),
    red("mean(dim=(1,2))", lambda st, F, x: x.mean((1, 2)), lambda x: x.mean((1, 2))),
    red("mean(dim=0,keepdim)", lambda st, F, x: x.mean(0, keepdim=True),
        lambda x: x.mean(0, keepdims=True)),
    Case("max", lambda st, F, x: x.max(), np.max, (Arg(R),), NUMERIC, make=_distinct,
         group="reduce"),
    Case("min", lambda st, F, x: x.min(), np.min, (Arg(R),), NUMERIC, make=_distinct,
         group="reduce"),
    Case("max(dim).values", lambda st, F, x: x.max(dim=1)[0], lambda x: x.max(1), (Arg(R),),
         NUMERIC, make=_distinct, group="reduce"),
    Case("max(dim).indices", lambda st, F, x: x.max(dim=1)[1], lambda x: x.argmax(1), (Arg(R),),
         NUMERIC, out="int64", grad=False, make=_distinct, group="reduce"),
    Case("min(dim,keepdim).values", lambda st, F, x: x.min(dim=-1, keepdim=True).values,
         lambda x: x.min(-1, keepdims=True), (Arg(R),), NUMERIC, make=_distinct, group="reduce"),
    Case("amax(dim=(0,2))", lambda st, F, x: x.amax(dim=(0, 2)), lambda x: x.max((0, 2)),
         (Arg(R),), NUMERIC, make=_distinct, group="reduce"),
    Case("amin(dim=1)", lambda st, F, x: x.amin(dim=1), lambda x: x.min(1), (Arg(R),),
         NUMERIC, make=_distinct, group="reduce"),
    Case("argmax", lambda st, F, x: x.argmax(), lambda x: np.argmax(x), (Arg(R),), NUMERIC,
         out="int64", grad=False, make=_distinct, group="reduce"),
    Case("argmax(dim=2,ties)", lambda st, F, x: x.argmax(dim=2), lambda x: np.argmax(x, 2),
         (Arg(R),), NUMERIC, out="int64", grad=False, make=_ties_max, group="reduce"),
    Case("argmin(dim=0,ties)", lambda st, F, x: x.argmin(dim=0), lambda x: np.argmin(x, 0),
         (Arg(R),), NUMERIC, out="int64", grad=False, make=_ties_max, group="reduce"),
    Case("max(ties)", lambda st, F, x: x.max(dim=1)[0], lambda x: x.max(1), (Arg(R),), NUMERIC,
         grad=False, make=_ties_max, group="reduce"),
    red("prod(dim=1)", lambda st, F, x: x.prod(dim=1), lambda x: x.prod(1), NUMERIC,
        domain="nonzero", shape=(3, 4, 2), out="sum"),
    red("prod", lambda st, F, x: x.prod(), np.prod, FLOATS, domain="nonzero", shape=(2, 3)),
    red("var(dim=1)", lambda st, F, x: x.var(dim=1), lambda x: x.var(1, ddof=1)),
    red("var(correction=0)", lambda st, F, x: x.var(dim=(0, 2), correction=0),
        lambda x: x.var((0, 2))),
    red("std", lambda st, F, x: x.std(), lambda x: x.std(ddof=1), tol=4.0),
    red("std(dim=-1,keepdim)", lambda st, F, x: x.std(dim=-1, keepdim=True),
        lambda x: x.std(-1, ddof=1, keepdims=True)),
    red("logsumexp(dim=1)", lambda st, F, x: x.logsumexp(dim=1), lambda x: _lse(x, 1),
        domain="wide"),
    red("cumsum(dim=1)", lambda st, F, x: x.cumsum(dim=1), lambda x: np.cumsum(x, 1), NUMERIC,
        out="sum"),
    red("cumsum(dim=-1)", lambda st, F, x: x.cumsum(-1), lambda x: np.cumsum(x, -1), FLOATS),
    red("cumprod(dim=2)", lambda st, F, x: x.cumprod(dim=2), lambda x: np.cumprod(x, 2),
        FLOATS + (dt.int32, dt.int64), domain="nonzero", shape=(2, 3, 4), out="sum"),
    red("all(dim=1)", lambda st, F, x: x.all(dim=1), lambda x: x.all(1), ALL, out="bool",
        grad=False),
    red("any", lambda st, F, x: x.any(), np.any, ALL, out="bool", grad=False),
    red("all(sparse)", lambda st, F, x: (x > 1.5).all(dim=2), lambda x: (x > 1.5).all(2),
        FLOATS, out="bool", grad=False),
    red("norm", lambda st, F, x: x.norm(), lambda x: np.sqrt((x * x).sum()), tol=4.0),
    red("norm(p=1,dim=1)", lambda st, F, x: x.norm(p=1, dim=1), lambda x: np.abs(x).sum(1),
        domain="nonzero"),
    red("softmax(dim=-1)", lambda st, F, x: x.softmax(dim=-1), lambda x: _softmax(x, -1),
        dref=lambda g, x: _softmax_vjp(g, x, -1)),
    red("F.softmax(dim=1)", lambda st, F, x: F.softmax(x, dim=1), lambda x: _softmax(x, 1),
        domain="wide"),
    red("F.log_softmax(dim=-1)", lambda st, F, x: F.log_softmax(x, dim=-1),
        lambda x: _log_softmax(x, -1), domain="wide"),
    red("log_softmax(dim=0)", lambda st, F, x: x.log_softmax(0), lambda x: _log_softmax(x, 0)),
    Case("F.layer_norm", lambda st, F, x, w, b: F.layer_norm(x, (5,), w, b),
         _layer_norm, (Arg(R), Arg((5,)), Arg((5,))), tol=4.0, group="nn"),
    Case("F.layer_norm(no affine)", lambda st, F, x: F.layer_norm(x, (4, 5)),
         lambda x: _layer_norm(x.reshape(3, 20), 1.0, 0.0).reshape(R), (Arg(R),), tol=4.0,
         group="nn"),
    Case("F.batch_norm(train)",
         lambda st, F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         _batch_norm, (Arg((2, 3, 2, 2)), Arg((3,)), Arg((3,))), tol=4.0, group="nn"),
]
