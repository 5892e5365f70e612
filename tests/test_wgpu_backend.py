"""WGPU backend primitives against NumPy float64 / PyTorch, on whatever adapter is present
(Mesa lavapipe in CI). Layout views (transposed, sliced, flipped, broadcast) feed every kernel."""
from __future__ import annotations

import numpy as np
import pytest

from strata.tests._wgpu_util import make_backend  # (sets XDG_RUNTIME_DIR)
pytest.importorskip("wgpu")

from strata.core import dtype as dt  # noqa: E402
from strata.core import philox  # noqa: E402
from strata.core.errors import DTypeError, ShapeError, UnsupportedError  # noqa: E402


@pytest.fixture(scope="module")
def B():
    return make_backend()


RNG = np.random.default_rng(0)
INT_DTYPES = [dt.int32, dt.int64, dt.int8, dt.uint8]
FLOAT_TOL = {dt.float32: (2e-5, 1e-5), dt.float16: (2e-3, 2e-3)}


def sample(shape, d, lo=-3.0, hi=3.0):
    if d is dt.bool_:
        return RNG.random(shape) < 0.5
    if d.is_floating_point:
        return RNG.uniform(lo, hi, shape).astype(d.np)
    info = np.iinfo(d.np)
    lo_i, hi_i = max(int(lo) * 10, info.min), min(int(hi) * 10, info.max)
    return RNG.integers(lo_i, hi_i + 1, shape).astype(d.np)


def views(B, a: np.ndarray, d):
    """(primitive, numpy reference) pairs of one logical value reached through several layouts."""
    out = [(B.from_numpy(a, d), a)]
    if a.ndim >= 2:
        t = np.ascontiguousarray(np.swapaxes(a, 0, 1))
        out.append((B.permute(B.from_numpy(t, d), (1, 0) + tuple(range(2, a.ndim))), a))
    big = np.repeat(a, 2, axis=-1) if a.ndim else a
    if a.ndim:
        p = B.from_numpy(np.ascontiguousarray(big), d)
        n = a.ndim
        out.append((B.slice(p, (0,) * n, big.shape, (1,) * (n - 1) + (2,)), big[..., ::2]))
        f = B.from_numpy(np.ascontiguousarray(np.flip(a, -1)), d)
        out.append((B.flip(f, (n - 1,)), a))
    return out


def check(got, want, d):
    assert got.dtype == d.np, (got.dtype, d)
    assert got.shape == want.shape, (got.shape, want.shape)
    if d.is_floating_point:
        rtol, atol = FLOAT_TOL[d]
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def wrap(ref: np.ndarray, d):
    """float64/int64 reference results wrapped into dtype d like PyTorch's narrow types."""
    if d.is_floating_point:
        return ref.astype(np.float64)
    if d is dt.bool_:
        return ref.astype(bool)
    return ref.astype(np.int64).astype(d.np)


# ---------------------------------------------------------------------------- elementwise
FLOAT_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "abs": np.abs, "sign": np.sign, "reciprocal": lambda x: 1 / x,
    "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "erf": lambda x: np.vectorize(__import__("math").erf)(x) if x.size else x,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.maximum(x, 0),
}


@pytest.mark.parametrize("d", [dt.float32, dt.float16])
@pytest.mark.parametrize("op", sorted(FLOAT_UNARY))
def test_float_unary(B, op, d):
    if not B.supports(d):
        pytest.skip("no shader-f16")
    lo = 0.1 if op in ("log", "sqrt") else -3.0
    a = sample((3, 5), d, lo, 3.0)
    if op == "round":
        a[0, :4] = [0.5, 1.5, 2.5, -0.5]
    for p, ref in views(B, a, d):
        want = FLOAT_UNARY[op](ref.astype(np.float64))
        check(B.to_numpy(getattr(B, op)(p)), want, d)


def test_float_special_values(B):
    a = np.array([0.0, -1.0, np.inf, -np.inf, np.nan, 30.0, -30.0], np.float32)
    p = B.from_numpy(a, dt.float32)
    with np.errstate(all="ignore"):
        check(B.to_numpy(B.log(p)), np.log(a.astype(np.float64)), dt.float32)
        check(B.to_numpy(B.sqrt(p)), np.sqrt(a.astype(np.float64)), dt.float32)
        check(B.to_numpy(B.tanh(p)), np.tanh(a.astype(np.float64)), dt.float32)
    assert B.to_numpy(B.isnan(p)).tolist() == np.isnan(a).tolist()
    assert B.to_numpy(B.isinf(p)).tolist() == np.isinf(a).tolist()
    assert B.to_numpy(B.ne(p, p)).tolist() == np.isnan(a).tolist()
    m = B.to_numpy(B.maximum(p, B.from_numpy(np.zeros(7, np.float32), dt.float32)))
    assert np.isnan(m[4]) and m[2] == np.inf and m[1] == 0


