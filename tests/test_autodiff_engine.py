"""The Autodiff engine at the backend level: accumulation, graph freeing, no_grad, detach,
assign (in-place) semantics, autograd_grad, error messages and deep graphs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from strata.core import dtype as dt
from strata.core.errors import AutodiffError, DTypeError, ShapeError
from strata.core.grad_mode import enable_grad, is_grad_enabled, no_grad
from strata.tests._autodiff_util import prim, stack, value

rng = np.random.default_rng(7)


def ssum(B, x):
    return B.sum(x, tuple(range(len(B.shape(x)))), False)


def test_str_and_protocol_forwarding():
    B = stack()
    assert str(B) == "Autodiff(NumPy())"
    assert str(stack(2)) == "Autodiff(Autodiff(NumPy()))"
    x = prim(B, np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert B.shape(x) == (2, 3) and B.dtype(x) is dt.float32
    assert B.is_primitive(x) and not B.is_primitive(np.zeros(2))
    assert not stack(2).is_primitive(x)
    assert B.supports(dt.float64) and B.device_name() == B.inner.device_name()
    f = B.full((2,), 3.0, dt.float32)
    assert not B.requires_grad(f) and value(B, f).tolist() == [3.0, 3.0]
    assert value(B, B.arange(0, 2, 3, dt.int64)).tolist() == [0, 2, 4]


def test_accumulates_across_backward_calls():
    B = stack()
    a = rng.standard_normal(4)
    x = prim(B, a, True)
    for k in (1, 2, 3):
        B.backward(ssum(B, B.mul(x, x)), None, False, False)
        np.testing.assert_allclose(value(B, B.grad(x)), 2 * a * k)
    B.set_grad(x, None)
    assert B.grad(x) is None


def test_shared_subexpressions_and_reuse():
    # y = x*x + exp(x*x) reuses one node twice; z uses x three times
    a = rng.standard_normal(5)
    B = stack()
    x = prim(B, a, True)
    s = B.mul(x, x)
    y = ssum(B, B.add(B.mul(B.add(s, B.exp(s)), x), x))
    B.backward(y, None, False, False)
    t = torch.tensor(a, requires_grad=True)
    ts = t * t
    ((ts + ts.exp()) * t + t).sum().backward()
    np.testing.assert_allclose(value(B, B.grad(x)), t.grad.numpy(), rtol=1e-12)


def test_second_backward_through_freed_graph_is_a_clear_error():
    B = stack()
    x = prim(B, rng.standard_normal(3), True)
    y = ssum(B, B.exp(x))
    B.backward(y, None, False, False)
    with pytest.raises(AutodiffError, match="retain_graph=True"):
        B.backward(y, None, False, False)


def test_retain_graph_allows_second_backward():
    B = stack()
    a = rng.standard_normal(3)
    x = prim(B, a, True)
    y = ssum(B, B.exp(x))
    B.backward(y, None, True, False)
    B.backward(y, None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), 2 * np.exp(a))


def test_graph_without_saved_tensors_can_run_twice_like_torch():
    B = stack()
    x = prim(B, np.ones(2), True)
    y = ssum(B, B.add(x, 1.0))
    B.backward(y, None, False, False)
    B.backward(y, None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [2.0, 2.0])


def test_non_scalar_backward_needs_a_gradient():
    B = stack()
    x = prim(B, rng.standard_normal(3), True)
    y = B.mul(x, 2.0)
    with pytest.raises(AutodiffError, match="only for scalar outputs"):
        B.backward(y, None, False, False)
    with pytest.raises(ShapeError, match="Mismatch in shape"):
        B.backward(y, prim(B, np.ones(2)), False, False)
    B.backward(y, prim(B, np.array([1.0, 2.0, 3.0])), False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [2.0, 4.0, 6.0])


def test_backward_of_untracked_tensor_is_an_error():
    B = stack()
    x = prim(B, np.ones(3))
    with pytest.raises(AutodiffError, match="does not require grad"):
        B.backward(ssum(B, x), None, False, False)


def test_backward_on_a_leaf_sets_its_grad():
    B = stack()
    x = prim(B, np.ones(3), True)
    B.backward(x, prim(B, np.array([1.0, 2.0, 3.0])), False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [1.0, 2.0, 3.0])


def test_integer_tensors_cannot_require_grad():
    B = stack()
    with pytest.raises(DTypeError, match="only floating point tensors can require gradients"):
        B.set_requires_grad(prim(B, np.arange(3)), True)
    with pytest.raises(DTypeError, match="only floating point"):
        B.set_requires_grad(prim(B, np.array([True])), True)


def test_requires_grad_flags_and_leaves():
    B = stack()
    x = prim(B, np.ones(3), True)
    c = prim(B, np.ones(3))
    y = B.mul(x, c)
    assert B.requires_grad(y) and not B.is_leaf(y) and B.is_leaf(x)
    assert not B.requires_grad(B.mul(c, c))
    with pytest.raises(AutodiffError, match="leaf variables"):
        B.set_requires_grad(y, False)
    assert B.set_requires_grad(y, True) is y  # a no-op on a tracked result, like torch
    assert B.set_requires_grad(x, False) is x and not B.requires_grad(x)


def test_no_grad_records_nothing():
    B = stack()
    x = prim(B, np.ones(3), True)
    with no_grad():
        assert not is_grad_enabled()
        y = B.exp(x)
        assert not B.requires_grad(y) and B.is_leaf(y)
        with enable_grad():
            assert B.requires_grad(B.exp(x))
    assert is_grad_enabled()
    assert B.requires_grad(B.exp(x))


def test_detach_stops_gradients():
    B = stack()
    a = rng.standard_normal(3)
    x = prim(B, a, True)
    d = B.detach(B.mul(x, x))
    assert not B.requires_grad(d) and B.is_leaf(d)
    np.testing.assert_allclose(value(B, d), a * a)
    B.backward(ssum(B, B.mul(d, x)), None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), a * a)


def test_assign_under_no_grad_keeps_identity_and_grad():
    B = stack()
    x = prim(B, np.array([1.0, 2.0]), True)
    B.backward(ssum(B, B.mul(x, x)), None, False, False)
    with no_grad():
        new = B.sub(x, B.mul(B.grad(x), 0.1))   # an SGD step
        out = B.assign(x, new)
    assert out is x and B.requires_grad(x) and B.is_leaf(x)
    np.testing.assert_allclose(value(B, x), [0.8, 1.6])
    np.testing.assert_allclose(value(B, B.grad(x)), [2.0, 4.0])
    B.set_grad(x, None)
    B.backward(ssum(B, B.mul(x, x)), None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [1.6, 3.2])


def test_assign_on_a_leaf_that_requires_grad_needs_no_grad():
    B = stack()
    x = prim(B, np.ones(2), True)
    with pytest.raises(AutodiffError, match="leaf Variable that requires grad"):
        B.assign(x, B.add(x, 1.0))


def test_assign_in_grad_mode_takes_the_new_history():
    # like torch's y.mul_(x) on a non-leaf: gradients flow through the in-place op
    B = stack()
    a = rng.standard_normal(3)
    x = prim(B, a, True)
    y = B.add(x, 0.0)
    B.assign(y, B.mul(y, x))
    B.backward(ssum(B, y), None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), 2 * a)
    # an untracked tensor assigned a tracked value becomes part of the graph
    z = prim(B, np.zeros(3))
    B.assign(z, B.exp(x))
    assert B.requires_grad(z) and B.grad_fn_name(z) == "ExpBackward"


def test_saved_values_are_snapshots():
    # an in-place update after recording does not change what gets differentiated
    B = stack()
    x = prim(B, np.array([3.0]), True)
    y = ssum(B, B.mul(x, x))
    with no_grad():
        B.assign(x, B.full((1,), 10.0, dt.float64))
    B.backward(y, None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [6.0])


def test_set_grad_checks():
    B = stack()
    x = prim(B, np.ones(3), True)
    with pytest.raises(AutodiffError, match="shape"):
        B.set_grad(x, prim(B, np.ones(2)))
    with pytest.raises(AutodiffError, match="dtype"):
        B.set_grad(x, prim(B, np.ones(3, dtype=np.float32)))
    B.set_grad(x, prim(B, np.full(3, 2.0)))
    B.backward(ssum(B, x), None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [3.0, 3.0, 3.0])


def test_autograd_grad_matches_torch_and_leaves_grad_alone():
    a, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    B = stack()
    x, W = prim(B, a, True), prim(B, w, True)
    h = B.matmul(x, W)
    y = ssum(B, B.tanh(h))
    gx, gh = B.autograd_grad([y], [x, h], None, None, False, False)
    assert B.grad(x) is None and B.grad(W) is None
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(w, requires_grad=True)
    th = tx @ tw
    rx, rh = torch.autograd.grad(th.tanh().sum(), [tx, th])
    np.testing.assert_allclose(value(B, gx), rx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(value(B, gh), rh.numpy(), rtol=1e-12)
    assert not B.requires_grad(gx)


def test_autograd_grad_multiple_outputs_and_grad_outputs():
    B = stack()
    a = rng.standard_normal(3)
    x = prim(B, a, True)
    y1, y2 = B.exp(x), B.sin(x)
    v1, v2 = rng.standard_normal(3), rng.standard_normal(3)
    (g,) = B.autograd_grad([y1, y2], [x], [prim(B, v1), prim(B, v2)], None, False, False)
    np.testing.assert_allclose(value(B, g), v1 * np.exp(a) + v2 * np.cos(a), rtol=1e-12)


def test_autograd_grad_unused_inputs():
    B = stack()
    x, z = prim(B, np.ones(2), True), prim(B, np.ones(2), True)
    y = ssum(B, B.exp(x))
    with pytest.raises(AutodiffError, match="allow_unused=True"):
        B.autograd_grad([y], [x, z], None, True, False, False)
    gx, gz = B.autograd_grad([y], [x, z], None, False, False, True)
    assert gz is None
    np.testing.assert_allclose(value(B, gx), np.exp([1.0, 1.0]))
    with pytest.raises(AutodiffError, match="does not require grad"):
        B.autograd_grad([ssum(B, B.exp(x))], [prim(B, np.ones(2))], None, False, False, False)


def test_create_graph_needs_a_second_autodiff_layer():
    B = stack()
    x = prim(B, np.ones(2), True)
    with pytest.raises(AutodiffError, match=r"Autodiff\(Autodiff\(NumPy\(\)\)\)"):
        B.backward(ssum(B, B.exp(x)), None, False, True)


def test_deep_graph_has_no_recursion_limit():
    B = stack()
    x = prim(B, np.array([1.0]), True)
    y = x
    for _ in range(20000):
        y = B.mul(y, 1.0001)
    B.backward(ssum(B, y), None, False, False)
    np.testing.assert_allclose(value(B, B.grad(x)), [1.0001 ** 20000], rtol=1e-9)


def test_float32_gradients_stay_float32():
    B = stack()
    x = prim(B, np.ones((2, 3), dtype=np.float32), True)
    b = prim(B, np.ones(3, dtype=np.float32), True)
    B.backward(ssum(B, B.add(B.mul(x, x), b)), None, False, False)
    assert B.dtype(B.grad(x)) is dt.float32 and B.dtype(B.grad(b)) is dt.float32
    np.testing.assert_allclose(value(B, B.grad(b)), [2.0, 2.0, 2.0])
