"""The training loop behind `strata train` / `strata evaluate`: MNIST models, checkpoints that
resume exactly (model, optimizer, scheduler, data position, RNG), early stopping, curves."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import distributed as dist
from . import modules as nn
from .data.datasets import MNIST, DatasetError
from .data.sampler import DistributedSampler

CKPT_FORMAT = "strata-train-1"


def build_model(name: str, backend=None) -> nn.Module:
    """The CLI's models: 'mlp' (784-512-256-10) and 'cnn' (conv16-conv32 with pooling, fc128)."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512, backend=backend), nn.ReLU(),
                             nn.Linear(512, 256, backend=backend), nn.ReLU(),
                             nn.Linear(256, 10, backend=backend))
    if name == "cnn":
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1, backend=backend), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(32 * 7 * 7, 128, backend=backend), nn.ReLU(),
                             nn.Linear(128, 10, backend=backend))
    raise ValueError(f"unknown model {name!r}; choose 'mlp' or 'cnn'")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "strata"


def find_mnist(data: str | None, train: bool) -> MNIST:
    """--data, else $STRATA_DATA, else the cache dir, else a download into the cache dir."""
    tried = []
    for root in ([data] if data else []) + ([os.environ["STRATA_DATA"]] if os.environ.get("STRATA_DATA") else []):
        try:
            return MNIST(root, train=train)
        except DatasetError as e:
            tried.append(str(e))
            if data:
                raise
    try:
        return MNIST(cache_dir(), train=train)
    except DatasetError:
        pass
    try:
        return MNIST(cache_dir(), train=train, download=True)
    except DatasetError as e:
        raise DatasetError(
            "MNIST is not available. strata looked in --data, $STRATA_DATA (a directory holding "
            f"mnist/), and {cache_dir() / 'mnist'}, then tried to download it:\n{e}\n"
            "Fix: copy the four MNIST *-ubyte.gz files into a directory DIR/mnist/ and run with "
            "--data DIR or STRATA_DATA=DIR.") from None


