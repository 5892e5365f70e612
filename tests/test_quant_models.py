"""Post-training quantization of trained MNIST models: accuracy within 0.3 points at int8 and
1.0 at int4, quantized checkpoints >= 3.5x (int8) / 6x (int4) smaller than float32, and a
saved quantized model loads back into a fresh float model with identical outputs.

The models train briefly on a subset (fast on two cores); the accuracy is measured on the whole
10,000-image test set."""
from __future__ import annotations

import os

import numpy as np
import pytest

import strata as st
import strata.functional as F
import strata.quantization as Q
from strata import modules as nn
from strata.data.datasets import MNIST

N_TRAIN = 12000


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    tr = MNIST(mnist_dir, train=True)
    te = MNIST(mnist_dir, train=False)
    xtr, ytr = tr.arrays(normalize=True, limit=N_TRAIN)
    xte, yte = te.arrays(normalize=True)
    return xtr, ytr, xte, yte


def _mlp(B):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128, backend=B), nn.ReLU(),
                         nn.Linear(128, 10, backend=B))


def _cnn(B):
    return nn.Sequential(nn.Conv2d(1, 8, 3, backend=B), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, backend=B), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(400, 10, backend=B))


def _train(make, data, epochs: int, seed: int = 0):
    B = st.backend("Autodiff(NumPy())")
    st.manual_seed(seed)
    model = make(B)
    opt = st.optim.Adam(model.parameters(), lr=2e-3)
    xtr, ytr = data[0], data[1]
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = order[i:i + 64]
            x = st.from_numpy(xtr[idx], backend=B)
            y = st.from_numpy(ytr[idx], backend=B)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model, B


def _accuracy(model, B, x, y) -> float:
    correct = 0
    with st.no_grad():
        for i in range(0, len(x), 1000):
            out = model(st.from_numpy(x[i:i + 1000], backend=B)).numpy()
            correct += int((out.argmax(1) == y[i:i + 1000]).sum())
    return 100.0 * correct / len(x)


def _float_bytes(model) -> int:
    return sum(int(np.prod(v.shape)) * 4 for v in model.state_dict().values())


def _calib(xtr):
    return [xtr[i:i + 256] for i in range(0, 2048, 256)]


@pytest.fixture(scope="module")
def trained_mlp(mnist):
    model, B = _train(_mlp, mnist, epochs=2)
    return model, B, _accuracy(model, B, mnist[2], mnist[3])


@pytest.fixture(scope="module")
def trained_cnn(mnist):
    model, B = _train(_cnn, mnist, epochs=1)
    return model, B, _accuracy(model, B, mnist[2], mnist[3])


def _copy(make, trained):
    model, B, _ = trained
    fresh = make(B)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    return fresh


# (scheme, calibrated, max accuracy loss in points, min compression (MLP file, CNN payload)).
# The CNN's 3x3 kernels hold 9 or 72 values per channel: blocks of 32/64 are mostly padding
# there, so per-block int4 compresses the tiny CNN less (per-channel int4 is the scheme for it).
CASES = [
    (Q.QuantScheme(dtype="int8"), True, 0.3, (3.5, 3.5)),
    (Q.QuantScheme(dtype="int8"), False, 0.3, (3.5, 3.5)),
    (Q.QuantScheme(dtype="int4", granularity="per_channel"), False, 1.0, (6.0, 6.0)),
    (Q.QuantScheme(dtype="int4", granularity="per_channel", symmetric=False), True, 1.0,
     (6.0, 6.0)),
    (Q.QuantScheme(dtype="int4", granularity="per_block", block_size=32), False, 1.0, (6.0, 4.0)),
    (Q.QuantScheme(dtype="int4", granularity="per_block", block_size=64, symmetric=False), True,
     1.0, (6.0, 3.5)),
]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("scheme, calibrated, max_loss, min_ratio", CASES,
                         ids=lambda v: v.kwargs_repr() or "int8" if isinstance(v, Q.QuantScheme) else str(v))
def test_quantized_accuracy_and_checkpoint(kind, scheme, calibrated, max_loss, min_ratio, mnist,
                                           trained_mlp, trained_cnn, tmp_path):
    make, trained = (_mlp, trained_mlp) if kind == "mlp" else (_cnn, trained_cnn)
    model = _copy(make, trained)
    B, acc = trained[1], trained[2]
    assert acc > (92.0 if kind == "mlp" else 90.0), f"float {kind} trained poorly: {acc:.2f}%"
    float_bytes = _float_bytes(model)
    Q.reset_path_counts()
    Q.quantize_model(model, scheme, calibration_data=_calib(mnist[0]) if calibrated else None)
    qacc = _accuracy(model, B, mnist[2], mnist[3])
    assert acc - qacc <= max_loss, f"{kind} {scheme}: float {acc:.2f}% -> quantized {qacc:.2f}%"
    paths = Q.path_counts()
    int_layers = calibrated and scheme.granularity != "per_block"
    assert any(k.split(":")[1].startswith("int8") for k in paths) == int_layers, paths
    path = tmp_path / "q.safetensors"
    Q.save(model, path)
    # the MLP's file, header included; the tiny CNN's (21 kB) payload, as its JSON header is
    # a sizeable part of the file
    size = os.path.getsize(path) if kind == "mlp" else Q.checkpoint_nbytes(model)
    ratio = float_bytes / size
    need = min_ratio[0] if kind == "mlp" else min_ratio[1]
    assert ratio >= need, f"checkpoint only {ratio:.2f}x smaller than float32"
    if scheme.dtype == "int8" and calibrated or scheme.granularity == "per_block":
        # the loaded model is the saved one: same outputs on the same inputs
        again = Q.load(make(B), path)
        x = st.from_numpy(mnist[2][:200], backend=B)
        with st.no_grad():
            np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())


