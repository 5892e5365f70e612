"""Shape rules shared by the frontend and every backend: broadcasting, dims, strides."""
from __future__ import annotations

from .errors import ShapeError


def broadcast_shapes(a: tuple, b: tuple, op: str = "op") -> tuple:
    if a == b:
        return a
    na, nb = len(a), len(b)
    n = max(na, nb)
    out = []
    for i in range(n):
        da = a[i - n + na] if i - n + na >= 0 else 1
        db = b[i - n + nb] if i - n + nb >= 0 else 1
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise ShapeError(f"{op}: shapes {tuple(a)} and {tuple(b)} do not broadcast "
                             f"(dim {i - n} has sizes {da} and {db})")
    return tuple(out)


def matmul_shape(a: tuple, b: tuple):
    """The shape of a (..., n, k) @ (..., k, m) product, or None when the operands do not
    fit (then the matmul itself raises its own error)."""
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        return None
    try:
        return broadcast_shapes(a[:-2], b[:-2], "matmul") + (a[-2], b[-1])
    except ShapeError:
        return None


def conv2d_output_hw(op: str, xshape: tuple, wshape: tuple, stride: tuple, padding: tuple,
                     dilation: tuple, groups: int) -> tuple:
    """(Ho, Wo) of conv2d of x (N, C, H, W) with w (O, C/groups, kh, kw), or a ShapeError that
    names what does not fit."""
    _, C, H, W = xshape
    O, Cg, kh, kw = wshape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if groups < 1 or C != Cg * groups or O % groups:
        raise ShapeError(f"{op}: input has {C} channels and weight {tuple(wshape)} with "
                         f"groups={groups}; need C == weight.shape[1] * groups and O divisible "
                         f"by groups")
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if Ho <= 0 or Wo <= 0:
        raise ShapeError(f"{op}: input {H}x{W} with padding ({ph}, {pw}) is smaller than the "
                         f"dilated kernel {dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}")
    return Ho, Wo


def broadcast_many(shapes, op: str = "op") -> tuple:
    out = ()
    for s in shapes:
        out = broadcast_shapes(out, tuple(s), op)
    return out


def norm_dim(dim: int, ndim: int, op: str = "op") -> int:
    """A possibly negative dim into 0..ndim-1 (a 0-d tensor accepts dim 0 and -1, like PyTorch)."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims "
                         f"(expected {-n}..{n - 1})")
    return dim % n


def norm_dims(dim, ndim: int, op: str = "op") -> tuple:
    """dim=None -> all axes; an int or a sequence -> sorted unique normalised axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    axes = tuple(sorted({norm_dim(d, ndim, op) for d in dim}))
    if ndim == 0:
        return ()
    if len(axes) != len(tuple(dim)):
        raise ValueError(f"{op}: dim {tuple(dim)} names an axis twice")
    return axes


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def contiguous_strides(shape) -> tuple:
    """Row-major strides in elements."""
    strides = []
    acc = 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(strides))


def reduced_shape(shape, axes, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def infer_reshape(shape, new_shape, op: str = "reshape") -> tuple:
    """Resolve one -1 in new_shape against numel(shape)."""
    new_shape = tuple(int(s) for s in new_shape)
    n = numel(shape)
    if new_shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be -1, got {new_shape}")
    if -1 in new_shape:
        rest = numel(s for s in new_shape if s != -1)
        if rest == 0 or n % rest:
            raise ShapeError(f"{op}: cannot reshape {tuple(shape)} ({n} elements) into {new_shape}")
        new_shape = tuple(n // rest if s == -1 else s for s in new_shape)
    if any(s < 0 for s in new_shape) or numel(new_shape) != n:
        raise ShapeError(f"{op}: cannot reshape {tuple(shape)} ({n} elements) into {new_shape} "
                         f"({numel(new_shape)} elements)")
    return new_shape
