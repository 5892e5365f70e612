"""NumPy backend primitives at the backend level, against NumPy float64 / PyTorch references."""
from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from strata.backends.numpy import NumPy
from strata.core import dtype as dt
from strata.core import philox
from strata.core.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
# pytest resets warning filters per test, dropping the one the backend installs at import
# (test_no_floating_point_warnings checks that filter itself)
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

B = NumPy()
rng = np.random.default_rng(1234)
FLOATS = (np.float16, np.float32, np.float64)
INTS = (np.uint8, np.int8, np.int16, np.int32, np.int64)
TOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}


def close(got, ref, dtype, rtol=None):
    assert isinstance(got, np.ndarray), f"primitive must be an ndarray, got {type(got)}"
    assert got.dtype == np.dtype(dtype)
    assert got.shape == np.shape(ref)
    tol = rtol if rtol is not None else TOL[dtype]
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol, equal_nan=True)


def rand(shape, dtype, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


# ------------------------------------------------------------------ description, transfer, creation
def test_identity_and_description():
    assert str(B) == "NumPy()" and B.device_name() == "cpu (NumPy)"
    assert B == NumPy() and pickle.loads(pickle.dumps(B)) == B
    for d in dt.ALL:
        x = B.from_numpy(np.zeros((2, 3), d.np), d)
        assert B.is_primitive(x) and B.shape(x) == (2, 3) and B.dtype(x) is d and B.supports(d)
        assert np.array_equal(B.to_numpy(x), np.zeros((2, 3), d.np))
    assert not B.is_primitive(1.0) and not B.is_primitive([1.0])
    with pytest.raises(DTypeError, match="no strata equivalent"):
        B.dtype(np.zeros(2, np.complex64))


def test_to_numpy_of_broadcast_view_is_writable_copy():
    x = B.expand(np.ones((1, 3), np.float32), (4, 3))
    out = B.to_numpy(x)
    out[0, 0] = 5.0  # must not raise (expand views are read-only)
    assert out.shape == (4, 3)


@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
def test_full_and_arange(d):
    x = B.full((2, 0, 3), 1, d)
    assert x.shape == (2, 0, 3) and x.dtype == d.np
    z = B.full((), 1, d)
    assert isinstance(z, np.ndarray) and z.shape == () and z == 1
    if d is not dt.bool_:
        a = B.arange(2, 3, 5, d)
        assert a.dtype == d.np and np.array_equal(a, np.array([2, 5, 8, 11, 14]).astype(d.np))


def test_full_unrepresentable_and_float_arange():
    with pytest.raises(DTypeError, match="cannot store"):
        B.full((2,), math.inf, dt.int32)
    np.testing.assert_allclose(B.arange(0.5, 0.25, 4, dt.float32), [0.5, 0.75, 1.0, 1.25])


@pytest.mark.parametrize("d", dt.FLOATING, ids=lambda d: d.name)
def test_random_matches_philox_reference(d):
    u = B.random_uniform((3, 5), 42, 7, d)
    n = B.random_normal((3, 5), 42, 7, d)
    assert u.dtype == d.np and n.dtype == d.np and u.shape == (3, 5)
    ref_u = philox.uniform(42, 7, 15, double=d is dt.float64).reshape(3, 5)
    ref_n = philox.normal(42, 7, 15, double=d is dt.float64).reshape(3, 5)
    np.testing.assert_array_equal(u, ref_u.astype(d.np))
    np.testing.assert_array_equal(n, ref_n.astype(d.np))
    # consecutive offsets continue the same stream
    tail = B.random_uniform((5,), 42, 17, d)
    np.testing.assert_array_equal(tail, u.reshape(-1)[10:])


def test_random_float16_stays_below_one_and_ints_refused():
    u = B.random_uniform((200_000,), 3, 0, dt.float16)
    assert u.max() < 1.0 and u.min() >= 0.0
    with pytest.raises(DTypeError, match="floating"):
        B.random_uniform((2,), 0, 0, dt.int32)


def test_cast_semantics():
    x = np.array([-2.7, -0.5, 0.0, -0.0, 0.5, 2.7, np.nan], np.float32)
    np.testing.assert_array_equal(B.cast(x[:-1], dt.int32), [-2, 0, 0, 0, 0, 2])
    np.testing.assert_array_equal(B.cast(x, dt.bool_), [True, True, False, False, True, True, True])
    np.testing.assert_array_equal(B.cast(np.array([True, False]), dt.float16), [1.0, 0.0])
    assert B.cast(x, dt.float32) is x
    # float -> uint8 and int narrowing wrap like torch on x86
    t = torch.tensor([300, -1, 127]).to(torch.uint8).numpy()
    np.testing.assert_array_equal(B.cast(np.array([300, -1, 127]), dt.uint8), t)


# ------------------------------------------------------------------ unary
FLOAT_UNARY = {
    "neg": (np.negative, -3, 3), "exp": (np.exp, -3, 3), "log": (np.log, 0.01, 5),
    "sqrt": (np.sqrt, 0, 5), "sin": (np.sin, -3, 3), "cos": (np.cos, -3, 3),
    "tanh": (np.tanh, -3, 3), "abs": (np.abs, -3, 3), "reciprocal": (lambda v: 1 / v, 0.1, 3),
    "floor": (np.floor, -3, 3), "ceil": (np.ceil, -3, 3), "round": (np.round, -3, 3),
    "log1p": (np.log1p, -0.9, 3), "expm1": (np.expm1, -3, 3), "tan": (np.tan, -1.2, 1.2),
    "trunc": (np.trunc, -3, 3), "rsqrt": (lambda v: 1 / np.sqrt(v), 0.1, 5),
    "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), -10, 10), "relu": (lambda v: np.maximum(v, 0), -3, 3),
    "silu": (lambda v: v / (1 + np.exp(-v)), -5, 5),
    "erf": (np.vectorize(math.erf), -4, 4),
}


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(FLOAT_UNARY))
def test_float_unary(name, dtype):
    ref_fn, lo, hi = FLOAT_UNARY[name]
    x = rand((4, 33), dtype, lo, hi)
    close(getattr(B, name)(x), ref_fn(x.astype(np.float64)), dtype)
    # 0-d input gives a 0-d ndarray, and the empty array works
    z = getattr(B, name)(np.array(x[0, 0]))
    assert isinstance(z, np.ndarray) and z.shape == ()
    assert getattr(B, name)(np.zeros((0, 3), dtype)).shape == (0, 3)


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0], np.float32)
    t = torch.from_numpy(x)
    for name, tf in [("sign", torch.sign), ("sigmoid", torch.sigmoid), ("exp", torch.exp),
                     ("sqrt", torch.sqrt), ("log", torch.log), ("erf", torch.erf),
                     ("tanh", torch.tanh), ("round", torch.round), ("abs", torch.abs)]:
        got, ref = getattr(B, name)(x), tf(t).numpy()
        # transcendental functions may differ from torch's by an ulp; the rest must be exact
        exact = name in ("sign", "round", "abs")
        np.testing.assert_allclose(got, ref, rtol=0 if exact else 2.5e-7, err_msg=name)
        num = ~np.isnan(ref)  # the sign of a NaN carries no meaning
        np.testing.assert_array_equal(np.signbit(got[num]), np.signbit(ref[num]), err_msg=name)
    np.testing.assert_array_equal(B.isnan(x), [True, False, False, False, False, False])
    np.testing.assert_array_equal(B.isinf(x), [False, True, True, False, False, False])
    # extreme sigmoid keeps tiny values instead of underflowing early
    s = B.sigmoid(np.array([-100.0, 100.0, -750.0]))
    np.testing.assert_allclose(s[:2], [math.exp(-100.0), 1.0], rtol=1e-15)
    assert s[2] == 0.0


