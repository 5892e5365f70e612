"""Model training steps: MLP 784-128-10 and a small CNN, batch 64, Adam, forward + backward +
update, on each stack with autograd beside PyTorch (and a hand-written NumPy MLP step)."""
from __future__ import annotations

import numpy as np

from .registry import NotApplicable, Work, benchmark

BATCH = 64


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    return x, y


def _mlp_weights():
    rng = np.random.default_rng(1)
    w1 = (rng.random((128, 784), dtype=np.float32) * 2 - 1) / np.float32(28.0)
    w2 = (rng.random((10, 128), dtype=np.float32) * 2 - 1) / np.float32(np.sqrt(128))
    return {"1.weight": w1, "1.bias": np.zeros(128, np.float32),
            "3.weight": w2, "3.bias": np.zeros(10, np.float32)}


def _cnn_sd(nn_mod, kw):
    return nn_mod.Sequential(nn_mod.Conv2d(1, 8, 3, **kw), nn_mod.ReLU(), nn_mod.MaxPool2d(2),
                             nn_mod.Conv2d(8, 16, 3, **kw), nn_mod.ReLU(), nn_mod.MaxPool2d(2),
                             nn_mod.Flatten(), nn_mod.Linear(16 * 5 * 5, 10, **kw))


MLP_FLOPS = 3 * 2.0 * BATCH * (784 * 128 + 128 * 10)
# conv1 26x26x8x9, conv2 11x11x16x72, linear 400x10; x3 for forward + backward
CNN_FLOPS = 3 * 2.0 * BATCH * (26 * 26 * 8 * 9 + 11 * 11 * 16 * 72 + 400 * 10)


def _torch_step(t, model, x, y):
    torch = t.torch
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return run


def _strata_step(t, model, x, y):
    st = t.st
    opt = st.optim.Adam(model.parameters(), lr=1e-3)
    sx = st.from_numpy(x, backend=t.backend)
    sy = st.from_numpy(y, backend=t.backend)

    def run():
        loss = st.functional.cross_entropy(model(sx), sy)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return run


def _numpy_mlp_step(x, y):
    """Hand-written forward, backward and Adam in NumPy: the floor a framework can approach."""
    p = {k: v.copy() for k, v in _mlp_weights().items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    xf = x.reshape(BATCH, -1)
    onehot = np.eye(10, dtype=np.float32)[y]
    state = {"t": 0}

    def run():
        h = xf @ p["1.weight"].T + p["1.bias"]
        a = np.maximum(h, 0)
        z = a @ p["3.weight"].T + p["3.bias"]
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        s = e / e.sum(1, keepdims=True)
        loss = -np.log(s[np.arange(BATCH), y]).mean()
        dz = (s - onehot) / BATCH
        g = {"3.weight": dz.T @ a, "3.bias": dz.sum(0)}
        da = dz @ p["3.weight"]
        da[h <= 0] = 0
        g["1.weight"] = da.T @ xf
        g["1.bias"] = da.sum(0)
        state["t"] += 1
        bc1, bc2 = 1 - 0.9 ** state["t"], 1 - 0.999 ** state["t"]
        for k in p:
            m[k] *= 0.9
            m[k] += 0.1 * g[k]
            v2[k] *= 0.999
            v2[k] += 0.001 * g[k] * g[k]
            p[k] -= 1e-3 / bc1 * m[k] / (np.sqrt(v2[k] / bc2) + 1e-8)
        return loss
    return run


@benchmark("mlp_step", group="model")
def mlp_step(t) -> Work:
    """MLP 784-128-10 training step (batch 64, Adam): forward, backward, update."""
    x, y = _batch()
    note = "784-128-10, batch 64, Adam"
    if t.kind == "numpy":
        return Work(_numpy_mlp_step(x, y), flops=MLP_FLOPS, note=note + " (hand-written)")
    sd = _mlp_weights()
    if t.kind == "torch":
        nn = t.torch.nn
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        model.load_state_dict({k: t.torch.from_numpy(v) for k, v in sd.items()})
        return Work(_torch_step(t, model, x, y), flops=MLP_FLOPS, note=note)
    if not t.has_autograd:
        raise NotApplicable(f"{t.name} has no Autodiff layer")
    nn = t.st.modules
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128, backend=t.backend), nn.ReLU(),
                          nn.Linear(128, 10, backend=t.backend))
    model.load_state_dict(sd)
    return Work(_strata_step(t, model, x, y), flops=MLP_FLOPS, note=note)


@benchmark("cnn_step", group="model")
def cnn_step(t) -> Work:
    """CNN (conv 1->8 3x3, pool, conv 8->16 3x3, pool, linear 400->10) step, batch 64, Adam."""
    x, y = _batch()
    note = "conv8-conv16-fc, batch 64, Adam"
    if t.kind == "numpy":
        raise NotApplicable("no hand-written NumPy CNN baseline")
    if t.kind == "torch":
        t.torch.manual_seed(0)
        model = _cnn_sd(t.torch.nn, {})
        return Work(_torch_step(t, model, x, y), flops=CNN_FLOPS, note=note)
    if not t.has_autograd:
        raise NotApplicable(f"{t.name} has no Autodiff layer")
    import torch
    torch.manual_seed(0)
    ref = _cnn_sd(torch.nn, {})
    model = _cnn_sd(t.st.modules, {"backend": t.backend})
    model.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return Work(_strata_step(t, model, x, y), flops=CNN_FLOPS, note=note)


@benchmark("conv_fwd_bwd", group="model")
def conv_fwd_bwd(t) -> Work:
    """The CNN's second conv (64x8x13x13 input, 16 3x3 filters): forward and the gradients of
    input and weight (conv_transpose2d + conv2d_weight_backward on strata)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((BATCH, 8, 13, 13), dtype=np.float32)
    w = rng.standard_normal((16, 8, 3, 3), dtype=np.float32)
    g = rng.standard_normal((BATCH, 16, 11, 11), dtype=np.float32)
    flops = 3 * 2.0 * BATCH * 11 * 11 * 16 * 72
    note = "64x8x13x13 * 16x8x3x3, dx and dw"
    if t.kind == "numpy":
        raise NotApplicable("no hand-written NumPy conv backward")
    if t.kind == "torch":
        torch = t.torch
        tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        tg = torch.from_numpy(g)

        def run():
            return torch.autograd.grad(torch.nn.functional.conv2d(tx, tw), (tx, tw), tg)
        return Work(run, flops=flops, note=note)
    if not t.has_autograd:
        raise NotApplicable(f"{t.name} has no Autodiff layer")
    st = t.st
    sx = st.from_numpy(x, backend=t.backend).requires_grad_()
    sw = st.from_numpy(w, backend=t.backend).requires_grad_()
    sg = st.from_numpy(g, backend=t.backend)

    def run():
        return st.autograd.grad(st.functional.conv2d(sx, sw), (sx, sw), sg)
    return Work(run, flops=flops, note=note)
