"""Backward rules of the Autodiff decorator for the linear-algebra and neural-network ops:
matmul, softmax/log_softmax, layer_norm, conv2d, conv_transpose2d, max/avg pooling.

Same conventions as autodiff_rules.py: `rule(B, saved, g, nx)` with B the inner backend.
Gradients reuse the inner backend's accelerated ops where one is the adjoint of another
(conv2d <-> conv_transpose2d), so a backend that speeds up the forward speeds up the backward.
"""
from __future__ import annotations

from ..core.backend_nn import _pool_counts
from .autodiff_rules import rule, unbroadcast


def _mT(B, x):
    nd = len(B.shape(x))
    return B.permute(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


@rule("MmBackward")
def matmul_bw(B, s, g, nx):
    a, b = s
    ga = unbroadcast(B, B.matmul(g, _mT(B, b)), B.shape(a)) if nx[0] is not None else None
    gb = unbroadcast(B, B.matmul(_mT(B, a), g), B.shape(b)) if nx[1] is not None else None
    return ga, gb


@rule("MmBackward")
def mm_by_transposed_bw(B, s, g, nx):
    """x @ w.T with w a 2-D tensor (edges x, w; saved x, w): linear's gradients, so that
    w's gradient g.T @ x comes out contiguous like w."""
    return linear_bw(B, s + (False,), g, nx + (None,))[:2]


@rule("LinearBackward")
def linear_bw(B, s, g, nx):
    x, w, has_b = s
    shp = B.shape(x)
    rows = 1
    for d in shp[:-1]:
        rows *= d
    g2 = B.reshape(g, (rows, B.shape(w)[0]))
    gx = B.reshape(B.matmul(g2, w), shp) if nx[0] is not None else None
    # g.T @ x is (out, in): contiguous like the weight, so optimizer updates stream over it
    gw = B.matmul(B.permute(g2, (1, 0)), B.reshape(x, (rows, shp[-1]))) if nx[1] is not None else None
    gb = B.sum(g2, (0,), False) if has_b and nx[2] is not None else None
    return gx, gw, gb


@rule("SoftmaxBackward")
def softmax_bw(B, s, g, nx):
    y, axis = s
    return (B.softmax_backward(g, y, axis, False),)


@rule("LogSoftmaxBackward")
def log_softmax_bw(B, s, g, nx):
    y, axis = s
    return (B.softmax_backward(g, y, axis, True),)


@rule("NllLossBackward")
def nll_loss_bw(B, s, g, nx):
    logp, target, weight, ignore_index, reduction = s
    return (B.nll_loss_backward(g, logp, target, weight, ignore_index, reduction),)


@rule("NativeLayerNormBackward")
def layer_norm_bw(B, s, g, nx):
    x, w, nd_norm, eps, wshape, bshape = s
    shape = B.shape(x)
    nd = len(shape)
    axes = tuple(range(nd - nd_norm, nd))
    n = 1
    for a in axes:
        n *= shape[a]
    # recompute the statistics instead of keeping them from an accelerated forward
    mean = B.div(B.sum(x, axes, True), float(n))
    xc = B.sub(x, mean)
    var = B.div(B.sum(B.mul(xc, xc), axes, True), float(n))
    rstd = B.rsqrt(B.add(var, eps))
    xhat = B.mul(xc, rstd)
    gx = gw = gb = None
    if nx[0] is not None:
        gxh = B.mul(g, w) if w is not None else g
        m1 = B.div(B.sum(gxh, axes, True), float(n))
        m2 = B.div(B.sum(B.mul(gxh, xhat), axes, True), float(n))
        gx = B.mul(B.sub(B.sub(gxh, m1), B.mul(xhat, m2)), rstd)
    if nx[1] is not None:
        gw = unbroadcast(B, B.mul(g, xhat), wshape)
    if nx[2] is not None:
        gb = unbroadcast(B, g, bshape)
    return gx, gw, gb


@rule("ConvolutionBackward")
def conv2d_bw(B, s, g, nx):
    x, w, stride, padding, dilation, groups = s
    gx = gw = None
    if nx[0] is not None:
        _, _, H, W = B.shape(x)
        _, _, kh, kw = B.shape(w)
        _, _, Ho, Wo = B.shape(g)
        # rows of the (padded) input that no window reaches come back as output_padding
        op = tuple(n + 2 * p - ((o - 1) * st + d * (k - 1) + 1)
                   for n, p, o, st, d, k in zip((H, W), padding, (Ho, Wo), stride, dilation,
                                                (kh, kw)))
        gx = B.conv_transpose2d(g, w, stride, padding, op, dilation, groups)
    if nx[1] is not None:
        gw = B.conv2d_weight_backward(x, g, B.shape(w), stride, padding, dilation, groups)
    return gx, gw


@rule("ConvolutionBackward")
def conv_transpose2d_bw(B, s, g, nx):
    # y = conv_transpose2d(x, w) is the adjoint of x -> conv2d(., w): its input gradient is
    # conv2d(g, w), and w's gradient is conv2d's weight gradient with the roles of x and g swapped
    x, w, stride, padding, dilation, groups = s
    gx = B.conv2d(g, w, stride, padding, dilation, groups) if nx[0] is not None else None
    gw = None
    if nx[1] is not None:
        gw = B.conv2d_weight_backward(g, x, B.shape(w), stride, padding, dilation, groups)
    return gx, gw


@rule("MaxPool2DWithIndicesBackward")
def max_pool2d_bw(B, s, g, nx):
    shape, ind = s
    N, C, H, W = shape
    _, _, Ho, Wo = B.shape(g)
    flat = B.full((N, C, H * W), 0, B.dtype(g))
    flat = B.scatter_add(flat, 2, B.reshape(ind, (N, C, Ho * Wo)), B.reshape(g, (N, C, Ho * Wo)))
    return (B.reshape(flat, shape),)


@rule("AvgPool2DBackward", tensors=False)
def avg_pool2d_bw(B, s, g, nx):
    shape, kernel, stride, padding, count_include_pad, divisor_override = s
    N, C, H, W = shape
    _, _, Ho, Wo = B.shape(g)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    dtype = B.dtype(g)
    if divisor_override:
        g = B.div(g, float(divisor_override))
    else:
        cnt = _pool_counts(H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, count_include_pad)
        g = B.div(g, B.from_numpy(cnt.astype(dtype.np), dtype))
    # spread each window's share over the window: a depthwise transposed conv with a ones kernel
    ones = B.full((C, 1, kh, kw), 1, dtype)
    full = B.conv_transpose2d(g, ones, stride, (0, 0), (0, 0), (1, 1), C)
    # `full` covers padded rows [0, (Ho-1)*sh + kh); keep the input's rows [ph, ph + H)
    hf, wf = B.shape(full)[2:]
    starts = (0, 0, min(ph, hf), min(pw, wf))
    stops = (N, C, min(ph + H, hf), min(pw + W, wf))
    full = B.slice(full, starts, stops, (1, 1, 1, 1))
    hh, ww = B.shape(full)[2:]
    if hh < H or ww < W:
        full = B.pad(full, ((0, 0), (0, 0), (0, H - hh), (0, W - ww)), 0)
    return (full,)
