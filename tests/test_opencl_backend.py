"""OpenCL backend at the primitive level: every elementwise, reduction, movement and indexing
primitive x dtype against NumPy float64 (or exact integer) references, on dense, transposed,
sliced, flipped and broadcast views, empty and 0-d tensors, NaN; Philox equality; transfers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from strata.core import dtype as dt
from strata.core import philox
from strata.core.errors import DTypeError, ShapeError, UnsupportedError
from strata.tests._opencl_util import check, dtypes_of, make_backend, put, sample


@pytest.fixture(scope="module")
def B():
    return make_backend()


def _erf(x):
    return torch.erf(torch.from_numpy(x.astype(np.float64))).numpy()


FLOAT_UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "erf": _erf, "abs": np.abs,
    "sign": lambda x: np.nan_to_num(np.sign(x)), "reciprocal": lambda x: 1.0 / x,
    "floor": np.floor, "ceil": np.ceil, "round": np.rint, "trunc": np.trunc,
    "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)), "log1p": np.log1p, "expm1": np.expm1,
    "tan": np.tan, "rsqrt": lambda x: 1 / np.sqrt(x), "isnan": np.isnan, "isinf": np.isinf,
    "logical_not": np.logical_not,
}
POSITIVE = {"log", "sqrt", "rsqrt", "log1p"}
INT_UNARY = {"neg": np.negative, "abs": np.abs, "sign": np.sign, "bitwise_not": np.invert,
             "relu": lambda x: np.maximum(x, 0), "floor": lambda x: x, "ceil": lambda x: x,
             "round": lambda x: x, "trunc": lambda x: x, "logical_not": np.logical_not,
             "isnan": np.isnan, "isinf": np.isinf}
BOOL_UNARY = {"abs": lambda x: x, "sign": lambda x: x, "bitwise_not": np.logical_not,
              "logical_not": np.logical_not, "isnan": np.isnan, "floor": lambda x: x}


def _floor_div(a, b):
    return np.floor_divide(a, b)


FLOAT_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
                "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
                "remainder": np.remainder, "floor_divide": _floor_div}
INT_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
              "minimum": np.minimum, "remainder": np.remainder, "floor_divide": _floor_div,
              "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or,
              "bitwise_xor": np.bitwise_xor}
BOOL_BINARY = {"add": np.logical_or, "mul": np.logical_and, "maximum": np.logical_or,
               "minimum": np.logical_and, "bitwise_and": np.bitwise_and,
               "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}
COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
           "gt": np.greater, "ge": np.greater_equal, "logical_and": np.logical_and,
           "logical_or": np.logical_or, "logical_xor": np.logical_xor}
LAYOUTS = ["contig", "T", "sliced", "flipped"]


@pytest.mark.parametrize("dname", ["float32", "float64", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_unary_every_op(B, dname):
    d = dt.from_name(dname)
    if not B.supports(d):
        pytest.skip(f"{B} has no {dname}")
    rng = np.random.default_rng(1)
    table = FLOAT_UNARY if d.kind == 2 else (INT_UNARY if d.kind == 1 else BOOL_UNARY)
    for i, (op, ref) in enumerate(sorted(table.items())):
        lo = 0.1 if op in POSITIVE else (-1.2 if op == "tan" else -4)
        x = sample((3, 4, 5), d, rng, lo=lo, hi=4)
        kind = LAYOUTS[i % len(LAYOUTS)]
        want = ref(x.astype(np.float64) if d.kind == 2 else x)
        out_d = dt.bool_ if op in ("isnan", "isinf", "logical_not") else d
        check(B, getattr(B, op)(put(B, x, d, kind)), want, out_d, what=f"{op} {dname} {kind}")


@pytest.mark.parametrize("dname", ["float32", "float64", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_binary_every_op_broadcast_and_scalars(B, dname):
    d = dt.from_name(dname)
    if not B.supports(d):
        pytest.skip(f"{B} has no {dname}")
    rng = np.random.default_rng(2)
    table = dict(FLOAT_BINARY if d.kind == 2 else (INT_BINARY if d.kind == 1 else BOOL_BINARY))
    table.update(COMPARE)
    for i, (op, ref) in enumerate(sorted(table.items())):
        lo, hi = (-4, 4) if d.is_signed else (0, 9)
        a = sample((3, 1, 5), d, rng, lo, hi)
        b = sample((4, 5), d, rng, lo, hi)
        if op in ("remainder", "floor_divide") and d.kind != 0:
            b[b == 0] = 3
        if op == "pow":
            a = np.abs(a) + (0.5 if d.kind == 2 else 0)
            b = sample((4, 5), d, rng, 0, 3)
        out_d = dt.bool_ if op in COMPARE else d
        calc = np.float64 if d.kind == 2 else d.np
        want = ref(a.astype(calc), b.astype(calc))
        kind = LAYOUTS[i % len(LAYOUTS)]
        pa, pb = put(B, a, d, kind), put(B, b, d, LAYOUTS[(i + 1) % len(LAYOUTS)])
        check(B, getattr(B, op)(pa, pb), want, out_d, what=f"{op} {dname} {kind}")
        s = {0: True, 1: 3, 2: 1.5}[d.kind]
        sv = np.asarray(s, dtype=calc)
        check(B, getattr(B, op)(pa, s), ref(a.astype(calc), sv), out_d, what=f"{op} {dname} t,s")
        check(B, getattr(B, op)(s, pb), ref(sv, b.astype(calc)), out_d, what=f"{op} {dname} s,t")


def test_elementwise_rejects_undefined_dtype_ops(B):
    xi = B.from_numpy(np.arange(3, dtype=np.int32), dt.int32)
    xb = B.from_numpy(np.array([True, False]), dt.bool_)
    with pytest.raises(DTypeError, match="exp"):
        B.exp(xi)
    with pytest.raises(DTypeError, match="sub"):
        B.sub(xb, xb)
    with pytest.raises(DTypeError, match="dtypes"):
        B.add(xi, B.from_numpy(np.arange(3, dtype=np.int64), dt.int64))


def test_nan_and_float_semantics(B):
    x = np.array([np.nan, -0.0, 0.0, -2.5, 2.5, 0.5, 1.5, -np.inf, np.inf], np.float32)
    y = np.array([1.0, np.nan, -1.0, 2.0, -7.0, 0.0, 3.0, 1.0, np.nan], np.float32)
    px, py = B.from_numpy(x, dt.float32), B.from_numpy(y, dt.float32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for op, ref in [("maximum", torch.maximum), ("minimum", torch.minimum),
                    ("remainder", torch.remainder), ("floor_divide", torch.floor_divide)]:
        check(B, getattr(B, op)(px, py), ref(tx, ty).numpy(), what=op)
    for op in ("sign", "relu", "round", "isnan", "isinf", "sigmoid"):
        check(B, getattr(B, op)(px), getattr(torch, op)(tx).numpy(), what=op)
    check(B, B.max(px, (0,), False), np.float32(np.nan))
    check(B, B.argmax(px, 0, False), np.int64(0))
    check(B, B.argmin(py, 0, False), np.int64(1))


def test_integer_division_by_zero_does_not_trap(B):
    for d in (dt.int8, dt.int32, dt.int64):
        lo = np.iinfo(d.np).min
        a = B.from_numpy(np.array([7, -7, lo, lo, 5], d.np), d)
        b = B.from_numpy(np.array([0, 0, -1, 3, -1], d.np), d)
        check(B, B.remainder(a, b), np.array([0, 0, 0, np.remainder(lo, 3), 0], d.np))
        check(B, B.floor_divide(a, b),
              np.array([0, 0, lo, lo // 3, -5], d.np))  # MIN // -1 wraps like NumPy
    ip = B.from_numpy(np.array([2, -1, 1, 3], np.int64), dt.int64)
    check(B, B.pow(ip, B.from_numpy(np.array([-1, -3, -2, 39], np.int64), dt.int64)),
          np.array([0, -1, 1, 3 ** 39], np.int64))


@pytest.mark.parametrize("sname", ["float32", "float64", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_cast_all_pairs(B, sname):
    src = dt.from_name(sname)
    if not B.supports(src):
        pytest.skip(f"{B} has no {sname}")
    rng = np.random.default_rng(3)
    x = sample((4, 6), src, rng, -100, 100)
    if src.kind == 2:
        x[0, :3] = [2.7, -2.7, 0.0]
    for dst in dtypes_of(B):
        if src.kind == 2 and not dst.is_signed and dst.kind == 1:
            xs = np.abs(x)  # negative float -> unsigned is undefined in C and NumPy alike
        else:
            xs = x
        if dst is dt.bool_:
            want = xs != 0
        elif src.kind == 2 and dst.kind == 1:
            want = np.trunc(xs).astype(dst.np)
        else:
            want = xs.astype(dst.np)
        check(B, B.cast(put(B, xs, src, "T"), dst), want, dst, what=f"{sname}->{dst.name}")


def test_where_tensor_and_scalar_operands(B):
    rng = np.random.default_rng(4)
    c = rng.random((3, 1, 6)) < 0.5
    a = sample((4, 6), dt.float32, rng)
    b = sample((3, 4, 1), dt.float32, rng)
    pc, pa, pb = put(B, c, dt.bool_, "sliced"), put(B, a, dt.float32, "T"), B.from_numpy(b, dt.float32)
    check(B, B.where(pc, pa, pb), np.where(c, a, b))
    check(B, B.where(pc, pa, -1.5), np.where(c, a, np.float32(-1.5)).astype(np.float32))
    check(B, B.where(pc, 2.0, pb), np.where(c, np.float32(2), b))
    ci = B.from_numpy(c.reshape(18), dt.bool_)
    check(B, B.where(ci, 7, B.from_numpy(np.arange(18), dt.int64)),
          np.where(c.reshape(18), 7, np.arange(18)))
    check(B, B.masked_fill(pa, B.from_numpy(a > 0, dt.bool_), -np.inf), np.where(a > 0, -np.inf, a))


@pytest.mark.parametrize("dname", ["float32", "float64", "int64", "int32", "int8", "uint8", "bool"])
def test_reductions_any_axes(B, dname):
    d = dt.from_name(dname)
    if not B.supports(d):
        pytest.skip(f"{B} has no {dname}")
    rng = np.random.default_rng(5)
    x = sample((4, 5, 6), d, rng, -50, 50)
    ref = x.astype(np.float64) if d.kind == 2 else x
    for kind in ("contig", "T", "flipped"):
        p = put(B, x, d, kind)
        for axes in [(), (0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)]:
            for keep in (False, True):
                for op, f in (("max", np.max), ("min", np.min)) + (() if d is dt.bool_ else (("sum", np.sum),)):
                    want = f(ref, axis=axes, keepdims=keep) if axes else ref
                    if op == "sum" and d.kind == 1:
                        want = want.astype(d.np)  # sum keeps the dtype (wraps like torch)
                    check(B, getattr(B, op)(p, axes, keep), want, d, what=f"{op}{axes} {kind}")
        if d is not dt.bool_:
            for axis in range(3):
                check(B, B.argmax(p, axis, False), np.argmax(ref, axis), dt.int64)
                check(B, B.argmin(p, axis, True), np.expand_dims(np.argmin(ref, axis), axis))


def test_reductions_long_rows_use_tree_and_chunks(B):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 300_001)).astype(np.float32)
    p = B.from_numpy(x, dt.float32)
    check(B, B.sum(p, (1,), False), x.astype(np.float64).sum(1), rtol=2e-5, atol=1e-3)
    check(B, B.sum(p, (0, 1), False), x.astype(np.float64).sum(), rtol=2e-5, atol=1e-2)
    check(B, B.max(B.permute(p, (1, 0)), (0,), True), x.max(1)[None, :])
    # ties give the first index on the tree path too
    t = np.zeros((2, 5000), np.float32)
    t[0, [17, 900, 4999]] = 3.0
    t[1, [4000, 12]] = -1.0
    pt = B.from_numpy(t, dt.float32)
    check(B, B.argmax(pt, 1, False), np.array([17, 0]))
    check(B, B.argmin(pt, 1, False), np.array([0, 12]))
    t[1, 3000] = np.nan
    t[1, 3500] = np.nan
    check(B, B.argmax(B.from_numpy(t, dt.float32), 1, False), np.array([17, 3000]))
    ix = rng.integers(-9, 9, (5, 70_000)).astype(np.int64)
    check(B, B.sum(B.from_numpy(ix, dt.int64), (1,), False), ix.sum(1))


def test_reductions_empty_and_0d(B):
    e = B.from_numpy(np.zeros((3, 0), np.float32), dt.float32)
    check(B, B.sum(e, (1,), False), np.zeros(3, np.float32))
    check(B, B.sum(e, (0,), True), np.zeros((1, 0), np.float32))
    with pytest.raises(ShapeError):
        B.max(e, (1,), False)
    with pytest.raises(ShapeError):
        B.argmax(e, 1, False)
    z = B.from_numpy(np.array(2.5, np.float32), dt.float32)
    check(B, B.sum(z, (), False), np.float32(2.5))
    check(B, B.argmax(z, 0, False), np.int64(0))
    check(B, B.exp(z), np.exp(np.float32(2.5)))


def test_movement_views_share_storage(B):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    p = B.from_numpy(x, dt.float32)
    views = {
        "reshape": (B.reshape(p, (6, 4)), x.reshape(6, 4)),
        "permute": (B.permute(p, (2, 0, 1)), x.transpose(2, 0, 1)),
        "expand": (B.expand(B.reshape(p, (2, 1, 12)), (2, 5, 12)),
                   np.broadcast_to(x.reshape(2, 1, 12), (2, 5, 12))),
        "slice": (B.slice(p, (1, 0, 1), (2, 3, 4), (1, 2, 2)), x[1:2, 0:3:2, 1:4:2]),
        "flip": (B.flip(p, (0, 2)), x[::-1, :, ::-1]),
    }
    for name, (v, want) in views.items():
        assert v.storage is p.storage, f"{name} copied"
        check(B, v, want, what=name)
    # a permuted tensor reshapes into a view where the order allows, else into a copy
    t = B.permute(p, (1, 0, 2))
    merged = B.reshape(t, (3, 2, 2, 2))
    assert merged.storage is p.storage
    check(B, merged, x.transpose(1, 0, 2).reshape(3, 2, 2, 2))
    flat = B.reshape(t, (24,))
    assert flat.storage is not p.storage
    check(B, flat, x.transpose(1, 0, 2).reshape(24))
    with pytest.raises(ShapeError):
        B.reshape(p, (5, 5))
    with pytest.raises(ShapeError):
        B.expand(p, (2, 3, 5))


def test_pad_and_cat(B):
    rng = np.random.default_rng(7)
    for d in dtypes_of(B):
        x = sample((3, 4), d, rng)
        px = put(B, x, d, "T")
        check(B, B.pad(px, ((1, 2), (0, 3)), 1), np.pad(x, ((1, 2), (0, 3)), constant_values=1), d)
        y = sample((3, 2), d, rng)
        check(B, B.cat([px, put(B, y, d, "flipped"), px], 1), np.concatenate([x, y, x], 1), d)
    e = B.from_numpy(np.zeros((0, 4), np.float32), dt.float32)
    f = B.from_numpy(np.ones((2, 4), np.float32), dt.float32)
    check(B, B.cat([e, f], 0), np.ones((2, 4), np.float32))
    with pytest.raises(ShapeError):
        B.cat([f, B.from_numpy(np.ones((2, 3), np.float32), dt.float32)], 0)


def test_gather_and_scatter_add(B):
    rng = np.random.default_rng(8)
    for d in dtypes_of(B):
        x = sample((4, 5, 6), d, rng, -9, 9)
        for axis in range(3):
            ishape = [3, 4, 5]
            idx = rng.integers(0, x.shape[axis], ishape).astype(np.int64)
            px = put(B, x, d, "T")
            pi = put(B, idx, dt.int64, "flipped")
            check(B, B.gather(px, axis, pi), np.take_along_axis(_trim(x, ishape, axis), idx, axis),
                  d, what=f"gather {d.name} {axis}")
            src = sample(tuple(ishape), d, rng, -9, 9)
            want = x.copy()
            _scatter_add_ref(want, axis, idx, src, d)
            got = B.scatter_add(px, axis, pi, put(B, src, d, "sliced"))
            check(B, got, want, d, what=f"scatter_add {d.name} {axis}")
    # many duplicates stress the atomic adds
    n = 20000
    idx = rng.integers(0, 7, n).astype(np.int64)
    ones = B.full((n,), 1.0, dt.float32)
    got = B.scatter_add(B.full((7,), 0.0, dt.float32), 0, B.from_numpy(idx, dt.int64), ones)
    check(B, got, np.bincount(idx, minlength=7).astype(np.float32))
    emb = sample((10, 3), dt.float32, rng)
    sel = np.array([3, 3, 0, 9], np.int64)
    check(B, B.index_select(B.from_numpy(emb, dt.float32), 0, B.from_numpy(sel, dt.int64)), emb[sel])


def _trim(x, ishape, axis):
    sl = tuple(slice(None) if i == axis else slice(0, s) for i, s in enumerate(ishape))
    return x[sl]


def _scatter_add_ref(out, axis, idx, src, d):
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos]
        if d is dt.bool_:
            out[tuple(tgt)] = out[tuple(tgt)] | src[pos]
        else:
            out[tuple(tgt)] = (out[tuple(tgt)] + src[pos]).astype(out.dtype)


def test_philox_matches_reference(B):
    for seed, offset, n in [(0, 0, 1000), (1234567890123, 5, 4099), (2**63 + 7, 2**32 - 3, 300)]:
        u = B.random_uniform((n,), seed, offset, dt.float32)
        np.testing.assert_array_equal(B.to_numpy(u), philox.uniform(seed, offset, n))
        g = B.to_numpy(B.random_normal((n,), seed, offset, dt.float32))
        np.testing.assert_allclose(g, philox.normal(seed, offset, n), rtol=2e-6, atol=2e-6)
        if B.supports(dt.float64):
            ud = B.random_uniform((n,), seed, offset, dt.float64)
            np.testing.assert_array_equal(B.to_numpy(ud), philox.uniform(seed, offset, n, True))
            gd = B.to_numpy(B.random_normal((n,), seed, offset, dt.float64))
            np.testing.assert_allclose(gd, philox.normal(seed, offset, n, True), rtol=1e-12, atol=1e-12)
    r = B.to_numpy(B.random_uniform((3, 4), 9, 0, dt.float32))
    np.testing.assert_array_equal(r, philox.uniform(9, 0, 12).reshape(3, 4))
    assert B.to_numpy(B.random_uniform((0, 3), 1, 0, dt.float32)).shape == (0, 3)


def test_transfers_creation_and_dtype_support(B):
    rng = np.random.default_rng(9)
    for d in dtypes_of(B):
        for shape in [(), (0,), (3, 0, 2), (5,), (2, 3, 4)]:
            x = sample(shape, d, rng)
            got = B.to_numpy(B.from_numpy(x, d))
            assert got.dtype == d.np and got.shape == x.shape
            np.testing.assert_array_equal(got, x)
        check(B, B.full((2, 3), 1 if d is dt.bool_ else 3, d), np.full((2, 3), 1 if d is dt.bool_ else 3, d.np), d)
        n = 5
        want = (2 + np.arange(n) * 3).astype(d.np) if d is not dt.bool_ else None
        if want is not None:
            check(B, B.arange(2, 3, n, d), want, d)
    check(B, B.full((2,), -1, dt.uint8), np.array([255, 255], np.uint8))  # ints wrap like NumPy
    check(B, B.arange(0.5, 0.25, 4, dt.float32), np.array([0.5, 0.75, 1.0, 1.25], np.float32))
    assert B.supports(dt.float32) and B.supports(dt.int64)
    for d in (dt.float16, dt.float64):
        if not B.supports(d):
            with pytest.raises(UnsupportedError, match=d.name):
                B.from_numpy(np.zeros(2, d.np), d)
            with pytest.raises(UnsupportedError, match=d.name):
                B.full((2,), 0, d)
    lim = B.limits()
    assert lim["max_buffer_bytes"] > 0 and lim["compute_units"] >= 1 and B.device_name()


def test_float16_follows_the_device_extension(B):
    assert B.supports(dt.float16) == ("cl_khr_fp16" in B._rt.device.extensions.split())
    assert B.supports(dt.float64) == ("cl_khr_fp64" in B._rt.device.extensions.split())


def test_allocator_hook_sees_every_buffer(B):
    from strata.backends import OpenCL

    class Counting:
        def __init__(self, inner):
            self.inner, self.allocs, self.frees = inner, 0, 0

        def alloc(self, nbytes):
            self.allocs += 1
            return self.inner.alloc(nbytes)

        def free(self, buf):
            self.frees += 1
            self.inner.free(buf)

    C = OpenCL()
    C.allocator = Counting(C.allocator)
    x = C.from_numpy(np.ones((4, 4), np.float32), dt.float32)
    y = C.exp(C.add(x, 1.0))
    s = C.sum(C.permute(y, (1, 0)), (0,), False)
    check(C, s, np.full(4, 4 * math.e ** 2, np.float32))
    assert C.allocator.allocs == 4
    del x, y, s
    import gc
    gc.collect()
    assert C.allocator.frees == 4


def test_kernels_are_built_once(B):
    x = B.from_numpy(np.ones(3, np.float32), dt.float32)
    B.add(x, x)
    k1 = B._ew_kernel(dt.float32, "add", "tt_c")
    B.add(x, x)
    assert B._ew_kernel(dt.float32, "add", "tt_c") is k1


def test_work_is_queued_without_finish(B):
    x = B.from_numpy(np.ones(1 << 16, np.float32), dt.float32)
    for _ in range(20):
        x = B.add(x, 1.0)
    B.sync()
    check(B, x, np.full(1 << 16, 21, np.float32))


def test_import_is_safe_without_pyopencl():
    import subprocess
    import sys
    code = (
        "import sys; sys.modules['pyopencl'] = None\n"
        "from strata.backends import OpenCL\n"
        "from strata.core.errors import BackendError\n"
        "try:\n"
        "    OpenCL()\n"
        "except BackendError as e:\n"
        "    print('ERR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ERR" in r.stdout and "pip install strata[opencl]" in r.stdout


def test_unknown_platform_or_device_is_a_clear_error(B):
    from strata.backends import OpenCL
    from strata.core.errors import BackendError
    with pytest.raises(BackendError, match="no platform matches"):
        OpenCL(platform="no-such-platform")
    with pytest.raises(BackendError, match="device"):
        OpenCL(device=99)
    assert str(OpenCL(device=0)) == "OpenCL(device=0)" and str(B) == "OpenCL()"
