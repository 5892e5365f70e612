"""Every Autodiff backward rule for elementwise, reduction, movement and indexing ops against
PyTorch autograd and central finite differences (float64, Autodiff(NumPy()))."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import strata as st
from strata.core import dtype as dt
from strata.tests._autodiff_util import check, prim, stack, value

rng = np.random.default_rng(1234)


def rn(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


def away0(*shape):
    # magnitude in [0.3, 2] with random sign: away from kinks at 0
    return rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def off_int(*shape):
    # k + 0.3 .. k + 0.7: away from the jumps of floor/ceil/round/trunc
    return rng.integers(-3, 3, shape) + rng.uniform(0.3, 0.7, shape)


def u(name, tname=None):
    tfn = getattr(torch, tname or name)
    return (lambda B, x: getattr(B, name)(x)), (lambda x: tfn(x))


UNARY = [
    ("neg", rn), ("exp", rn), ("log", pos), ("sqrt", pos), ("sin", rn), ("cos", rn),
    ("tanh", rn), ("erf", rn), ("abs", away0), ("reciprocal", away0), ("sigmoid", rn),
    ("relu", away0), ("log1p", pos), ("expm1", rn), ("rsqrt", pos), ("sign", away0),
    ("floor", off_int), ("ceil", off_int), ("round", off_int), ("trunc", off_int),
]


@pytest.mark.parametrize("name,gen", UNARY, ids=[n for n, _ in UNARY])
def test_unary(name, gen):
    fn, tfn = u(name)
    check(fn, tfn, [gen(3, 4)])


def test_tan():
    check(lambda B, x: B.tan(x), torch.tan, [rng.uniform(-1.2, 1.2, (3, 4))])


def test_silu_gelu():
    x = rn(3, 5) * 2
    check(lambda B, x: B.silu(x), TF.silu, [x])
    check(lambda B, x: B.gelu(x), TF.gelu, [x])
    check(lambda B, x: B.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh"), [x])


BIN_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((1, 3), (2, 1))]


@pytest.mark.parametrize("sa,sb", BIN_SHAPES)
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_binary_broadcast(name, sa, sb):
    a, b = rn(*sa), away0(*sb)
    check(lambda B, x, y: getattr(B, name)(x, y), getattr(torch, name), [a, b])


@pytest.mark.parametrize("sa,sb", BIN_SHAPES[:3])
def test_pow_both(sa, sb):
    check(lambda B, x, y: B.pow(x, y), torch.pow, [pos(*sa), rn(*sb)])


def test_pow_base_zero_matches_torch():
    a = np.array([0.0, 0.0, 0.0, 2.0, 0.0])
    b = np.array([2.0, 0.0, 0.5, 0.0, 3.0])
    check(lambda B, x, y: B.pow(x, y), torch.pow, [a, b], fd=False)
    check(lambda B, x: B.pow(x, 0.0), lambda x: torch.pow(x, 0.0), [a], fd=False)


def test_pow_scalars():
    x = pos(3, 2)
    check(lambda B, x: B.pow(x, 3.0), lambda x: x ** 3.0, [x])
    check(lambda B, x: B.pow(x, -1.5), lambda x: x ** -1.5, [x])
    check(lambda B, x: B.pow(2.0, x), lambda x: torch.pow(2.0, x), [rn(3, 2)])
    check(lambda B, x: B.pow(0.0, x), lambda x: torch.pow(0.0, x),
          [np.array([-1.0, 0.5, 0.0, 2.0])], fd=False)


def test_scalar_operands():
    x = away0(2, 3)
    check(lambda B, x: B.add(x, 2.0), lambda x: x + 2.0, [x])
    check(lambda B, x: B.sub(x, 1.5), lambda x: x - 1.5, [x])
    check(lambda B, x: B.mul(x, 3.0), lambda x: x * 3.0, [x])
    check(lambda B, x: B.div(x, 2.0), lambda x: x / 2.0, [x])
    check(lambda B, x: B.div(2.0, x), lambda x: 2.0 / x, [x])
    check(lambda B, x: B.sub(2.0, x), lambda x: 2.0 - x, [x])
    check(lambda B, x: B.maximum(x, 0.25), lambda x: torch.clamp_min(x, 0.25), [x])
    check(lambda B, x: B.minimum(x, 0.25), lambda x: torch.clamp_max(x, 0.25), [x])


def test_maximum_minimum_ties_split_like_torch():
    a = np.array([1.0, 2.0, 3.0, 3.0])
    b = np.array([1.0, 5.0, 0.0, 3.0])
    check(lambda B, x, y: B.maximum(x, y), torch.maximum, [a, b], fd=False)
    check(lambda B, x, y: B.minimum(x, y), torch.minimum, [a, b], fd=False)


def test_remainder():
    b = rng.uniform(1.5, 2.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    a = b * (rng.integers(-3, 3, (3, 4)) + rng.uniform(0.2, 0.8, (3, 4)))
    check(lambda B, x, y: B.remainder(x, y), torch.remainder, [a, b])
    check(lambda B, x: B.remainder(x, 1.5), lambda x: torch.remainder(x, 1.5), [a])


def test_floor_divide_backward_is_an_error_like_torch():
    from strata.core.errors import AutodiffError
    B = stack()
    x = prim(B, rn(3), True)
    y = B.sum(B.floor_divide(x, 2.0), (0,), False)
    with pytest.raises(AutodiffError, match="floor_divide"):
        B.backward(y, None, False, False)


def test_where_and_masked_fill():
    cond = rn(3, 4) > 0
    check(lambda B, c, x, y: B.where(c, x, y), torch.where, [cond, rn(3, 4), rn(4)],
          diff=[False, True, True])
    check(lambda B, c, x: B.where(c, x, 0.5), lambda c, x: torch.where(c, x, 0.5),
          [cond, rn(1, 4)], diff=[False, True])
    check(lambda B, c, y: B.where(c, 1.5, y), lambda c, y: torch.where(c, 1.5, y),
          [cond, rn(3, 1)], diff=[False, True])
    mask = rn(4) > 0
    check(lambda B, x, m: B.masked_fill(x, m, -2.0), lambda x, m: x.masked_fill(m, -2.0),
          [rn(3, 4), mask], diff=[True, False])


def test_cast_roundtrip():
    def fn(B, x):
        return B.cast(B.mul(B.cast(x, dt.float32), 2.0), dt.float64)
    g = check(fn, lambda x: (x.float() * 2.0).double(), [rn(3)], fd=False, rtol=1e-6)
    assert g[0].dtype == np.float64


@pytest.mark.parametrize("axes,keep", [((0,), False), ((1,), True), ((0, 2), False),
                                       ((0, 1, 2), True), ((), False)])
def test_sum(axes, keep):
    check(lambda B, x: B.sum(x, axes, keep),
          lambda x: x.sum(dim=axes, keepdim=keep) if axes else x.clone(), [rn(2, 3, 4)])


@pytest.mark.parametrize("name,tname", [("max", "amax"), ("min", "amin")])
@pytest.mark.parametrize("axes,keep", [((1,), False), ((0, 2), True), ((0, 1, 2), False)])
def test_max_min(name, tname, axes, keep):
    check(lambda B, x: getattr(B, name)(x, axes, keep),
          lambda x: getattr(torch, tname)(x, dim=axes, keepdim=keep), [rn(2, 3, 4)])


def test_max_min_ties_split_evenly_like_torch_amax():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    for name, tname in (("max", "amax"), ("min", "amin")):
        check(lambda B, x: getattr(B, name)(x, (1,), False),
              lambda x: getattr(torch, tname)(x, dim=1), [x], fd=False)
        check(lambda B, x: getattr(B, name)(x, (0, 1), False),
              lambda x: getattr(torch, tname)(x), [x], fd=False)


@pytest.mark.parametrize("axes,keep", [((1,), False), ((0, 2), True), ((0, 1, 2), False)])
def test_prod(axes, keep):
    def tprod(x):
        for a in sorted(axes, reverse=True):
            x = x.prod(dim=a, keepdim=keep)
        return x
    check(lambda B, x: B.prod(x, axes, keep), tprod, [away0(2, 3, 4)])


def test_prod_with_zeros_matches_torch():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, 2.0, -1.0]])
    check(lambda B, x: B.prod(x, (1,), False), lambda x: x.prod(dim=1), [x])


def test_cumsum_cumprod():
    check(lambda B, x: B.cumsum(x, 1), lambda x: torch.cumsum(x, 1), [rn(3, 5)])
    check(lambda B, x: B.cumprod(x, 1), lambda x: torch.cumprod(x, 1), [away0(3, 5)])
    # zeros: one, several, at the start and the end of a row
    x = np.array([[1.0, 0.0, 3.0, 2.0, 0.5], [0.0, 2.0, 0.0, 1.5, 3.0],
                  [2.0, 1.0, 3.0, 0.5, 0.0], [0.7, 1.1, -2.0, 1.3, 0.9]])
    check(lambda B, x: B.cumprod(x, 1), lambda x: torch.cumprod(x, 1), [x])


def test_reshape_permute_expand_flip():
    check(lambda B, x: B.reshape(x, (4, 6)), lambda x: x.reshape(4, 6), [rn(2, 3, 4)])
    check(lambda B, x: B.permute(x, (2, 0, 1)), lambda x: x.permute(2, 0, 1), [rn(2, 3, 4)])
    check(lambda B, x: B.expand(x, (3, 4, 5)), lambda x: x.expand(3, 4, 5), [rn(3, 1, 5)])
    check(lambda B, x: B.expand(x, (2, 3)), lambda x: x.expand(2, 3), [rn(1, 1)])
    check(lambda B, x: B.flip(x, (0, 2)), lambda x: x.flip(0, 2), [rn(2, 3, 4)])


@pytest.mark.parametrize("starts,stops,steps", [
    ((1, 0), (3, 4), (1, 1)), ((0, 1), (4, 5), (2, 3)), ((1, 2), (4, 3), (3, 1)),
    ((0, 0), (4, 5), (1, 2)), ((2, 5), (2, 5), (1, 1))])
def test_slice(starts, stops, steps):
    def tsl(x):
        return x[starts[0]:stops[0]:steps[0], starts[1]:stops[1]:steps[1]]
    check(lambda B, x: B.slice(x, starts, stops, steps), tsl, [rn(4, 5)])


def test_pad_and_cat():
    check(lambda B, x: B.pad(x, ((1, 2), (0, 1)), 0.5),
          lambda x: TF.pad(x, (0, 1, 1, 2), value=0.5), [rn(2, 3)])
    arrs = [rn(2, 3), rn(2, 1), rn(2, 4)]
    check(lambda B, *xs: B.cat(list(xs), 1), lambda *xs: torch.cat(xs, 1), arrs,
          diff=[True, False, True])


def test_gather_scatter_index_select():
    x = rn(3, 4)
    idx = rng.integers(0, 4, (3, 5))
    check(lambda B, x, i: B.gather(x, 1, i), lambda x, i: torch.gather(x, 1, i), [x, idx])
    src = rn(3, 5)
    check(lambda B, x, i, s: B.scatter_add(x, 1, i, s),
          lambda x, i, s: x.scatter_add(1, i, s), [x, idx, src])
    # unique indices per row so which value wins is defined
    uidx = np.stack([rng.permutation(4)[:3] for _ in range(3)])
    s2 = rn(3, 3)
    check(lambda B, x, i, s: B.scatter(x, 1, i, s),
          lambda x, i, s: x.scatter(1, i, s), [x, uidx, s2])
    # src larger than index: only the index-shaped corner is used (torch's backward rejects
    # this case, so finite differences are the reference)
    s3 = rn(3, 6)
    g = check(lambda B, x, i, s: B.scatter_add(x, 1, i, s), None, [x, uidx, s3])
    assert np.all(g[2][:, 3:] == 0)
    sel = np.array([2, 0, 2, 1])
    check(lambda B, x, i: B.index_select(x, 0, i), lambda x, i: x.index_select(0, i),
          [x, sel])


def test_non_differentiable_outputs_do_not_require_grad():
    B = stack()
    x = prim(B, rn(3, 4), True)
    for p in (B.gt(x, 0.0), B.eq(x, x), B.argmax(x, 1, False), B.isnan(x),
              B.cast(x, dt.int64), B.cast(x, dt.bool_), B.logical_not(B.gt(x, 0.0))):
        assert not B.requires_grad(p)
        assert B.grad_fn_name(p) is None
    vals, ind = B.max_pool2d(B.reshape(x, (1, 1, 3, 4)), (2, 2), (1, 1), (0, 0), (1, 1), False)
    assert B.requires_grad(vals) and not B.requires_grad(ind)


def test_grad_fn_names():
    B = stack()
    x = prim(B, rn(3), True)
    assert B.grad_fn_name(B.mul(x, x)) == "MulBackward"
    assert B.grad_fn_name(B.add(x, 1.0)) == "AddBackward"
    assert B.grad_fn_name(B.sum(x, (0,), False)) == "SumBackward"
    assert B.grad_fn_name(x) is None
    assert value(B, B.add(x, 1.0)).shape == (3,)


def test_matmul_by_a_transposed_weight_takes_linear_gradients():
    """x @ w.T (how linear composes, and a common user spelling): w's gradient is g.T @ x,
    contiguous like w (not a transposed view), with torch's values and grad_fn name."""
    B = st.backend("Autodiff(NumPy())")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    X = st.from_numpy(x, backend=B).requires_grad_()
    W = st.from_numpy(w, backend=B).requires_grad_()
    y = X @ W.T
    assert y.grad_fn == "MmBackward"
    (y * y).sum().backward()
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = tx @ tw.T
    (ty * ty).sum().backward()
    np.testing.assert_allclose(X.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(W.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    assert W.grad._p.value.flags["C_CONTIGUOUS"]