@pytest.mark.parametrize("d", INT_DTYPES)
def test_int_unary(B, d):
    a = sample((4, 3), d)
    for p, ref in views(B, a, d):
        r = ref.astype(np.int64)
        check(B.to_numpy(B.neg(p)), wrap(-r, d), d)
        check(B.to_numpy(B.abs(p)), wrap(np.abs(r), d), d)
        check(B.to_numpy(B.sign(p)), wrap(np.sign(r), d), d)
        check(B.to_numpy(B.bitwise_not(p)), wrap(~r, d), d)
        check(B.to_numpy(B.floor(p)), ref, d)
        check(B.to_numpy(B.logical_not(p)), r == 0, dt.bool_)
    with pytest.raises(DTypeError, match="floating"):
        B.exp(B.from_numpy(a, d))


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
    "minimum": np.minimum, "remainder": np.remainder, "floor_divide": np.floor_divide,
}
CMP = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
       "gt": np.greater, "ge": np.greater_equal, "logical_and": np.logical_and,
       "logical_or": np.logical_or, "logical_xor": np.logical_xor}


@pytest.mark.parametrize("d", [dt.float32, dt.float16] + INT_DTYPES)
def test_binary_broadcast_views(B, d):
    if not B.supports(d):
        pytest.skip("no shader-f16")
    a = sample((3, 4), d)
    b = sample((4,), d)
    b[b == 0] = 3
    if d.is_floating_point:
        b[np.abs(b) < 0.3] = 0.5
    ops = dict(BINARY)
    if d.is_floating_point:
        ops.update(div=np.divide, pow=lambda x, y: np.abs(x) ** y)
    else:
        ops.update(bitwise_and=np.bitwise_and, bitwise_or=np.bitwise_or, bitwise_xor=np.bitwise_xor)
    pb = B.from_numpy(b, d)
    for p, ref in views(B, a, d):
        for name, f in ops.items():
            lhs = B.abs(p) if name == "pow" else p
            got = B.to_numpy(getattr(B, name)(lhs, pb))
            with np.errstate(all="ignore"):
                want = f(ref.astype(np.float64) if d.is_floating_point else ref.astype(np.int64),
                         b.astype(np.float64) if d.is_floating_point else b.astype(np.int64))
            check(got, wrap(want, d), d)
        for name, f in CMP.items():
            check(B.to_numpy(getattr(B, name)(p, pb)), f(ref, b), dt.bool_)


@pytest.mark.parametrize("d", [dt.float32, dt.int32, dt.uint8, dt.bool_])
def test_binary_scalars(B, d):
    a = sample((5,), d)
    p = B.from_numpy(a, d)
    s = True if d is dt.bool_ else (2.5 if d.is_floating_point else 3)
    r = a.astype(np.float64 if d.is_floating_point else np.int64)
    check(B.to_numpy(B.mul(p, s)), wrap(r * s, d), d)
    check(B.to_numpy(B.lt(p, s)), r < s, dt.bool_)
    if d is not dt.bool_:
        check(B.to_numpy(B.sub(p, s)), wrap(r - s, d), d)
        check(B.to_numpy(B.pow(p, 2)), wrap(r ** 2, d), d)


def test_float_pow_negative_base_and_remainder_signs(B):
    a = np.array([-2.0, -2.0, 0.0, 0.0, 3.0, -7.5, 7.5], np.float32)
    b = np.array([3.0, 0.5, 2.0, -1.0, 0.0, 2.0, -2.0], np.float32)
    pa, pb = B.from_numpy(a, dt.float32), B.from_numpy(b, dt.float32)
    with np.errstate(all="ignore"):
        check(B.to_numpy(B.pow(pa, pb)), np.power(a.astype(np.float64), b), dt.float32)
    keep = b != 0
    got = B.to_numpy(B.remainder(pa, pb))[keep]
    np.testing.assert_allclose(got, np.remainder(a[keep], b[keep]))


def test_narrow_ints_wrap_like_torch(B):
    u = B.from_numpy(np.array([200, 3], np.uint8), dt.uint8)
    assert B.to_numpy(B.add(u, 100)).tolist() == [44, 103]
    assert B.to_numpy(B.neg(u)).tolist() == [56, 253]
    i8 = B.from_numpy(np.array([127, -128], np.int8), dt.int8)
    assert B.to_numpy(B.add(i8, 1)).tolist() == [-128, -127]


