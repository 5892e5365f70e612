"""Neural-network kernels of ArrayBackend over an array namespace `xp` (NumPy or CuPy).

conv2d is im2col through an `as_strided` window view (no Python loop over the kernel) and one
batched GEMM per group; pooling runs a loop over the kh*kw strided slices of the padded input,
which vectorises over the whole output and mirrors torch's CPU kernel exactly (first maximum
wins, a NaN wins over numbers and a later NaN over an earlier one, padding never wins).
float16 inputs are computed in float32 and rounded once, as torch does on CPU.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.backend import _pool_counts, _pool_out
from ..core.errors import DTypeError, ShapeError

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


def _as_strided(xp, x, shape, strides):
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def _float_only(name: str, x) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{name} needs a floating dtype, got {x.dtype}; cast first, e.g. x.float()")


def _lift(x):
    # float16 math in float32; returns (working array, dtype to round back to or None)
    return (x.astype(_F32), _F16) if x.dtype == _F16 else (x, None)


def _drop(y, back):
    return y.astype(back) if back is not None else y


def softmax(xp, x, axis: int, log: bool):
    _float_only("log_softmax" if log else "softmax", x)
    if x.ndim == 0:
        return softmax(xp, x.reshape(1), 0, log).reshape(())
    if x.shape[axis] == 0:
        return x.copy()
    w, back = _lift(x)
    # array methods rather than xp.max/xp.sum: on small batches the wrappers cost more than the math
    y = w - w.max(axis=axis, keepdims=True)
    if log:
        y -= xp.log(xp.exp(y).sum(axis=axis, keepdims=True))
    else:
        xp.exp(y, out=y)
        y /= y.sum(axis=axis, keepdims=True)
    return _drop(y, back)


def layer_norm(xp, x, normalized_ndim: int, weight, bias, eps: float):
    _float_only("layer_norm", x)
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    if not axes:
        raise ShapeError("layer_norm: normalized_shape must name at least one dimension")
    w, back = _lift(x)
    y = w - xp.mean(w, axis=axes, keepdims=True)
    var = xp.mean(y * y, axis=axes, keepdims=True)
    var += eps
    y *= 1.0 / xp.sqrt(var)
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias
    return _drop(y, back)


def _padded(xp, x, ph: int, pw: int, fill):
    if not (ph or pw):
        return x
    N, C, H, W = x.shape
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), fill, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def conv2d(xp, x, w, stride, padding, dilation, groups: int):
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(f"conv2d: expected x (N, C, H, W) and w (O, C/groups, kh, kw), got "
                         f"{x.shape} and {w.shape}")
    if x.dtype != w.dtype:
        raise DTypeError(f"conv2d: input dtype {x.dtype} and weight dtype {w.dtype} differ")
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    G = groups
    if G < 1 or C != Cg * G or O % G:
        raise ShapeError(f"conv2d: {C} input channels and weight {w.shape} do not fit groups={G} "
                         f"(need C == weight.shape[1] * groups and O divisible by groups)")
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Hp, Wp = H + 2 * ph, W + 2 * pw
    Ho = (Hp - dh * (kh - 1) - 1) // sh + 1
    Wo = (Wp - dw * (kw - 1) - 1) // sw + 1
    if Ho <= 0 or Wo <= 0:
        raise ShapeError(f"conv2d: padded input {Hp}x{Wp} is smaller than the dilated kernel "
                         f"{dh * (kh - 1) + 1}x{dw * (kw - 1) + 1}")
    xw, back = _lift(x)
    ww = w.astype(_F32) if back is not None else w
    xpd = _padded(xp, xw, ph, pw, 0)
    xpd = xp.ascontiguousarray(xpd)
    sN, sC, sH, sW = xpd.strides
    # (G, Cg, kh, kw, N, Ho, Wo): the copy made by reshape is the im2col matrix, laid out so
    # that one GEMM per group covers the whole batch
    win = _as_strided(xp, xpd, (G, Cg, kh, kw, N, Ho, Wo),
                      (Cg * sC, sC, sH * dh, sW * dw, sN, sH * sh, sW * sw))
    K = Cg * kh * kw
    cols = win.reshape(G, K, N * Ho * Wo)
    out = xp.matmul(ww.reshape(G, O // G, K), cols)  # (G, O/G, N*Ho*Wo)
    out = out.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)
    return _drop(xp.ascontiguousarray(out), back)


def _check_pool(name, x, kernel, stride, padding, dilation=(1, 1)):
    if x.ndim != 4:
        raise ShapeError(f"{name}: expected input (N, C, H, W), got shape {x.shape}")
    for k, s, p, d in zip(kernel, stride, padding, dilation):
        if k < 1 or s < 1 or d < 1 or p < 0:
            raise ShapeError(f"{name}: kernel, stride and dilation must be >= 1 and padding >= 0, "
                             f"got kernel={kernel}, stride={stride}, padding={padding}")
        if 2 * p > d * (k - 1) + 1:
            raise ShapeError(f"{name}: padding {p} must be at most half the effective kernel size "
                             f"{d * (k - 1) + 1} (as in torch)")


def _first_valid(start, d):
    # first tap start + i*d that lands inside the input (torch skips taps in the padding)
    return np.where(start < 0, start + ((-start + d - 1) // d) * d, start)


def max_pool2d(xp, x, kernel, stride, padding, dilation, ceil_mode: bool):
    """-> (values, int64 indices into each H*W plane), exactly as torch.nn.functional.max_pool2d."""
    _check_pool("max_pool2d", x, kernel, stride, padding, dilation)
    if x.dtype.kind == "b":
        raise DTypeError("max_pool2d is not defined for bool; cast to an integer or float dtype")
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho = _pool_out(H, kh, sh, ph, dh, ceil_mode)
    Wo = _pool_out(W, kw, sw, pw, dw, ceil_mode)
    lowest = -math.inf if x.dtype.kind == "f" else int(np.iinfo(x.dtype).min)
    need_h = (Ho - 1) * sh + dh * (kh - 1) + 1
    need_w = (Wo - 1) * sw + dw * (kw - 1) + 1
    xpd = xp.full((N, C, max(need_h, H + ph), max(need_w, W + pw)), lowest, dtype=x.dtype)
    xpd[:, :, ph:ph + H, pw:pw + W] = x
    best = xp.full((N, C, Ho, Wo), lowest, dtype=x.dtype)
    tap = xp.full((N, C, Ho, Wo), -1, dtype=np.int64)
    is_float = x.dtype.kind == "f"
    for i in range(kh):
        for j in range(kw):
            v = xpd[:, :, i * dh:i * dh + (Ho - 1) * sh + 1:sh, j * dw:j * dw + (Wo - 1) * sw + 1:sw]
            upd = v > best
            if is_float:
                upd |= xp.isnan(v)
            xp.copyto(best, v, where=upd)
            tap[upd] = i * kw + j
    hs = np.arange(Ho) * sh - ph
    ws = np.arange(Wo) * sw - pw
    first = (_first_valid(hs, dh)[:, None] * W + _first_valid(ws, dw)[None, :]).astype(np.int64)
    ti, tj = tap // kw, tap % kw
    idx = (xp.asarray(hs)[:, None] + ti * dh) * W + xp.asarray(ws)[None, :] + tj * dw
    # tap -1: no element beat the initial lowest value; torch reports the window's first tap
    idx = xp.where(tap < 0, xp.asarray(first), idx)
    return best, idx.astype(np.int64, copy=False)


def avg_pool2d(xp, x, kernel, stride, padding, ceil_mode: bool, count_include_pad: bool,
               divisor_override=None):
    _check_pool("avg_pool2d", x, kernel, stride, padding)
    _float_only("avg_pool2d", x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Ho = _pool_out(H, kh, sh, ph, 1, ceil_mode)
    Wo = _pool_out(W, kw, sw, pw, 1, ceil_mode)
    xw, back = _lift(x)
    need_h, need_w = (Ho - 1) * sh + kh, (Wo - 1) * sw + kw
    xpd = xp.zeros((N, C, max(need_h, H + ph), max(need_w, W + pw)), dtype=xw.dtype)
    xpd[:, :, ph:ph + H, pw:pw + W] = xw
    total = None
    for i in range(kh):
        for j in range(kw):
            v = xpd[:, :, i:i + (Ho - 1) * sh + 1:sh, j:j + (Wo - 1) * sw + 1:sw]
            if total is None:
                total = v.copy()
            else:
                total += v
    if divisor_override:
        total /= float(divisor_override)
    else:
        cnt = _pool_counts(H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, count_include_pad)
        total /= xp.asarray(cnt.astype(total.dtype))
    return _drop(total, back)


def nll_loss(xp, logp, target, weight, ignore_index: int, reduction: str):
    """Backend.nll_loss in a few array passes; the all-targets-kept case (the usual one) skips
    the masking work."""
    _float_only("nll_loss", logp)
    cdim = 0 if logp.ndim == 1 else 1
    C = logp.shape[cdim]
    if xp is np and logp.ndim == 2 and logp.shape[0] and weight is None \
            and not 0 <= ignore_index < C and reduction != "none" and logp.dtype != _F16:
        # (N, C) logits, no class weights, an ignore_index no class can equal: NumPy's own
        # bounds check on fancy indexing finds both out-of-range and ignored targets (seen as
        # unsigned, negatives are huge); either sends the batch down the general path below
        try:
            picked = logp[np.arange(logp.shape[0]), target.view(np.uint64)]
        except IndexError:
            picked = None
        if picked is not None:
            total = -picked.sum(dtype=logp.dtype)
            if reduction == "mean":
                total = total / logp.dtype.type(logp.shape[0])
            return np.asarray(total, dtype=logp.dtype)
    valid = target != ignore_index
    all_kept = bool(valid.all())
    safe = target if all_kept else xp.where(valid, target, 0)
    if safe.size:
        lo, hi = int(safe.min()), int(safe.max())
        if lo < 0 or hi >= C:
            raise IndexError(f"nll_loss: target {lo if lo < 0 else hi} is out of bounds for {C} "
                             f"classes (valid: 0..{C - 1} or ignore_index={ignore_index})")
    work, _ = _lift(logp)
    picked = xp.take_along_axis(work, xp.expand_dims(safe, cdim), cdim).squeeze(cdim)
    if weight is None:
        w = None if all_kept else valid.astype(work.dtype)
    else:
        w = weight.astype(work.dtype)[safe]
        if not all_kept:
            w = w * valid
    loss = -picked if w is None else -(picked * w)
    if reduction != "none" and loss.ndim:
        loss = loss.sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                loss = loss / (w.sum() if w is not None else work.dtype.type(safe.size))
    elif reduction == "mean":  # a single (unbatched) target
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = loss / (w if w is not None else 1)
    return xp.asarray(loss, dtype=logp.dtype)
