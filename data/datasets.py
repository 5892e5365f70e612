"""Datasets with files: MNIST (IDX gzip files, checksummed, downloadable)."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import StrataError
from .dataset import Dataset

_CACHE: dict = {}


class DatasetError(StrataError, RuntimeError):
    """A dataset's files are missing, corrupt, or could not be downloaded; the message says what to do."""


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Decode a gzip-compressed IDX file (big-endian header, uint8 payload)."""
    try:
        raw = gzip.decompress(Path(path).read_bytes())
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path} is not a valid gzip file ({e}); delete it and download again") from None
    if len(raw) < 8:
        raise DatasetError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DatasetError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}); expected "
                           f"magic 2049 (labels) or 2051 (images)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) - off != n:
        raise DatasetError(f"{path}: header says {dims} = {n} bytes of data but the file holds "
                           f"{len(raw) - off}; the file is truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims)


class MNIST(Dataset):
    """The MNIST digits, as torchvision.datasets.MNIST.

    `root` is searched for the four `*-ubyte.gz` files directly, in `root/mnist/`, and in
    `root/MNIST/raw/` (torchvision's layout). With `download=True` missing files are fetched
    from `mirrors` into `root/mnist/`. Every file's MD5 is verified.

    Items are `(image, label)`: without a transform the image is float32 (1, 28, 28) in
    [0, 1]; a `transform` receives the uint8 (28, 28) image (as torchvision passes a PIL
    image, so `Compose([ToTensor(), Normalize(...)])` works). `data` (uint8 N x 28 x 28) and
    `targets` (int64 N) hold everything; `arrays()` gives whole float arrays for batching by
    slicing, and DataLoader batches through `get_batch` without per-item Python.
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]
    resources = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    mean, std = 0.1307, 0.3081

    def __init__(self, root: str | os.PathLike, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False,
                 timeout: float = 30.0) -> None:
        self.root = Path(os.path.expanduser(str(root)))
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        prefix = "train" if train else "t10k"
        names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        folder = self._find(names)
        if folder is None:
            if not download:
                raise DatasetError(self._missing_message(names))
            folder = self.root / "mnist"
            self.download(folder, names, timeout)
        for name in names:
            self._verify(folder / name)
        self.folder = folder
        img_path, lbl_path = folder / names[0], folder / names[1]
        key = (str(img_path.resolve()), os.path.getmtime(img_path), os.path.getmtime(lbl_path))
        if key not in _CACHE:
            images, labels = read_idx(img_path), read_idx(lbl_path)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DatasetError(f"{folder}: images {images.shape} and labels {labels.shape} do not "
                                   f"form an MNIST split")
            _CACHE[key] = (images, labels.astype(np.int64))
        self.data, self.targets = _CACHE[key]
        self._float = None

    # ------------------------------------------------------------ files
    def _candidates(self):
        return [self.root, self.root / "mnist", self.root / "MNIST" / "raw"]

    def _find(self, names):
        for d in self._candidates():
            if all((d / n).is_file() for n in names):
                return d
        return None

    def _missing_message(self, names) -> str:
        where = ", ".join(str(d) for d in self._candidates())
        return (f"MNIST files {names} not found in any of: {where}. Either pass download=True to "
                f"fetch them from {self.mirrors[0]} (needs network access), or copy the four "
                f"*-ubyte.gz files into {self.root / 'mnist'} (set STRATA_DATA to a directory "
                f"holding mnist/ for the strata CLI).")

    def _verify(self, path: Path) -> None:
        want = self.resources[path.name]
        got = md5_file(path)
        if got != want:
            raise DatasetError(f"{path}: MD5 {got} does not match the published {want}; the file is "
                               f"corrupt or not MNIST. Delete it and download again (download=True).")

    def download(self, folder: Path, names=None, timeout: float = 30.0) -> None:
        """Fetch missing files from the first mirror that works, verifying each MD5."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in names or list(self.resources):
            dest = folder / name
            if dest.is_file() and md5_file(dest) == self.resources[name]:
                continue
            errors = []
            for mirror in self.mirrors:
                url = mirror.rstrip("/") + "/" + name
                try:
                    _fetch(url, dest, self.resources[name], timeout)
                    break
                except (urllib.error.URLError, OSError, DatasetError, ValueError) as e:
                    errors.append(f"  {url}: {getattr(e, 'reason', None) or e}")
            else:
                raise DatasetError(f"could not download {name} from any mirror:\n" + "\n".join(errors)
                                   + f"\nWithout network access, copy the MNIST *-ubyte.gz files "
                                   f"into {folder} by hand.")

    # ------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        else:
            img = (img[None].astype(np.float32) / np.float32(255.0))
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def arrays(self, normalize: bool = False, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All images (or the first `limit`) as float32 (N, 1, 28, 28) in [0, 1] (standardised
        with MNIST's mean and std when `normalize`), and int64 labels (N,)."""
        if limit:
            x = self.data[:limit, None].astype(np.float32) / np.float32(255.0)
            if normalize:
                x = (x - np.float32(self.mean)) / np.float32(self.std)
            return x, self.targets[:limit]
        if self._float is None:
            self._float = self.data[:, None].astype(np.float32) / np.float32(255.0)
        x = self._float
        if normalize:
            x = (x - np.float32(self.mean)) / np.float32(self.std)
        return x, self.targets

    def get_batch(self, indices: np.ndarray):
        idx = np.asarray(indices, dtype=np.int64)
        if self.transform is None and self.target_transform is None:
            x, y = self.arrays()
            return x[idx], y[idx]
        items = [self[int(i)] for i in idx]
        from .collate import collate_numpy
        return collate_numpy(items)

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n"
                f"    Split: {split}")


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Download url to dest atomically (temp file + os.replace) and check its MD5."""
    req = urllib.request.Request(url, headers={"User-Agent": "strata"})
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out, 1 << 20)
        got = md5_file(Path(tmp))
        if got != md5:
            raise DatasetError(f"downloaded file has MD5 {got}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
