"""LR schedulers against torch.optim.lr_scheduler: identical lr (and momentum) trajectories over
20+ steps, and state_dict round trips that continue the same trajectory."""
import numpy as np
import pytest

from ._torch_compare import st, torch

TS = torch.optim.lr_scheduler
SS = st.optim.lr_scheduler


def make(lib, sched_fn, opt_name="SGD", opt_kw=None):
    p = lib.zeros(2, requires_grad=True)
    p2 = lib.zeros(2, requires_grad=True)
    kw = opt_kw or dict(lr=0.1, momentum=0.9)
    opt = getattr(lib.optim, opt_name)([{"params": [p]}, {"params": [p2], "lr": kw["lr"] * 2}], **kw)
    return opt, sched_fn(lib, opt)


SCHEDS = {
    "step": lambda L, o: (TS if L is torch else SS).StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda L, o: (TS if L is torch else SS).MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
    "exponential": lambda L, o: (TS if L is torch else SS).ExponentialLR(o, gamma=0.9),
    "cosine": lambda L, o: (TS if L is torch else SS).CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "linear": lambda L, o: (TS if L is torch else SS).LinearLR(o, start_factor=0.25, total_iters=6),
    "lambda": lambda L, o: (TS if L is torch else SS).LambdaLR(o, lambda e: 0.95 ** e + 0.01 * (e % 3)),
    "onecycle": lambda L, o: (TS if L is torch else SS).OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=25),
    "onecycle3": lambda L, o: (TS if L is torch else SS).OneCycleLR(o, max_lr=0.5, epochs=5, steps_per_epoch=5,
                                                                      three_phase=True, anneal_strategy="linear"),
    "sequential": lambda L, o: (TS if L is torch else SS).SequentialLR(
        o, [(TS if L is torch else SS).LinearLR(o, start_factor=0.1, total_iters=4),
            (TS if L is torch else SS).CosineAnnealingLR(o, T_max=10)], milestones=[4]),
}


def trajectory(lib, fn, steps=24, opt_name="SGD", opt_kw=None):
    opt, sch = make(lib, fn, opt_name, opt_kw)
    out = []
    for _ in range(steps):
        opt.step()
        sch.step()
        out.append(list(sch.get_last_lr()) + [g.get("momentum", g.get("betas", (0,))[0]) for g in opt.param_groups])
    return out


@pytest.mark.parametrize("name", list(SCHEDS))
def test_lr_trajectory_matches_torch(name):
    t = trajectory(torch, SCHEDS[name])
    s = trajectory(st, SCHEDS[name])
    np.testing.assert_allclose(np.array(s, dtype=float), np.array(t, dtype=float), rtol=1e-13, atol=1e-15)


def test_onecycle_with_adam_cycles_beta1():
    fn = SCHEDS["onecycle"]
    t = trajectory(torch, fn, opt_name="Adam", opt_kw=dict(lr=0.1))
    s = trajectory(st, fn, opt_name="Adam", opt_kw=dict(lr=0.1))
    np.testing.assert_allclose(np.array(s), np.array(t), rtol=1e-13)
    with pytest.raises(ValueError, match="total steps"):
        opt, sch = make(st, lambda L, o: SS.OneCycleLR(o, max_lr=1.0, total_steps=2))
        for _ in range(3):
            sch.step()


def test_reduce_on_plateau_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.5, 0.6, 0.7, 0.8, 0.9]
    res = []
    for lib, mod in ((torch, TS), (st, SS)):
        opt, _ = make(lib, lambda L, o: None)
        sch = mod.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=[0.01, 0.02])
        traj = []
        for m in metrics:
            sch.step(m)
            traj.append(list(sch.get_last_lr()))
        res.append(traj)
    assert res[0] == res[1]


@pytest.mark.parametrize("name", ["cosine", "sequential", "multistep", "onecycle"])
def test_scheduler_state_dict_resume(name, tmp_path):
    ref = trajectory(st, SCHEDS[name])
    opt, sch = make(st, SCHEDS[name])
    out = []
    for i in range(24):
        opt.step()
        sch.step()
        out.append(list(sch.get_last_lr()) + [g["momentum"] for g in opt.param_groups])
        if i == 9:
            st.save({"opt": opt.state_dict(), "sch": sch.state_dict()}, tmp_path / "s.safetensors")
            opt, sch = make(st, SCHEDS[name])
            ck = st.load(tmp_path / "s.safetensors")
            opt.load_state_dict(ck["opt"])
            sch.load_state_dict(ck["sch"])
    assert out == ref
