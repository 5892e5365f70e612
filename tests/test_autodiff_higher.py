"""Higher-order gradients by stacking Autodiff(Autodiff(NumPy())): Hessian-vector products
against torch.autograd.grad(create_graph=True), and torch's .grad accumulation semantics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strata.core.grad_mode import no_grad
from strata.tests._autodiff_util import prim, stack, value

rng = np.random.default_rng(5)


def ssum(B, x):
    return B.sum(x, tuple(range(len(B.shape(x)))), False)


def hvp(fn, tfn, arrays, seed=0):
    """Gradient and Hessian-vector product of the scalar fn w.r.t. every input, both ways."""
    r = np.random.default_rng(seed)
    vs = [r.standard_normal(a.shape) for a in arrays]
    B = stack(2)
    xs = [prim(B, a, True) for a in arrays]
    gs = B.autograd_grad([fn(B, *xs)], xs, None, None, True, False)
    dot = None
    for g, v in zip(gs, vs):
        t = ssum(B, B.mul(g, prim(B, v)))
        dot = t if dot is None else B.add(dot, t)
    hs = B.autograd_grad([dot], xs, None, None, False, True)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tg = torch.autograd.grad(tfn(*ts), ts, create_graph=True)
    tdot = sum((g * torch.tensor(v)).sum() for g, v in zip(tg, vs))
    th = torch.autograd.grad(tdot, ts, allow_unused=True)
    for g, t in zip(gs, tg):
        np.testing.assert_allclose(value(B, g), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for h, t in zip(hs, th):
        ref = np.zeros_like(arrays[0]) if t is None else t.numpy()
        got = np.zeros_like(ref) if h is None else value(B, h)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11)


CASES = {
    "tanh": (lambda B, x: ssum(B, B.tanh(x)), lambda x: x.tanh().sum()),
    "sigmoid": (lambda B, x: ssum(B, B.mul(B.sigmoid(x), x)), lambda x: (x.sigmoid() * x).sum()),
    "exp": (lambda B, x: ssum(B, B.exp(B.mul(x, x))), lambda x: (x * x).exp().sum()),
    "softmax": (lambda B, x: ssum(B, B.mul(B.softmax(x, 1), B.softmax(x, 0))),
                lambda x: (x.softmax(1) * x.softmax(0)).sum()),
    "log_softmax": (lambda B, x: ssum(B, B.mul(B.log_softmax(x, 1), x)),
                    lambda x: (x.log_softmax(1) * x).sum()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hvp_unary(name):
    fn, tfn = CASES[name]
    hvp(fn, tfn, [rng.standard_normal((3, 4))])


def test_hvp_matmul():
    hvp(lambda B, a, b: ssum(B, B.tanh(B.matmul(a, b))),
        lambda a, b: (a @ b).tanh().sum(), [rng.standard_normal((3, 4)),
                                            rng.standard_normal((2, 4, 5))])


def test_hvp_two_layer_mlp_loss():
    x = rng.standard_normal((8, 5))
    y = np.eye(3)[rng.integers(0, 3, 8)]
    w1, b1 = rng.standard_normal((5, 6)) * 0.5, rng.standard_normal(6) * 0.1
    w2, b2 = rng.standard_normal((6, 3)) * 0.5, rng.standard_normal(3) * 0.1

    def fn(B, w1, b1, w2, b2):
        h = B.tanh(B.add(B.matmul(prim(B, x), w1), b1))
        logits = B.add(B.matmul(h, w2), b2)
        ce = B.neg(B.mul(B.log_softmax(logits, 1), prim(B, y)))
        return B.div(ssum(B, ce), 8.0)

    def tfn(w1, b1, w2, b2):
        h = (torch.tensor(x) @ w1 + b1).tanh()
        return -(torch.log_softmax(h @ w2 + b2, 1) * torch.tensor(y)).sum() / 8.0

    hvp(fn, tfn, [w1, b1, w2, b2])


def test_hvp_broadcast_pow_div_max():
    hvp(lambda B, a, b: ssum(B, B.div(B.pow(a, b), B.maximum(a, b))),
        lambda a, b: (a.pow(b) / torch.maximum(a, b)).sum(),
        [rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (4,))])


def test_hvp_layer_norm_and_conv():
    w = rng.standard_normal((2, 3, 3, 3))
    hvp(lambda B, x, g: ssum(B, B.tanh(B.layer_norm(x, 1, g, None, 1e-5))),
        lambda x, g: torch.nn.functional.layer_norm(x, (4,), g, None, 1e-5).tanh().sum(),
        [rng.standard_normal((3, 4)), rng.standard_normal(4)])
    hvp(lambda B, x: ssum(B, B.tanh(B.conv2d(x, prim(B, w), (1, 1), (1, 1), (1, 1), 1))),
        lambda x: torch.nn.functional.conv2d(x, torch.tensor(w), None, 1, 1).tanh().sum(),
        [rng.standard_normal((1, 3, 4, 4))])


def test_first_order_on_the_nested_stack_matches_one_layer():
    a = rng.standard_normal((3, 4))
    out = []
    for levels in (1, 2):
        B = stack(levels)
        x = prim(B, a, True)
        B.backward(ssum(B, B.mul(B.exp(x), B.sin(x))), None, False, False)
        out.append(value(B, B.grad(x)))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-14)


@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph=True")
def test_backward_create_graph_then_backward_accumulates_like_torch():
    a = rng.standard_normal(3)
    B = stack(2)
    x = prim(B, a, True)
    B.backward(ssum(B, B.exp(x)), None, False, True)
    g = B.grad(x)
    assert B.requires_grad(g) and not B.is_leaf(g)
    B.backward(ssum(B, g), None, False, False)
    t = torch.tensor(a, requires_grad=True)
    t.exp().sum().backward(create_graph=True)
    t.grad.sum().backward()
    np.testing.assert_allclose(value(B, B.grad(x)), t.grad.detach().numpy(), rtol=1e-12)
    B.set_grad(x, None)
    assert B.grad(x) is None


def test_optimizer_step_keeps_both_levels_tracking():
    B = stack(2)
    x = prim(B, np.array([1.0, 2.0]), True)
    B.backward(ssum(B, B.mul(x, x)), None, False, False)
    with no_grad():
        B.assign(x, B.sub(x, B.mul(B.grad(x), 0.25)))
    np.testing.assert_allclose(value(B, x), [0.5, 1.0])
    (g,) = B.autograd_grad([ssum(B, B.pow(x, 3.0))], [x], None, None, True, False)
    (h,) = B.autograd_grad([ssum(B, g)], [x], None, None, False, False)
    np.testing.assert_allclose(value(B, h), [3.0, 6.0])  # d/dx sum(3x^2) = 6x
