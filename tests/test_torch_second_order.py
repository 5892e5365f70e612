"""Second derivatives through Autodiff(Autodiff(...)) with strata.autograd.grad(create_graph=True),
against torch.autograd.grad(create_graph=True); also first-order autograd.grad on every stack."""
from __future__ import annotations

import numpy as np
import pytest

import strata

from .torch_ref import NS, ST, TO, assert_close, fit_backend, rand, torch


def _grad2(ns: NS, fn, arrays, backend):
    """(f, df/dx, d/dx (df/dx . v)) for the first input: a Hessian-vector product."""
    m = ns.m
    if m is strata:
        xs = [strata.tensor(a, backend=backend, requires_grad=True) for a in arrays]
        ag = strata.autograd
    else:
        xs = [torch.tensor(a, requires_grad=True) for a in arrays]
        ag = torch.autograd
    y = fn(ns, *xs)
    (g,) = ag.grad(y, xs[0], create_graph=True)
    v = np.random.default_rng(1).uniform(-1, 1, arrays[0].shape)
    vt = strata.tensor(v, backend=backend) if m is strata else torch.tensor(v)
    (h,) = ag.grad((g * vt).sum(), xs[0])
    return [t.detach().numpy() for t in (y, g, h)]


FUNCS = {
    "tanh": lambda m, x: x.tanh().sum(),
    "sigmoid": lambda m, x: m.m.sigmoid(x).sum(),
    "exp": lambda m, x: (x.exp() * x).sum(),
    "softmax": lambda m, x: (m.F.softmax(x, -1) * (x.detach() * 0 + 1).cumsum(-1)).sum(),
    "log_softmax": lambda m, x: m.F.log_softmax(x, -1)[:, 0].sum(),
    "pow sin": lambda m, x: (x.sin() ** 2 * x.cos()).sum(),
    "gelu": lambda m, x: m.F.gelu(x).sum(),
    "norm": lambda m, x: x.norm(),
    "logsumexp": lambda m, x: x.logsumexp(-1).sum(),
    "div log": lambda m, x: (x.abs().log() / (1 + x * x)).sum(),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_second_derivative(ad2_stack, name):
    x = rand(np.random.default_rng(60), (3, 4), "float64", "nonzero")
    s = _grad2(ST, FUNCS[name], [x], ad2_stack)
    t = _grad2(TO, FUNCS[name], [x], None)
    for what, a, b in zip(("value", "gradient", "Hessian-vector product"), s, t):
        assert_close(a, b, "float64", f"{name}: {what}", grad=True)


def test_second_derivative_matmul(ad2_stack):
    rng = np.random.default_rng(61)
    w, x = rand(rng, (4, 3)), rand(rng, (5, 4))
    fn = lambda m, w_, x_: ((x_ @ w_).tanh() ** 2).sum()  # noqa: E731
    s = _grad2(ST, fn, [w, x], ad2_stack)
    t = _grad2(TO, fn, [w, x], None)
    for a, b in zip(s, t):
        assert_close(a, b, "float64", "matmul hvp", grad=True)


def test_second_derivative_mlp_loss(ad2_stack):
    """Hessian-vector product of a two-layer MLP's cross-entropy loss w.r.t. the first weights."""
    rng = np.random.default_rng(62)
    x = rand(rng, (6, 5))
    w1, b1 = rand(rng, (8, 5)) * 0.5, rand(rng, (8,)) * 0.1
    w2, b2 = rand(rng, (3, 8)) * 0.5, rand(rng, (3,)) * 0.1
    y = np.array([0, 2, 1, 1, 0, 2])

    def loss(m, w1_, b1_, w2_, b2_):
        xt = m.m.tensor(x) if m.m is torch else strata.tensor(x, backend=w1_.backend)
        h = (xt @ w1_.T + b1_).tanh()
        logp = m.F.log_softmax(h @ w2_.T + b2_, dim=1)
        idx = (m.m.tensor(y) if m.m is torch else strata.tensor(y, backend=w1_.backend))
        return -logp.gather(1, idx[:, None]).mean()

    s = _grad2(ST, loss, [w1, b1, w2, b2], ad2_stack)
    t = _grad2(TO, loss, [w1, b1, w2, b2], None)
    for what, a, b in zip(("loss", "grad", "hvp"), s, t):
        assert_close(a, b, "float64", f"mlp {what}", grad=True)


def test_create_graph_then_backward(ad2_stack):
    """backward(create_graph=True) leaves a differentiable .grad (gradient penalty pattern)."""
    x0 = np.array([0.3, -1.2, 2.0])
    out = {}
    for m in (strata, torch):
        x = (strata.tensor(x0, backend=ad2_stack, requires_grad=True) if m is strata
             else torch.tensor(x0, requires_grad=True))
        y = (x ** 3).sum()
        (g,) = m.autograd.grad(y, x, create_graph=True)
        pen = (g ** 2).sum()
        pen.backward()
        out[m.__name__] = x.grad.detach().numpy()
    assert_close(out["strata"], out["torch"], "float64", "gradient penalty", grad=True)


def test_autograd_grad_first_order(ad_stack):
    x0 = fit_backend(np.array([[0.5, -1.0], [2.0, 0.25]]), ad_stack)
    tol = "float64" if x0.dtype == np.float64 else "float32"
    res = {}
    for m in (strata, torch):
        x = (strata.tensor(x0, backend=ad_stack, requires_grad=True) if m is strata
             else torch.tensor(x0, requires_grad=True))
        w = (strata.tensor(x0 * 2, backend=ad_stack, requires_grad=True) if m is strata
             else torch.tensor(x0 * 2, requires_grad=True))
        y = (x * w).exp().sum(1)
        g0 = np.array([1.0, -2.0], x0.dtype)
        gv = strata.tensor(g0, backend=ad_stack) if m is strata else torch.tensor(g0)
        gx, gw = m.autograd.grad(y, (x, w), grad_outputs=gv)
        res[m.__name__] = (gx.numpy(), gw.numpy())
        assert x.grad is None  # autograd.grad does not accumulate into .grad
    for a, b in zip(res["strata"], res["torch"]):
        assert_close(a, b, tol, "autograd.grad", grad=True)
