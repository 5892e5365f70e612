"""Per-sample transforms on (C, H, W) or (H, W) arrays (NumPy or strata Tensors), as torchvision's."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .dataset import _make_rng


def _np(x):
    if isinstance(x, np.ndarray):
        return x, False
    if hasattr(x, "_p") and hasattr(x, "numpy"):
        return x.numpy(), True
    return np.asarray(x), False


def _back(arr, was_tensor, like):
    if not was_tensor:
        return arr
    from .. import from_numpy
    return from_numpy(np.ascontiguousarray(arr), backend=like.backend)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """uint8 (H, W) or (H, W, C) image -> float32 (C, H, W) in [0, 1], like torchvision."""

    def __call__(self, x):
        a, _ = _np(x)
        if a.ndim == 2:
            a = a[None]
        elif a.ndim == 3:
            a = a.transpose(2, 0, 1)
        else:
            raise ValueError(f"ToTensor: expected an (H, W) or (H, W, C) image, got shape {a.shape}")
        a = a.astype(np.float32)
        return a / 255.0 if _np(x)[0].dtype == np.uint8 else a

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel of a (..., C, H, W) float array."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if (self.std == 0).any():
            raise ValueError(f"Normalize: std evaluated to zero after conversion to float, "
                             f"leading to division by zero (std={list(std)})")
        self.inplace = inplace

    def __call__(self, x):
        a, was_t = _np(x)
        if a.ndim < 3:
            raise ValueError(f"Normalize: expected a (..., C, H, W) tensor, got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"Normalize: input should be a float array, got {a.dtype}; "
                            f"convert with ToTensor() first")
        c = a.shape[-3]
        if len(self.mean) not in (1, c) or len(self.std) not in (1, c):
            raise ValueError(f"Normalize: mean/std have {len(self.mean)}/{len(self.std)} values for "
                             f"{c} channels")
        m = self.mean.astype(a.dtype).reshape(-1, 1, 1)
        s = self.std.astype(a.dtype).reshape(-1, 1, 1)
        out = (a - m) / s
        if self.inplace and isinstance(x, np.ndarray):
            x[...] = out
            return x
        return _back(out.astype(a.dtype), was_t, x)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Crop a random `size` window, after optional zero (or `fill`) `padding`, as torchvision."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0,
                 padding_mode: str = "constant", generator=None) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if padding is None:
            pad = (0, 0, 0, 0)
        elif isinstance(padding, int):
            pad = (padding,) * 4
        elif len(padding) == 2:
            pad = (padding[0], padding[1], padding[0], padding[1])
        elif len(padding) == 4:
            pad = tuple(padding)
        else:
            raise ValueError(f"RandomCrop: padding must be an int or a sequence of 2 or 4 ints, got {padding}")
        self.padding = pad  # left, top, right, bottom (torchvision order)
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: padding_mode should be constant, edge, reflect or "
                             f"symmetric, got {padding_mode!r}")
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.rng = _make_rng(generator)

    def _pad(self, a, left, top, right, bottom):
        widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
        if self.padding_mode == "constant":
            return np.pad(a, widths, mode="constant", constant_values=self.fill)
        return np.pad(a, widths, mode=self.padding_mode)

    def __call__(self, x):
        a, was_t = _np(x)
        if a.ndim < 2:
            raise ValueError(f"RandomCrop: expected an (..., H, W) image, got shape {a.shape}")
        if any(self.padding):
            a = self._pad(a, *self.padding)
        th, tw = self.size
        h, w = a.shape[-2:]
        if self.pad_if_needed and h < th:
            a = self._pad(a, 0, th - h, 0, th - h)
        if self.pad_if_needed and w < tw:
            a = self._pad(a, tw - w, 0, tw - w, 0)
        h, w = a.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the "
                             f"(padded) input size {(h, w)}; add padding or pad_if_needed=True")
        i = int(self.rng.integers(0, h - th + 1))
        j = int(self.rng.integers(0, w - tw + 1))
        return _back(np.ascontiguousarray(a[..., i:i + th, j:j + tw]), was_t, x)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Flip the last (width) axis with probability p."""

    def __init__(self, p: float = 0.5, generator=None) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = _make_rng(generator)

    def __call__(self, x):
        if self.rng.random() < self.p:
            a, was_t = _np(x)
            return _back(np.ascontiguousarray(a[..., ::-1]), was_t, x)
        return x

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Lambda:
    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)
