"""Convolution and pooling (torch.nn.functional names), over the backend's accelerated ops.

Each function checks shapes and arguments, then calls the backend op on primitives
(`B.conv2d`, `B.max_pool2d`, ...) so a backend that overrides the op gets it used; the 1-d
forms run as 2-d with a unit height.
"""
from __future__ import annotations


from ..core.errors import BackendError, DTypeError, ShapeError
from ..core.tensor import Tensor


def _tuple(v, n: int, name: str, op: str) -> tuple:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,) * n
    v = tuple(v)
    if len(v) == 1:
        return v * n
    if len(v) != n or not all(isinstance(i, int) for i in v):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _same_stack(op: str, *ts) -> None:
    b = ts[0]._b
    for t in ts[1:]:
        if t is not None and t._b is not b and t._b != b:
            raise BackendError(f"{op}: tensors live on different backends {b} and {t._b}; move "
                               f"one with .to(backend)")


def _check_float(op: str, x: Tensor, w: Tensor) -> None:
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{op}: input must be floating point, got {x.dtype.name}")
    if x.dtype is not w.dtype:
        raise DTypeError(f"{op}: input ({x.dtype.name}) and weight ({w.dtype.name}) must have the "
                         f"same dtype; convert one with .to(dtype)")


def _add_bias(out: Tensor, bias: Tensor | None, nspatial: int) -> Tensor:
    if bias is None:
        return out
    return out + bias.reshape((-1,) + (1,) * nspatial)


