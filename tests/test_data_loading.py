"""strata.data: datasets, samplers, DataLoader (with NumPy collate), transforms, MNIST reader."""
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import strata.data as D
from strata.data import transforms as T
from strata.data.collate import collate_numpy

MNIST_DIR = Path(os.environ.get("STRATA_DATA", "/work/shared/data")) / "mnist"
HAVE_MNIST = (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()


def ident(b):
    return b


# ---------------------------------------------------------------- datasets and samplers
def test_tensor_dataset_and_subset():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    ds = D.TensorDataset(x, y)
    assert len(ds) == 10
    assert ds[3][0].tolist() == [6, 7] and ds[3][1] == 30
    sub = D.Subset(ds, [9, 0, 4])
    assert [int(s[1]) for s in (sub[0], sub[1], sub[2])] == [90, 0, 40]
    bx, by = sub.get_batch(np.array([2, 0]))
    assert by.tolist() == [40, 90]
    with pytest.raises(ValueError, match="same size"):
        D.TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(IndexError):
        D.Subset(ds, [10])


def test_random_split_lengths_fractions_and_seed():
    ds = D.TensorDataset(np.arange(10))
    a, b = D.random_split(ds, [7, 3], generator=1)
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, _ = D.random_split(ds, [7, 3], generator=1)
    assert a.indices == a2.indices
    parts = D.random_split(ds, [0.5, 0.3, 0.2], generator=0)
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="sum of lengths"):
        D.random_split(ds, [3, 3])


