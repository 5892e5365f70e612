"""Datasets: the map-style protocol, TensorDataset, Subset, ConcatDataset, random_split."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..core.errors import ShapeError


class Dataset:
    """Map-style dataset: `__getitem__(i)` and `__len__()`, as in torch.utils.data.

    A dataset may also define `get_batch(indices)` returning an already collated batch
    (a tuple of arrays indexed by `indices`); DataLoader uses it with the default collate
    so that array-backed datasets batch by slicing instead of per-item Python.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__ (a Dataset subclass "
                                  f"supplies items by index)")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


def _as_array(t):
    """Array view of a strata Tensor or anything array-like (kept as is for Tensors)."""
    if isinstance(t, np.ndarray):
        return t
    if hasattr(t, "_p") and hasattr(t, "numpy"):
        return t
    return np.asarray(t)


class TensorDataset(Dataset):
    """Samples are tuples `(t[i] for t in tensors)`; all tensors share their first dimension."""

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor or array")
        self.tensors = tuple(_as_array(t) for t in tensors)
        n = self.tensors[0].shape[0] if len(self.tensors[0].shape) else None
        for t in self.tensors:
            if len(t.shape) == 0 or t.shape[0] != n:
                raise ShapeError("TensorDataset: every tensor must have the same size in dim 0, got "
                                 + ", ".join(str(tuple(t.shape)) for t in self.tensors))

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def get_batch(self, indices: np.ndarray):
        idx = np.asarray(indices, dtype=np.int64)
        out = []
        for t in self.tensors:
            if isinstance(t, np.ndarray):
                out.append(t[idx])
            else:
                out.append(t.numpy()[idx])
        return tuple(out)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The items of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        n = len(dataset)
        bad = [i for i in self.indices if not -n <= i < n]
        if bad:
            raise IndexError(f"Subset: indices {bad[:5]} out of range for a dataset of {n} items")

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def get_batch(self, indices):
        inner = np.asarray(self.indices, dtype=np.int64)[np.asarray(indices, dtype=np.int64)]
        return self.dataset.get_batch(inner)

    def __len__(self) -> int:
        return len(self.indices)


def _has_batch(ds) -> bool:
    if isinstance(ds, Subset):
        return _has_batch(ds.dataset)
    return callable(getattr(ds, "get_batch", None))


class ConcatDataset(Dataset):
    """The concatenation of several datasets."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, idx: int):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"index {idx} out of range for a dataset of {n} items")
            idx += n
        d = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        if d >= len(self.datasets):
            raise IndexError(f"index {idx} out of range for a dataset of {n} items")
        start = 0 if d == 0 else int(self.cumulative_sizes[d - 1])
        return self.datasets[d][idx - start]


def _make_rng(generator) -> np.random.Generator:
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def random_split(dataset: Dataset, lengths: Sequence[float], generator=None) -> list:
    """Split into non-overlapping Subsets of the given lengths, or fractions summing to 1."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= f <= 1 for f in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) != n:
        sizes = [int(math.floor(n * f)) for f in lengths]
        rest = n - sum(sizes)
        for i in range(rest):  # round robin like torch
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(int(l) != l or l < 0 for l in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of lengths {sum(lengths)} does not equal the dataset "
                         f"length {n}")
    perm = _make_rng(generator).permutation(n)
    out, start = [], 0
    for l in lengths:
        out.append(Subset(dataset, perm[start:start + int(l)].tolist()))
        start += int(l)
    return out
