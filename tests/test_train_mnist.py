"""Real learning on MNIST and the `strata train` / `strata evaluate` CLI: a fast CNN check on a
2,000-image subset, exact resume after SIGKILL mid-epoch, clear errors; slow full-accuracy checks."""
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

import strata as st
from strata import modules as nn

DATA = Path(os.environ.get("STRATA_DATA", "/work/shared/data"))
HAVE_MNIST = (DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file()
need_mnist = pytest.mark.skipif(not HAVE_MNIST, reason=f"MNIST not found under {DATA}/mnist "
                                                        f"(set STRATA_DATA to a directory holding mnist/)")
REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ, STRATA_DATA=str(DATA), PYTHONUNBUFFERED="1")
    return env


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "strata", *args], capture_output=True, text=True,
                          env=_env(), timeout=timeout)


@need_mnist
def test_small_cnn_learns_2000_mnist_images():
    """Fixed seed; 2,000 training images, 2 epochs, batch 32, Adam 3e-3, a strided two-conv CNN
    -> at least 85% on 1,000 test images (measured 89.6%)."""
    train = st.data.MNIST(DATA, train=True)
    test = st.data.MNIST(DATA, train=False)
    x, y = train.arrays(normalize=True, limit=2000)
    xt, yt = test.arrays(normalize=True, limit=1000)
    st.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    opt = st.optim.Adam(model.parameters(), lr=3e-3)
    loader = st.data.DataLoader(st.data.TensorDataset(x, y), batch_size=32, shuffle=True, generator=0)
    for _ in range(2):
        for xb, yb in loader:
            loss = st.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with st.no_grad():
        pred = model(st.tensor(xt)).argmax(dim=1).numpy()
    acc = (pred == yt).mean()
    assert acc >= 0.85, f"accuracy {acc:.3f}"


@need_mnist
def test_cli_kill_mid_epoch_and_resume_gives_identical_weights(tmp_path):
    common = ["train", "--model", "mlp", "--epochs", "2", "--batch-size", "64", "--train-subset", "1024",
              "--test-subset", "300", "--seed", "3", "--checkpoint-every", "3", "--no-progress"]
    ref = _cli(*common, "--out", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert "epoch 2/2" in ref.stdout and (tmp_path / "ref" / "curves.png").is_file()
    # interrupted run: SIGKILL as soon as the first mid-epoch checkpoint exists
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "strata", *common, "--out", str(out)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ck = out / "last.safetensors"
    t0 = time.time()
    while not ck.exists() and proc.poll() is None and time.time() - t0 < 120:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be interrupted"
    state = st.load(ck)
    assert state["epoch"] == 0 and 0 < state["step_in_epoch"] < 16, "checkpoint is not mid-epoch"
    res = _cli(*common, "--out", str(out), "--resume", str(ck))
    assert res.returncode == 0, res.stderr
    assert "resumed from" in res.stdout
    a = st.load(tmp_path / "ref" / "last.safetensors")
    b = st.load(ck)
    assert b["epoch"] == 2
    for k in a["model"]:
        assert np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()), k
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    ev = _cli("evaluate", str(tmp_path / "ref" / "best.safetensors"))
    assert ev.returncode == 0 and "test accuracy" in ev.stdout


def test_cli_clear_errors(tmp_path):
    r = _cli("train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--no-progress")
    assert r.returncode == 2 and "not found" in r.stderr and "download" in r.stderr
    r = _cli("train", "--epochs", "0")
    assert r.returncode != 0 and "--epochs must be positive" in (r.stderr + r.stdout)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    r = _cli("evaluate", str(tmp_path / "junk.safetensors"))
    assert r.returncode == 2 and "not a safetensors" in r.stderr


def _train(model, epochs, tmp_path):
    from strata.trainer import Trainer
    args = Namespace(model=model, backend="Autodiff(NumPy())", epochs=epochs, batch_size=64, lr=1e-3,
                     data=str(DATA), out=str(tmp_path), resume=None, seed=0, patience=0, train_subset=0,
                     test_subset=0, checkpoint_every=0, no_progress=True)
    return Trainer(args, log=lambda *a: None).run()


@pytest.mark.slow
@need_mnist
def test_mlp_reaches_98_percent_in_8_epochs(tmp_path, report):
    """MLP 784-512-256-10, Adam 1e-3 with cosine decay, batch 64, 8 epochs: >= 98.0%."""
    r = _train("mlp", 8, tmp_path)
    report(f"MNIST MLP, Autodiff(NumPy()), 8 epochs: {r['best_test_acc'] * 100:.2f}% "
           f"(target 98.0%), {sum(r['epoch_time']):.0f} s")
    assert r["best_test_acc"] >= 0.980


@pytest.mark.slow
@need_mnist
def test_cnn_reaches_99_percent_in_4_epochs(tmp_path, report):
    """CNN conv16-conv32-fc128, Adam 1e-3 with cosine decay, batch 64, 4 epochs: >= 99.0%."""
    r = _train("cnn", 4, tmp_path)
    report(f"MNIST CNN, Autodiff(NumPy()), 4 epochs: {r['best_test_acc'] * 100:.2f}% "
           f"(target 99.0%), {sum(r['epoch_time']):.0f} s")
    assert r["best_test_acc"] >= 0.990
