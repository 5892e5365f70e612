"""Independent float64 NumPy references for convolution and pooling (direct loops, no im2col),
so that they share no code with the default compositions in core/backend.py."""
from __future__ import annotations

import math

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    Og = O // groups
    out = np.zeros((N, O, Ho, Wo), dtype=np.result_type(x, w))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Og:(g + 1) * Og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + (Ho - 1) * sh + 1:sh,
                           j * dw:j * dw + (Wo - 1) * sw + 1:sw]
                out[:, g * Og:(g + 1) * Og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter form: input pixel (h, w) adds x * kernel at (h*s - p + i*d, w*s - p + j*d)."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (_pair(stride), _pair(padding),
                                                _pair(output_padding), _pair(dilation))
    N, C, H, W = x.shape
    _, Og, kh, kw = w.shape
    Cg = C // groups
    Hf = (H - 1) * sh + dh * (kh - 1) + 1 + oph
    Wf = (W - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((N, Og * groups, Hf, Wf), dtype=np.result_type(x, w))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Cg:(g + 1) * Cg]
        for i in range(kh):
            for j in range(kw):
                full[:, g * Og:(g + 1) * Og, i * dh:i * dh + (H - 1) * sh + 1:sh,
                     j * dw:j * dw + (W - 1) * sw + 1:sw] += np.einsum("nchw,co->nohw", xg,
                                                                      wg[:, :, i, j])
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = full[:, :, ph:ph + Ho, pw:pw + Wo]
    if b is not None:
        out = out + b[None, :, None, None]
    return out


def _out_size(size, k, s, p, d, ceil_mode):
    num = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(num / s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """-> (values, flat indices into each input plane)."""
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(stride if stride is not None else kernel)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    Ho = _out_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = _out_size(W, kw, sw, pw, dw, ceil_mode)
    vals = np.full((N, C, Ho, Wo), -np.inf)
    idx = np.zeros((N, C, Ho, Wo), dtype=np.int64)
    for oh in range(Ho):
        for ow in range(Wo):
            for i in range(kh):
                for j in range(kw):
                    h, w_ = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                    if 0 <= h < H and 0 <= w_ < W:
                        v = x[:, :, h, w_]
                        better = v > vals[:, :, oh, ow]
                        vals[:, :, oh, ow] = np.where(better, v, vals[:, :, oh, ow])
                        idx[:, :, oh, ow] = np.where(better, h * W + w_, idx[:, :, oh, ow])
    return vals, idx


def avg_pool2d(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(stride if stride is not None else kernel)
    (ph, pw) = _pair(padding)
    N, C, H, W = x.shape
    Ho = _out_size(H, kh, sh, ph, 1, ceil_mode)
    Wo = _out_size(W, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((N, C, Ho, Wo))
    for oh in range(Ho):
        for ow in range(Wo):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
            total = x[:, :, max(h0, 0):min(h1, H), max(w0, 0):min(w1, W)].sum((2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = (h1 - h0) * (w1 - w0)
            else:
                div = (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0))
            out[:, :, oh, ow] = total / div
    return out


def adaptive_avg_pool2d(x, out_size):
    """torch's windows: rows floor(i*H/out) .. ceil((i+1)*H/out)."""
    oh, ow = _pair(out_size)
    N, C, H, W = x.shape
    out = np.zeros((N, C, oh, ow))
    for i in range(oh):
        h0, h1 = (i * H) // oh, -(-((i + 1) * H) // oh)
        for j in range(ow):
            w0, w1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    return out