def _conv_padding(padding, k: tuple, dilation: tuple, stride: tuple, op: str):
    """Returns (symmetric padding, extra (before, after) per spatial dim or None)."""
    n = len(k)
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * n, None
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride}); use an explicit padding")
            totals = [d * (kk - 1) for d, kk in zip(dilation, k)]
            sym = tuple(t // 2 for t in totals)
            extra = tuple((0, t - 2 * (t // 2)) for t in totals)
            return sym, (extra if any(e[1] for e in extra) else None)
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    pad = _tuple(padding, n, "padding", op)
    if any(p < 0 for p in pad):
        raise ValueError(f"{op}: negative padding is not supported, got {pad}")
    return pad, None


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    op = "conv2d"
    unbatched = input.ndim == 3
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                         f"{tuple(input.shape)}")
    if weight.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got "
                         f"{tuple(weight.shape)}")
    _same_stack(op, input, weight, bias)
    _check_float(op, input, weight)
    x = input.unsqueeze(0) if unbatched else input
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    if groups < 1 or C % groups or O % groups:
        raise ValueError(f"{op}: in_channels ({C}) and out_channels ({O}) must be divisible by "
                         f"groups ({groups})")
    if Cg * groups != C:
        raise ShapeError(f"{op}: expected input with {Cg * groups} channels for weight "
                         f"{tuple(weight.shape)} and groups={groups}, but got {C} channels")
    if bias is not None and tuple(bias.shape) != (O,):
        raise ShapeError(f"{op}: bias must have shape ({O},), got {tuple(bias.shape)}")
    stride = _tuple(stride, 2, "stride", op)
    dilation = _tuple(dilation, 2, "dilation", op)
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"{op}: stride {stride} and dilation {dilation} must be positive")
    pad, extra = _conv_padding(padding, (kh, kw), dilation, stride, op)
    b = x._b
    xp = x._p
    if extra is not None:
        xp = b.pad(xp, ((0, 0), (0, 0)) + extra, 0)
    Hp, Wp = H + 2 * pad[0] + (extra[0][1] if extra else 0), W + 2 * pad[1] + (extra[1][1] if extra else 0)
    if Hp < dilation[0] * (kh - 1) + 1 or Wp < dilation[1] * (kw - 1) + 1:
        raise ShapeError(f"{op}: input size ({H}, {W}) with padding {pad} is smaller than the "
                         f"kernel extent ({dilation[0] * (kh - 1) + 1}, {dilation[1] * (kw - 1) + 1})")
    out = Tensor._make(b.conv2d(xp, weight._p, stride, pad, dilation, groups), b)
    out = _add_bias(out, bias, 2)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    if input.ndim not in (2, 3):
        raise ShapeError(f"conv1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape "
                         f"{tuple(input.shape)}")
    if weight.ndim != 3:
        raise ShapeError(f"conv1d: weight must be 3-D (out_channels, in_channels/groups, k), got "
                         f"{tuple(weight.shape)}")
    s, d = _tuple(stride, 1, "stride", "conv1d"), _tuple(dilation, 1, "dilation", "conv1d")
    p = padding if isinstance(padding, str) else (0, _tuple(padding, 1, "padding", "conv1d")[0])
    out = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s[0]), p, (1, d[0]), groups)
    return out.squeeze(-2)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    op = "conv_transpose2d"
    unbatched = input.ndim == 3
    if input.ndim not in (3, 4) or weight.ndim != 4:
        raise ShapeError(f"{op}: expected a 3-D/4-D input and a 4-D weight (in_channels, "
                         f"out_channels/groups, kH, kW), got {tuple(input.shape)} and "
                         f"{tuple(weight.shape)}")
    _same_stack(op, input, weight, bias)
    _check_float(op, input, weight)
    x = input.unsqueeze(0) if unbatched else input
    C = x.shape[1]
    Ci, Og, kh, kw = weight.shape
    if groups < 1 or Ci != C or C % groups:
        raise ShapeError(f"{op}: input has {C} channels but weight {tuple(weight.shape)} expects "
                         f"{Ci} (divisible by groups={groups})")
    stride = _tuple(stride, 2, "stride", op)
    pad = _tuple(padding, 2, "padding", op)
    opad = _tuple(output_padding, 2, "output_padding", op)
    dilation = _tuple(dilation, 2, "dilation", op)
    for o, s, d in zip(opad, stride, dilation):
        if o >= max(s, d):
            raise ValueError(f"{op}: output padding must be smaller than either stride or dilation, "
                             f"got output_padding={opad}, stride={stride}, dilation={dilation}")
    if bias is not None and tuple(bias.shape) != (Og * groups,):
        raise ShapeError(f"{op}: bias must have shape ({Og * groups},), got {tuple(bias.shape)}")
    b = x._b
    out = Tensor._make(b.conv_transpose2d(x._p, weight._p, stride, pad, opad, dilation, groups), b)
    out = _add_bias(out, bias, 2)
    return out.squeeze(0) if unbatched else out


def _pool_args(op, kernel_size, stride, padding, n):
    k = _tuple(kernel_size, n, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, int) and len(tuple(stride)) == 0) \
        else _tuple(stride, n, "stride", op)
    p = _tuple(padding, n, "padding", op)
    if any(v < 1 for v in k) or any(v < 1 for v in s):
        raise ValueError(f"{op}: kernel_size {k} and stride {s} must be positive")
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        raise ValueError(f"{op}: pad should be at most half of effective kernel size, but got "
                         f"pad={p} and kernel_size={k}")
    return k, s, p


