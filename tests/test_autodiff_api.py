"""Autodiff through the public API: Tensor.backward, .grad, no_grad, in-place updates,
strata.autograd.grad/backward, stacks without Autodiff, and Fusion over Autodiff."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import strata
import strata.functional as F

rng = np.random.default_rng(11)


def _mlp_grads(m, x, y, params, F_):
    w1, b1, w2, b2 = params
    h = F_.relu(x @ w1 + b1)
    loss = F_.cross_entropy(h @ w2 + b2, y)
    loss.backward()
    return loss


def test_mlp_step_gradients_match_torch():
    x, y = rng.standard_normal((16, 10)), rng.integers(0, 4, 16)
    init = [rng.standard_normal((10, 8)) * 0.3, rng.standard_normal(8) * 0.1,
            rng.standard_normal((8, 4)) * 0.3, rng.standard_normal(4) * 0.1]
    ps = [strata.tensor(a, dtype=strata.float64, requires_grad=True) for a in init]
    loss = _mlp_grads(strata, strata.tensor(x, dtype=strata.float64), strata.tensor(y), ps, F)
    tps = [torch.tensor(a, requires_grad=True) for a in init]
    tloss = _mlp_grads(torch, torch.tensor(x), torch.tensor(y), tps, torch.nn.functional)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-13)
        assert p.is_leaf and p.grad.requires_grad is False


def test_grad_accumulates_and_resets():
    x = strata.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    x.grad = None
    assert x.grad is None
    y = x.exp().sum()
    assert y.grad_fn == "SumBackward" and not y.is_leaf and y.requires_grad


def test_sgd_update_in_place_under_no_grad():
    w = strata.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    with strata.no_grad():
        w -= w.grad * 0.5
    assert w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0])
    with pytest.raises(strata.AutodiffError, match="leaf Variable that requires grad"):
        w.add_(1.0)


def test_backward_errors_are_clear():
    x = strata.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(strata.AutodiffError, match="only for scalar outputs"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(strata.AutodiffError, match="retain_graph=True"):
        y.backward()
    with pytest.raises(strata.AutodiffError, match="does not require grad"):
        strata.tensor([1.0]).sum().backward()


def test_stack_without_autodiff_says_how_to_wrap_it():
    B = strata.backend("NumPy()")
    with pytest.raises(strata.AutodiffError, match=r"Autodiff\(NumPy\(\)\)"):
        strata.tensor([1.0], backend=B).requires_grad_()


def test_autograd_grad_and_backward_functions():
    a = rng.standard_normal((3, 4))
    x = strata.tensor(a, dtype=strata.float64, requires_grad=True)
    y1, y2 = x.sin().sum(), (x * x).sum()
    g1, g2 = strata.autograd.grad([y1, y2], [x, x], retain_graph=True)
    np.testing.assert_allclose(g1.numpy(), np.cos(a) + 2 * a, rtol=1e-12)
    np.testing.assert_allclose(g2.numpy(), g1.numpy())
    assert x.grad is None
    strata.autograd.backward([y1, y2])
    np.testing.assert_allclose(x.grad.numpy(), np.cos(a) + 2 * a, rtol=1e-12)
    z = strata.tensor(a, dtype=strata.float64, requires_grad=True)
    (gz,) = strata.autograd.grad((x * 2).sum(), [z], allow_unused=True)
    assert gz is None


def test_hessian_vector_product_public_api():
    B = strata.backend("Autodiff(Autodiff(NumPy()))")
    a, v = rng.standard_normal(5), rng.standard_normal(5)
    x = strata.tensor(a, dtype=strata.float64, backend=B, requires_grad=True)
    (g,) = strata.autograd.grad((x.tanh() * x).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = strata.autograd.grad((g * strata.tensor(v, dtype=strata.float64, backend=B)).sum(), x)
    t = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad((t.tanh() * t).sum(), t, create_graph=True)
    (th,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), t)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-12)
    with pytest.raises(strata.AutodiffError, match="Autodiff"):
        y = (strata.tensor(a, requires_grad=True) ** 2).sum()
        strata.autograd.grad(y, [y], create_graph=True)


@pytest.mark.parametrize("spec", ["Fusion(Autodiff(NumPy()))", "Autodiff(Fusion(NumPy()))"])
def test_fusion_stacks_give_the_same_gradients(spec):
    a, b = rng.standard_normal((4, 5)), rng.uniform(0.5, 2.0, (5,))

    def run(B):
        x = strata.tensor(a, dtype=strata.float64, backend=B, requires_grad=True)
        w = strata.tensor(b, dtype=strata.float64, backend=B, requires_grad=True)
        y = ((x * w).tanh() + (x / w).exp() * 0.5 - w.log()).sigmoid()
        (y * y).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    ref = run(strata.backend("Autodiff(NumPy())"))
    got = run(strata.backend(spec))
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-14)


def test_in_place_ops_on_grad_change_the_stored_gradient():
    x = strata.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    held = x.grad
    x.grad.mul_(0.5)
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])
    (x * 3).sum().backward()                        # accumulates into the same tensor
    np.testing.assert_allclose(held.numpy(), [4.0, 5.0])
    x.grad.zero_()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])
    g = strata.tensor([7.0, 8.0])
    x.grad = g
    (x * 1).sum().backward()
    np.testing.assert_allclose(g.numpy(), [8.0, 9.0])
