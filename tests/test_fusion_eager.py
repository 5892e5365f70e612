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


@pytest.mark.parametrize("spec", ["Fusion(NumPy(), eager_below=0)",
                                  "Fusion(Autodiff(NumPy()), eager_below=0)",
                                  "Autodiff(Fusion(NumPy(), eager_below=0))",
                                  "Quantization(PoolAllocator(Fusion(NumPy(), eager_below=0)))",
                                  "Autodiff(NumPy())"])
def test_realize_computes_a_result_that_is_then_dropped(spec):
    """Tensor.realize() runs a pending chain now; a chain dropped unread is never run (this
    is what a benchmark loop that discards its outputs would silently time)."""
    S = st.backend(spec)
    lazy = "Fusion" in spec
    a = np.linspace(-1, 1, 12, dtype=np.float32)
    A = st.from_numpy(a, backend=S)
    c = _counts(lambda: (A * 3.0 + 1.0).relu())
    assert c["fused_kernels"] == 0
    S.sync()
    y = {}
    c = _counts(lambda: y.setdefault("y", (A * 3.0 + 1.0).relu().realize()))
    assert c["fused_kernels"] == (1 if lazy else 0)
    c = _counts(lambda: y["y"].numpy())          # already computed: nothing runs again
    assert c["fused_kernels"] == 0
    np.testing.assert_allclose(y["y"].numpy(), np.maximum(a.astype(np.float64) * 3 + 1, 0),
                               rtol=1e-6)


@pytest.mark.parametrize("spec", ["Fusion(NumPy(), eager_below=0)", "Fusion(OpenCL())"])
def test_sync_runs_a_pending_chain_as_one_program(spec):
    """sync() realizes the newest pending node first: the whole chain is one program. It used
    to start from the oldest node, still alive as an argument of the next, so each op of the
    chain ran as its own program. A node the user holds is still computed (recomputed)."""
    try:
        S = st.backend(spec)
    except st.BackendError as e:
        pytest.skip(f"{spec} unavailable: {e}")
    a = np.linspace(-1, 1, 64, dtype=np.float32)
    A = st.from_numpy(a, backend=S)
    out = {}

    def chain():
        out["y"] = ((A * 2.0 + 1.0).relu() * 3.0).exp()
        S.sync()
    assert _counts(chain)["fused_kernels"] == 1

    def held():
        out["t"] = A * 2.0
        out["y"] = (out["t"] + 1.0).relu()
        S.sync()
    assert _counts(held)["fused_kernels"] == 2
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(out["t"].numpy(), a64 * 2, rtol=1e-6)
    np.testing.assert_allclose(out["y"].numpy(), np.maximum(a64 * 2 + 1, 0), rtol=1e-6)
