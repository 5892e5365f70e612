"""Indexing: x[...] and x[...] = v, gather/scatter, index_select, masks, tril/triu.

Basic indices (ints, slices, None, ...) become backend slice/reshape views. Advanced indices
(integer tensors/lists, bool masks) are resolved on the host into flat element positions, which
are bounds-checked there (a clear IndexError, never garbage) and then gathered/scattered on the
backend, so gradients flow through the backend's gather/scatter_add rules.
"""
from __future__ import annotations

import numpy as np

from . import dtype as dt
from .errors import DTypeError, ShapeError
from .shape import norm_dim
from .tensor import Tensor

_make = Tensor._make


# ------------------------------------------------------------------ index parsing
def _is_advanced(i) -> bool:
    return isinstance(i, (Tensor, list, np.ndarray)) and not isinstance(i, bool) or isinstance(i, bool)


def _to_host_index(i):
    if isinstance(i, Tensor):
        a = i._host()
    else:
        a = np.asarray(i)
    if a.dtype == np.bool_:
        return a
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise IndexError(f"tensors used as indices must be long, int or bool, got {a.dtype}")
    return a.astype(np.int64, copy=False)


def _expand_index(idx, ndim):
    if not isinstance(idx, tuple):
        idx = (idx,)
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = 0
    for i in idx:
        if i is None or i is Ellipsis:
            continue
        if isinstance(i, (Tensor, np.ndarray)) and _host_dtype_is_bool(i):
            used += max(i.ndim, 1) if i.ndim else 1
        else:
            used += 1
    if used > ndim:
        raise IndexError(f"too many indices for a tensor of dimension {ndim} ({used} given)")
    out = []
    for i in idx:
        if i is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(i)
    if not n_ell:
        out.extend([slice(None)] * (ndim - used))
    return out


def _host_dtype_is_bool(i) -> bool:
    if isinstance(i, Tensor):
        return i.dtype is dt.bool_
    return np.asarray(i).dtype == np.bool_


