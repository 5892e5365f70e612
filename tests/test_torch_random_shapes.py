"""Property tests (hypothesis, derandomized so CI is reproducible): random broadcastable shapes,
random ops and reductions over random dims, values and gradients equal to PyTorch's."""
from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402

from .torch_ref import run_both  # noqa: E402

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@hs.composite
def broadcast_pair(draw):
    nd = draw(hs.integers(0, 4))
    full = draw(hs.lists(hs.integers(0, 4), min_size=nd, max_size=nd))
    def sub():
        k = draw(hs.integers(0, nd))
        return tuple(1 if draw(hs.booleans()) else s for s in full[nd - k:])
    return sub(), sub()


BIN = {
    "add": lambda m, a, b: a + b,
    "mul": lambda m, a, b: a * b,
    "sub": lambda m, a, b: b - a,
    "div": lambda m, a, b: a / (b.abs() + 0.5),
    "maximum": lambda m, a, b: m.m.maximum(a, b),
    "where": lambda m, a, b: m.m.where(a > b, a * 2, b),
    "chain": lambda m, a, b: ((a * b).tanh() + a.exp() * 0.1).sigmoid() * b,
}


@SETTINGS
@given(shapes=broadcast_pair(), op=hs.sampled_from(sorted(BIN)), seed=hs.integers(0, 2**16))
def test_binary_random_broadcast(ad_stack, shapes, op, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shapes[0])
    b = rng.uniform(-2, 2, shapes[1])
    run_both(BIN[op], [a, b], ad_stack, seed=seed)


RED = {
    "sum": lambda m, x, d, k: x.sum(dim=d, keepdim=k),
    "mean": lambda m, x, d, k: x.mean(dim=d, keepdim=k),
    "amax": lambda m, x, d, k: x.amax(dim=d, keepdim=k),
    "logsumexp": lambda m, x, d, k: x.logsumexp(dim=d, keepdim=k),
    "var": lambda m, x, d, k: x.var(dim=d, keepdim=k),
    "softmax": lambda m, x, d, k: x.softmax(dim=d[0]),
    "cumsum": lambda m, x, d, k: x.cumsum(dim=d[-1]),
}


@hs.composite
def shape_and_dims(draw):
    shape = tuple(draw(hs.lists(hs.integers(1, 4), min_size=1, max_size=4)))
    nd = len(shape)
    dims = draw(hs.lists(hs.integers(-nd, nd - 1), min_size=1, max_size=nd, unique_by=lambda d: d % nd))
    return shape, tuple(dims)


@SETTINGS
@given(sd=shape_and_dims(), op=hs.sampled_from(sorted(RED)), keep=hs.booleans(),
       seed=hs.integers(0, 2**16), transpose=hs.booleans())
def test_reduction_random_dims(ad_stack, sd, op, keep, seed, transpose):
    shape, dims = sd
    rng = np.random.default_rng(seed)
    # distinct values: amax gradients are then unambiguous
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 1.0)
    if op == "var" and np.prod([shape[d] for d in dims]) < 2:
        return
    layouts = ["T"] if transpose and len(shape) >= 2 else None
    run_both(lambda m, t: RED[op](m, t, dims, keep), [x], ad_stack, layouts=layouts, seed=seed)
