"""OpenCL backend: matmul (batched, broadcast, transposed and sliced views, integer dtypes),
conv2d, max/avg pooling, softmax/log_softmax and layer norm against NumPy float64 / PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from strata.core import dtype as dt
from strata.core.errors import ShapeError
from strata.tests._opencl_util import check, make_backend, put, sample


@pytest.fixture(scope="module")
def B():
    return make_backend()


def _mm_ref(a, b):
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (7, 13, 5), (33, 64, 17), (8, 16, 16), (65, 3, 129)])
def test_matmul_shapes_and_layouts(B, n, k, m):
    rng = np.random.default_rng(n * 100 + k)
    a = sample((n, k), dt.float32, rng, -1, 1)
    b = sample((k, m), dt.float32, rng, -1, 1)
    want = _mm_ref(a, b)
    for ka in ("contig", "T", "sliced"):
        for kb in ("contig", "T", "sliced", "flipped"):
            got = B.matmul(put(B, a, dt.float32, ka), put(B, b, dt.float32, kb))
            check(B, got, want, rtol=1e-4, atol=1e-5, what=f"{ka} @ {kb}")


def test_matmul_batched_broadcast_and_dtypes(B):
    rng = np.random.default_rng(11)
    a = sample((2, 1, 5, 6), dt.float32, rng, -1, 1)
    b = sample((3, 6, 4), dt.float32, rng, -1, 1)
    pa, pb = B.from_numpy(a, dt.float32), put(B, b, dt.float32, "T")
    check(B, B.matmul(pa, pb), _mm_ref(a, b), rtol=1e-5, atol=1e-6)
    # the batch of a transposed inside: (B, K, N) viewed as (B, N, K)
    at = sample((3, 6, 5), dt.float32, rng, -1, 1)
    pat = B.permute(B.from_numpy(at, dt.float32), (0, 2, 1))
    check(B, B.matmul(pat, pb), _mm_ref(at.transpose(0, 2, 1), b), rtol=1e-5, atol=1e-6)
    for d in (dt.float64, dt.int64, dt.int32, dt.int16, dt.int8, dt.uint8):
        if not B.supports(d):
            continue
        x = sample((3, 9, 7), d, rng, -5, 5)
        y = sample((7, 18), d, rng, -5, 5)
        want = np.matmul(x.astype(np.int64), y.astype(np.int64)).astype(d.np) if d.kind == 1 \
            else _mm_ref(x, y)
        check(B, B.matmul(put(B, x, d, "sliced"), put(B, y, d, "T")), want, d, what=d.name)
        check(B, B.matmul(put(B, x, d), put(B, y, d)), want, d, what=d.name)
    xb = rng.random((4, 3)) < 0.5
    yb = rng.random((3, 2)) < 0.5
    check(B, B.matmul(B.from_numpy(xb, dt.bool_), B.from_numpy(yb, dt.bool_)),
          (xb.astype(int) @ yb.astype(int)) > 0, dt.bool_)


def test_matmul_empty_and_errors(B):
    z = B.matmul(B.from_numpy(np.zeros((3, 0), np.float32), dt.float32),
                 B.from_numpy(np.zeros((0, 4), np.float32), dt.float32))
    check(B, z, np.zeros((3, 4)))
    e = B.matmul(B.from_numpy(np.zeros((0, 2), np.float32), dt.float32),
                 B.from_numpy(np.ones((2, 4), np.float32), dt.float32))
    assert B.to_numpy(e).shape == (0, 4)
    with pytest.raises(ShapeError, match="inner"):
        B.matmul(B.full((2, 3), 1.0, dt.float32), B.full((4, 2), 1.0, dt.float32))


def test_matmul_large_register_blocked(B):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((200, 300)).astype(np.float32)
    b = rng.standard_normal((300, 250)).astype(np.float32)
    for kb in ("contig", "T"):
        check(B, B.matmul(B.from_numpy(a, dt.float32), put(B, b, dt.float32, kb)),
              _mm_ref(a, b), rtol=1e-4, atol=1e-3)


CONVS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((2, 4, 10, 11), (6, 2, 3, 2), (2, 1), (1, 2), (1, 1), 2),
    ((1, 2, 12, 12), (3, 2, 3, 3), (1, 2), (2, 1), (2, 2), 1),
    ((3, 5, 6, 7), (4, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONVS)
def test_conv2d_matches_torch(B, xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(13)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    want = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=padding,
                     dilation=dilation, groups=groups).numpy()
    for kind in ("contig", "T"):
        got = B.conv2d(put(B, x, dt.float32, kind), B.from_numpy(w, dt.float32), stride, padding,
                       dilation, groups)
        check(B, got, want, rtol=1e-4, atol=1e-4, what=kind)


def test_conv2d_errors(B):
    x = B.full((1, 3, 4, 4), 1.0, dt.float32)
    with pytest.raises(ShapeError, match="channels"):
        B.conv2d(x, B.full((2, 2, 3, 3), 1.0, dt.float32), (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ShapeError, match="smaller"):
        B.conv2d(x, B.full((2, 3, 5, 5), 1.0, dt.float32), (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", [
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (1, 2), (1, 0), (2, 1), False),
    ((2, 2), (3, 3), (1, 1), (1, 1), True),
])
def test_max_pool2d_values_and_indices_match_torch(B, kernel, stride, padding, dilation, ceil_mode):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    x[0, 0, 1, :4] = 5.0  # ties: the first index wins
    tv, ti = TF.max_pool2d(torch.from_numpy(x), kernel, stride, padding, dilation,
                           ceil_mode=ceil_mode, return_indices=True)
    v, i = B.max_pool2d(put(B, x, dt.float32, "flipped"), kernel, stride, padding, dilation, ceil_mode)
    check(B, v, tv.numpy())
    check(B, i, ti.numpy())
    xi = rng.integers(-50, 50, (1, 2, 6, 6)).astype(np.int32)
    vi, ii = B.max_pool2d(B.from_numpy(xi, dt.int32), kernel, stride, padding, dilation, ceil_mode)
    tvi, tii = TF.max_pool2d(torch.from_numpy(xi).double(), kernel, stride, padding, dilation,
                             ceil_mode=ceil_mode, return_indices=True)
    check(B, vi, tvi.numpy().astype(np.int32))
    check(B, ii, tii.numpy())


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,include_pad,divisor", [
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (1, 2), (1, 1), False, False, 5),
])
def test_avg_pool2d_matches_torch(B, kernel, stride, padding, ceil_mode, include_pad, divisor):
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    want = TF.avg_pool2d(torch.from_numpy(x), kernel, stride, padding, ceil_mode=ceil_mode,
                         count_include_pad=include_pad, divisor_override=divisor).numpy()
    got = B.avg_pool2d(put(B, x, dt.float32, "T"), kernel, stride, padding, ceil_mode,
                       include_pad, divisor)
    check(B, got, want)


@pytest.mark.parametrize("shape,axis", [((4, 10), 1), ((4, 10), 0), ((3, 5000), 1),
                                         ((2, 3, 7), 1), ((6000, 3), 1), ((5,), 0)])
def test_softmax_and_log_softmax(B, shape, axis):
    rng = np.random.default_rng(16)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    x64 = x.astype(np.float64)
    m = x64.max(axis, keepdims=True)
    lse = np.log(np.exp(x64 - m).sum(axis, keepdims=True)) + m
    px = put(B, x, dt.float32, "T")
    check(B, B.softmax(px, axis), np.exp(x64 - lse), rtol=1e-5, atol=1e-7)
    check(B, B.log_softmax(px, axis), x64 - lse, rtol=1e-5, atol=1e-5)
    big = B.from_numpy(np.array([[1000.0, 0.0, -1000.0]], np.float32), dt.float32)
    check(B, B.softmax(big, 1), np.array([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("shape,k", [((4, 10), 1), ((2, 3, 4, 5), 2), ((3, 3000), 1)])
def test_layer_norm_matches_torch(B, shape, k):
    rng = np.random.default_rng(17)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(shape[-k:]).astype(np.float32)
    b = rng.standard_normal(shape[-k:]).astype(np.float32)
    tx = torch.from_numpy(x)
    px = put(B, x, dt.float32, "T")
    want = TF.layer_norm(tx, shape[-k:], torch.from_numpy(w), torch.from_numpy(b), 1e-5).numpy()
    got = B.layer_norm(px, k, B.from_numpy(w, dt.float32), put(B, b, dt.float32, "flipped"), 1e-5)
    check(B, got, want, rtol=1e-4, atol=1e-4)
    check(B, B.layer_norm(px, k, None, None, 1e-5),
          TF.layer_norm(tx, shape[-k:], eps=1e-5).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (7, 13, 5), (33, 64, 17), (65, 200, 9), (3, 0, 4),
                                   (0, 5, 3)])
def test_int8_matmul_kernel_is_exact(B, n, k, m):
    """int8.cl against NumPy int64: int8, int32 and integer-valued float32 codes, dense,
    transposed and sliced operands (the kernel reads int8 rows in place, others are packed)."""
    rng = np.random.default_rng(n * 1000 + k)
    a = rng.integers(-128, 128, (n, k))
    b = rng.integers(-128, 128, (k, m))
    want = a @ b
    for d in (dt.int8, dt.int32, dt.float32):
        for ka in ("contig", "T", "sliced"):
            for kb in ("contig", "T", "sliced"):
                got = B.int8_matmul(put(B, a.astype(d.np), d, ka), put(B, b.astype(d.np), d, kb))
                assert got.dtype is dt.int32
                np.testing.assert_array_equal(B.to_numpy(got), want, err_msg=f"{d.name} {ka} @ {kb}")


@pytest.mark.parametrize("shape,axis", [((6, 5), 1), ((6, 5), 0), ((2, 3, 7), 1), ((3, 300), 1),
                                        ((1, 1), 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_row_kernel(B, shape, axis, log):
    """softmax_bw_row against the float64 formula, with a transposed (strided) incoming
    gradient; rows of 300 with few rows take the composition."""
    rng = np.random.default_rng(sum(shape) + axis)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    y = B.log_softmax(B.from_numpy(x, dt.float32), axis) if log else \
        B.softmax(B.from_numpy(x, dt.float32), axis)
    yr = B.to_numpy(y).astype(np.float64)
    gr = g.astype(np.float64)
    want = gr - np.exp(yr) * gr.sum(axis, keepdims=True) if log else \
        yr * (gr - (gr * yr).sum(axis, keepdims=True))
    for kind in ("contig", "T"):
        got = B.softmax_backward(put(B, g, dt.float32, kind), y, axis, log)
        check(B, got, want, rtol=1e-5, atol=1e-6, what=kind)
