"""Matmul epilogue fusion: `fused_matmul` on the OpenCL and WGPU backends against the
protocol's composition (matmul, then the fused program) on the same backend and a NumPy
float64 reference; and Fusion stacks turning `act(x @ w + b)` into one kernel, in the forward
and the backward pass, without ever running a matmul twice."""
from __future__ import annotations

import math

import numpy as np
import pytest

import strata as st
import strata.functional as F
from strata.backends.erf import erf
from strata.core import dtype as dt
from strata.core.backend import Backend
from strata.core.errors import ShapeError
from strata.decorators.fusion import ProgramBuilder, stats

BASES = ["OpenCL()", "WGPU()"]


def _base(spec):
    from strata.core.errors import BackendError
    if spec == "WGPU()":
        pytest.importorskip("wgpu")
    try:
        return st.backend(spec)
    except BackendError as e:
        pytest.skip(f"{spec} unavailable: {e}")


@pytest.fixture(scope="module", params=BASES)
def B(request):
    return _base(request.param)


def _matmuls(B, monkeypatch) -> list:
    """Counts the base's matmul kernels (plain and with an epilogue)."""
    base = B.base()
    count = [0]
    run = type(base)._matmul

    def counted(self, a, b, epi):
        count[0] += 1
        return run(self, a, b, epi)
    monkeypatch.setattr(type(base), "_matmul", counted)
    return count


def _bias_act(act: str, d=dt.float32):
    pb = ProgramBuilder()
    c, b = pb.input(d), pb.input(d)
    y = pb.op("add", c, b)
    return pb.finish([pb.op(act, y) if act else y])


def _gelu64(h):
    return 0.5 * h * (1 + erf(h / math.sqrt(2), np))


def _data(rng, *shape, d=np.float32):
    return rng.standard_normal(shape).astype(d)


@pytest.mark.parametrize("act", ["relu", None, "gelu", "sigmoid"])
@pytest.mark.parametrize("N,K,M,wt", [(37, 50, 29, False), (64, 96, 128, True), (5, 3, 1, False),
                                      (1, 17, 70, True)])
def test_bias_activation_epilogue_matches_composition(B, act, N, K, M, wt):
    rng = np.random.default_rng(N * K + M)
    x, w, b = _data(rng, N, K), _data(rng, M, K) if wt else _data(rng, K, M), _data(rng, M)
    X, W, Bb = (B.from_numpy(v, dt.float32) for v in (x, w, b))
    if wt:  # x @ w.T, the Linear layer's layout (a transposed view, no copy)
        W = B.permute(W, (1, 0))
        w = w.T
    p = _bias_act(act)
    (got,) = B.fused_matmul(p, X, W, [Bb], (N, M))
    (ref,) = Backend.fused_matmul(B, p, X, W, [Bb], (N, M))
    got, ref = B.to_numpy(got), B.to_numpy(ref)
    h = x.astype(np.float64) @ w.astype(np.float64) + b
    want = {"relu": np.maximum(h, 0), None: h, "gelu": _gelu64(h),
            "sigmoid": 1 / (1 + np.exp(-h))}[act]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    if act in ("relu", None):  # exact ops: the bits of the op-by-op chain
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6)