def test_where_and_masked_fill(B):
    c = RNG.random((3, 4)) < 0.5
    a = sample((3, 4), dt.float32)
    b = sample((4,), dt.float32)
    pc = B.from_numpy(c, dt.bool_)
    for p, ref in views(B, a, dt.float32):
        check(B.to_numpy(B.where(pc, p, B.from_numpy(b, dt.float32))), np.where(c, ref, b), dt.float32)
        check(B.to_numpy(B.where(pc, 1.5, p)), np.where(c, 1.5, ref), dt.float32)
        check(B.to_numpy(B.masked_fill(p, pc, -2.0)), np.where(c, -2.0, ref), dt.float32)
    ia = sample((3, 4), dt.int64)
    check(B.to_numpy(B.where(pc, B.from_numpy(ia, dt.int64), -1)), np.where(c, ia, -1), dt.int64)


@pytest.mark.parametrize("src", [dt.float32, dt.float16, dt.int32, dt.int64, dt.int8, dt.uint8, dt.bool_])
def test_cast_all_pairs(B, src):
    if not B.supports(src):
        pytest.skip("no shader-f16")
    a = sample((2, 6), src, -5, 5)
    if src.is_floating_point:
        a[0, :3] = [0.0, -0.7, 2.9]
    p = B.from_numpy(a, src)
    for d in [dt.float32, dt.int32, dt.int64, dt.int8, dt.uint8, dt.bool_] + (
            [dt.float16] if B.supports(dt.float16) else []):
        got = B.to_numpy(B.cast(p, d))
        if d is dt.bool_:
            want = a != 0
        elif src.is_floating_point and not d.is_floating_point:
            want = np.trunc(a.astype(np.float64)).astype(np.int64).astype(d.np)
        else:
            want = a.astype(np.int64 if not src.is_floating_point else np.float64).astype(d.np)
        np.testing.assert_array_equal(got, want, err_msg=f"{src.name}->{d.name}")


# ---------------------------------------------------------------------------- creation, dtypes
def test_full_arange_roundtrip(B):
    check(B.to_numpy(B.full((2, 3), 1.25, dt.float32)), np.full((2, 3), 1.25), dt.float32)
    check(B.to_numpy(B.full((), 7, dt.int64)), np.array(7), dt.int64)
    check(B.to_numpy(B.arange(3, -2, 5, dt.int32)), np.arange(3, -7, -2), dt.int32)
    check(B.to_numpy(B.arange(0.5, 0.25, 4, dt.float32)), 0.5 + 0.25 * np.arange(4), dt.float32)
    for d in (dt.float32, dt.int64, dt.uint8, dt.bool_, dt.int8):
        a = sample((3, 2), d)
        got = B.to_numpy(B.from_numpy(a, d))
        assert got.dtype == a.dtype and np.array_equal(got, a)


def test_empty_and_zero_d(B):
    e = B.from_numpy(np.zeros((0, 3), np.float32), dt.float32)
    assert B.to_numpy(B.exp(e)).shape == (0, 3)
    check(B.to_numpy(B.sum(e, (0,), False)), np.zeros(3), dt.float32)
    assert B.to_numpy(B.add(e, B.from_numpy(np.ones(3, np.float32), dt.float32))).shape == (0, 3)
    assert B.to_numpy(B.matmul(e, B.from_numpy(np.ones((3, 2), np.float32), dt.float32))).shape == (0, 2)
    with pytest.raises(ShapeError, match="empty"):
        B.max(e, (0,), False)
    z = B.from_numpy(np.array(2.0, np.float32), dt.float32)
    check(B.to_numpy(B.mul(z, z)), np.array(4.0), dt.float32)
    check(B.to_numpy(B.sum(z, (), False)), np.array(2.0), dt.float32)
    check(B.to_numpy(B.add(z, B.from_numpy(np.ones((2, 2), np.float32), dt.float32))),
          np.full((2, 2), 3.0), dt.float32)


def test_int64_overflow_and_float64_errors(B):
    ok = np.array([-(2 ** 31), 2 ** 31 - 1], np.int64)
    assert B.to_numpy(B.from_numpy(ok, dt.int64)).tolist() == ok.tolist()
    with pytest.raises(DTypeError, match="int32"):
        B.from_numpy(np.array([2 ** 40], np.int64), dt.int64)
    with pytest.raises(DTypeError, match="32-bit"):
        B.full((2,), 2 ** 35, dt.int64)
    with pytest.raises(UnsupportedError, match="NumPy"):
        B.from_numpy(np.zeros(2), dt.float64)
    with pytest.raises(UnsupportedError, match="float64"):
        B.full((2,), 1.0, dt.float64)
    assert not B.supports(dt.float64) and B.supports(dt.float32) and B.supports(dt.int64)
    assert B.supports(dt.bool_) and B.supports(dt.uint8)