def test_round_is_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, -2.6], np.float32)
    np.testing.assert_array_equal(B.round(x), torch.round(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_integer_unary(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, -3 if info.min < 0 else 0, 0, 1, 7, info.max], dtype)
    t = torch.from_numpy(x)
    for name, tf in [("neg", torch.neg), ("abs", torch.abs), ("sign", torch.sign),
                     ("bitwise_not", torch.bitwise_not)]:
        if name in ("neg", "abs") and dtype is np.uint8:
            continue  # torch refuses neg/abs of uint8 in some builds; numpy wraps
        np.testing.assert_array_equal(getattr(B, name)(x), tf(t).numpy(), err_msg=name)
    for name in ("floor", "ceil", "round", "trunc"):
        np.testing.assert_array_equal(getattr(B, name)(x), x)
        assert getattr(B, name)(x).dtype == dtype
    np.testing.assert_array_equal(B.isnan(x), np.zeros(6, bool))
    for name in ("exp", "log", "sqrt", "sin", "erf", "reciprocal", "sigmoid", "tanh"):
        with pytest.raises(DTypeError, match="floating"):
            getattr(B, name)(x)


def test_bool_unary():
    x = np.array([True, False])
    np.testing.assert_array_equal(B.logical_not(x), [False, True])
    np.testing.assert_array_equal(B.bitwise_not(x), [False, True])
    np.testing.assert_array_equal(B.sign(x), x)
    np.testing.assert_array_equal(B.logical_not(np.array([0.0, -0.0, 2.0, np.nan])),
                                  [True, True, False, False])
    with pytest.raises(DTypeError):
        B.neg(x)
    with pytest.raises(DTypeError):
        B.bitwise_not(np.ones(2, np.float32))


# ------------------------------------------------------------------ binary
ARITH = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "maximum": torch.maximum,
         "minimum": torch.minimum, "remainder": torch.remainder,
         "floor_divide": torch.floor_divide}
