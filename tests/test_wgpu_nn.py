"""WGPU matmul, conv, pooling, softmax, layer_norm, gather/scatter against PyTorch; dispatch
splitting, batching and the allocator hook."""
from __future__ import annotations

import numpy as np
import pytest

from strata.tests._wgpu_util import make_backend  # (sets XDG_RUNTIME_DIR)
pytest.importorskip("wgpu")
torch = pytest.importorskip("torch")

from strata.core import dtype as dt  # noqa: E402
from strata.core.errors import UnsupportedError  # noqa: E402

RNG = np.random.default_rng(1)


@pytest.fixture(scope="module")
def B():
    return make_backend()


def f32(B, a):
    return B.from_numpy(np.ascontiguousarray(a, np.float32), dt.float32)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def close(got, want, rtol=1e-4, atol=1e-4):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("sa,sb", [((5, 7), (7, 3)), ((3, 65, 33), (33, 70)), ((2, 1, 9, 4), (3, 4, 17)),
                                   ((1, 1), (1, 1)), ((130, 64), (64, 129))])
def test_matmul_shapes(B, sa, sb):
    a, b = randn(*sa), randn(*sb)
    close(B.to_numpy(B.matmul(f32(B, a), f32(B, b))), a.astype(np.float64) @ b, 1e-4, 1e-4)


def test_matmul_transposed_and_sliced_views(B):
    a, b = randn(6, 40, 5), randn(3, 40)
    pa = B.permute(f32(B, a), (0, 2, 1))            # (6, 5, 40) strided
    pb = B.permute(f32(B, b), (1, 0))               # (40, 3) transposed
    close(B.to_numpy(B.matmul(pa, pb)), a.transpose(0, 2, 1).astype(np.float64) @ b.T)
    big = randn(12, 80)
    pv = B.flip(B.slice(f32(B, big), (0, 0), (12, 80), (2, 2)), (0,))   # (6, 40) negative stride
    close(B.to_numpy(B.matmul(pv, pb)), big[::2, ::2][::-1].astype(np.float64) @ b.T)
    e = B.expand(f32(B, b.T[None]), (4, 40, 3))     # broadcast batch (stride 0)
    close(B.to_numpy(B.matmul(B.slice(pa, (0, 0, 0), (4, 5, 40), (1, 1, 1)), e)),
          a[:4].transpose(0, 2, 1).astype(np.float64) @ b.T)


def test_matmul_integer_and_half(B):
    a = RNG.integers(-20, 20, (9, 11)).astype(np.int64)
    b = RNG.integers(-20, 20, (11, 5)).astype(np.int64)
    got = B.to_numpy(B.matmul(B.from_numpy(a, dt.int64), B.from_numpy(b, dt.int64)))
    np.testing.assert_array_equal(got, a @ b)
    if B.supports(dt.float16):
        x, y = randn(20, 30), randn(30, 10)
        h = B.matmul(B.from_numpy(x.astype(np.float16), dt.float16),
                     B.from_numpy(y.astype(np.float16), dt.float16))
        close(B.to_numpy(h), x.astype(np.float16).astype(np.float64) @ y.astype(np.float16), 1e-2, 2e-2)


# ---------------------------------------------------------------------------- conv / pool
@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
])
def test_conv2d_matches_torch(B, cfg):
    x, w = randn(2, 4, 9, 8), randn(6, 4 // cfg["groups"], 3, 3)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    got = B.conv2d(f32(B, x), f32(B, w), pair(cfg["stride"]), pair(cfg["padding"]),
                   pair(cfg["dilation"]), cfg["groups"])
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), **cfg)
    close(B.to_numpy(got), want)


def test_conv2d_strided_input_and_transpose(B):
    x, w = randn(2, 8, 3, 7), randn(5, 3, 2, 2)
    xv = B.permute(f32(B, x), (0, 2, 1, 3))          # (2, 3, 8, 7) non-contiguous
    got = B.conv2d(xv, f32(B, w), (1, 1), (1, 0), (1, 1), 1)
    want = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 2, 1, 3), torch.from_numpy(w),
                                      padding=(1, 0))
    close(B.to_numpy(got), want)
    xt, wt = randn(2, 4, 5, 5), randn(4, 3, 3, 3)
    got = B.conv_transpose2d(f32(B, xt), f32(B, wt), (2, 2), (1, 1), (1, 0), (1, 1), 1)
    want = torch.nn.functional.conv_transpose2d(torch.from_numpy(xt), torch.from_numpy(wt), stride=2,
                                                padding=1, output_padding=(1, 0))
    close(B.to_numpy(got), want)