class Trainer:
    """State of one training run; `run()` trains, `state()` / `restore()` checkpoint it."""

    def __init__(self, args, log=print) -> None:
        import strata as st
        self.st = st
        self.args = args
        # under `mpiexec -n N strata train ...` every rank runs this: data-parallel training
        self.world = dist.get_world_size() if dist.init_if_launched() else 1
        self.rank = dist.get_rank() if self.world > 1 else 0
        if args.batch_size % self.world:
            raise ValueError(f"--batch-size {args.batch_size} is the global batch and must be "
                             f"divisible by the {self.world} processes")
        self.log = log if dist.is_main_process() else (lambda *a, **k: None)
        self.B = st.backend(args.backend)
        st.manual_seed(args.seed)
        self.model = build_model(args.model, self.B)
        # DDP broadcasts rank 0's initial weights; wrap_optimizer averages gradients in step()
        self.net = dist.DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.opt = st.optim.Adam(self.model.parameters(), lr=args.lr)
        if self.world > 1:
            self.net.wrap_optimizer(self.opt)
        self.sched = st.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(args.epochs, 1))
        train, test = find_mnist(args.data, True), find_mnist(args.data, False)
        self.xtr, self.ytr = train.arrays(normalize=True, limit=args.train_subset or None)
        self.xte, self.yte = test.arrays(normalize=True, limit=args.test_subset or None)
        self.epoch = 0          # completed epochs
        self.step_in_epoch = 0  # batches done in the current epoch
        self.epoch_loss = 0.0
        self.history = {"train_loss": [], "test_acc": [], "epoch_time": []}
        self.best_acc = -1.0
        self.bad_epochs = 0
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        a = self.args
        return {"format": CKPT_FORMAT, "model_name": a.model, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "epoch_loss": self.epoch_loss,
                "rng": self.st.get_rng_state(), "history": self.history, "best_acc": self.best_acc,
                "bad_epochs": self.bad_epochs,
                "config": {k: getattr(a, k) for k in ("model", "epochs", "batch_size", "lr", "seed",
                                                      "patience", "train_subset", "test_subset")}}

    def restore(self, path: str) -> None:
        ck = self.st.load(path, backend=self.B)
        if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
            raise ValueError(f"{path} is not a strata training checkpoint (written by `strata train`)")
        if ck["model_name"] != self.args.model:
            raise ValueError(f"{path} holds a {ck['model_name']!r} model but --model is {self.args.model!r}")
        cfg = ck["config"]
        for k in ("batch_size", "seed", "train_subset"):
            if cfg[k] != getattr(self.args, k):
                raise ValueError(f"cannot resume exactly: the checkpoint was trained with --{k.replace('_', '-')} "
                                 f"{cfg[k]}, this run has {getattr(self.args, k)}")
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.st.set_rng_state(ck["rng"])
        self.epoch, self.step_in_epoch = ck["epoch"], ck["step_in_epoch"]
        self.epoch_loss = ck["epoch_loss"]
        self.history = ck["history"]
        self.best_acc, self.bad_epochs = ck["best_acc"], ck["bad_epochs"]
        self.log(f"resumed from {path}: epoch {self.epoch + 1}, batch {self.step_in_epoch}")

    def save(self, name: str) -> Path:
        p = self.out / name
        if dist.is_main_process():
            self.st.save(self.state(), p)
        return p

    # ------------------------------------------------------------ loops
    def _order(self, epoch: int) -> np.ndarray:
        if self.world > 1:
            # this rank's share of one seeded permutation: rank r takes every world-th index,
            # so the ranks' batches together form the global batches (padded to equal shares)
            s = DistributedSampler(self.xtr, num_replicas=self.world, rank=self.rank,
                                   shuffle=True, seed=self.args.seed)
            s.set_epoch(epoch)
            return s.indices()
        # a fresh generator per (seed, epoch): the order after a resume is the same
        return np.random.default_rng([self.args.seed, epoch]).permutation(len(self.xtr))

    def _global_mean(self, total: float, count: int) -> float:
        if self.world == 1:
            return total / count
        tc = np.array([total, count], np.float64)
        dist.all_reduce(tc)
        return float(tc[0] / tc[1])

    def evaluate(self, batch_size: int = 1000) -> float:
        if self.world == 1:
            return accuracy(self.model, self.xte, self.yte, self.B, batch_size)
        # rank 0 evaluates; every rank gets its figure, so early stopping agrees everywhere
        acc = accuracy(self.model, self.xte, self.yte, self.B, batch_size) if self.rank == 0 else None
        return dist.broadcast_object(acc, src=0)

    def train_epoch(self) -> float:
        st, a = self.st, self.args
        F = st.functional
        order = self._order(self.epoch)
        bs = a.batch_size // self.world
        nb = math.ceil(len(order) / bs)
        bar = _progress(nb, self.epoch, a) if dist.is_main_process() else _NoBar()
        bar.update(self.step_in_epoch)
        t0 = time.perf_counter()
        seen = 0
        self.model.train()
        for b in range(self.step_in_epoch, nb):
            idx = order[b * bs:(b + 1) * bs]
            x = st.from_numpy(self.xtr[idx], backend=self.B)
            y = st.from_numpy(self.ytr[idx], backend=self.B)
            loss = F.cross_entropy(self.net(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            lv = float(loss.item())
            self.epoch_loss += lv * len(idx)
            self.step_in_epoch = b + 1
            seen += len(idx)
            bar.set_postfix(loss=f"{lv:.4f}", samples_s=f"{seen / max(time.perf_counter() - t0, 1e-9):.0f}")
            bar.update(1)
            if a.checkpoint_every and self.step_in_epoch % a.checkpoint_every == 0 and self.step_in_epoch < nb:
                self.save("last.safetensors")
        bar.close()
        return self._global_mean(self.epoch_loss, len(order))

    def run(self) -> dict:
        a = self.args
        while self.epoch < a.epochs:
            t0 = time.perf_counter()
            loss = self.train_epoch()
            acc = self.evaluate()
            dt = time.perf_counter() - t0
            self.sched.step()
            self.history["train_loss"].append(loss)
            self.history["test_acc"].append(acc)
            self.history["epoch_time"].append(dt)
            self.epoch += 1
            self.step_in_epoch, self.epoch_loss = 0, 0.0
            improved = acc > self.best_acc
            if improved:
                self.best_acc, self.bad_epochs = acc, 0
                self.save("best.safetensors")
            else:
                self.bad_epochs += 1
            self.save("last.safetensors")
            self.log(f"epoch {self.epoch}/{a.epochs}  train loss {loss:.4f}  test acc {acc * 100:.2f}%  "
                     f"time {dt:.1f}s" + ("  (best)" if improved else ""))
            if dist.is_main_process():
                write_curves(self.history, self.out)
            if a.patience and self.bad_epochs >= a.patience:
                self.log(f"early stopping: no improvement for {a.patience} epochs")
                break
        summary = {"best_test_acc": self.best_acc, "epochs_run": self.epoch, **self.history}
        if dist.is_main_process():
            (self.out / "history.json").write_text(json.dumps(summary, indent=2))
        return summary


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, B, batch_size: int = 1000) -> float:
    import strata as st
    model.eval()
    correct = 0
    with st.no_grad():
        for s in range(0, len(x), batch_size):
            logits = model(st.from_numpy(x[s:s + batch_size], backend=B))
            correct += int((logits.argmax(dim=1).numpy() == y[s:s + batch_size]).sum())
    model.train()
    return correct / max(len(x), 1)


class _NoBar:
    def update(self, n=1): pass
    def set_postfix(self, **kw): pass
    def close(self): pass


def _progress(total: int, epoch: int, args):
    if args.no_progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False,
                file=sys.stderr, dynamic_ncols=True)


def write_curves(history: dict, out: Path) -> Path | None:
    """curves.png: train loss and test accuracy per epoch (matplotlib Agg; skipped if absent)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = list(range(1, len(history["train_loss"]) + 1))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(ep, history["train_loss"], marker="o")
    a1.set_xlabel("epoch"); a1.set_ylabel("train loss"); a1.set_title("training loss")
    a2.plot(ep, [v * 100 for v in history["test_acc"]], marker="o", color="tab:green")
    a2.set_xlabel("epoch"); a2.set_ylabel("test accuracy (%)"); a2.set_title("test accuracy")
    fig.tight_layout()
    p = Path(out) / "curves.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