def test_int4_per_block_strict_ratio_bigger_model(tmp_path):
    """A wider model's checkpoint approaches the 8x of 4-bit codes: >= 6x at block 32."""
    B = st.backend("Autodiff(NumPy())")
    model = nn.Sequential(nn.Linear(1024, 512, backend=B), nn.ReLU(), nn.Linear(512, 256, backend=B))
    fb = _float_bytes(model)
    Q.quantize_model(model, Q.QuantScheme(dtype="int4", granularity="per_block", block_size=32))
    Q.save(model, tmp_path / "w.safetensors")
    assert fb / os.path.getsize(tmp_path / "w.safetensors") >= 6.0


def test_load_rejects_float_checkpoints_and_wrong_models(tmp_path):
    B = st.backend("Autodiff(NumPy())")
    m = _mlp(B)
    st.save(m.state_dict(), tmp_path / "f.safetensors")
    with pytest.raises(st.StrataError, match="not a quantized"):
        Q.load(_mlp(B), tmp_path / "f.safetensors")
    Q.quantize_model(m, "int8")
    Q.save(m, tmp_path / "q.safetensors")
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(784, 64, backend=B), nn.ReLU(),
                          nn.Linear(64, 10, backend=B))
    with pytest.raises(st.StrataError, match="shape"):
        Q.load(wrong, tmp_path / "q.safetensors")
    with pytest.raises(st.StrataError, match="quantize_model"):
        Q.save(_mlp(B), tmp_path / "none.safetensors")


def test_load_rejects_corrupt_activation_quantization(tmp_path):
    """An activation range outside int8 would wrap in the integer kernels: the loader names
    the layer instead of building it."""
    import json
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open
    B = st.backend("Autodiff(NumPy())")
    m = _mlp(B)
    x = st.tensor(np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32), backend=B)
    Q.quantize_model(m, "int8", calibration_data=[x])
    Q.save(m, tmp_path / "q.safetensors")
    with safe_open(str(tmp_path / "q.safetensors"), "np") as f:
        meta = f.metadata()
    desc = json.loads(meta["strata.quantized"])
    name = next(n for n, info in desc["layers"].items() if info["act"] is not None)
    desc["layers"][name]["act"][3] = 1000          # qmax past int8
    meta["strata.quantized"] = json.dumps(desc)
    save_file(load_file(str(tmp_path / "q.safetensors")), str(tmp_path / "bad.safetensors"), meta)
    with pytest.raises(st.StrataError, match=f"layer '{name}'.*qmax"):
        Q.load(_mlp(B), tmp_path / "bad.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_full_data_models_quantize_within_budget(kind, mnist_dir):
    """The same checks on models trained on all 60,000 images (3 epochs MLP, 2 epochs CNN)."""
    tr, te = MNIST(mnist_dir, train=True), MNIST(mnist_dir, train=False)
    xtr, ytr = tr.arrays(normalize=True)
    xte, yte = te.arrays(normalize=True)
    make = _mlp if kind == "mlp" else _cnn
    model, B = _train(make, (xtr, ytr), epochs=3 if kind == "mlp" else 2)
    acc = _accuracy(model, B, xte, yte)
    assert acc > 97.0
    for scheme, calibrated, max_loss, _ in CASES:
        m = make(B)
        m.load_state_dict(model.state_dict())
        Q.quantize_model(m, scheme, calibration_data=_calib(xtr) if calibrated else None)
        qacc = _accuracy(m, B, xte, yte)
        assert acc - qacc <= max_loss, f"{kind} {scheme}: {acc:.2f}% -> {qacc:.2f}%"


@pytest.mark.parametrize("spec", ["Autodiff(OpenCL())", "Autodiff(WGPU())"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_quantized_model_runs_the_integer_kernels_on_devices(spec, kind, mnist, trained_mlp,
                                                             trained_cnn, tmp_path):
    """A calibrated int8 checkpoint loaded onto a device stack takes the device's integer path
    (int32 products, dot4I8Packed on WGPU, for linear and conv) and classifies the test
    images as the NumPy stack does (the accumulation is exact on both)."""
    try:
        D = st.backend(spec)
    except st.BackendError as e:
        pytest.skip(f"{spec} unavailable: {e}")
    make, trained = (_mlp, trained_mlp) if kind == "mlp" else (_cnn, trained_cnn)
    model = _copy(make, trained)
    B = trained[1]
    Q.quantize_model(model, Q.QuantScheme(dtype="int8"), calibration_data=_calib(mnist[0]))
    Q.save(model, tmp_path / "q.safetensors")
    dev = Q.load(make(D), tmp_path / "q.safetensors")
    x, y = mnist[2][:1000], mnist[3][:1000]
    Q.reset_path_counts()
    acc_dev = _accuracy(dev, D, x, y)
    paths = Q.path_counts()
    ops = ("linear",) if kind == "mlp" else ("conv2d", "linear")
    for op in ops:
        assert any(k.startswith(f"{op}:int8-") and not k.endswith("float32-exact")
                   for k in paths), paths
    with st.no_grad():
        ref = model(st.from_numpy(x, backend=B)).numpy()
        out = dev(st.from_numpy(x, backend=D)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert abs(acc_dev - _accuracy(model, B, x, y)) <= 0.1
