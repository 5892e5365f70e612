"""int8_matmul on WGPU with dot4I8Packed: exact int32 products of int8 codes against NumPy's
int64 product, directly and through the decorators (the quantized linear's path using it:
tests/test_quant_ops.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("wgpu")
from strata.tests._wgpu_util import make_backend  # noqa: E402

import strata as st  # noqa: E402
from strata.core import dtype as dt  # noqa: E402
from strata.core.backend import Backend  # noqa: E402


@pytest.fixture(scope="module")
def B():
    B = make_backend()
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