def test_random_matches_core_philox(B):
    for seed, off, n in [(1, 0, 1000), (2 ** 40 + 7, 2 ** 32 - 3, 300)]:
        u = B.to_numpy(B.random_uniform((n,), seed, off, dt.float32))
        np.testing.assert_array_equal(u, philox.uniform(seed, off, n))
        g = B.to_numpy(B.random_normal((n // 10, 10), seed, off, dt.float32))
        np.testing.assert_allclose(g.ravel(), philox.normal(seed, off, n), rtol=2e-6, atol=2e-6)


# ---------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("d", [dt.float32, dt.float16, dt.int32, dt.int64, dt.uint8])
def test_reductions(B, d):
    if not B.supports(d):
        pytest.skip("no shader-f16")
    a = sample((4, 5, 6), d)
    for p, ref in views(B, a, d):
        r = ref.astype(np.float64 if d.is_floating_point else np.int64)
        for axes in [(0,), (1,), (2,), (0, 2), (0, 1, 2)]:
            for kd in (False, True):
                check(B.to_numpy(B.sum(p, axes, kd)), wrap(r.sum(axis=axes, keepdims=kd), d), d)
                check(B.to_numpy(B.max(p, axes, kd)), wrap(r.max(axis=axes, keepdims=kd), d), d)
                check(B.to_numpy(B.min(p, axes, kd)), wrap(r.min(axis=axes, keepdims=kd), d), d)
        for ax in range(3):
            check(B.to_numpy(B.argmax(p, ax, False)), np.argmax(ref, ax), dt.int64)
            check(B.to_numpy(B.argmin(p, ax, True)), np.expand_dims(np.argmin(ref, ax), ax), dt.int64)


def test_long_reductions_use_two_passes(B):
    a = RNG.standard_normal((2, 50001)).astype(np.float32)
    a[1, 40000] = 100.0
    a[1, 45000] = 100.0  # tie: first index wins
    a[0, 33333] = np.nan  # NaN counts as the extreme
    p = B.from_numpy(a, dt.float32)
    got = B.to_numpy(B.sum(p, (1,), False))
    np.testing.assert_allclose(got[1], a[1].astype(np.float64).sum(), rtol=1e-4)
    assert np.isnan(got[0])
    assert B.to_numpy(B.argmax(p, 1, False)).tolist() == [33333, 40000]
    assert np.isnan(B.to_numpy(B.max(p, (1,), False))[0])
    full = B.to_numpy(B.sum(B.from_numpy(a[1:], dt.float32), (0, 1), False))
    np.testing.assert_allclose(full, a[1].astype(np.float64).sum(), rtol=1e-4)


# ---------------------------------------------------------------------------- movement
def test_movement_views_and_copies(B):
    a = sample((2, 3, 4), dt.float32)
    p = B.from_numpy(a, dt.float32)
    t = B.permute(p, (2, 0, 1))
    assert t.st is p.st  # a view
    check(B.to_numpy(B.reshape(t, (4, 6))), a.transpose(2, 0, 1).reshape(4, 6), dt.float32)
    check(B.to_numpy(B.reshape(p, (6, 4))), a.reshape(6, 4), dt.float32)
    assert B.reshape(p, (6, 4)).st is p.st
    s = B.slice(p, (0, 1, 0), (2, 3, 4), (1, 1, 3))
    check(B.to_numpy(s), a[:, 1:3, ::3], dt.float32)
    check(B.to_numpy(B.flip(p, (0, 2))), a[::-1, :, ::-1], dt.float32)
    e = B.expand(B.from_numpy(a[:, :1], dt.float32), (2, 5, 4))
    check(B.to_numpy(e), np.broadcast_to(a[:, :1], (2, 5, 4)), dt.float32)
    check(B.to_numpy(B.pad(t, ((1, 0), (0, 2), (1, 1)), -1.0)),
          np.pad(a.transpose(2, 0, 1), ((1, 0), (0, 2), (1, 1)), constant_values=-1.0), dt.float32)
    empty = B.from_numpy(np.zeros((2, 0, 4), np.float32), dt.float32)
    got = B.cat([B.from_numpy(a, dt.float32), empty,
                 B.flip(B.from_numpy(a[:, :2], dt.float32), (1,))], 1)
    check(B.to_numpy(got), np.concatenate([a, a[:, 1::-1]], 1), dt.float32)
    i = B.from_numpy(np.arange(6).reshape(2, 3), dt.int64)
    check(B.to_numpy(B.cat([i, i], 0)), np.concatenate([np.arange(6).reshape(2, 3)] * 2), dt.int64)


def test_many_dims_beyond_kernel_limit(B):
    a = sample((2,) * 10, dt.float32)
    p = B.from_numpy(a, dt.float32)
    perm = tuple(reversed(range(10)))
    check(B.to_numpy(B.exp(B.permute(p, perm))), np.exp(a.transpose(perm).astype(np.float64)), dt.float32)
    check(B.to_numpy(B.sum(B.permute(p, perm), (0, 3, 5), False)),
          a.transpose(perm).astype(np.float64).sum((0, 3, 5)), dt.float32)
