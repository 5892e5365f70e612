"""Backend stacks from the public API: strings, str() round trip, defaults, context manager,
STRATA_BACKEND, tensors staying on their stack, and autograd basics on every Autodiff stack."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import strata
from strata.testing import stack_candidates


@pytest.mark.parametrize("info", [i for i in stack_candidates() if i.available],
                         ids=lambda i: i.spec)
def test_stack_string_round_trip(info):
    B = strata.backend(info.spec)
    assert str(B) == info.spec
    assert str(strata.backend(str(B))) == info.spec
    assert strata.backend(B) is B
    assert strata.backend(" " + info.spec.replace("(", "( ") + " ") == B


def test_stack_structure():
    B = strata.backend("Autodiff(Autodiff(NumPy()))")
    assert str(B.inner) == "Autodiff(NumPy())"
    assert str(B.base()) == "NumPy()"
    assert B.inner.inner.inner is None


def test_tensors_stay_on_their_stack(stack):
    x = strata.tensor([1.0, -2.0], backend=stack)
    for y in (x + 1, x.exp(), x.sum(), x.flip(0), strata.zeros_like(x),
              x.reshape(2, 1) @ x.reshape(1, 2), x > 0, x.to(strata.int32)):
        assert y.backend == stack


def test_default_backend_and_context():
    base = strata.get_default_backend()
    assert str(base) == (os.environ.get("STRATA_BACKEND") or "Autodiff(NumPy())")
    B = strata.backend("NumPy()")
    with strata.default_backend(B):
        assert strata.get_default_backend() == B
        assert strata.zeros(2).backend == B
        with strata.default_backend("Autodiff(Autodiff(NumPy()))") as inner:
            assert str(strata.ones(1).backend) == "Autodiff(Autodiff(NumPy()))"
            assert inner == strata.get_default_backend()
        assert strata.zeros(2).backend == B
    assert strata.get_default_backend() == base
    prev = strata.set_default_backend("NumPy()")
    try:
        assert str(strata.tensor([1]).backend) == "NumPy()"
    finally:
        strata.set_default_backend(base)
    assert prev == B or str(prev) == "NumPy()"


def test_strata_backend_env(tmp_path):
    code = "import strata; print(strata.get_default_backend()); print(strata.zeros(1).backend)"
    env = dict(os.environ, STRATA_BACKEND="Autodiff(Autodiff(NumPy()))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Autodiff(Autodiff(NumPy()))"] * 2
    env.pop("STRATA_BACKEND")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.stdout.split() == ["Autodiff(NumPy())"] * 2, r.stderr


def test_import_from_any_directory(tmp_path):
    r = subprocess.run([sys.executable, "-c", "import strata, strata.testing, strata.functional"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr


def test_autograd_basics(ad_stack):
    x = strata.tensor([1.0, 2.0, 3.0], backend=ad_stack, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad is None
    y = (x * x).sum()
    assert y.requires_grad and not y.is_leaf
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    (x * 3).sum().backward()            # gradients accumulate, like torch
    assert x.grad.tolist() == [5.0, 7.0, 9.0]
    x.grad = None
    z = (x.exp() * 2).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0, 3.0]), rtol=1e-6)
    d = x.detach()
    assert not d.requires_grad and d.tolist() == [1.0, 2.0, 3.0]
    with strata.no_grad():
        w = x * 2
    assert not w.requires_grad
    x.requires_grad_(False)
    assert not (x * 2).requires_grad


def test_no_grad_decorator(ad_stack):
    @strata.no_grad()
    def f(t):
        return t * 2
    x = strata.tensor([1.0], backend=ad_stack, requires_grad=True)
    assert not f(x).requires_grad
    assert (x * 2).requires_grad


def test_grad_of_non_leaf_is_none_and_retain(ad_stack):
    x = strata.tensor([1.0, 2.0], backend=ad_stack, requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_printing(stack):
    x = strata.tensor([[1.5, 2.0]], backend=stack)
    r = repr(x)
    assert r.startswith("tensor(") and "1.5" in r
    assert "int32" in repr(strata.tensor([1], dtype=strata.int32, backend=stack))