def _basic_plan(x_shape, items):
    """items without advanced indices -> (starts, stops, steps, final shape)."""
    starts, stops, steps, final = [], [], [], []
    d = 0
    for it in items:
        if it is None:
            final.append(1)
            continue
        size = x_shape[d]
        if isinstance(it, slice):
            st, sp, step = it.indices(size)
            if it.step is not None and it.step <= 0:
                raise ValueError("slice step must be positive (negative steps: use flip())")
            n = max(0, -(-(sp - st) // step))
            if n == 0:
                st, sp = 0, 0
            starts.append(st)
            stops.append(max(sp, st))
            steps.append(step)
            final.append(n)
        else:
            k = int(it)
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {size}")
            k %= size
            starts.append(k)
            stops.append(k + 1)
            steps.append(1)
        d += 1
    return tuple(starts), tuple(stops), tuple(steps), tuple(final)


def _apply_basic(x: Tensor, items) -> Tensor:
    shp = tuple(x.shape)
    starts, stops, steps, final = _basic_plan(shp, items)
    B = x._b
    p = x._p
    if starts != (0,) * len(shp) or stops != shp or steps != (1,) * len(shp):
        p = B.slice(p, starts, stops, steps)
    if tuple(B.shape(p)) != final:
        p = B.reshape(p, final)
    return _make(p, B)


def getitem(x: Tensor, idx) -> Tensor:
    if isinstance(idx, Tensor) and idx.dtype is dt.bool_ and tuple(idx.shape) == tuple(x.shape):
        return masked_select(x, idx)
    items = _expand_index(idx, x.ndim)
    adv = [k for k, it in enumerate(items) if _is_adv_item(it)]
    if not adv:
        return _apply_basic(x, items)
    # one integer/bool index, everything else full slices: index_select along that dim
    simple = len(adv) == 1 and all(it is not None and (isinstance(it, slice) and it == slice(None))
                                   for k, it in enumerate(items) if k != adv[0])
    if simple:
        k = adv[0]
        a = _to_host_index(items[k])
        if a.dtype != np.bool_ or a.ndim == 1:
            if a.dtype == np.bool_:
                if a.shape[0] != x.shape[k]:
                    raise IndexError(f"boolean index of length {a.shape[0]} does not match dim {k} "
                                     f"of size {x.shape[k]}")
                a = np.nonzero(a)[0]
            a = _wrap_check(a, x.shape[k], k)
            return _index_select_host(x, k, a)
    positions = _positions(tuple(x.shape), items)
    return _flat_gather_positions(x, positions)


def _is_adv_item(it) -> bool:
    return isinstance(it, (Tensor, list, np.ndarray)) or isinstance(it, bool)


def _wrap_check(a: np.ndarray, size: int, dim: int) -> np.ndarray:
    if a.size and (a.min() < -size or a.max() >= size):
        bad = a[(a < -size) | (a >= size)][0]
        raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {size}")
    return np.where(a < 0, a + size, a)


def _index_select_host(x: Tensor, dim: int, a: np.ndarray) -> Tensor:
    B = x._b
    flat = a.reshape(-1)
    ip = B.from_numpy(np.ascontiguousarray(flat, dtype=np.int64), dt.int64)
    out = B.index_select(x._p, dim, ip)
    shp = tuple(x.shape)
    new = shp[:dim] + a.shape + shp[dim + 1:]
    if tuple(B.shape(out)) != new:
        out = B.reshape(out, new)
    return _make(out, B)


def _positions(shape, items) -> np.ndarray:
    """Flat element positions selected by a full (expanded) index, via NumPy's own rules."""
    pos = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    np_items = []
    d = 0
    for it in items:
        if it is None:
            np_items.append(None)
            continue
        if _is_adv_item(it):
            a = _to_host_index(it)
            if a.dtype == np.bool_:
                for j in range(a.ndim):
                    if a.shape[j] != shape[d + j]:
                        raise IndexError(f"boolean index of shape {a.shape} does not match the "
                                         f"indexed dims {shape[d:d + a.ndim]}")
                d += max(a.ndim, 1)
            else:
                a = _wrap_check(a, shape[d], d)
                d += 1
            np_items.append(a)
        elif isinstance(it, slice):
            if it.step is not None and it.step <= 0:
                raise ValueError("slice step must be positive (negative steps: use flip())")
            np_items.append(it)
            d += 1
        else:
            k = int(it)
            if not -shape[d] <= k < shape[d]:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {shape[d]}")
            np_items.append(k)
            d += 1
    return pos[tuple(np_items)]


def _flat_gather_positions(x: Tensor, positions: np.ndarray) -> Tensor:
    B = x._b
    flat = B.reshape(x._p, (x.numel(),))
    ip = B.from_numpy(np.ascontiguousarray(positions.reshape(-1), dtype=np.int64), dt.int64)
    out = B.index_select(flat, 0, ip)
    return _make(B.reshape(out, positions.shape), B)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    from .ops_movement import broadcast_tensors
    x, mask = broadcast_tensors(x, mask)
    m = mask._host().reshape(-1)
    return _flat_gather_positions(x, np.nonzero(m)[0])


def setitem(x: Tensor, idx, value) -> None:
    B = x._b
    from .grad_mode import is_grad_enabled
    if B.requires_grad(x._p) and is_grad_enabled():
        raise RuntimeError("in-place assignment x[...] = v on a tensor that requires grad: "
                           "do it under strata.no_grad(), or on x.detach()")
    if isinstance(idx, Tensor) and idx.dtype is dt.bool_ and tuple(idx.shape) == tuple(x.shape) \
            and not isinstance(value, Tensor):
        x._assign(_make(B.masked_fill(x._p, idx._p, _scalar_for(value, x.dtype)), B))
        return
    items = _expand_index(idx, x.ndim)
    positions = _positions(tuple(x.shape), items)
    v = value if isinstance(value, Tensor) else None
    if v is None:
        v = _make(B.full((), _scalar_for(value, x.dtype), x.dtype), B)
    v = v._cast(x.dtype)
    try:
        from .ops_movement import broadcast_to
        v = broadcast_to(v, positions.shape)
    except ShapeError:
        raise ShapeError(f"setitem: value of shape {tuple(v.shape)} cannot be broadcast to the "
                         f"indexed shape {positions.shape}") from None
    if positions.size == 0:
        return
    flat_pos = positions.reshape(-1)
    n = x.numel()
    ip = B.from_numpy(np.ascontiguousarray(flat_pos, dtype=np.int64), dt.int64)
    vp = B.reshape(v._p, (flat_pos.size,))
    flat = B.reshape(x._p, (n,))
    new = B.scatter(flat, 0, ip, vp)
    x._assign(_make(B.reshape(new, tuple(x.shape)), B))


def _scalar_for(v, d):
    if isinstance(v, (list, tuple, np.ndarray)):
        raise TypeError("assign lists or arrays through a tensor: x[i] = strata.tensor(v)")
    return float(v) if d.kind == 2 else (bool(v) if d.kind == 0 else int(v))


# ------------------------------------------------------------------ gather / scatter family
def _check_index_tensor(index: Tensor, op: str) -> None:
    if not isinstance(index, Tensor) or index.dtype.kind != 1:
        raise DTypeError(f"{op}: index must be an integer tensor, got "
                         f"{index.dtype.name if isinstance(index, Tensor) else type(index).__name__}")


def _long(index: Tensor):
    return index._p if index.dtype is dt.int64 else index._b.cast(index._p, dt.int64)


def _check_range(index: Tensor, size: int, op: str, dim: int) -> None:
    if index.numel() == 0:
        return
    a = index._host()
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size {size}")


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    _check_index_tensor(index, "gather")
    d = norm_dim(dim, x.ndim, "gather")
    if index.ndim != x.ndim:
        raise ShapeError(f"gather: index has {index.ndim} dims but input has {x.ndim}")
    for i, (a, b) in enumerate(zip(index.shape, x.shape)):
        if i != d and a > b:
            raise ShapeError(f"gather: index shape {tuple(index.shape)} exceeds input shape "
                             f"{tuple(x.shape)} at dim {i}")
    _check_range(index, x.shape[d], "gather", d)
    return _make(x._b.gather(x._p, d, _long(index)), x._b)


def take_along_dim(x: Tensor, indices: Tensor, dim=None) -> Tensor:
    from .ops_movement import broadcast_to, flatten
    if dim is None:
        return gather(flatten(x), 0, flatten(indices))
    d = norm_dim(dim, x.ndim, "take_along_dim")
    shp_x = list(x.shape)
    shp_i = list(indices.shape)
    bx = [max(a, b) if i != d else a for i, (a, b) in enumerate(zip(shp_x, shp_i))]
    bi = [max(a, b) if i != d else b for i, (a, b) in enumerate(zip(shp_x, shp_i))]
    return gather(broadcast_to(x, bx), d, broadcast_to(indices, bi))


def _scatter_checks(x, dim, index, src, op):
    _check_index_tensor(index, op)
    d = norm_dim(dim, x.ndim, op)
    if index.ndim != x.ndim:
        raise ShapeError(f"{op}: index has {index.ndim} dims but self has {x.ndim}")
    _check_range(index, x.shape[d], op, d)
    return d


def _src_tensor(x, src, index):
    if isinstance(src, Tensor):
        if tuple(src.shape) != tuple(index.shape):
            from .ops_movement import narrow
            s = src
            for i, n in enumerate(index.shape):
                if s.shape[i] < n:
                    raise ShapeError(f"scatter: src shape {tuple(src.shape)} is smaller than index "
                                     f"shape {tuple(index.shape)}")
                s = narrow(s, i, 0, n)
            src = s
        return src._cast(x.dtype)
    return _make(x._b.full(tuple(index.shape), _scalar_for(src, x.dtype), x.dtype), x._b)


def scatter(x: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None) -> Tensor:
    if src is None:
        src = value
    d = _scatter_checks(x, dim, index, src, "scatter")
    s = _src_tensor(x, src, index)
    if reduce == "add":
        return _make(x._b.scatter_add(x._p, d, _long(index), s._p), x._b)
    if reduce is not None:
        raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r}")
    return _make(x._b.scatter(x._p, d, _long(index), s._p), x._b)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    d = _scatter_checks(x, dim, index, src, "scatter_add")
    s = _src_tensor(x, src, index)
    return _make(x._b.scatter_add(x._p, d, _long(index), s._p), x._b)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    _check_index_tensor(index, "index_select")
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    d = norm_dim(dim, x.ndim, "index_select")
    _check_range(index, x.shape[d] if x.ndim else 1, "index_select", d)
    ip = _long(index)
    if index.ndim == 0:
        ip = index._b.reshape(ip, (1,))
    return _make(x._b.index_select(x._p, d, ip), x._b)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    if not isinstance(mask, Tensor) or mask.dtype is not dt.bool_:
        raise DTypeError("masked_fill: mask must be a bool tensor")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ShapeError("masked_fill: value tensor must have one element")
        from .ops_elementwise import where
        return where(mask, value._cast(x.dtype), x)
    from .shape import broadcast_shapes
    broadcast_shapes(tuple(x.shape), tuple(mask.shape), "masked_fill")
    if len(mask.shape) > x.ndim or any(m != 1 and m != s for m, s in zip(
            tuple(mask.shape)[::-1], tuple(x.shape)[::-1])):
        raise ShapeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not broadcast to "
                         f"the tensor's shape {tuple(x.shape)}")
    return _make(x._b.masked_fill(x._p, mask._p, _scalar_for(value, x.dtype)), x._b)


def nonzero(x: Tensor, as_tuple: bool = False):
    a = np.nonzero(x._host())
    B = x._b
    if as_tuple:
        return tuple(_make(B.from_numpy(np.ascontiguousarray(i, dtype=np.int64), dt.int64), B) for i in a)
    m = np.stack(a, axis=1) if a else np.zeros((0, 0), np.int64)
    return _make(B.from_numpy(np.ascontiguousarray(m, dtype=np.int64), dt.int64), B)


def argwhere(x: Tensor) -> Tensor:
    return nonzero(x)


def _tri_mask(x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"tril/triu need a tensor with at least 2 dims, got {tuple(x.shape)}")
    n, m = x.shape[-2], x.shape[-1]
    r = np.arange(n)[:, None]
    c = np.arange(m)[None, :]
    keep = (c - r <= diagonal) if lower else (c - r >= diagonal)
    B = x._b
    return _make(B.from_numpy(np.ascontiguousarray(~keep), dt.bool_), B)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    return masked_fill(x, _tri_mask(x, diagonal, True), 0)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    return masked_fill(x, _tri_mask(x, diagonal, False), 0)