CMP = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt,
       "ge": torch.ge, "logical_and": torch.logical_and, "logical_or": torch.logical_or,
       "logical_xor": torch.logical_xor}


def _operands(dtype, shape_a=(3, 4), shape_b=(1, 4)):
    if np.dtype(dtype).kind == "f":
        a, b = rand(shape_a, dtype), rand(shape_b, dtype, 0.5, 3)
        b[0, 0] = -1.25
        a[0, 1] = np.nan
        a[1, 0] = b[0, 0]
        return a, b
    info = np.iinfo(dtype)
    a = rng.integers(max(info.min, -50), min(info.max, 50), shape_a).astype(dtype)
    b = rng.integers(1, min(info.max, 9), shape_b).astype(dtype)
    a[1, 0] = b[0, 0]
    return a, b


@pytest.mark.parametrize("dtype", FLOATS + INTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(ARITH) + sorted(CMP))
def test_binary_against_torch(name, dtype):
    a, b = _operands(dtype)
    tf = ARITH.get(name) or CMP[name]
    got = getattr(B, name)(a, b)
    ref = tf(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64),
                               rtol=TOL.get(dtype, 0), equal_nan=True)
    # scalar on either side keeps the tensor dtype (weak Python scalars)
    s = 2.5 if np.dtype(dtype).kind == "f" else 3
    got_s = getattr(B, name)(a, s)
    ref_s = tf(torch.from_numpy(a), torch.tensor(s, dtype=torch.from_numpy(a).dtype)).numpy()
    np.testing.assert_allclose(got_s.astype(np.float64), ref_s.astype(np.float64),
                               rtol=TOL.get(dtype, 0), equal_nan=True)
    assert got_s.dtype == ref_s.dtype
    if name not in ("remainder", "floor_divide"):
        got_l = getattr(B, name)(s, b)
        assert got_l.dtype == got_s.dtype and got_l.shape == b.shape


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_div_pow_float(dtype):
    a, b = rand((3, 4), dtype, 0.1, 3), rand((3, 1), dtype, 0.5, 2)
    close(B.div(a, b), a.astype(np.float64) / b.astype(np.float64), dtype)
    close(B.pow(a, b), a.astype(np.float64) ** b.astype(np.float64), dtype, rtol=5e-3)
    close(B.pow(a, 2), a.astype(np.float64) ** 2, dtype)
    close(B.div(1.0, a), 1.0 / a.astype(np.float64), dtype)
    z = B.div(np.array([1.0, -1.0, 0.0], dtype), 0.0)
    np.testing.assert_array_equal(z, [np.inf, -np.inf, np.nan])


