"""CuPy backend: the same numbers as the NumPy backend on a CUDA GPU (skips without one)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from strata.backends import CuPy, NumPy
from strata.core import dtype as dt
from strata.core import philox
from strata.core.errors import BackendError

N = NumPy()
rng = np.random.default_rng(3)


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install strata[cuda])"
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as e:  # no driver
        return f"no usable CUDA device ({type(e).__name__}: {e})"
    return None


REASON = _gpu_reason()
gpu = pytest.mark.skipif(REASON is not None, reason=f"CuPy tests need a GPU: {REASON}")


@pytest.mark.skipif(REASON is None, reason="a GPU is present; this checks the error without one")
def test_construction_without_gpu_is_a_clear_error():
    with pytest.raises(BackendError, match="pip install strata\\[cuda\\]|no CUDA device"):
        CuPy()


@pytest.fixture(scope="module")
def C():
    return CuPy()


@gpu
def test_identity(C):
    import cupy
    assert str(C) == "CuPy()" and str(CuPy(allow_tf32=True)) == "CuPy(allow_tf32=True)"
    assert "CuPy" in C.device_name()
    x = C.from_numpy(np.ones((2, 3), np.float32), dt.float32)
    assert isinstance(x, cupy.ndarray) and C.is_primitive(x) and not C.is_primitive(np.ones(2))
    with pytest.raises(BackendError, match="device"):
        CuPy(device=10_000)


@gpu
@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
def test_transfer_all_dtypes(C, d):
    a = (rng.standard_normal((3, 4)) * 10).astype(d.np)
    x = C.from_numpy(a, d)
    assert C.dtype(x) is d and C.shape(x) == (3, 4)
    np.testing.assert_array_equal(C.to_numpy(x), a)


@gpu
@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8))
def test_elementwise_and_reductions_match_numpy(C, dtype):
    a = rng.uniform(1, 5, (4, 6)).astype(dtype)
    b = rng.uniform(1, 5, (1, 6)).astype(dtype)
    ca, cb = C.from_numpy(a, dt.from_numpy(dtype)), C.from_numpy(b, dt.from_numpy(dtype))
    tol = 1e-3 if dtype is np.float16 else 1e-6
    for name in ("add", "sub", "mul", "maximum", "remainder", "floor_divide", "lt", "eq"):
        got = C.to_numpy(getattr(C, name)(ca, cb))
        ref = getattr(N, name)(a, b)
        assert got.dtype == ref.dtype, name
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=tol, err_msg=name)
        got_s = C.to_numpy(getattr(C, name)(ca, 3))
        np.testing.assert_allclose(got_s.astype(np.float64), getattr(N, name)(a, 3).astype(np.float64),
                                   rtol=tol, err_msg=name)
    if np.dtype(dtype).kind == "f":
        for name in ("exp", "log", "sqrt", "tanh", "erf", "sigmoid", "reciprocal", "round", "sign"):
            np.testing.assert_allclose(C.to_numpy(getattr(C, name)(ca)).astype(np.float64),
                                       getattr(N, name)(a).astype(np.float64), rtol=tol, err_msg=name)
    for name in ("sum", "max", "min"):
        np.testing.assert_allclose(C.to_numpy(getattr(C, name)(ca, (1,), True)).astype(np.float64),
                                   getattr(N, name)(a, (1,), True).astype(np.float64), rtol=tol)
    np.testing.assert_array_equal(C.to_numpy(C.argmax(ca, 1, False)), N.argmax(a, 1, False))


@gpu
@pytest.mark.parametrize("d", dt.FLOATING, ids=lambda d: d.name)
def test_random_is_philox(C, d):
    u = C.to_numpy(C.random_uniform((4, 5), 9, 3, d))
    np.testing.assert_array_equal(u, philox.uniform(9, 3, 20, double=d is dt.float64).reshape(4, 5).astype(d.np))
    n = C.to_numpy(C.random_normal((4, 5), 9, 3, d))
    np.testing.assert_array_equal(n, philox.normal(9, 3, 20, double=d is dt.float64).reshape(4, 5).astype(d.np))


@gpu
def test_matmul_conv_pool_indexing_match_numpy(C):
    a, b = rng.standard_normal((2, 3, 8)), rng.standard_normal((8, 5))
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5), (np.float16, 2e-2)):
        d = dt.from_numpy(dtype)
        got = C.to_numpy(C.matmul(C.from_numpy(a.astype(dtype), d), C.from_numpy(b.astype(dtype), d)))
        np.testing.assert_allclose(got.astype(np.float64), a @ b, rtol=tol, atol=tol)
    x, w = rng.standard_normal((2, 4, 9, 9)), rng.standard_normal((6, 2, 3, 3))
    cx, cw = C.from_numpy(x, dt.float64), C.from_numpy(w, dt.float64)
    np.testing.assert_allclose(C.to_numpy(C.conv2d(cx, cw, (2, 2), (1, 1), (1, 1), 2)),
                               N.conv2d(x, w, (2, 2), (1, 1), (1, 1), 2), rtol=1e-12, atol=1e-12)
    v, i = C.max_pool2d(cx, (3, 3), (2, 2), (1, 1), (1, 1), True)
    rv, ri = N.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    np.testing.assert_array_equal(C.to_numpy(v), rv)
    np.testing.assert_array_equal(C.to_numpy(i), ri)
    idx = rng.integers(0, 4, (6, 9)).astype(np.int64)
    src = rng.standard_normal((6, 9))
    for dtype in (np.float64, np.int64):  # cupyx.scatter_add path and the host fallback
        d = dt.from_numpy(dtype)
        xs = (rng.standard_normal((4, 9)) * 5).astype(dtype)
        got = C.scatter_add(C.from_numpy(xs, d), 0, C.from_numpy(idx, dt.int64), C.from_numpy(src.astype(dtype), d))
        np.testing.assert_allclose(C.to_numpy(got), N.scatter_add(xs, 0, idx, src.astype(dtype)), rtol=1e-12)
    with pytest.raises(IndexError):
        C.gather(cx, 1, C.from_numpy(np.full((1, 1, 1, 1), 9, np.int64), dt.int64))
    C.sync()


@gpu
def test_tf32_flag_controls_cublas_compute_type(C):
    from cupy._core import _routines_linalg as rl
    a = C.from_numpy(np.ones((4, 4), np.float32), dt.float32)
    C.matmul(a, a)
    assert rl.get_compute_type(np.float32) != getattr(rl, "COMPUTE_TYPE_TF32", 7)
