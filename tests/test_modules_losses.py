"""Loss functions and modules against PyTorch 2.13 CPU: values and input gradients, every reduction,
weights, ignore_index, label smoothing, probability targets, and extreme logits."""
import numpy as np
import pytest

from ._torch_compare import assert_close, st, torch

from strata import modules as nn  # noqa: E402

tnn = torch.nn
RED = ["mean", "sum", "none"]


def rnd(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def check(tloss, sloss, inp, target, dtype="float64", weight_grad_target=False):
    inp = inp.astype(dtype)
    if np.issubdtype(target.dtype, np.floating):
        target = target.astype(dtype)
    ti = torch.tensor(inp, requires_grad=True)
    si = st.tensor(inp, requires_grad=True)
    tt, stt = torch.tensor(target), st.tensor(target)
    to = tloss(ti, tt)
    so = sloss(si, stt)
    assert_close(so.detach().numpy(), to.detach().numpy(), dtype)
    g = np.random.default_rng(5).standard_normal(tuple(to.shape)).astype(dtype)
    (to * torch.tensor(g)).sum().backward()
    (so * st.tensor(g)).sum().backward()
    assert_close(si.grad.numpy(), ti.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", RED)
def test_regression_losses(dtype, red):
    x, y = rnd(4, 5), rnd(4, 5, seed=1)
    check(tnn.MSELoss(reduction=red), nn.MSELoss(reduction=red), x, y, dtype)
    check(tnn.L1Loss(reduction=red), nn.L1Loss(reduction=red), x, y, dtype)
    for beta in (1.0, 0.5, 0.0):
        check(tnn.SmoothL1Loss(reduction=red, beta=beta), nn.SmoothL1Loss(reduction=red, beta=beta), x, y, dtype)
    for delta in (1.0, 0.3):
        check(tnn.HuberLoss(reduction=red, delta=delta), nn.HuberLoss(reduction=red, delta=delta), x, y, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", RED)
def test_binary_losses(dtype, red):
    p = 1 / (1 + np.exp(-rnd(4, 3)))
    t = (rnd(4, 3, seed=2) > 0).astype(float)
    w = np.abs(rnd(3, seed=3)) + 0.1
    check(tnn.BCELoss(reduction=red), nn.BCELoss(reduction=red), p, t, dtype)
    check(tnn.BCELoss(weight=torch.tensor(w.astype(dtype)), reduction=red),
          nn.BCELoss(weight=st.tensor(w.astype(dtype)), reduction=red), p, t, dtype)
    logits = rnd(4, 3) * 3
    check(tnn.BCEWithLogitsLoss(reduction=red), nn.BCEWithLogitsLoss(reduction=red), logits, t, dtype)
    check(tnn.BCEWithLogitsLoss(reduction=red, pos_weight=torch.tensor(w.astype(dtype)),
                                weight=torch.tensor(w[::-1].copy().astype(dtype))),
          nn.BCEWithLogitsLoss(reduction=red, pos_weight=st.tensor(w.astype(dtype)),
                               weight=st.tensor(w[::-1].copy().astype(dtype))), logits, t, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("red", RED)
def test_cross_entropy_and_nll(dtype, red):
    x = rnd(6, 4) * 2
    y = np.array([0, 3, 1, 1, 2, 3])
    w = np.abs(rnd(4, seed=4)) + 0.2
    tw, sw = torch.tensor(w.astype(dtype)), st.tensor(w.astype(dtype))
    yi = y.copy()
    yi[2] = -100
    for kw_t, kw_s in [({}, {}), (dict(weight=tw), dict(weight=sw))]:
        for ls in (0.0, 0.2):
            check(tnn.CrossEntropyLoss(reduction=red, label_smoothing=ls, **kw_t),
                  nn.CrossEntropyLoss(reduction=red, label_smoothing=ls, **kw_s), x, y, dtype)
            check(tnn.CrossEntropyLoss(reduction=red, label_smoothing=ls, **kw_t),
                  nn.CrossEntropyLoss(reduction=red, label_smoothing=ls, **kw_s), x, yi, dtype)
            check(tnn.CrossEntropyLoss(reduction=red, label_smoothing=ls, ignore_index=1, **kw_t),
                  nn.CrossEntropyLoss(reduction=red, label_smoothing=ls, ignore_index=1, **kw_s), x, y, dtype)
        logp = x - np.log(np.exp(x).sum(1, keepdims=True))
        check(tnn.NLLLoss(reduction=red, **kw_t), nn.NLLLoss(reduction=red, **kw_s), logp, yi, dtype)
    # probabilities as targets
    prob = np.exp(rnd(6, 4, seed=7))
    prob /= prob.sum(1, keepdims=True)
    for ls in (0.0, 0.1):
        check(tnn.CrossEntropyLoss(reduction=red, label_smoothing=ls, weight=tw),
              nn.CrossEntropyLoss(reduction=red, label_smoothing=ls, weight=sw), x, prob, dtype)
    # spatial (N, C, d1, d2) and unbatched (C,) inputs
    xs = rnd(2, 4, 3, 2)
    ys = np.random.default_rng(1).integers(0, 4, (2, 3, 2))
    check(tnn.CrossEntropyLoss(reduction=red, weight=tw), nn.CrossEntropyLoss(reduction=red, weight=sw),
          xs, ys, dtype)
    check(tnn.CrossEntropyLoss(reduction=red), nn.CrossEntropyLoss(reduction=red), rnd(4), np.array(2), dtype)


@pytest.mark.parametrize("red", RED + ["batchmean"])
def test_kl_div(red):
    x = rnd(3, 4)
    logq = x - np.log(np.exp(x).sum(1, keepdims=True))
    p = np.exp(rnd(3, 4, seed=1))
    p /= p.sum(1, keepdims=True)
    p[0, 1] = 0.0
    check(tnn.KLDivLoss(reduction=red), nn.KLDivLoss(reduction=red), logq, p)
    check(tnn.KLDivLoss(reduction=red, log_target=True), nn.KLDivLoss(reduction=red, log_target=True),
          logq, np.log(p + 1e-3))


def test_extreme_logits_are_stable():
    x = np.array([[1000.0, -1000.0, 0.0], [-5e4, 5e4, 1.0]], dtype=np.float32)
    y = np.array([1, 0])
    check(tnn.CrossEntropyLoss(), nn.CrossEntropyLoss(), x, y, "float32")
    check(tnn.CrossEntropyLoss(label_smoothing=0.1), nn.CrossEntropyLoss(label_smoothing=0.1), x, y, "float32")
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.5]], dtype=np.float32)
    check(tnn.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss(), x, t, "float32")
    p = np.array([[0.0, 1.0, 0.5]])
    check(tnn.BCELoss(), nn.BCELoss(), p, np.array([[1.0, 0.0, 1.0]]))   # log clamped at -100
    out = nn.CrossEntropyLoss()(st.tensor(x), st.tensor(y))
    assert np.isfinite(out.item())


def test_loss_errors():
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(IndexError, match="out of bounds"):
        nn.CrossEntropyLoss()(st.zeros(2, 3), st.tensor([0, 3]))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.BCELoss()(st.tensor([1.5]), st.tensor([1.0]))
    with pytest.raises(st.ShapeError, match="target"):
        nn.CrossEntropyLoss()(st.zeros(2, 3), st.tensor([0, 1, 2]))


@pytest.mark.parametrize("spec", ["Autodiff(OpenCL())", "Autodiff(WGPU())", "Autodiff(NumPy())"])
def test_out_of_range_targets_on_queued_devices_raise_at_the_next_read_back(spec):
    """Device backends queue work, so the class-index bounds check is read back with the next
    value that leaves the device (no stall mid-step); no kernel reads past the class dim in
    between. NumPy checks at once."""
    try:
        B = st.backend(spec)
    except Exception as e:  # no OpenCL/WGPU device here
        pytest.skip(f"{spec} unavailable: {e}")
    x = st.tensor(rnd(4, 3).astype(np.float32), backend=B, requires_grad=True)
    bad = st.tensor(np.array([0, 1, 7, 2]), backend=B)
    if not B.base().asynchronous:
        with pytest.raises(IndexError, match="target 7 is out of bounds for 3 classes"):
            F_ce(x, bad)
        return
    loss = F_ce(x, bad)            # queued; the check waits
    loss.backward()                # still no read-back: gradients computed with the target clamped
    with pytest.raises(IndexError, match="target 7 is out of bounds for 3 classes"):
        loss.item()
    good = F_ce(x, st.tensor(np.array([0, 1, 2, 2]), backend=B)).item()
    ref = torch.nn.functional.cross_entropy(torch.tensor(rnd(4, 3).astype(np.float32)),
                                            torch.tensor([0, 1, 2, 2])).item()
    assert good == pytest.approx(ref, rel=1e-5)


def F_ce(x, t):
    return st.functional.cross_entropy(x, t)


@pytest.mark.parametrize("spec", ["Autodiff(NumPy())", "Fusion(Autodiff(NumPy()), eager_below=0)",
                                  "Autodiff(OpenCL())", "Autodiff(WGPU())"])
@pytest.mark.parametrize("target", [np.full(4, -100), np.array(-100)], ids=["batch", "scalar"])
def test_mean_over_only_ignored_targets_is_nan_with_zero_gradient(spec, target):
    """torch: 0/0 = NaN for the loss, and no gradient reaches an ignored target, even then. The
    composition used to give NaN everywhere (0 * (1/0)); the device kernels gave zeros."""
    try:
        B = st.backend(spec)
    except Exception as e:  # no OpenCL/WGPU device here
        pytest.skip(f"{spec} unavailable: {e}")
    x = rnd(4, 5).astype(np.float32) if target.ndim else rnd(5).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(target))
    tl.backward()
    sx = st.tensor(x, backend=B, requires_grad=True)
    sl = F_ce(sx, st.tensor(target, backend=B))
    sl.backward()
    assert np.isnan(tl.item()) and np.isnan(sl.item())
    np.testing.assert_array_equal(sx.grad.numpy(), tx.grad.numpy())
