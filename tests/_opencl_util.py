"""Shared helpers of the OpenCL backend tests: the backend fixture and layout builders that put
the same values on the device as dense, transposed, sliced, flipped or broadcast views."""
from __future__ import annotations

import numpy as np
import pytest

from strata.core import dtype as dt
from strata.core.errors import BackendError

ALL_DTYPES = [dt.float32, dt.float64, dt.int64, dt.int32, dt.int16, dt.int8, dt.uint8, dt.bool_]


def make_backend():
    try:
        from strata.backends import OpenCL
        return OpenCL()
    except BackendError as e:  # no pyopencl or no OpenCL device on this machine
        pytest.skip(f"OpenCL unavailable: {e}")


def dtypes_of(B):
    return [d for d in ALL_DTYPES if B.supports(d)]


def sample(shape, d, rng, lo=-4.0, hi=4.0):
    """Values of dtype d in [lo, hi) (booleans random)."""
    if d is dt.bool_:
        return rng.random(shape) < 0.5
    if d.kind == 1:
        lo = max(lo, np.iinfo(d.np).min)
        hi = min(hi, np.iinfo(d.np).max)
        return rng.integers(int(lo), int(hi), size=shape).astype(d.np)
    return rng.uniform(lo, hi, size=shape).astype(d.np)


def put(B, arr: np.ndarray, d, kind: str = "contig"):
    """A primitive holding arr as a view of the given kind."""
    arr = np.asarray(arr, dtype=d.np)
    nd = arr.ndim
    if kind == "contig" or nd == 0:
        return B.from_numpy(arr, d)
    if kind == "T":  # stored transposed, permuted back: reversed strides
        p = B.from_numpy(np.ascontiguousarray(arr.transpose(tuple(reversed(range(nd))))), d)
        return B.permute(p, tuple(reversed(range(nd))))
    if kind == "sliced":  # every other element of a bigger buffer, with an offset
        big = np.zeros(tuple(2 * s + 1 for s in arr.shape), d.np)
        big[tuple(slice(1, 1 + 2 * s, 2) for s in arr.shape)] = arr
        p = B.from_numpy(big, d)
        return B.slice(p, (1,) * nd, tuple(1 + 2 * s for s in arr.shape), (2,) * nd)
    if kind == "flipped":
        p = B.from_numpy(np.ascontiguousarray(np.flip(arr)), d)
        return B.flip(p, tuple(range(nd)))
    if kind == "bcast":  # first axis stored once and expanded, when all rows are equal
        assert (arr == arr[:1]).all()
        p = B.from_numpy(np.ascontiguousarray(arr[:1]), d)
        return B.expand(p, arr.shape)
    raise ValueError(kind)


def check(B, prim, ref, d=None, rtol=None, atol=None, what=""):
    got = B.to_numpy(prim)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    if d is not None:
        assert got.dtype == d.np, f"{what}: dtype {got.dtype} != {d.np}"
    if got.dtype.kind == "f":
        if rtol is None:
            rtol = 1e-5 if got.dtype == np.float32 else 1e-12
        if atol is None:
            atol = 1e-6 if got.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, ref.astype(got.dtype), err_msg=what)
