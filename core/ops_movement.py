"""Movement ops: reshape, permute, expand, cat, split, pad ... (views where the backend allows)."""
from __future__ import annotations

from . import dtype as dt
from .errors import BackendError, ShapeError
from .shape import broadcast_many, infer_reshape, norm_dim, norm_dims
from .tensor import Tensor, _check_supported

_make = Tensor._make


def _sizes(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


def reshape(x: Tensor, *shape) -> Tensor:
    new = infer_reshape(tuple(x.shape), _sizes(shape))
    if new == tuple(x.shape):
        return x
    return _make(x._b.reshape(x._p, new), x._b)


def view(x: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and (isinstance(shape[0], dt.DType) or shape[0] in (float, int, bool)):
        raise TypeError("view(dtype) reinterpretation is not supported: use .to(dtype)")
    return reshape(x, *shape)


def view_as(x, other): return reshape(x, tuple(other.shape))
def reshape_as(x, other): return reshape(x, tuple(other.shape))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shp = tuple(x.shape)
    if not shp:
        return reshape(x, 1)
    s = norm_dim(start_dim, len(shp), "flatten")
    e = norm_dim(end_dim, len(shp), "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    n = 1
    for d in shp[s:e + 1]:
        n *= d
    return reshape(x, shp[:s] + (n,) + shp[e + 1:])


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    shp = tuple(x.shape)
    d = norm_dim(dim, len(shp), "unflatten")
    sizes = infer_reshape((shp[d],), tuple(sizes), "unflatten")
    return reshape(x, shp[:d] + sizes + shp[d + 1:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    shp = tuple(x.shape)
    if dim is None:
        axes = {i for i, s in enumerate(shp) if s == 1}
    else:
        axes = {a for a in norm_dims(dim, len(shp), "squeeze") if shp[a] == 1}
    if not axes:
        return x
    return reshape(x, tuple(s for i, s in enumerate(shp) if i not in axes))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    shp = tuple(x.shape)
    d = norm_dim(dim, len(shp) + 1, "unsqueeze")
    return _make(x._b.reshape(x._p, shp[:d] + (1,) + shp[d:]), x._b)


def permute(x: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    n = x.ndim
    if len(dims) != n:
        raise ShapeError(f"permute: got {len(dims)} dims {dims} for a tensor with {n} dims")
    dims = tuple(norm_dim(d, n, "permute") for d in dims)
    if sorted(dims) != list(range(n)):
        raise ShapeError(f"permute: dims {dims} are not a permutation of 0..{n - 1}")
    if dims == tuple(range(n)):
        return x
    return _make(x._b.permute(x._p, dims), x._b)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    n = x.ndim
    if n == 0:
        return x
    a, b = norm_dim(dim0, n, "transpose"), norm_dim(dim1, n, "transpose")
    dims = list(range(n))
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, tuple(dims))


swapaxes = swapdims = transpose


def t(x: Tensor) -> Tensor:
    if x.ndim > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dims, got {x.ndim}; use transpose()")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def T(x: Tensor) -> Tensor:
    return permute(x, tuple(reversed(range(x.ndim))))


def mT(x: Tensor) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"mT needs a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    return transpose(x, -2, -1)


def movedim(x: Tensor, source, destination) -> Tensor:
    src = norm_dims(source, x.ndim, "movedim") if not isinstance(source, int) else (norm_dim(source, x.ndim),)
    dst = norm_dims(destination, x.ndim, "movedim") if not isinstance(destination, int) else (norm_dim(destination, x.ndim),)
    if isinstance(source, (list, tuple)):
        src = tuple(norm_dim(s, x.ndim) for s in source)
        dst = tuple(norm_dim(s, x.ndim) for s in destination)
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, tuple(order))


def expand(x: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    shp = tuple(x.shape)
    if len(sizes) < len(shp):
        raise ShapeError(f"expand: the number of sizes {len(sizes)} is smaller than the tensor's "
                         f"dims {len(shp)} (shape {shp})")
    lead = len(sizes) - len(shp)
    full = (1,) * lead + shp
    target = []
    for i, (s, n) in enumerate(zip(full, sizes)):
        if n == -1:
            if i < lead:
                raise ShapeError("expand: -1 is not allowed for new leading dims")
            n = s
        if s != 1 and s != n:
            raise ShapeError(f"expand: cannot expand {shp} to {sizes}: dim {i} has size {s}, "
                             f"which is not 1")
        target.append(n)
    target = tuple(target)
    if target == shp:
        return x
    p = x._p if not lead else x._b.reshape(x._p, full)
    return _make(x._b.expand(p, target), x._b)


def broadcast_to(x: Tensor, shape) -> Tensor:
    return expand(x, tuple(shape))


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return expand(x, tuple(other.shape))


def broadcast_tensors(*tensors):
    shp = broadcast_many([tuple(t.shape) for t in tensors], "broadcast_tensors")
    return tuple(expand(t, shp) for t in tensors)


def repeat(x: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    shp = tuple(x.shape)
    if len(sizes) < len(shp):
        raise ShapeError(f"repeat: {len(sizes)} repeat counts for a tensor with {len(shp)} dims")
    shp = (1,) * (len(sizes) - len(shp)) + shp
    # (r0, s0, r1, s1, ...) broadcast then merged: each block repeats the whole dim
    inter = tuple(v for r, s in zip(sizes, shp) for v in (1, s))
    big = tuple(v for r, s in zip(sizes, shp) for v in (r, s))
    y = expand(reshape(x, inter), big)
    return reshape(y, tuple(r * s for r, s in zip(sizes, shp)))


def tile(x: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    if len(dims) < x.ndim:
        dims = (1,) * (x.ndim - len(dims)) + dims
    return repeat(x, dims)


def flip(x: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    axes = norm_dims(dims, x.ndim, "flip")
    if not axes:
        return x
    return _make(x._b.flip(x._p, axes), x._b)


def fliplr(x): return flip(x, 1)
def flipud(x): return flip(x, 0)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), tuple(x.shape))
    if isinstance(shifts, int):
        shifts, dims = (shifts,), (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError("roll: shifts and dims must have the same length")
    for s, d in zip(shifts, dims):
        d = norm_dim(d, x.ndim, "roll")
        n = x.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            x = cat([narrow(x, d, n - s, s), narrow(x, d, 0, n - s)], d)
    return x


def _same_backend(tensors, op):
    B = tensors[0]._b
    for t in tensors[1:]:
        if t._b is not B and t._b != B:
            raise BackendError(f"{op}: tensors on different backends: {B} and {t._b}")
    return B


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    B = _same_backend(tensors, "cat")
    # torch skips legacy 1-d empty tensors
    ref = next((t for t in tensors if tuple(t.shape) != (0,)), tensors[0])
    tensors = [t for t in tensors if tuple(t.shape) != (0,) or t is ref]
    nd = ref.ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    d = norm_dim(dim, nd, "cat")
    shp = tuple(ref.shape)
    dtype = ref.dtype
    for t in tensors:
        s = tuple(t.shape)
        if len(s) != nd or any(a != b for i, (a, b) in enumerate(zip(s, shp)) if i != d):
            raise ShapeError(f"cat: shapes {shp} and {s} differ outside dim {d}")
        dtype = dt.promote_types(dtype, t.dtype)
    if len(tensors) == 1:
        return tensors[0]._cast(dtype)
    ps = [t._cast(dtype)._p for t in tensors]
    return _make(B.cat(ps, d), B)


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shp = tuple(tensors[0].shape)
    for t in tensors:
        if tuple(t.shape) != shp:
            raise ShapeError(f"stack expects each tensor to be equal size, got {shp} and "
                             f"{tuple(t.shape)}")
    d = norm_dim(dim, len(shp) + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(ts): return cat(ts, 0 if ts[0].ndim == 1 else 1)
def vstack(ts): return cat([atleast_2d(t) for t in ts], 0)


def atleast_2d(x):
    return x if x.ndim >= 2 else reshape(x, (1, max(x.numel(), 1)) if x.ndim else (1, 1))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    shp = tuple(x.shape)
    d = norm_dim(dim, len(shp), "narrow")
    if start < 0:
        start += shp[d]
    if not (0 <= start and length >= 0 and start + length <= shp[d]):
        raise IndexError(f"narrow: start {start} + length {length} exceeds dim {d} of size {shp[d]}")
    starts = tuple(start if i == d else 0 for i in range(len(shp)))
    stops = tuple(start + length if i == d else s for i, s in enumerate(shp))
    if starts == (0,) * len(shp) and stops == shp:
        return x
    return _make(x._b.slice(x._p, starts, stops, (1,) * len(shp)), x._b)


def split(x: Tensor, split_size_or_sections, dim: int = 0):
    d = norm_dim(dim, x.ndim, "split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        sz = split_size_or_sections
        if sz <= 0:
            raise ValueError(f"split: split_size must be positive, got {sz}")
        sections = [sz] * (n // sz) + ([n % sz] if n % sz else [])
        if n == 0:
            sections = [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != n:
            raise ShapeError(f"split: sections {sections} sum to {sum(sections)}, but dim {d} "
                             f"has size {n}")
    out, start = [], 0
    for s in sections:
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def chunk(x: Tensor, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[norm_dim(dim, x.ndim, "chunk")]
    size = -(-n // chunks) if n else 0
    return split(x, size, dim) if size else (x,)


def tensor_split(x: Tensor, indices_or_sections, dim: int = 0):
    d = norm_dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    else:
        bounds = [0] + list(indices_or_sections) + [n]
        sizes = [max(0, min(b, n) - min(a, n)) for a, b in zip(bounds, bounds[1:])]
    return split(x, sizes, d)


def unbind(x: Tensor, dim: int = 0):
    d = norm_dim(dim, x.ndim, "unbind")
    return tuple(squeeze(s, d) for s in split(x, 1, d))


def pad(x: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """torch.nn.functional.pad: `pad` lists (left, right) pairs starting from the LAST dim."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: padding {pad} must have an even length of at most 2*ndim "
                         f"({2 * x.ndim})")
    nd = x.ndim
    pairs = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        pairs[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        v = 0 if value is None else value
        if any(lo < 0 or hi < 0 for lo, hi in pairs):
            x = _crop(x, pairs)
            pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
        if not any(lo or hi for lo, hi in pairs):
            return x
        d = x.dtype
        v = float(v) if d.kind == 2 else (bool(v) if d.kind == 0 else int(v))
        return _make(x._b.pad(x._p, tuple(pairs), v), x._b)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
                         f"got {mode!r}")
    for d in range(nd):
        lo, hi = pairs[d]
        if not (lo or hi):
            continue
        n = x.shape[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ShapeError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dim "
                             f"size {n}")
        if mode == "circular" and (lo > n or hi > n):
            raise ShapeError(f"pad: circular padding ({lo}, {hi}) must not exceed the dim size {n}")
        parts = []
        if lo:
            if mode == "reflect":
                parts.append(flip(narrow(x, d, 1, lo), d))
            elif mode == "replicate":
                parts.append(expand(narrow(x, d, 0, 1), *[lo if i == d else -1 for i in range(nd)]))
            else:
                parts.append(narrow(x, d, n - lo, lo))
        parts.append(x)
        if hi:
            if mode == "reflect":
                parts.append(flip(narrow(x, d, n - 1 - hi, hi), d))
            elif mode == "replicate":
                parts.append(expand(narrow(x, d, n - 1, 1), *[hi if i == d else -1 for i in range(nd)]))
            else:
                parts.append(narrow(x, d, 0, hi))
        x = cat(parts, d)
    return x


def _crop(x, pairs):
    for d, (lo, hi) in enumerate(pairs):
        n = x.shape[d]
        a = -lo if lo < 0 else 0
        b = n + hi if hi < 0 else n
        if a or b != n:
            x = narrow(x, d, a, b - a)
    return x


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    from .ops_index import _flat_gather_positions
    import numpy as np
    shp = tuple(x.shape)
    a, b = norm_dim(dim1, len(shp), "diagonal"), norm_dim(dim2, len(shp), "diagonal")
    pos = np.arange(int(np.prod(shp))).reshape(shp)
    diag = np.diagonal(pos, offset, a, b)
    return _flat_gather_positions(x, diag)


def _check_dtype(B, d):
    _check_supported(B, d)
