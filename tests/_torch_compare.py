"""Helpers for comparing strata modules with PyTorch 2.13 CPU modules."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import strata as st  # noqa: E402

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def assert_close(actual, desired, dtype, err_msg="", rtol=None):
    """float64: elementwise rtol 1e-10; float32: within 1e-5 relative to the tensor's scale
    (float32 sums with cancellation lose absolute, not relative-to-scale, accuracy)."""
    desired = np.asarray(desired)
    tol = dict(TOL[dtype])
    if dtype == "float32" and desired.size:
        tol["atol"] = max(tol["atol"], 1e-5 * float(np.abs(desired).max()))
    if rtol is not None:
        tol["rtol"] = max(tol["rtol"], rtol)
    np.testing.assert_allclose(actual, desired, err_msg=err_msg, **tol)


def tdtype(name):
    return {"float64": torch.float64, "float32": torch.float32}[name]


def copy_torch_to_strata(tm, sm):
    """Load torch's state dict into the strata module and check keys and shapes agree."""
    tsd = tm.state_dict()
    ssd = sm.state_dict()
    assert list(ssd) == list(tsd), f"state_dict keys differ: {list(ssd)} vs {list(tsd)}"
    for k in tsd:
        assert tuple(ssd[k].shape) == tuple(tsd[k].shape), k
    sm.load_state_dict({k: v.detach().numpy() for k, v in tsd.items()})


def compare_module(tm, sm, inputs, dtype="float64", grad_inputs=True, train=True, seed=0, grad_rtol=None):
    """Same weights -> same outputs and gradients (wrt float inputs and every parameter)."""
    copy_torch_to_strata(tm, sm)
    tm.train(train)
    sm.train(train)
    tx, sx = [], []
    for a in inputs:
        fl = np.issubdtype(a.dtype, np.floating)
        t = torch.tensor(a, requires_grad=fl and grad_inputs)
        s = st.tensor(a, requires_grad=fl and grad_inputs) if fl else st.tensor(a)
        tx.append(t)
        sx.append(s)
    to = tm(*tx)
    so = sm(*sx)
    if isinstance(to, tuple):
        to, so = to[0], so[0]
    assert_close(so.detach().numpy(), to.detach().numpy(), dtype)
    g = np.random.default_rng(seed).standard_normal(tuple(to.shape)).astype(to.detach().numpy().dtype)
    (to * torch.tensor(g)).sum().backward()
    (so * st.tensor(g)).sum().backward()
    for t, s in zip(tx, sx):
        if t.requires_grad:
            assert_close(s.grad.numpy(), t.grad.numpy(), dtype, rtol=grad_rtol)
    tp = dict(tm.named_parameters())
    for name, p in sm.named_parameters():
        if tp[name].grad is None:
            assert p.grad is None or np.allclose(p.grad.numpy(), 0)
            continue
        assert p.grad is not None, f"no gradient for {name}"
        assert_close(p.grad.numpy(), tp[name].grad.numpy(), dtype, name)
    return to, so
