"""int8_matmul on WGPU with dot4I8Packed: exact int32 products of int8 codes against NumPy's
int64 product, through the decorators, and the quantized linear's integer path using it
(recorded as "dot4I8Packed" in the diagnostics) with the same bits as float32-exact."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("wgpu")

import strata as st  # noqa: E402
import strata.quantization as Q  # noqa: E402
from strata.core import dtype as dt  # noqa: E402
from strata.core.backend import Backend  # noqa: E402


@pytest.fixture(scope="module")
def B():
    from strata.backends.wgpu import WGPU
    from strata.core.errors import BackendError
    try:
        B = WGPU()
    except BackendError as e:
        pytest.skip(str(e))
    if not B.int8_dot4:
        pytest.skip("this adapter's WGSL compiler has no dot4I8Packed")
    return B


def _codes(rng, *shape):
    return rng.integers(-128, 128, shape)


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (5, 7, 3), (33, 130, 17), (64, 256, 40)])
@pytest.mark.parametrize("adt,bdt", [(dt.float32, dt.int32), (dt.int8, dt.int8),
                                     (dt.int32, dt.float32)])
def test_products_are_exact(B, n, k, m, adt, bdt):
    rng = np.random.default_rng(n * k + m)
    a, b = _codes(rng, n, k), _codes(rng, k, m)
    A, Bm = B.from_numpy(a.astype(adt.np), adt), B.from_numpy(b.astype(bdt.np), bdt)
    d0 = B.rt.stats["dispatches"]
    got = B.int8_matmul(A, Bm)
    assert B.dtype(got) is dt.int32
    np.testing.assert_array_equal(B.to_numpy(got), a @ b)
    assert B.rt.stats["dispatches"] - d0 == 3          # two packs and the dot products
    # a transposed right operand (how a Linear weight is read) and a sliced left one
    Bt = B.permute(B.from_numpy(np.ascontiguousarray(b.T).astype(bdt.np), bdt), (1, 0))
    np.testing.assert_array_equal(B.to_numpy(B.int8_matmul(A, Bt)), a @ b)
    if n > 1:
        As = B.slice(A, (1, 0), (n, k), (1, 1))
        np.testing.assert_array_equal(B.to_numpy(B.int8_matmul(As, Bm)), a[1:] @ b)


@pytest.mark.parametrize("spec", ["Autodiff(WGPU())", "Fusion(WGPU())",
                                  "Fusion(Autodiff(WGPU()))", "PoolAllocator(WGPU())"])
def test_decorators_forward_it(B, spec):
    S = st.backend(spec)
    rng = np.random.default_rng(3)
    a, b = _codes(rng, 6, 9), _codes(rng, 9, 4)
    got = S.int8_matmul(S.from_numpy(a.astype(np.float32), dt.float32),
                        S.from_numpy(b.astype(np.int32), dt.int32))
    np.testing.assert_array_equal(S.to_numpy(got), a @ b)


def test_composition_where_dot4_is_missing(B, monkeypatch):
    """Without dot4I8Packed (or for shapes it does not take) the protocol's composition runs:
    same products."""
    rng = np.random.default_rng(4)
    a, b = _codes(rng, 5, 6), _codes(rng, 6, 7)
    A, Bm = B.from_numpy(a.astype(np.float32), dt.float32), B.from_numpy(b.astype(np.int32), dt.int32)
    want = B.to_numpy(Backend.int8_matmul(B, A, Bm))
    np.testing.assert_array_equal(want, a @ b)
    monkeypatch.setattr(B.rt, "int8_dot4", False)
    np.testing.assert_array_equal(B.to_numpy(B.int8_matmul(A, Bm)), a @ b)


def test_quantized_linear_takes_dot4_with_the_bits_of_float32_exact():
    S = st.backend("WGPU()")
    if not S.int8_dot4:
        pytest.skip("no dot4I8Packed")
    rng = np.random.default_rng(6)
    x = st.from_numpy(rng.standard_normal((9, 300)).astype(np.float32), backend=S)
    q = Q.quantize(st.from_numpy(rng.standard_normal((20, 300)).astype(np.float32), backend=S))
    act = Q.calibrate_activation([x])
    try:
        Q.set_int_accumulation("int32")
        a = Q.linear(x, q, act=act).numpy()
        assert Q.last_path()["path"] == "int8-dot4I8Packed"
        Q.set_int_accumulation("float32-exact")
        b = Q.linear(x, q, act=act).numpy()
        assert Q.last_path()["path"] == "int8-float32-exact"
    finally:
        Q.set_int_accumulation("auto")
    np.testing.assert_array_equal(a, b)