def test_samplers():
    ds = list(range(10))
    assert list(D.SequentialSampler(ds)) == list(range(10))
    r = list(D.RandomSampler(ds, generator=0))
    assert sorted(r) == list(range(10)) and r != list(range(10))
    assert len(list(D.RandomSampler(ds, replacement=True, num_samples=25, generator=0))) == 25
    assert sorted(D.SubsetRandomSampler([3, 5, 7], generator=0)) == [3, 5, 7]
    w = list(D.WeightedRandomSampler([0, 0, 1, 0], 6, generator=0))
    assert w == [2] * 6
    with pytest.raises(ValueError, match="without replacement"):
        D.WeightedRandomSampler([0, 1], 2, replacement=False)
    bs = list(D.BatchSampler(D.SequentialSampler(ds), 4, drop_last=False))
    assert bs == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(D.BatchSampler(D.SequentialSampler(ds), 4, drop_last=True)) == 2
    shares = [list(D.DistributedSampler(ds, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert shares[0] == [0, 3, 6, 9] and shares[2] == [2, 5, 8, 1]   # padded by wrapping, like torch
    s0 = D.DistributedSampler(ds, num_replicas=2, rank=0, seed=3)
    s1 = D.DistributedSampler(ds, num_replicas=2, rank=1, seed=3)
    assert sorted(list(s0) + list(s1)) == list(range(10))
    e0 = list(s0)
    s0.set_epoch(1)
    assert list(s0) != e0


def test_distributed_sampler_matches_torch_unshuffled():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TDS
    ds = list(range(11))
    for drop_last in (False, True):
        for r in range(3):
            ours = list(D.DistributedSampler(ds, 3, r, shuffle=False, drop_last=drop_last))
            theirs = list(TDS(ds, 3, r, shuffle=False, drop_last=drop_last))
            assert ours == theirs


# ---------------------------------------------------------------- DataLoader
def test_dataloader_batches_shuffle_drop_last_seeded():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    ds = D.TensorDataset(x, y)
    dl = D.DataLoader(ds, batch_size=8, collate_fn=ident)
    batches = list(dl)
    assert len(batches) == len(dl) == 4 and len(batches[-1]) == 1
    # fast path (get_batch) and per-item path agree
    fast = list(D.DataLoader(ds, batch_size=8, shuffle=True, generator=5, prefetch_factor=0,
                             collate_fn=None, backend=None).__iter__.__self__._produce())
    slow = [collate_numpy(b) for b in D.DataLoader(ds, batch_size=8, shuffle=True, generator=5,
                                                   collate_fn=ident)]
    for (fx, fy), (sx, sy) in zip(fast, slow):
        np.testing.assert_array_equal(fx, sx)
        np.testing.assert_array_equal(fy, sy)
    seen = np.concatenate([b[1] for b in fast])
    assert sorted(seen.tolist()) == list(range(25)) and seen.tolist() != list(range(25))
    dl2 = D.DataLoader(ds, batch_size=8, drop_last=True, collate_fn=ident)
    assert len(list(dl2)) == len(dl2) == 3


def test_dataloader_errors_and_worker_exceptions():
    with pytest.raises(ValueError, match="mutually exclusive"):
        D.DataLoader([1, 2], sampler=D.SequentialSampler([1, 2]), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        D.DataLoader([1, 2], batch_sampler=[[0]], batch_size=2)

    class Bad(D.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("broken item 2")
            return i

    with pytest.raises(KeyError, match="broken item 2"):
        list(D.DataLoader(Bad(), batch_size=1, collate_fn=ident))
    with pytest.raises(ValueError, match="different shapes"):
        collate_numpy([np.zeros(2), np.zeros(3)])


def test_dataloader_early_break_stops_thread():
    ds = D.TensorDataset(np.arange(1000))
    before = threading.active_count()
    for _ in range(3):
        for i, b in enumerate(D.DataLoader(ds, batch_size=1, collate_fn=ident)):
            if i == 2:
                break
    import time
    time.sleep(0.3)
    assert threading.active_count() <= before + 1


def test_collate_structures():
    out = collate_numpy([{"a": 1, "b": (np.ones(2), 2.5)}, {"a": 2, "b": (np.zeros(2), 0.5)}])
    assert out["a"].dtype == np.int64 and out["a"].tolist() == [1, 2]
    assert out["b"][0].shape == (2, 2) and out["b"][1].dtype == np.float64


# ---------------------------------------------------------------- transforms
def test_transforms():
    img = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    n = T.Normalize([1.0, 2.0], [2.0, 4.0])(img)
    np.testing.assert_allclose(n[1], (img[1] - 2) / 4)
    c = T.RandomCrop(4, padding=2, generator=0)
    outs = [c(img) for _ in range(20)]
    assert all(o.shape == (2, 4, 4) for o in outs)
    assert any((o == 0).all() is np.False_ or not np.array_equal(o, img) for o in outs)
    # every crop is a window of the zero-padded image
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    for o in outs:
        assert any(np.array_equal(o, padded[:, i:i + 4, j:j + 4]) for i in range(5) for j in range(5))
    f = T.RandomHorizontalFlip(p=1.0)(img)
    np.testing.assert_array_equal(f, img[..., ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(img) is img
    t = T.ToTensor()(np.full((3, 3), 255, np.uint8))
    assert t.shape == (1, 3, 3) and t.dtype == np.float32 and t.max() == 1.0
    comp = T.Compose([T.ToTensor(), T.Normalize([0.5], [0.5])])
    assert comp(np.zeros((2, 2), np.uint8)).min() == -1.0
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(10)(img)
    with pytest.raises(ValueError, match="std"):
        T.Normalize([0.0], [0.0])


# ---------------------------------------------------------------- MNIST
def _write_idx(path: Path, arr: np.ndarray) -> None:
    magic = 2051 if arr.ndim == 3 else 2049
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    """Tiny IDX files with their MD5s patched into a MNIST subclass."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5)}
    for name, a in arrays.items():
        _write_idx(src / name, a)

    class Fake(D.MNIST):
        resources = {n: hashlib.md5((src / n).read_bytes()).hexdigest() for n in arrays}
    return src, Fake, arrays


def test_mnist_reads_fake_files_and_batches(fake_mnist, tmp_path):
    src, Fake, arrays = fake_mnist
    ds = Fake(src, train=True)
    np.testing.assert_array_equal(ds.data, arrays["train-images-idx3-ubyte.gz"])
    img, lbl = ds[3]
    assert img.shape == (1, 28, 28) and img.dtype == np.float32
    np.testing.assert_allclose(img[0], arrays["train-images-idx3-ubyte.gz"][3] / 255.0, rtol=1e-6)
    assert lbl == arrays["train-labels-idx1-ubyte.gz"][3]
    x, y = ds.get_batch(np.array([3, 1]))
    np.testing.assert_array_equal(x[0], img)
    assert Fake(src, train=False).data.shape == (5, 28, 28)


def test_mnist_missing_and_corrupt_files_are_clear_errors(fake_mnist, tmp_path):
    src, Fake, _ = fake_mnist
    with pytest.raises(D.DatasetError, match="download=True"):
        Fake(tmp_path / "nowhere")
    bad = tmp_path / "bad" / "mnist"
    shutil.copytree(src, bad)
    data = bytearray((bad / "train-labels-idx1-ubyte.gz").read_bytes())
    data[-3] ^= 0xFF
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(D.DatasetError, match="MD5"):
        Fake(tmp_path / "bad")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def http_server(fake_mnist):
    src = fake_mnist[0]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(src)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def test_mnist_download_from_local_mirror(fake_mnist, http_server, tmp_path):
    _, Fake, arrays = fake_mnist
    Fake.mirrors = ["http://127.0.0.1:9/does-not-exist/", http_server]   # first mirror fails
    root = tmp_path / "dl"
    ds = Fake(root, train=False, download=True, timeout=5)
    assert (root / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    np.testing.assert_array_equal(ds.targets, arrays["t10k-labels-idx1-ubyte.gz"])
    assert not list((root / "mnist").glob("*.part"))


def test_mnist_download_rejects_wrong_checksum(fake_mnist, http_server, tmp_path):
    _, Fake, _ = fake_mnist

    class Wrong(Fake):
        resources = {k: "0" * 32 for k in Fake.resources}
        mirrors = [http_server]
    with pytest.raises(D.DatasetError, match="could not download"):
        Wrong(tmp_path / "w", download=True, timeout=5)
    assert not list((tmp_path / "w" / "mnist").glob("*.gz"))


@pytest.mark.skipif(not HAVE_MNIST, reason="MNIST not found at STRATA_DATA or /work/shared/data")
def test_real_mnist_shapes_and_checksums():
    tr = D.MNIST(MNIST_DIR.parent, train=True)
    te = D.MNIST(MNIST_DIR.parent, train=False)
    assert tr.data.shape == (60000, 28, 28) and te.data.shape == (10000, 28, 28)
    assert tr.targets[:5].tolist() == [5, 0, 4, 1, 9]
    x, y = te.arrays(normalize=True)
    assert x.shape == (10000, 1, 28, 28) and abs(float(x.mean())) < 0.1 and y.dtype == np.int64
    xs, ys = tr.arrays(normalize=True, limit=100)
    assert xs.shape == (100, 1, 28, 28) and ys.tolist() == tr.targets[:100].tolist()
