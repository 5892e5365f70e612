"""default_collate: stack a list of samples into batched arrays, then into strata Tensors."""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np


def _is_tensor(x) -> bool:
    return hasattr(x, "_p") and hasattr(x, "numpy")


def collate_numpy(batch):
    """Stack samples into NumPy arrays, keeping the structure (tuples, lists, dicts) of a sample."""
    if len(batch) == 0:
        raise ValueError("collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, np.ndarray) or _is_tensor(elem):
        arrs = [e.numpy() if _is_tensor(e) else e for e in batch]
        shapes = {a.shape for a in arrs}
        if len(shapes) > 1:
            raise ValueError(f"collate: samples have different shapes {sorted(shapes)}; pad them to one "
                             f"shape or pass a collate_fn that handles variable sizes")
        return np.stack(arrs)
    if isinstance(elem, (bool, np.bool_)):
        return np.asarray(batch, dtype=np.bool_)
    if isinstance(elem, (int, np.integer)):
        return np.asarray(batch, dtype=np.int64)
    if isinstance(elem, (float, np.floating)):
        # torch collates Python floats to float64
        return np.asarray(batch, dtype=np.float64 if isinstance(elem, float) else type(elem))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {k: collate_numpy([d[k] for d in batch]) for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(collate_numpy(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(e) != n for e in batch):
            raise ValueError("collate: each element in the batch should be of equal size")
        out = [collate_numpy(list(s)) for s in zip(*batch)]
        return tuple(out) if isinstance(elem, tuple) else out
    if isinstance(elem, numbers.Number):
        return np.asarray(batch)
    raise TypeError(f"collate: cannot batch samples of type {type(elem).__name__}; "
                    f"samples must be arrays, tensors, numbers, or dicts/tuples/lists of them "
                    f"(or pass collate_fn=...)")


def to_tensors(obj, backend=None):
    """Turn every NumPy array in a nested structure into a strata Tensor on `backend`."""
    if isinstance(obj, np.ndarray):
        from .. import from_numpy
        return from_numpy(np.asarray(obj, order="C"), backend=backend)
    if isinstance(obj, dict):
        return {k: to_tensors(v, backend) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_tensors(v, backend) for v in obj))
    if isinstance(obj, (list, tuple)) and not (obj and isinstance(obj[0], (str, bytes))):
        return type(obj)(to_tensors(v, backend) for v in obj)
    return obj


def default_collate(batch, backend=None):
    """torch.utils.data.default_collate: a list of samples -> a batch of strata Tensors."""
    return to_tensors(collate_numpy(batch), backend)