@pytest.mark.parametrize("k,s,p,d,ceil", [((2, 2), (2, 2), (0, 0), (1, 1), False),
                                          ((3, 3), (2, 1), (1, 1), (1, 1), True),
                                          ((3, 2), (1, 2), (1, 0), (2, 1), False)])
def test_max_pool_with_indices(B, k, s, p, d, ceil):
    x = randn(2, 3, 9, 10)
    x[0, 0, 1, 1] = np.nan
    vals, idx = B.max_pool2d(f32(B, x), k, s, p, d, ceil)
    wv, wi = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil_mode=ceil,
                                            return_indices=True)
    np.testing.assert_array_equal(B.to_numpy(vals), wv.numpy())
    np.testing.assert_array_equal(B.to_numpy(idx), wi.numpy())
    assert B.to_numpy(idx).dtype == np.int64


@pytest.mark.parametrize("ceil,inc,div", [(False, True, None), (True, False, None), (True, True, 5)])
def test_avg_pool(B, ceil, inc, div):
    x = randn(2, 3, 7, 8)
    xv = B.flip(f32(B, x[:, :, ::-1]), (2,))
    got = B.avg_pool2d(xv, (3, 3), (2, 2), (1, 1), ceil, inc, div)
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1, ceil_mode=ceil,
                                          count_include_pad=inc, divisor_override=div)
    close(B.to_numpy(got), want, 1e-5, 1e-5)


# ---------------------------------------------------------------------------- rows
def test_softmax_log_softmax_layer_norm(B):
    x = randn(3, 5, 7) * 4
    t = torch.from_numpy(x)
    xv = B.permute(f32(B, x.transpose(2, 0, 1)), (1, 2, 0))
    for ax in range(3):
        close(B.to_numpy(B.softmax(xv, ax)), torch.softmax(t, ax), 1e-5, 1e-6)
        close(B.to_numpy(B.log_softmax(xv, ax)), torch.log_softmax(t, ax), 1e-5, 1e-5)
    w, b = randn(5, 7), randn(5, 7)
    got = B.layer_norm(xv, 2, f32(B, w), f32(B, b), 1e-5)
    close(B.to_numpy(got), torch.nn.functional.layer_norm(t, (5, 7), torch.from_numpy(w),
                                                          torch.from_numpy(b), 1e-5), 1e-4, 1e-4)
    got = B.layer_norm(xv, 1, None, None, 1e-3)
    close(B.to_numpy(got), torch.nn.functional.layer_norm(t, (7,), eps=1e-3), 1e-4, 1e-4)


# ---------------------------------------------------------------------------- indexing
@pytest.mark.parametrize("d", [dt.float32, dt.int32, dt.uint8])
def test_gather_scatter_add(B, d):
    x = (randn(4, 6) * 10).astype(d.np) if d is not dt.uint8 else RNG.integers(0, 200, (4, 6)).astype(np.uint8)
    idx = RNG.integers(0, 6, (4, 9)).astype(np.int64)
    px, pi = B.from_numpy(x, d), B.from_numpy(idx, dt.int64)
    tx, ti = torch.from_numpy(x), torch.from_numpy(idx)
    np.testing.assert_array_equal(B.to_numpy(B.gather(px, 1, pi)), torch.gather(tx, 1, ti).numpy())
    src = (randn(4, 9) * 10).astype(d.np) if d is not dt.uint8 else RNG.integers(0, 200, (4, 9)).astype(np.uint8)
    got = B.to_numpy(B.scatter_add(px, 1, pi, B.from_numpy(src, d)))
    want = tx.scatter_add(1, ti, torch.from_numpy(src)).numpy()
    if d is dt.float32:
        close(got, want, 1e-5, 1e-4)
    else:
        np.testing.assert_array_equal(got, want)
    # along axis 0 with a transposed x and a smaller index (torch allows index <= src)
    xt = B.permute(px, (1, 0))                      # (6, 4)
    i0 = RNG.integers(0, 6, (3, 4)).astype(np.int64)
    np.testing.assert_array_equal(B.to_numpy(B.gather(xt, 0, B.from_numpy(i0, dt.int64))),
                                  torch.gather(tx.T, 0, torch.from_numpy(i0)).numpy())
    got = B.to_numpy(B.scatter_add(xt, 0, B.from_numpy(i0, dt.int64), B.permute(B.from_numpy(src, d), (1, 0))))
    want = tx.T.clone().scatter_add(0, torch.from_numpy(i0), torch.from_numpy(src).T).numpy()
    if d is dt.float32:
        close(got, want, 1e-5, 1e-4)
    else:
        np.testing.assert_array_equal(got, want)