def test_outputs_product_views_and_bool_results(B):
    """Outputs may be the product itself, a view of another input, a bool comparison, or the
    same slot twice; every one must be what the composition gives."""
    rng = np.random.default_rng(3)
    x, w = _data(rng, 20, 12), _data(rng, 12, 9)
    s = _data(rng, 20, 1)          # a per-row scale (stride 0 along columns)
    thr = _data(rng, 9)
    pb = ProgramBuilder()
    c, sc, t = pb.input(dt.float32), pb.input(dt.float32), pb.input(dt.float32)
    y = pb.op("mul", c, sc)
    m = pb.op("gt", y, t)
    z = pb.op("where", m, y, pb.const(-1.5, dt.float32))
    p = pb.finish([z, c, m, sc, z])
    args = [B.from_numpy(v, dt.float32) for v in (s, thr)]
    X, W = B.from_numpy(x, dt.float32), B.from_numpy(w, dt.float32)
    got = B.fused_matmul(p, X, W, args, (20, 9))
    ref = Backend.fused_matmul(B, p, X, W, args, (20, 9))
    assert len(got) == 5
    for g, r in zip(got, ref):
        assert B.shape(g) == B.shape(r) and B.dtype(g) is B.dtype(r)
        np.testing.assert_array_equal(B.to_numpy(g), B.to_numpy(r))
    np.testing.assert_allclose(B.to_numpy(got[1]), x.astype(np.float64) @ w, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("xs,ws,es,epilogue", [
    ((3, 5, 7), (7, 4), (4,), True),                    # a bias, the same for every batch entry
    ((2, 3, 5, 7), (3, 7, 4), (5, 4), True),            # a (row, column) table, broadcast
    ((2, 3, 5, 7), (3, 7, 4), (2, 3, 5, 4), True),      # a dense residual of the product's shape
    ((2, 5, 7), (1, 7, 4), (2, 1, 4), False)])          # per batch, broadcast rows: composition
def test_batched_epilogues_match_composition(B, xs, ws, es, epilogue, monkeypatch):
    """Batched products take the epilogue where each input is either the same for every
    batch entry or dense in the product's shape; the bits equal the composition's (exact
    ops), values equal NumPy float64."""
    rng = np.random.default_rng(len(xs) * 10 + len(es))
    x, w, e = _data(rng, *xs), _data(rng, *ws), _data(rng, *es)
    X, W, E = (B.from_numpy(v, dt.float32) for v in (x, w, e))
    out = np.broadcast_shapes(xs[:-2], ws[:-2]) + (xs[-2], ws[-1])
    p = _bias_act("relu")
    used = []
    run = type(B)._matmul
    monkeypatch.setattr(type(B), "_matmul",
                        lambda self, a, b, epi: used.append(epi is not None) or run(self, a, b, epi))
    (got,) = B.fused_matmul(p, X, W, [E], out)
    assert used == [epilogue]
    (ref,) = Backend.fused_matmul(B, p, X, W, [E], out)
    np.testing.assert_array_equal(B.to_numpy(got), B.to_numpy(ref))
    np.testing.assert_allclose(B.to_numpy(got), np.maximum(x.astype(np.float64) @ w + e, 0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["batched", "broadcast_beyond", "empty_k", "float64"])
def test_unsupported_layouts_take_the_composition_and_stay_right(B, case):
    rng = np.random.default_rng(11)
    d = dt.float64 if case == "float64" else dt.float32
    if d is dt.float64 and not B.supports(d):
        pytest.skip(f"{B} has no float64")
    shape_x, shape_w, out = {"batched": ((3, 4, 5), (5, 6), (3, 4, 6)),
                             "broadcast_beyond": ((4, 5), (5, 6), (4, 6)),
                             "empty_k": ((4, 0), (0, 6), (4, 6)),
                             "float64": ((7, 5), (5, 6), (7, 6))}[case]
    npd = np.float64 if d is dt.float64 else np.float32
    x, w = _data(rng, *shape_x, d=npd), _data(rng, *shape_w, d=npd)
    b = _data(rng, *out[-1:], d=npd)
    p = _bias_act("relu", d)
    X, W, Bb = (B.from_numpy(v, d) for v in (x, w, b))
    (got,) = B.fused_matmul(p, X, W, [Bb], out)
    want = np.maximum(x.astype(np.float64) @ w + b, 0)
    np.testing.assert_allclose(B.to_numpy(got), want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ through Fusion stacks
@pytest.mark.parametrize("order", ["Fusion({})", "Autodiff(Fusion({}))", "Fusion(Autodiff({}))"])
def test_linear_relu_is_one_kernel(B, order, monkeypatch):
    spec = order.format(B)
    S = st.backend(spec)
    mm = _matmuls(S, monkeypatch)
    rng = np.random.default_rng(0)
    x, w, b = _data(rng, 16, 24), _data(rng, 10, 24), _data(rng, 10)
    X, W, Bb = (st.from_numpy(v, backend=S) for v in (x, w, b))
    before = dict(stats.counters)
    with st.no_grad():
        y = F.relu(F.linear(X, W, Bb)).numpy()
    assert stats.counters["fused_kernels"] - before["fused_kernels"] == 1
    assert stats.counters["unfused_ops"] - before["unfused_ops"] == 0
    assert mm[0] == 1
    np.testing.assert_allclose(y, np.maximum(x.astype(np.float64) @ w.T + b, 0), rtol=1e-5,
                               atol=1e-5)


def test_a_product_read_elsewhere_is_written_not_recomputed(B, monkeypatch):
    """h = x @ w is kept by the caller: the epilogue kernel writes it as a second output, so
    reading h afterwards runs no second matmul."""
    S = st.backend(f"Fusion({B})")
    mm = _matmuls(S, monkeypatch)
    rng = np.random.default_rng(1)
    x, w, b = _data(rng, 9, 7), _data(rng, 7, 5), _data(rng, 5)
    X, W, Bb = (st.from_numpy(v, backend=S) for v in (x, w, b))
    h = X @ W
    z = h + Bb            # an intermediate the caller keeps too
    y = F.relu(z)
    y_np = y.numpy()
    assert mm[0] == 1
    ref = x.astype(np.float64) @ w
    np.testing.assert_allclose(h.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z.numpy(), ref + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_np, np.maximum(ref + b, 0), rtol=1e-5, atol=1e-5)
    assert mm[0] == 1


def test_two_products_in_one_chain(B, monkeypatch):
    S = st.backend(f"Fusion({B})")
    mm = _matmuls(S, monkeypatch)
    rng = np.random.default_rng(2)
    x, w1, w2 = _data(rng, 6, 4), _data(rng, 4, 3), _data(rng, 4, 3)
    X, W1, W2 = (st.from_numpy(v, backend=S) for v in (x, w1, w2))
    y = F.relu(X @ W1 + X @ W2).numpy()
    assert mm[0] == 2
    np.testing.assert_allclose(y, np.maximum(x.astype(np.float64) @ w1 + x @ w2, 0),
                               rtol=1e-5, atol=1e-5)


def test_shape_errors_surface_at_the_matmul(B):
    S = st.backend(f"Fusion({B})")
    X = st.from_numpy(np.ones((3, 4), np.float32), backend=S)
    W = st.from_numpy(np.ones((5, 2), np.float32), backend=S)
    with pytest.raises(ShapeError, match="4"):
        X @ W


def test_training_step_fuses_without_recomputing_and_matches_unfused(B, monkeypatch):
    """Autodiff(Fusion(X)): forward bias+ReLU and backward ReLU-mask become matmul epilogues;
    five matmuls per step as unfused (two forward, three backward); same losses."""
    def run(spec, count):
        S = st.backend(spec)
        mm = _matmuls(S, monkeypatch) if count else None
        nn = st.modules
        st.manual_seed(0)
        m = nn.Sequential(nn.Linear(20, 16, backend=S), nn.ReLU(), nn.Linear(16, 4, backend=S))
        opt = st.optim.SGD(m.parameters(), lr=0.1)
        rng = np.random.default_rng(0)
        x = st.from_numpy(_data(rng, 8, 20), backend=S)
        y = st.from_numpy(rng.integers(0, 4, 8), backend=S)
        losses, per_step = [], []
        for _ in range(3):
            k = mm[0] if mm else 0
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            per_step.append(mm[0] - k if mm else 0)
        return losses, per_step
    ref, _ = run(f"Autodiff({B})", False)
    got, per_step = run(f"Autodiff(Fusion({B}))", True)
    assert per_step == [5, 5, 5]
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_gradients_through_a_tracked_epilogue_match_torch(B):
    torch = pytest.importorskip("torch")
    S = st.backend(f"Fusion(Autodiff({B}))")
    rng = np.random.default_rng(4)
    x, w, b = _data(rng, 6, 5), _data(rng, 5, 3), _data(rng, 3)
    X, W, Bb = (st.from_numpy(v, backend=S).requires_grad_() for v in (x, w, b))
    (F.gelu(X @ W + Bb) * 2.0).sum().backward()
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    (torch.nn.functional.gelu(tx @ tw + tb) * 2.0).sum().backward()
    for s_, t_ in ((X, tx), (W, tw), (Bb, tb)):
        np.testing.assert_allclose(s_.grad.numpy(), t_.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_numpy_stack_keeps_plain_matmuls():
    """NumPy has no epilogue kernel: Fusion(NumPy()) runs matmul at once (nothing pending)."""
    S = st.backend("Fusion(NumPy())")
    assert S._epilogue is False
    X = st.from_numpy(np.ones((2, 3), np.float32), backend=S)
    assert (X @ X.T)._p.value is not None


def _base_layout(t):
    """The base backend's layout of a tensor, through the Fusion and Autodiff wrappers."""
    p = t._p
    while not hasattr(p, "layout"):
        p = p.value
    return p.layout


@pytest.mark.parametrize("order", ["Fusion(Autodiff({}))", "Autodiff(Fusion({}))"])
@pytest.mark.parametrize("xshape", [(12, 9), (3, 4, 9)])
def test_tracked_linear_relu_is_one_forward_kernel_with_linear_gradients(B, order, xshape,
                                                                         monkeypatch):
    """In training, relu(linear(x, w, b)) is one matmul kernel (x of rank 3 too: one batched
    product, no reshape ending the chain); under Fusion(Autodiff(X)) it also writes the
    product for the backward. No matmul runs twice (one forward, two backward); the weight
    gradient comes back contiguous like the weight; all gradients match torch."""
    torch = pytest.importorskip("torch")
    S = st.backend(order.format(B))
    mm = _matmuls(S, monkeypatch)
    rng = np.random.default_rng(5)
    x, w, b = _data(rng, *xshape), _data(rng, 7, 9), _data(rng, 7)
    X, W, Bb = (st.from_numpy(v, backend=S).requires_grad_() for v in (x, w, b))
    with st.fusion.trace() as t:
        y = F.relu(F.linear(X, W, Bb))
        y_np = y.detach().numpy()
    assert [ops for kind, ops in t.events if kind == "fused"] == [("matmul", "add", "relu")]
    assert mm[0] == 1
    (y * y).sum().backward()
    grads = [t_.grad.numpy() for t_ in (X, W, Bb)]   # under Autodiff(Fusion) reading runs them
    assert mm[0] == 3
    tx, tw, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, w, b))
    ty = torch.relu(torch.nn.functional.linear(tx, tw, tb))
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y_np, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    for g, t_ in zip(grads, (tx, tw, tb)):
        np.testing.assert_allclose(g, t_.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert _base_layout(W.grad).is_contiguous()