def test_integer_semantics():
    a = np.array([7, -7, 7, -7], np.int32)
    b = np.array([3, 3, -3, -3], np.int32)
    np.testing.assert_array_equal(B.remainder(a, b), [7 % 3, -7 % 3, 7 % -3, -7 % -3])
    np.testing.assert_array_equal(B.floor_divide(a, b), [7 // 3, -7 // 3, 7 // -3, -7 // -3])
    np.testing.assert_array_equal(B.pow(a, 2), a.astype(np.int64) ** 2)
    # overflow wraps in two's complement, like torch
    np.testing.assert_array_equal(B.add(np.array([127], np.int8), 1), [-128])
    np.testing.assert_array_equal(B.mul(np.array([3], np.uint8), -1),
                                  (torch.tensor([3], dtype=torch.uint8) * -1).numpy())
    np.testing.assert_array_equal(B.add(np.array([250], np.uint8), 300), [(250 + 300) % 256])
    with pytest.raises(ZeroDivisionError):
        B.remainder(a, np.array([1, 0, 1, 1], np.int32))
    with pytest.raises(ZeroDivisionError):
        B.floor_divide(a, 0)
    with pytest.raises(DTypeError, match="floating"):
        B.div(a, b)
    # int tensor against a float scalar compares exactly (1 < 1.5, 2 > 1.5)
    np.testing.assert_array_equal(B.lt(np.array([1, 2], np.int8), 1.5), [True, False])
    np.testing.assert_array_equal(B.eq(np.array([1, 2], np.int8), 1000), [False, False])
    x = np.array([0b1100], np.int16)
    assert B.bitwise_and(x, 0b1010)[0] == 0b1000 and B.bitwise_or(x, 1)[0] == 0b1101
    assert B.bitwise_xor(x, x)[0] == 0


def test_float_remainder_and_nan_propagation():
    a = np.array([5.5, -5.5, 5.5, -5.5, 1.0], np.float64)
    b = np.array([2.0, 2.0, -2.0, -2.0, 0.0])
    np.testing.assert_array_equal(B.remainder(a, b), torch.remainder(torch.from_numpy(a), torch.from_numpy(b)).numpy())
    n = np.array([np.nan, 1.0], np.float32)
    m = np.array([0.0, np.nan], np.float32)
    assert np.isnan(B.maximum(n, m)).all() and np.isnan(B.minimum(n, m)).all()


def test_bool_binary_and_contract_errors():
    t, f = np.array([True, True, False]), np.array([True, False, False])
    np.testing.assert_array_equal(B.add(t, f), [True, True, False])
    np.testing.assert_array_equal(B.mul(t, f), [True, False, False])
    np.testing.assert_array_equal(B.logical_xor(t, f), [False, True, False])
    with pytest.raises(DTypeError, match="share one dtype"):
        B.add(np.ones(2, np.float32), np.ones(2, np.float64))
    with pytest.raises(DTypeError):
        B.add(np.ones(2, np.int32), 1.5)  # float scalar with an int tensor: frontend must promote
    pooled = NumPy()
    pooled.set_allocator(_Counting())  # shapes are checked before the output is allocated
    with pytest.raises(ShapeError):
        pooled.add(np.ones((2, 3)), np.ones((4,)))
    # NumPy scalars (strong in NumPy) are accepted as values
    assert B.add(np.ones(2, np.float32), np.float64(2.0)).dtype == np.float32


def test_broadcasting_and_zero_d():
    a, b = rand((2, 1, 4), np.float32), rand((3, 1), np.float32)
    close(B.mul(a, b), a.astype(np.float64) * b, np.float32)
    z = B.add(np.array(1.0, np.float32), np.array(2.0, np.float32))
    assert isinstance(z, np.ndarray) and z.shape == () and z == 3.0
    assert isinstance(B.lt(np.array(1.0), 2.0), np.ndarray)


def test_where():
    c = np.array([[True, False, True]])
    a, b = rand((2, 3), np.float16), rand((2, 1), np.float16)
    np.testing.assert_array_equal(B.where(c, a, b), np.where(c, a, b))
    assert B.where(c, a, 0).dtype == np.float16 and B.where(c, 1, a).dtype == np.float16
    assert B.where(c, True, np.array([False])).dtype == bool
    assert B.where(c, 1.0, 0.0).dtype == np.float32  # both scalars: torch's default float
    assert B.where(c, 1, 0).dtype == np.int64
    with pytest.raises(DTypeError):
        B.where(c, a, b.astype(np.float32))


# ------------------------------------------------------------------ reductions
@pytest.mark.parametrize("dtype", FLOATS + INTS + (np.bool_,), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axes", [(0,), (1,), (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(dtype, axes, keepdims):
    if np.dtype(dtype).kind == "f":
        x = rand((3, 4, 5), dtype, -1.2, 1.2)  # keeps float16 products finite
    elif dtype is np.bool_:
        x = rng.random((3, 4, 5)) > 0.5
    else:
        x = rng.integers(0, 5, (3, 4, 5)).astype(dtype)
    for name, ref_fn in [("sum", np.sum), ("max", np.max), ("min", np.min), ("prod", np.prod)]:
        got = getattr(B, name)(x, axes, keepdims)
        assert isinstance(got, np.ndarray) and got.dtype == x.dtype, name
        ref = ref_fn(x.astype(np.float64), axis=axes, keepdims=keepdims)
        if np.dtype(dtype).kind == "f":
            close(got, ref, dtype, rtol=1e-2 if dtype is np.float16 else None)
        elif dtype is np.bool_:
            np.testing.assert_array_equal(got, ref != 0)  # bool sum keeps bool: any
        else:
            np.testing.assert_array_equal(got, ref.astype(dtype))  # wraps like the dtype


def test_reduction_edges():
    x = rand((3, 4), np.float32)
    assert B.sum(x, (), False) is x
    assert B.sum(np.zeros((0, 3), np.float32), (0,), False).tolist() == [0, 0, 0]
    with pytest.raises(ShapeError, match="empty"):
        B.max(np.zeros((0, 3), np.float32), (0,), False)
    assert np.isnan(B.max(np.array([1.0, np.nan, 3.0]), (0,), False))
    # float16 sums accumulate in float32: 4096 ones + small values do not stall at 2048
    h = np.ones(4096, np.float16)
    assert B.sum(h, (0,), False) == 4096
    m = B.max(np.array(5.0, np.float32).reshape(1), (0,), False)
    assert isinstance(m, np.ndarray) and m.shape == ()


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argreduce_like_torch(name):
    x = np.array([[1.0, 3.0, 3.0, -1.0, -1.0], [np.nan, 2.0, np.nan, 5.0, 5.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    tf = getattr(torch, name)
    for axis in (0, 1):
        for kd in (False, True):
            got = getattr(B, name)(x, axis, kd)
            ref = tf(torch.from_numpy(x), dim=axis, keepdim=kd).numpy()
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, ref)
    i = np.array([3, 9, 9, 1], np.int16)
    assert getattr(B, name)(i, 0, False) == (1 if name == "argmax" else 3)
    z = getattr(B, name)(np.array(2.0), 0, False)
    assert isinstance(z, np.ndarray) and z == 0
    with pytest.raises(ShapeError):
        getattr(B, name)(np.zeros((0, 2)), 0, False)


@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64, np.int32, np.int64))
def test_cumsum_cumprod(dtype):
    x = (rand((3, 6), dtype, 0.5, 1.5) if np.dtype(dtype).kind == "f"
         else rng.integers(-3, 4, (3, 6)).astype(dtype))
    for axis in (0, 1):
        for name, tf in [("cumsum", torch.cumsum), ("cumprod", torch.cumprod)]:
            got = getattr(B, name)(x, axis)
            ref = tf(torch.from_numpy(x.astype(np.float64)), axis).numpy()
            assert got.dtype == x.dtype
            np.testing.assert_allclose(got.astype(np.float64), ref, rtol=TOL.get(dtype, 0) * 4)


# ------------------------------------------------------------------ movement
def test_movement_views():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    r = B.reshape(x, (6, 4))
    p = B.permute(x, (2, 0, 1))
    s = B.slice(x, (0, 1, 0), (2, 3, 4), (1, 1, 2))
    f = B.flip(x, (0, 2))
    e = B.expand(np.ones((1, 3, 1), np.float32), (2, 3, 4))
    for v in (r, p, s, f):
        assert np.shares_memory(v, x)
    assert e.strides[0] == 0 and e.shape == (2, 3, 4)
    np.testing.assert_array_equal(p, np.transpose(x, (2, 0, 1)))
    np.testing.assert_array_equal(s, x[0:2, 1:3, 0:4:2])
    np.testing.assert_array_equal(f, x[::-1, :, ::-1])
    assert B.slice(x, (0, 2, 0), (2, 2, 4), (1, 1, 1)).shape == (2, 0, 4)
    assert B.reshape(np.array(3.0), (1, 1)).shape == (1, 1)


def test_pad_and_cat():
    x = np.arange(6, dtype=np.int16).reshape(2, 3)
    p = B.pad(x, ((1, 0), (2, 1)), -1)
    ref = torch.nn.functional.pad(torch.from_numpy(x), (2, 1, 1, 0), value=-1).numpy()
    np.testing.assert_array_equal(p, ref)
    assert p.dtype == np.int16
    assert B.pad(x, ((0, 0), (0, 0)), 0) is x
    pf = B.pad(np.ones((1, 1), np.float32), ((1, 1), (0, 0)), -math.inf)
    assert np.isneginf(pf[0, 0]) and pf[1, 0] == 1
    c = B.cat([x, x * 2, x[:1]], 0)
    np.testing.assert_array_equal(c, np.concatenate([x, x * 2, x[:1]], 0))
    with pytest.raises(DTypeError):
        B.cat([x, x.astype(np.int32)], 0)


# ------------------------------------------------------------------ indexing
def test_gather_like_torch():
    x = rand((4, 5, 3), np.float32)
    for axis in range(3):
        idx = rng.integers(0, x.shape[axis], (3, 4, 2)).astype(np.int64)
        got = B.gather(x, axis, idx)
        ref = torch.gather(torch.from_numpy(x), axis, torch.from_numpy(idx)).numpy()
        np.testing.assert_array_equal(got, ref)
    with pytest.raises(IndexError, match="out of range"):
        B.gather(x, 1, np.full((1, 1, 1), 5, np.int64))
    with pytest.raises(IndexError, match="-1"):
        B.gather(x, 1, np.full((1, 1, 1), -1, np.int64))
    with pytest.raises(ShapeError):
        B.gather(x, 1, np.zeros((5, 1, 1), np.int64))


@pytest.mark.parametrize("dtype", (np.float32, np.float64, np.int64, np.int32, np.float16))
@pytest.mark.parametrize("dense", [True, False])
def test_scatter_add_like_torch(dtype, dense):
    n = 6 if dense else 400
    x = rand((n, 5), np.float64, -2, 2).astype(dtype)
    src = rand((7, 5), np.float64, -2, 2).astype(dtype)
    idx = rng.integers(0, 3, (7, 4)).astype(np.int64)  # duplicates; index narrower than src
    for axis, index in ((0, idx), (1, idx[:min(7, n)] % 5)):
        got = B.scatter_add(x, axis, index, src)
        ref = torch.scatter_add(torch.from_numpy(x), axis, torch.from_numpy(index),
                                torch.from_numpy(src)).numpy()
        assert got.dtype == x.dtype
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64),
                                   rtol=TOL.get(dtype, 0) * 4, atol=TOL.get(dtype, 0) * 4)
    assert np.array_equal(x, x.copy())  # input untouched
    with pytest.raises(IndexError):
        B.scatter_add(x, 0, np.array([[n]], np.int64), src)


def test_scatter_index_select_masked_fill():
    x = rand((3, 5), np.float32)
    src = rand((2, 5), np.float32)
    idx = np.array([[0, 1, 2, 0, 1], [2, 0, 1, 1, 2]], np.int64)  # unique per column
    ref = torch.scatter(torch.from_numpy(x), 0, torch.from_numpy(idx), torch.from_numpy(src)).numpy()
    np.testing.assert_array_equal(B.scatter(x, 0, idx, src), ref)
    sel = np.array([4, 0, 4, 2], np.int64)
    np.testing.assert_array_equal(B.index_select(x, 1, sel), x[:, sel])
    with pytest.raises(IndexError):
        B.index_select(x, 0, np.array([3], np.int64))
    mask = np.array([True, False, True, False, False])
    np.testing.assert_array_equal(
        B.masked_fill(x, mask, -math.inf),
        torch.from_numpy(x).masked_fill(torch.from_numpy(mask), -math.inf).numpy())
    assert B.masked_fill(np.arange(5), mask, 7).dtype == np.int64
    with pytest.raises(DTypeError):
        B.masked_fill(np.arange(5, dtype=np.int32), mask, math.inf)


# ------------------------------------------------------------------ matmul
@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64, np.int64))
def test_matmul(dtype):
    a = rand((2, 1, 3, 4), np.float64, -2, 2)
    b = rand((5, 4, 6), np.float64, -2, 2)
    if np.dtype(dtype).kind == "i":
        a, b = np.round(a), np.round(b)
    got = B.matmul(a.astype(dtype), b.astype(dtype))
    ref = np.matmul(a.astype(dtype).astype(np.float64), b.astype(dtype).astype(np.float64))
    close(got, ref, dtype) if np.dtype(dtype).kind == "f" else np.testing.assert_array_equal(got, ref)
    with pytest.raises(ShapeError):
        B.matmul(a, b[..., :3, :])
    with pytest.raises(DTypeError):
        B.matmul(a.astype(np.float32), b)


