"""WGPU's nll_loss and nll_loss_backward kernels (nll.wgsl) against the protocol's composition
on the same device and PyTorch (float64): every reduction, class weights, ignored targets,
(N, C) and spatial inputs; the deferred bounds check; one dispatch per op; the fallbacks."""
from __future__ import annotations

import numpy as np
import pytest

from strata.tests._wgpu_util import make_backend  # (sets XDG_RUNTIME_DIR)
pytest.importorskip("wgpu")
torch = pytest.importorskip("torch")

import strata as st  # noqa: E402
from strata.core import dtype as dt  # noqa: E402
from strata.core.backend import Backend  # noqa: E402

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def B():
    return make_backend()


def logprobs(shape, rng=RNG):
    """log-probabilities of shape (N, C, d...) (classes on dim 1), float32."""
    x = np.log(rng.dirichlet(np.ones(shape[1]), size=(shape[0],) + tuple(shape[2:])))
    return np.ascontiguousarray(np.moveaxis(x, -1, 1)).astype(np.float32)


def torch_nll(x, t, w, ignore_index, red, g=None):
    """torch's loss (float64) and, given g, its gradient with respect to x."""
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tw = None if w is None else torch.tensor(w, dtype=torch.float64)
    loss = torch.nn.functional.nll_loss(tx, torch.tensor(t), tw, ignore_index=ignore_index,
                                        reduction=red)
    if g is None:
        return loss.detach().numpy(), None
    loss.backward(torch.tensor(g, dtype=torch.float64))
    return loss.detach().numpy(), tx.grad.numpy()