def test_index_select_default_uses_gather(B):
    x = randn(5, 3)
    got = B.index_select(f32(B, x), 0, B.from_numpy(np.array([4, 0, 4]), dt.int64))
    close(B.to_numpy(got), x[[4, 0, 4]])


# ---------------------------------------------------------------------------- limits, batching
def test_dispatch_split_over_grid_limit(B):
    saved = B.rt.max_groups
    B.rt.max_groups = 3      # 3 workgroups per dimension: everything below needs a 2-D/3-D grid
    try:
        a = randn(40, 60)
        p = f32(B, a)
        close(B.to_numpy(B.exp(B.permute(p, (1, 0)))), np.exp(a.T.astype(np.float64)), 1e-5, 1e-6)
        close(B.to_numpy(B.sum(p, (1,), False)), a.astype(np.float64).sum(1), 1e-4, 1e-4)
        b = randn(60, 70)
        close(B.to_numpy(B.matmul(p, f32(B, b))), a.astype(np.float64) @ b)
        bb = randn(5, 8, 9)
        close(B.to_numpy(B.matmul(f32(B, bb), f32(B, bb.transpose(0, 2, 1)))),
              bb.astype(np.float64) @ bb.transpose(0, 2, 1))
        u = B.to_numpy(B.random_uniform((3000,), 5, 0, dt.float32))
        from strata.core import philox
        np.testing.assert_array_equal(u, philox.uniform(5, 0, 3000))
    finally:
        B.rt.max_groups = saved


def test_more_elements_than_one_grid_dimension(B):
    n = B.rt.max_groups * 256 + 1000          # 16.78M on lavapipe: needs the y grid dimension
    if n * 4 > B.rt.max_binding:
        pytest.skip("adapter binding limit below the test size")
    c = B.to_numpy(B.add(B.arange(0, 1, n, dt.int32), 3))
    np.testing.assert_array_equal(c, np.arange(3, n + 3, dtype=np.int32))


def test_oversized_tensor_is_a_clear_error(B):
    with pytest.raises(UnsupportedError, match="binding"):
        B.full((B.rt.max_binding // 4 + 1,), 0.0, dt.float32)


def test_ops_are_batched_into_one_submit(B):
    B.sync()
    x = f32(B, randn(64, 128))
    s0 = dict(B.rt.stats)
    y = x
    for _ in range(50):
        y = B.add(B.mul(y, 0.5), x)
    B.to_numpy(y)
    assert B.rt.stats["dispatches"] - s0["dispatches"] == 100
    assert B.rt.stats["submits"] - s0["submits"] == 1


def test_allocator_hook(B):
    from strata.backends.wgpu.runtime import DefaultAllocator

    class Counting(DefaultAllocator):
        def __init__(self, inner):
            super().__init__(inner.device, inner.usage)
            self.allocs = self.frees = 0

        def alloc(self, nbytes):
            self.allocs += 1
            return super().alloc(nbytes)

        def free(self, buf):
            self.frees += 1
            super().free(buf)

    saved = B.allocator
    B.allocator = Counting(saved)
    try:
        x = B.full((10,), 2.0, dt.float32)
        y = B.exp(x)
        assert B.allocator.allocs == 2
        np.testing.assert_allclose(B.to_numpy(y), np.exp(2.0) * np.ones(10), rtol=1e-6)
        del x, y
        assert B.allocator.frees == 2
    finally:
        B.allocator = saved


@pytest.mark.parametrize("shape,axis", [((6, 5), 1), ((6, 5), 0), ((2, 3, 7), 1), ((1, 1), 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_row_kernel(B, shape, axis, log):
    """One dispatch against the float64 formula, with a transposed incoming gradient."""
    rng = np.random.default_rng(sum(shape) + axis)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    y = B.log_softmax(f32(B, x), axis) if log else B.softmax(f32(B, x), axis)
    yr = B.to_numpy(y).astype(np.float64)
    gr = g.astype(np.float64)
    want = gr - np.exp(yr) * gr.sum(axis, keepdims=True) if log else \
        yr * (gr - (gr * yr).sum(axis, keepdims=True))
    gt = B.permute(f32(B, np.ascontiguousarray(np.swapaxes(g, 0, -1))),
                   tuple(reversed(range(len(shape)))) if len(shape) == 2 else (2, 1, 0))
    for gin in (f32(B, g), gt):
        got = B.to_numpy(B.softmax_backward(gin, y, axis, log))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
