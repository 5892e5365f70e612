"""Default compositions of the protocol's neural-network ops: linear, softmax/log_softmax,
nll_loss and its backward, layer_norm, conv2d and its weight gradient, conv_transpose2d and
the pools.

Each is written with primitives of `self` only, so every backend and decorator has them, and a
backend overrides the ones it can do faster (NumPy, OpenCL and WGPU override some; Fusion
composes the rest on itself so their elementwise pieces fuse). Backend (core/backend.py)
inherits them from NNDefaults; callers name them through Backend, e.g. `Backend.conv2d`.
"""
from __future__ import annotations

import math

import numpy as np

from . import dtype as dt
from .dtype import DType
from .errors import ShapeError


class NNDefaults:
    """Mixin of Backend: the default compositions of the neural-network ops."""

    def linear(self, x, w, b):
        """x (..., in) @ w(out, in).T + b(out) (b may be None). An op of its own so that
        Autodiff computes the weight gradient as g.T @ x, laid out like the weight (through
        matmul + transpose it would come back as a transposed view)."""
        shp = self.shape(x)
        if len(shp) == 2:
            out = self.matmul(x, self.permute(w, (1, 0)))
            return self.add(out, b) if b is not None else out
        n_in = shp[-1]
        lead = shp[:-1]
        rows = 1
        for s in lead:
            rows *= s
        out = self.matmul(self.reshape(x, (rows, n_in)), self.permute(w, (1, 0)))
        if b is not None:
            out = self.add(out, b)
        return self.reshape(out, lead + (self.shape(w)[0],))

    def softmax(self, x, axis: int):
        e = self.exp(self.sub(x, self.max(x, (axis,), True)))
        return self.div(e, self.sum(e, (axis,), True))

    def log_softmax(self, x, axis: int):
        shifted = self.sub(x, self.max(x, (axis,), True))
        return self.sub(shifted, self.log(self.sum(self.exp(shifted), (axis,), True)))

    def softmax_backward(self, g, y, axis: int, log: bool):
        """d loss / d x of y = softmax(x) (log=False) or log_softmax(x) (log=True) along axis,
        given y and g = d loss / d y: y * (g - sum(g * y)), or g - exp(y) * sum(g). Autodiff's
        rules call it, so a backend with a row kernel runs each backward in one launch."""
        if log:
            return self.sub(g, self.mul(self.exp(y), self.sum(g, (axis,), True)))
        return self.mul(y, self.sub(g, self.sum(self.mul(g, y), (axis,), True)))

    def _nll_weights(self, target, weight, ignore_index: int, n_classes: int, dtype: DType,
                     check: bool = True):
        """(safe targets, per-target weights of `dtype`): ignored targets become class 0 with
        weight 0, the others weigh weight[t] (1 without a weight; weight has `dtype`). Raises IndexError for a target outside
        0..n_classes-1 that is not ignore_index. Shared by nll_loss and its backward rule."""
        valid = self.ne(target, ignore_index)
        safe = self.where(valid, target, 0)
        tshape = self.shape(target)
        if check and math.prod(tshape):
            axes = tuple(range(len(tshape)))
            bounds = self.cat([self.reshape(self.min(safe, axes, False), (1,)),
                               self.reshape(self.max(safe, axes, False), (1,))], 0)
            if self.base().asynchronous:
                # no kernel may index past the class dim before the check has run
                inside = self.logical_and(self.ge(safe, 0), self.lt(safe, n_classes))
                safe = self.where(inside, safe, 0)
            self._check_nll_bounds(bounds, n_classes, ignore_index)
        w = self.cast(valid, dtype)
        if weight is not None:
            picked = self.index_select(weight, 0, self.reshape(safe, (math.prod(tshape),)))
            w = self.mul(w, self.reshape(picked, tshape))
        return safe, w

    def _check_nll_bounds(self, bounds, n_classes: int, ignore_index: int) -> None:
        """Raise IndexError (now, or at the next read-back of an asynchronous base) when the
        int64 pair bounds = (min, max) of the targets, ignored ones counted as 0, leaves
        0..n_classes-1."""
        def verify(layer=self, bounds=bounds):
            lo, hi = layer.to_numpy(bounds).tolist()  # both bounds in one read-back
            if lo < 0 or hi >= n_classes:
                late = (f"; found at the next read-back from {layer.base()}, the step in "
                        f"between ran with that target as class 0"
                        if layer.base().asynchronous else "")
                raise IndexError(f"nll_loss: target {lo if lo < 0 else hi} is out of bounds "
                                 f"for {n_classes} classes (valid: 0..{n_classes - 1} or "
                                 f"ignore_index={ignore_index}){late}")
        self.defer_check(verify)

    def nll_loss(self, logp, target, weight, ignore_index: int, reduction: str):
        """torch's nll_loss. logp: (N, C, d...) or (C,) log-probabilities; target: (N, d...) or
        () int64 class indices; weight: (C,) or None. Each kept target contributes
        -weight[t] * logp[t]; targets equal to ignore_index contribute 0. reduction 'none' keeps
        the target's shape, 'sum' sums, 'mean' divides by the summed weights of the kept targets
        (NaN when none is kept). One op so that a loss is two ops (log_softmax, nll_loss) instead
        of a dozen, and so a backend can pick the targets in one pass."""
        shp = self.shape(logp)
        cdim = 0 if len(shp) == 1 else 1
        d = self.dtype(logp)
        tshape = self.shape(target)
        safe, w = self._nll_weights(target, weight, ignore_index, shp[cdim], d)
        idx = self.reshape(safe, tshape[:cdim] + (1,) + tshape[cdim:])
        picked = self.reshape(self.gather(logp, cdim, idx), tshape)
        loss = self.neg(self.mul(picked, w))
        if reduction == "none" or not tshape:
            return loss if reduction != "mean" else self.div(loss, w)
        axes = tuple(range(len(tshape)))
        total = self.sum(loss, axes, False)
        return total if reduction == "sum" else self.div(total, self.sum(w, axes, False))

    def nll_loss_backward(self, g, logp, target, weight, ignore_index: int, reduction: str):
        """Gradient of nll_loss with respect to logp, given g = d loss / d (nll_loss output):
        -weight[t] * g at each kept target's class (divided by the summed weights for 'mean'),
        zero elsewhere. No gradient flows to the target or the class weights."""
        shp = self.shape(logp)
        cdim = 0 if len(shp) == 1 else 1
        d = self.dtype(logp)
        tshape = self.shape(target)
        safe, w = self._nll_weights(target, weight, ignore_index, shp[cdim], d, check=False)
        if reduction == "mean":
            g = self.div(g, self.sum(w, tuple(range(len(tshape))), False) if tshape else w)
        src = self.neg(self.mul(w, g))  # g is a scalar unless reduction is 'none'
        if reduction == "mean":
            # an ignored target gets no gradient even when every target is ignored (torch's
            # answer; the loss is then 0/0 = NaN, and g with it)
            src = self.where(self.eq(w, 0), self.full((), 0, d), src)
        idx_shape = tshape[:cdim] + (1,) + tshape[cdim:]
        return self.scatter_add(self.full(shp, 0, d), cdim, self.reshape(safe, idx_shape),
                                self.reshape(src, idx_shape))

    def layer_norm(self, x, normalized_ndim: int, weight, bias, eps: float):
        """Normalise over the last `normalized_ndim` axes; weight/bias may be None."""
        nd = len(self.shape(x))
        axes = tuple(range(nd - normalized_ndim, nd))
        n = 1
        for a in axes:
            n *= self.shape(x)[a]
        mean = self.div(self.sum(x, axes, True), float(n))
        xc = self.sub(x, mean)
        var = self.div(self.sum(self.mul(xc, xc), axes, True), float(n))
        y = self.mul(xc, self.rsqrt(self.add(var, eps)))
        if weight is not None:
            y = self.mul(y, weight)
        if bias is not None:
            y = self.add(y, bias)
        return y

    # -- convolution and pooling (NCHW). Defaults: im2col by strided slices + matmul.
    def conv2d(self, x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
        """x (N, C, H, W), w (O, C/groups, kh, kw) -> (N, O, Ho, Wo); padding is symmetric per dim."""
        N, C, H, W = self.shape(x)
        O, Cg, kh, kw = self.shape(w)
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        if ph or pw:
            x = self.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), 0)
            H, W = H + 2 * ph, W + 2 * pw
        Ho = (H - dh * (kh - 1) - 1) // sh + 1
        Wo = (W - dw * (kw - 1) - 1) // sw + 1
        cols = []
        for i in range(kh):
            for j in range(kw):
                cols.append(self.slice(x, (0, 0, i * dh, j * dw),
                                       (N, C, i * dh + (Ho - 1) * sh + 1, j * dw + (Wo - 1) * sw + 1),
                                       (1, 1, sh, sw)))
        # (kh*kw, N, C, Ho, Wo) -> (N, G, Cg*kh*kw, Ho*Wo) matched with w (G, O/G, Cg*kh*kw)
        col = self.reshape(self.cat([self.reshape(c, (1, N, C, Ho, Wo)) for c in cols], 0),
                           (kh * kw, N, groups, Cg, Ho * Wo))
        col = self.reshape(self.permute(col, (1, 2, 3, 0, 4)), (N, groups, Cg * kh * kw, Ho * Wo))
        wm = self.reshape(w, (1, groups, O // groups, Cg * kh * kw))
        out = self.matmul(wm, col)  # (N, G, O/G, Ho*Wo)
        return self.reshape(out, (N, O, Ho, Wo))

    def conv2d_weight_backward(self, x, g, wshape: tuple, stride: tuple, padding: tuple,
                               dilation: tuple, groups: int):
        """d loss / d w of y = conv2d(x, w) given g = d loss / d y (Burn's name for the op):
        im2col by kh*kw strided slices of x, then one matmul per group. Autodiff's conv rules
        call it, so a backend that overrides it speeds up every conv backward."""
        N, C, H, W = self.shape(x)
        O, Cg, kh, kw = wshape
        _, _, Ho, Wo = self.shape(g)
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        G = groups
        if ph or pw:
            x = self.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), 0)
        cols = []
        for i in range(kh):
            for j in range(kw):
                v = self.slice(x, (0, 0, i * dh, j * dw),
                               (N, C, i * dh + (Ho - 1) * sh + 1, j * dw + (Wo - 1) * sw + 1),
                               (1, 1, sh, sw))
                cols.append(self.reshape(v, (N, C, 1, Ho * Wo)))
        col = self.cat(cols, 2) if len(cols) > 1 else cols[0]        # (N, C, kh*kw, Ho*Wo)
        col = self.reshape(col, (N, G, Cg * kh * kw, Ho * Wo))
        col = self.reshape(self.permute(col, (1, 0, 3, 2)), (G, N * Ho * Wo, Cg * kh * kw))
        gm = self.reshape(g, (N, G, O // G, Ho * Wo))
        gm = self.reshape(self.permute(gm, (1, 2, 0, 3)), (G, O // G, N * Ho * Wo))
        return self.reshape(self.matmul(gm, col), wshape)

    def conv_transpose2d(self, x, w, stride: tuple, padding: tuple, output_padding: tuple,
                         dilation: tuple, groups: int):
        """x (N, C, H, W), w (C, O/groups, kh, kw) -> (N, O, Ho, Wo), as torch.conv_transpose2d."""
        N, C, H, W = self.shape(x)
        _, Og, kh, kw = self.shape(w)
        sh, sw = stride
        ph, pw = padding
        oph, opw = output_padding
        dh, dw = dilation
        # dilate the input by the stride, pad by dilation*(k-1)-padding, convolve with the
        # flipped, transposed kernel
        if sh > 1 or sw > 1:
            z = self.full((N, C, (H - 1) * sh + 1, (W - 1) * sw + 1), 0, self.dtype(x))
            x = self._interleave(x, z, sh, sw)
        lo_h, lo_w = dh * (kh - 1) - ph, dw * (kw - 1) - pw
        hi_h, hi_w = lo_h + oph, lo_w + opw
        x = self._pad_or_crop(x, ((0, 0), (0, 0), (lo_h, hi_h), (lo_w, hi_w)))
        G = groups
        wt = self.reshape(w, (G, C // G, Og, kh, kw))
        wt = self.permute(wt, (0, 2, 1, 3, 4))
        wt = self.flip(self.reshape(wt, (G * Og, C // G, kh, kw)), (2, 3))
        return self.conv2d(x, wt, (1, 1), (0, 0), dilation, groups)

    def _interleave(self, x, z, sh, sw):
        # place x at every stride-th position of z (zeros): scatter through a strided pad
        N, C, H, W = self.shape(x)
        # build by padding each element: reshape to (..., H, 1, W, 1), pad to (sh, sw), crop
        y = self.reshape(x, (N, C, H, 1, W, 1))
        y = self.pad(y, ((0, 0), (0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1)), 0)
        y = self.reshape(y, (N, C, H * sh, W * sw))
        Hz, Wz = self.shape(z)[2:]
        return self.slice(y, (0, 0, 0, 0), (N, C, Hz, Wz), (1, 1, 1, 1))

    def _pad_or_crop(self, x, pads):
        shp = self.shape(x)
        if any(lo < 0 or hi < 0 for lo, hi in pads):
            starts = tuple(max(-lo, 0) for lo, _ in pads)
            stops = tuple(s - max(-hi, 0) for s, (_, hi) in zip(shp, pads))
            x = self.slice(x, starts, stops, (1,) * len(shp))
        pos = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
        if any(lo or hi for lo, hi in pos):
            x = self.pad(x, pos, 0)
        return x

    def max_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                   ceil_mode: bool):
        """-> (values, indices); indices are flat positions in each (H, W) plane, like torch."""
        N, C, H, W = self.shape(x)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        Ho = _pool_out(H, kh, sh, ph, dh, ceil_mode)
        Wo = _pool_out(W, kw, sw, pw, dw, ceil_mode)
        need_h = (Ho - 1) * sh + dh * (kh - 1) + 1
        need_w = (Wo - 1) * sw + dw * (kw - 1) + 1
        fill = -math.inf if self.dtype(x).is_floating_point else _int_min(self.dtype(x))
        xp = self.pad(x, ((0, 0), (0, 0), (ph, max(need_h - H - ph, 0)), (pw, max(need_w - W - pw, 0))), fill)
        pos = self.arange(0, 1, H * W, dt.int64)
        pos = self.pad(self.reshape(pos, (1, 1, H, W)),
                       ((0, 0), (0, 0), (ph, max(need_h - H - ph, 0)), (pw, max(need_w - W - pw, 0))), -1)
        wins, idxs = [], []
        for i in range(kh):
            for j in range(kw):
                st = (0, 0, i * dh, j * dw)
                sp = (N, C, i * dh + (Ho - 1) * sh + 1, j * dw + (Wo - 1) * sw + 1)
                wins.append(self.reshape(self.slice(xp, st, sp, (1, 1, sh, sw)), (N, C, Ho, Wo, 1)))
                sp1 = (1, 1) + sp[2:]
                idxs.append(self.reshape(self.slice(pos, st, sp1, (1, 1, sh, sw)), (1, 1, Ho, Wo, 1)))
        win = self.cat(wins, 4)
        arg = self.argmax(win, 4, True)
        vals = self.reshape(self.gather(win, 4, arg), (N, C, Ho, Wo))
        pidx = self.expand(self.cat(idxs, 4), (N, C, Ho, Wo, kh * kw))
        ind = self.reshape(self.gather(pidx, 4, arg), (N, C, Ho, Wo))
        # a window whose maximum ties with the padding fill (-inf, or the int minimum) may pick a
        # padded tap (-1); torch reports the window's first in-bounds tap there
        first = _pool_first_valid(H, W, sh, sw, ph, pw, dh, dw, Ho, Wo)
        ind = self.where(self.lt(ind, 0), self.from_numpy(first, dt.int64), ind)
        return vals, ind

    def avg_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
                   count_include_pad: bool, divisor_override=None):
        N, C, H, W = self.shape(x)
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        Ho = _pool_out(H, kh, sh, ph, 1, ceil_mode)
        Wo = _pool_out(W, kw, sw, pw, 1, ceil_mode)
        need_h = (Ho - 1) * sh + kh
        need_w = (Wo - 1) * sw + kw
        pads = ((0, 0), (0, 0), (ph, max(need_h - H - ph, 0)), (pw, max(need_w - W - pw, 0)))
        xp = self.pad(x, pads, 0)
        total = None
        for i in range(kh):
            for j in range(kw):
                s = self.slice(xp, (0, 0, i, j), (N, C, i + (Ho - 1) * sh + 1, j + (Wo - 1) * sw + 1),
                               (1, 1, sh, sw))
                total = s if total is None else self.add(total, s)
        if divisor_override:
            return self.div(total, float(divisor_override))
        # divisor per window: count of positions inside the (padded if count_include_pad) input
        cnt = _pool_counts(H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, count_include_pad)
        return self.div(total, self.from_numpy(cnt.astype(self.dtype(x).np), self.dtype(x)))


def _pool_out(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    if num < 0:
        raise ShapeError(f"pool: input size {size} with padding {p} is smaller than the "
                         f"kernel extent {eff}")
    out = (-(-num // s) if ceil_mode else num // s) + 1
    # torch: the last window must start inside the input or left padding
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_first_valid(H, W, sh, sw, ph, pw, dh, dw, Ho, Wo):
    """(1, 1, Ho, Wo) int64: flat index of each pooling window's first tap inside the input."""
    def first(n, s, p, d):
        start = np.arange(n) * s - p
        return np.where(start < 0, start + ((-start + d - 1) // d) * d, start)
    return (first(Ho, sh, ph, dh)[:, None] * W + first(Wo, sw, pw, dw)[None, :]).astype(
        np.int64).reshape(1, 1, Ho, Wo)


def _pool_counts(H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, include_pad):
    hs = np.arange(Ho) * sh - ph
    ws = np.arange(Wo) * sw - pw
    if include_pad:
        # windows count padding but not the extra ceil_mode overhang past H + ph
        he = np.minimum(hs + kh, H + ph)
        we = np.minimum(ws + kw, W + pw)
        ch = he - hs
        cw = we - ws
    else:
        ch = np.minimum(hs + kh, H) - np.maximum(hs, 0)
        cw = np.minimum(ws + kw, W) - np.maximum(ws, 0)
    return (ch[:, None] * cw[None, :]).astype(np.float64)


def _int_min(d: DType):
    return int(np.iinfo(d.np).min) if d.kind == 1 else False