def _pool_input(op: str, input: Tensor, nd: int) -> tuple[Tensor, bool]:
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape {tuple(input.shape)}")
    return (input.unsqueeze(0), True) if input.ndim == nd + 1 else (input, False)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    op = "max_pool2d"
    x, unb = _pool_input(op, input, 2)
    k, s, p = _pool_args(op, kernel_size, stride, padding, 2)
    d = _tuple(dilation, 2, "dilation", op)
    b = x._b
    vals, idx = b.max_pool2d(x._p, k, s, p, d, ceil_mode)
    out, ind = Tensor._make(vals, b), Tensor._make(idx, b)
    if unb:
        out, ind = out.squeeze(0), ind.squeeze(0)
    return (out, ind) if return_indices else out


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    x, unb = _pool_input("max_pool1d", input, 1)
    k, s, p = _pool_args("max_pool1d", kernel_size, stride, padding, 1)
    d = _tuple(dilation, 1, "dilation", "max_pool1d")
    out, ind = max_pool2d(x.unsqueeze(-2), (1, k[0]), (1, s[0]), (0, p[0]), (1, d[0]), ceil_mode, True)
    out, ind = out.squeeze(-2), ind.squeeze(-2)
    if unb:
        out, ind = out.squeeze(0), ind.squeeze(0)
    return (out, ind) if return_indices else out


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    op = "avg_pool2d"
    x, unb = _pool_input(op, input, 2)
    k, s, p = _pool_args(op, kernel_size, stride, padding, 2)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero")
    b = x._b
    out = Tensor._make(b.avg_pool2d(x._p, k, s, p, ceil_mode, count_include_pad, divisor_override), b)
    return out.squeeze(0) if unb else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    x, unb = _pool_input("avg_pool1d", input, 1)
    k, s, p = _pool_args("avg_pool1d", kernel_size, stride, padding, 1)
    out = avg_pool2d(x.unsqueeze(-2), (1, k[0]), (1, s[0]), (0, p[0]), ceil_mode, count_include_pad)
    out = out.squeeze(-2)
    return out.squeeze(0) if unb else out


def _adaptive_matrix(size: int, out: int, like: Tensor) -> Tensor:
    """(out, size) averaging matrix: row i averages torch's window floor(i*size/out) .. ceil((i+1)*size/out)."""
    import numpy as np
    m = np.zeros((out, size), dtype=like.dtype.np)
    for i in range(out):
        lo = (i * size) // out
        hi = -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return Tensor._make(like._b.from_numpy(m, like.dtype), like._b)


def _out_size(output_size, H, W, op):
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    oh, ow = output_size
    oh = H if oh is None else oh
    ow = W if ow is None else ow
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size}")
    return oh, ow


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    op = "adaptive_avg_pool2d"
    x, unb = _pool_input(op, input, 2)
    H, W = x.shape[-2:]
    oh, ow = _out_size(output_size, H, W, op)
    if H % oh == 0 and W % ow == 0:
        out = avg_pool2d(x, (H // oh, W // ow), (H // oh, W // ow))
    else:
        # windows are separable: average rows then columns with two small matmuls
        ph = _adaptive_matrix(H, oh, x)
        pw = _adaptive_matrix(W, ow, x)
        out = ph @ x @ pw.transpose(0, 1)
    return out.squeeze(0) if unb else out


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:
    out = adaptive_avg_pool2d(input.unsqueeze(-2), (1, output_size))
    return out.squeeze(-2)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    op = "adaptive_max_pool2d"
    x, unb = _pool_input(op, input, 2)
    H, W = x.shape[-2:]
    oh, ow = _out_size(output_size, H, W, op)
    if H % oh == 0 and W % ow == 0:
        res = max_pool2d(x, (H // oh, W // ow), (H // oh, W // ow), return_indices=True)
    else:
        from .. import stack
        rows_v, rows_i = [], []
        for i in range(oh):
            h0, h1 = (i * H) // oh, -((-(i + 1) * H) // oh)
            cols_v, cols_i = [], []
            for j in range(ow):
                w0, w1 = (j * W) // ow, -((-(j + 1) * W) // ow)
                win = x[:, :, h0:h1, w0:w1]
                flat = win.reshape(win.shape[0], win.shape[1], -1)
                a = flat.argmax(dim=-1, keepdim=True)
                cols_v.append(flat.gather(-1, a).squeeze(-1))
                wd = w1 - w0
                cols_i.append(((a // wd + h0) * W + (a % wd + w0)).squeeze(-1))
            rows_v.append(stack(cols_v, -1))
            rows_i.append(stack(cols_i, -1))
        res = stack(rows_v, -2), stack(rows_i, -2)
    out, ind = res
    if unb:
        out, ind = out.squeeze(0), ind.squeeze(0)
    return (out, ind) if return_indices else out


__all__ = ["conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
           "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]
