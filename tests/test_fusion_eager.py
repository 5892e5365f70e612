"""Fusion(X, eager_below=n): elementwise results smaller than n elements run at once on the
inner backend instead of joining a fused program. NumPy's default (2^18) comes from its own
crossover (a small NumPy op costs less than recording it); devices fuse everything."""
from __future__ import annotations

import numpy as np
import pytest

import strata as st
from strata.decorators.fusion import stats


def _counts(fn):
    before = dict(stats.counters)
    fn()
    return {k: stats.counters[k] - before[k] for k in ("fused_kernels", "unfused_ops")}


@pytest.mark.parametrize("n, eager", [(1000, True), (300_000, False)])
def test_numpy_small_ops_run_at_once_large_ones_fuse(n, eager):
    S = st.backend("Fusion(NumPy())")
    assert S.base().fusion_eager_below == 1 << 18
    rng = np.random.default_rng(0)
    a, b = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    A, Bt = st.from_numpy(a, backend=S), st.from_numpy(b, backend=S)
    out = {}

    def run():
        out["y"] = (((A * Bt + 1.0).relu() * 2.0).exp()).numpy()
    c = _counts(run)
    assert (c["unfused_ops"], c["fused_kernels"]) == ((5, 0) if eager else (0, 1))
    want = np.exp(np.maximum(a.astype(np.float64) * b + 1.0, 0) * 2.0)
    np.testing.assert_allclose(out["y"], want, rtol=1e-6)


def test_eager_below_zero_fuses_small_graphs_and_bad_values_are_refused():
    S = st.backend("Fusion(NumPy(), eager_below=0)")
    assert str(S) == "Fusion(NumPy(), eager_below=0)"
    A = st.from_numpy(np.arange(6, dtype=np.float32), backend=S)
    c = _counts(lambda: ((A * 2.0 + 1.0).sigmoid()).numpy())
    assert (c["unfused_ops"], c["fused_kernels"]) == (0, 1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="eager_below"):
            st.decorators.Fusion(st.backend("NumPy()"), eager_below=bad)


def test_eager_ops_keep_gradients_and_dtypes():
    """The eager path goes through the inner backend's own ops: Autodiff below records them,
    casts, where, gelu and comparisons give the inner backend's results."""
    torch = pytest.importorskip("torch")
    S = st.backend("Fusion(Autodiff(NumPy()))")
    x = np.linspace(-2, 2, 7)
    X = st.from_numpy(x, backend=S).requires_grad_()
    y = st.functional.gelu(X).where(X > 0, X * 0.5).float().double()
    y.sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.where(tx > 0, torch.nn.functional.gelu(tx), tx * 0.5).float().double()
    ty.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(X.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    assert (X > 0).dtype == st.bool