# ------------------------------------------------------------------ allocator hook
class _Counting:
    def __init__(self):
        self.buffers = []

    def empty(self, shape, dtype):
        out = np.empty(shape, dtype)
        self.buffers.append(out)
        return out


def test_allocator_hook_routes_outputs():
    b = NumPy()
    pool = _Counting()
    b.set_allocator(pool)
    x, y = rand((3, 4), np.float32), rand((1, 4), np.float32)
    outs = [b.add(x, y), b.exp(x), b.lt(x, 0.0), b.sum(x, (1,), True), b.max(x, (0, 1), False),
            b.matmul(x, y.T), b.mul(2.0, x), b.add(np.array(1.0), 2.0)]
    assert len(pool.buffers) == len(outs)
    for o, buf in zip(outs, pool.buffers):
        assert o is buf
    np.testing.assert_allclose(outs[0], x + y)
    np.testing.assert_array_equal(outs[2], x < 0)
    np.testing.assert_allclose(outs[3], x.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(outs[5], x @ y.T, rtol=1e-6)
    b.set_allocator(None)
    assert "add" in b.__dict__ and b.add(x, y) is not pool.buffers[0]
    with pytest.raises(TypeError):
        b.set_allocator(object())


def test_class_level_methods_forward_to_installed_ops():
    x = rand((2, 2), np.float32)
    np.testing.assert_array_equal(type(B).add(B, x, x), x + x)
    from strata.core.backend import Backend
    assert type(B).add is not Backend.add  # overridden, visible to introspection


def test_no_floating_point_warnings():
    with warnings.catch_warnings(record=True) as rec:
        b = NumPy()  # installs its filter into the active filter list
        b.div(np.array([1.0, 0.0]), 0.0)
        b.log(np.array([-1.0, 0.0]))
        b.exp(np.array([1000.0]))
        b.cast(np.array([np.nan]), dt.int32)
    assert [str(w.message) for w in rec] == []


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "int64", "uint8", "bool"])
def test_where_bit_mask_path_matches_numpy_bit_for_bit(dtype):
    """Large where() runs as integer mask passes; every bit must match np.where, incl. NaN
    payloads, -0.0 and infinities, with broadcasting of all three operands."""
    B = NumPy()
    r = np.random.default_rng(3)
    d = np.dtype(dtype)
    def arr(shape):
        if d.kind == "b":
            return r.random(shape) > 0.5
        v = r.standard_normal(shape) * 50
        if d.kind == "f":
            v.ravel()[::7] = np.nan
            v.ravel()[1::7] = -0.0
            v.ravel()[2::7] = -np.inf
        return v.astype(d)
    for sc, sa, sb in [((60, 70), (60, 70), (60, 70)), ((60, 1), (1, 70), (60, 70)),
                       ((5000,), (5000,), None), ((40, 90), (90,), (40, 1))]:
        c = r.random(sc) > 0.5
        a = arr(sa)
        b = arr(sb) if sb is not None else d.type(0)
        got, want = B.where(c, a, b), np.where(c, a, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def test_malloc_tuning_is_applied_once_and_can_be_turned_off():
    code = ("import strata as st; from strata.backends import malloc_tuning as m; "
            "st.backend('NumPy()'); print(m.applied)")
    env = dict(os.environ)
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    env["STRATA_MALLOC_TUNING"] = "0"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert off.stdout.strip() == "False", off.stderr
    expect = "True" if sys.platform.startswith("linux") else "False"
    assert on.stdout.strip() == expect, on.stderr