def dev_args(B, x, t, w, ignore_index, red):
    return [B.from_numpy(x, dt.float32), B.from_numpy(t, dt.int64),
            None if w is None else B.from_numpy(w, dt.float32), ignore_index, red]


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(9, 5), (3, 4, 2, 3)])
def test_kernels_match_the_composition_and_torch(B, shape, weighted, red):
    x = logprobs(shape)
    tshape = shape[:1] + shape[2:]
    t = RNG.integers(0, shape[1], tshape)
    t.flat[1] = -100
    w = RNG.random(shape[1]).astype(np.float32) + 0.1 if weighted else None
    args = dev_args(B, x, t, w, -100, red)
    got = B.to_numpy(B.nll_loss(*args))
    comp = B.to_numpy(Backend.nll_loss(B, *args))
    g = RNG.standard_normal(tshape if red == "none" else ()).astype(np.float32)
    ref, gref = torch_nll(x, t, w, -100, red, g)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, comp, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-5)
    gargs = [B.from_numpy(g, dt.float32)] + args
    grad = B.to_numpy(B.nll_loss_backward(*gargs))
    np.testing.assert_allclose(grad, B.to_numpy(Backend.nll_loss_backward(B, *gargs)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad, gref, rtol=2e-5, atol=1e-6)


def test_one_dispatch_per_op(B):
    """The native path runs: one dispatch for the loss, one for its gradient (the 'mean'
    divisor is summed inside the gradient's dispatch)."""
    x = logprobs((16, 10))
    t = RNG.integers(0, 10, 16)
    for red in ("mean", "sum", "none"):
        args = dev_args(B, x, t, None, -100, red)
        g = B.from_numpy(np.ones(t.shape if red == "none" else (), np.float32), dt.float32)
        d0 = B.rt.stats["dispatches"]
        loss = B.nll_loss(*args)
        assert B.rt.stats["dispatches"] - d0 == 1
        d0 = B.rt.stats["dispatches"]
        grad = B.nll_loss_backward(g, *args)
        assert B.rt.stats["dispatches"] - d0 == 1
        B.to_numpy(loss), B.to_numpy(grad)


def test_gradient_grid_stride_covers_every_element(B):
    """'mean' caps the gradient's grid at max(C, 64) work-groups, which then loop: 3000 x 10
    elements need two rounds; the other reductions cover the rest too."""
    x = logprobs((3000, 10))
    t = RNG.integers(0, 10, 3000)
    t[::7] = -100
    w = RNG.random(10).astype(np.float32) + 0.5
    for red in ("mean", "sum", "none"):
        g = RNG.standard_normal(t.shape if red == "none" else ()).astype(np.float32)
        args = dev_args(B, x, t, w, -100, red)
        got = B.to_numpy(B.nll_loss(*args))
        ref, gref = torch_nll(x, t, w, -100, red, g)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        grad = B.to_numpy(B.nll_loss_backward(B.from_numpy(g, dt.float32), *args))
        np.testing.assert_allclose(grad, gref, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("ignore_index", [2, -1, 1 << 40, -(1 << 40)])
def test_other_ignore_indices(B, ignore_index):
    """A class index, a negative one, and ones outside int32 (which no int32-stored target can
    equal: nothing is ignored)."""
    x = logprobs((8, 4))
    t = np.array([0, 2, 1, 3, 2, 0, 1, 3])
    if ignore_index == -1:
        t[4] = -1
    w = np.array([0.5, 1.0, 2.0, 1.5], np.float32)
    for red in ("mean", "sum", "none"):
        g = np.full(t.shape if red == "none" else (), 0.7, np.float32)
        args = dev_args(B, x, t, w, ignore_index, red)
        ref, gref = torch_nll(x, t, w, ignore_index, red, g)
        np.testing.assert_allclose(B.to_numpy(B.nll_loss(*args)), ref, rtol=2e-5, atol=1e-6)
        grad = B.to_numpy(B.nll_loss_backward(B.from_numpy(g, dt.float32), *args))
        np.testing.assert_allclose(grad, gref, rtol=2e-5, atol=1e-7)


def test_every_target_ignored(B):
    """'mean' of no kept target is NaN and its gradient zero, as torch gives; 'sum' is 0."""
    x = logprobs((4, 3))
    t = np.full(4, -100)
    for red in ("mean", "sum"):
        args = dev_args(B, x, t, None, -100, red)
        ref, gref = torch_nll(x, t, None, -100, red, np.float32(1.0))
        got = B.to_numpy(B.nll_loss(*args))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        if red == "sum":
            assert got == 0
        grad = B.to_numpy(B.nll_loss_backward(B.from_numpy(np.float32(1.0), dt.float32), *args))
        np.testing.assert_array_equal(grad, gref)


def test_fallbacks_to_the_composition(B):
    """Unbatched (C,) input, a non-dense logp and more than NLL_MAX targets take the
    composition, with the same values."""
    from strata.backends.nll_dims import NLL_MAX
    x = logprobs((1, 6))[0]
    for red in ("mean", "sum", "none"):
        args = dev_args(B, x, np.array(4), None, -100, red)
        ref, _ = torch_nll(x, np.array(4), None, -100, red)
        np.testing.assert_allclose(B.to_numpy(B.nll_loss(*args)), ref, rtol=1e-6)
    xt = logprobs((5, 7))
    t = RNG.integers(0, 7, 5)
    view = B.permute(B.from_numpy(np.ascontiguousarray(xt.T), dt.float32), (1, 0))
    ref, _ = torch_nll(xt, t, None, -100, "sum")
    got = B.nll_loss(view, B.from_numpy(t, dt.int64), None, -100, "sum")
    np.testing.assert_allclose(B.to_numpy(got), ref, rtol=1e-5)
    big = NLL_MAX + 3
    xb = RNG.standard_normal((big, 2)).astype(np.float32)
    tb = RNG.integers(0, 2, big)
    args = dev_args(B, xb, tb, None, -100, "sum")
    d0 = B.rt.stats["dispatches"]
    got = B.nll_loss(*args)
    assert B.rt.stats["dispatches"] - d0 > 1
    np.testing.assert_allclose(B.to_numpy(got), -np.float64(xb[np.arange(big), tb]).sum(),
                               rtol=1e-4)


def test_float16(B):
    if not B.supports(dt.float16):
        pytest.skip("no shader-f16 on this adapter")
    x = logprobs((6, 4, 3))
    t = RNG.integers(0, 4, (6, 3))
    t[0, 0] = -100
    w = RNG.random(4).astype(np.float32) + 0.5
    for red in ("mean", "sum", "none"):
        g = np.ones(t.shape if red == "none" else (), np.float16)
        args = [B.from_numpy(x.astype(np.float16), dt.float16), B.from_numpy(t, dt.int64),
                B.from_numpy(w.astype(np.float16), dt.float16), -100, red]
        ref, gref = torch_nll(x.astype(np.float16).astype(np.float64), t,
                              w.astype(np.float16).astype(np.float64), -100, red, g)
        got = B.to_numpy(B.nll_loss(*args))
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=2e-3, atol=2e-3)
        grad = B.to_numpy(B.nll_loss_backward(B.from_numpy(g, dt.float16), *args))
        np.testing.assert_allclose(grad.astype(np.float64), gref, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("bad,msg", [(9, "target 9 is out of bounds for 8 classes"),
                                     (-3, "target -3 is out of bounds for 8 classes")])
def test_out_of_range_target_raises_at_the_next_read_back(B, bad, msg):
    """Through strata.functional.cross_entropy on a WGPU() stack: the loss is queued with the
    bad target read as class 0, and the IndexError comes with the next read-back; nothing is
    left over for the read-backs after it."""
    from strata.backends.wgpu import WGPU
    S = st.backend("WGPU()")
    assert isinstance(S.base(), WGPU)
    x = st.from_numpy(RNG.standard_normal((6, 8)).astype(np.float32), backend=S)
    y = RNG.integers(0, 8, 6)
    yb = y.copy()
    yb[2] = bad
    loss = st.functional.cross_entropy(x, st.from_numpy(yb, backend=S))
    with pytest.raises(IndexError, match=f"{msg}.*read-back"):
        loss.item()
    good = st.functional.cross_entropy(x, st.from_numpy(y, backend=S)).item()
    ref = torch.nn.functional.cross_entropy(torch.tensor(x.numpy(), dtype=torch.float64),
                                            torch.tensor(y)).item()
    assert good == pytest.approx(ref, rel=1e-5)
