"""Optimizers against torch.optim over 20 steps: same parameter trajectories (float64 tight),
parameter groups, state_dict round trips, gradient clipping."""
import numpy as np
import pytest

from ._torch_compare import st, torch

from strata import modules as nn  # noqa: E402

W0 = np.random.default_rng(0).standard_normal((4, 3))
B0 = np.random.default_rng(1).standard_normal(4)
X = np.random.default_rng(2).standard_normal((8, 3))
Y = np.random.default_rng(3).standard_normal((8, 4))

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
]


def loss_fn(lib, w, b, x, y):
    out = x @ w.transpose(0, 1) + b
    return ((out - y) ** 2).mean() + (w ** 4).sum() * 0.01


def run_torch(name, kw, steps=20, groups=False):
    w = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    params = [{"params": [w]}, {"params": [b], "lr": kw["lr"] * 0.5}] if groups else [w, b]
    opt = getattr(torch.optim, name)(params, **kw)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(torch, w, b, torch.tensor(X), torch.tensor(Y)).backward()
        opt.step()
        traj.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return traj


def run_strata(name, kw, steps=20, groups=False, opt_hook=None):
    w = st.tensor(W0, requires_grad=True)
    b = st.tensor(B0, requires_grad=True)
    params = [{"params": [w]}, {"params": [b], "lr": kw["lr"] * 0.5}] if groups else [w, b]
    opt = getattr(st.optim, name)(params, **kw)
    traj = []
    for i in range(steps):
        opt.zero_grad()
        loss_fn(st, w, b, st.tensor(X), st.tensor(Y)).backward()
        opt.step()
        traj.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
        if opt_hook:
            opt = opt_hook(i, opt, [w, b]) or opt
    return traj


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, kw):
    for groups in (False, True):
        tt = run_torch(name, kw, groups=groups)
        ss = run_strata(name, kw, groups=groups)
        for step, ((tw, tb), (sw, sb)) in enumerate(zip(tt, ss)):
            np.testing.assert_allclose(sw, tw, rtol=1e-10, atol=1e-12, err_msg=f"w step {step}")
            np.testing.assert_allclose(sb, tb, rtol=1e-10, atol=1e-12, err_msg=f"b step {step}")


@pytest.mark.parametrize("name,kw", [CASES[2], CASES[6], CASES[11], CASES[14]])
def test_state_dict_roundtrip_resumes_exactly(name, kw, tmp_path):
    ref = run_strata(name, kw)

    def hook(i, opt, params):
        if i == 9:   # save after 10 steps, rebuild through a file, continue
            st.save(opt.state_dict(), tmp_path / "opt.safetensors")
            new = getattr(st.optim, name)(params, **kw)
            new.load_state_dict(st.load(tmp_path / "opt.safetensors"))
            return new
    res = run_strata(name, kw, opt_hook=hook)
    for (rw, rb), (sw, sb) in zip(ref, res):
        assert np.array_equal(rw, sw) and np.array_equal(rb, sb)


def test_param_groups_and_errors():
    w = st.zeros(2, requires_grad=True)
    b = st.zeros(2, requires_grad=True)
    opt = st.optim.SGD([w], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.2, "momentum": 0.5})
    assert opt.param_groups[1]["lr"] == 0.2 and opt.param_groups[1]["dampening"] == 0
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(ValueError, match="empty"):
        st.optim.Adam([])
    with pytest.raises(ValueError, match="learning rate"):
        st.optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="beta"):
        st.optim.Adam([w], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Nesterov"):
        st.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="iterable"):
        st.optim.SGD(w, lr=0.1)
    # parameters without gradients are skipped
    opt.step()
    assert w.detach().numpy().tolist() == [0.0, 0.0]


def test_clip_grad_norm_and_value_match_torch():
    for norm_type in (2.0, 1.0, float("inf")):
        tw = [torch.tensor(W0, requires_grad=True), torch.tensor(B0, requires_grad=True)]
        sw = [st.tensor(W0, requires_grad=True), st.tensor(B0, requires_grad=True)]
        loss_fn(torch, *tw, torch.tensor(X), torch.tensor(Y)).backward()
        loss_fn(st, *sw, st.tensor(X), st.tensor(Y)).backward()
        tn = torch.nn.utils.clip_grad_norm_(tw, 0.5, norm_type)
        sn = nn.utils.clip_grad_norm_(sw, 0.5, norm_type)
        np.testing.assert_allclose(sn.item(), tn.item(), rtol=1e-12)
        for t, s in zip(tw, sw):
            np.testing.assert_allclose(s.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    torch.nn.utils.clip_grad_value_(tw, 0.01)
    nn.utils.clip_grad_value_(sw, 0.01)
    for t, s in zip(tw, sw):
        np.testing.assert_allclose(s.grad.numpy(), t.grad.numpy(), rtol=1e-12)
        assert np.abs(s.grad.numpy()).max() <= 0.01
    p = st.tensor([1.0], requires_grad=True)
    (p * float("nan")).sum().backward()
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_float32_trajectory_within_tolerance():
    w32 = W0.astype(np.float32)
    tw = torch.tensor(w32, requires_grad=True)
    sw = st.tensor(w32, requires_grad=True)
    to, so = torch.optim.Adam([tw], lr=0.01), st.optim.Adam([sw], lr=0.01)
    x = X.astype(np.float32)
    for _ in range(20):
        for opt, w, lib in ((to, tw, torch), (so, sw, st)):
            opt.zero_grad()
            ((lib.tensor(x) @ w.transpose(0, 1)) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(sw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
