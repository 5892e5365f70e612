"""CuPy fused kernels (backends/cuda/) launched on a GPU: programs built with ProgramBuilder
and through Fusion stacks, checked against tests/_fusion_ref.py's NumPy evaluation and the
unfused CuPy ops. Skips without cupy or a CUDA device; the generated CUDA C itself is checked
on the CPU by tests/test_cuda_fused_codegen.py."""
from __future__ import annotations

import numpy as np
import pytest

import strata as st
from strata import fusion
from strata.core import dtype as dt
from strata.decorators.fusion import ProgramBuilder
from strata.tests._fusion_ref import (KINDS, check_outputs, check_random_int_program,
                                      make_input, np_eval, random_float_program, sample)
from strata.tests.test_backend_cupy import REASON
from strata.tests.test_cuda_fused_codegen import (ATOL_SCALE, INEXACT, RTOL, every_op_program,
                                                  reduce_program)

pytestmark = pytest.mark.skipif(REASON is not None, reason=f"CuPy tests need a GPU: {REASON}")


@pytest.fixture(scope="module")
def C():
    from strata.backends import CuPy
    return CuPy()


def _misses(f):
    s0 = fusion.stats()
    r = f()
    s1 = fusion.stats()
    return r, s1["cache_misses"] - s0["cache_misses"], s1["cache_hits"] - s0["cache_hits"]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
def test_every_op_matches_numpy(C, d):
    """Every op the generator has for d, all outputs of one kernel, on a transposed and a
    broadcast input: exact but for transcendental ops (CUDA's libm, a few ulp)."""
    p, ops = every_op_program(d)
    rng = np.random.default_rng(1)
    a = sample(rng, (5, 7), d, -4, 4)
    yv = sample(rng, (7,), d, -4, 4)
    if d.kind == 1:
        yv[yv == 0] = 5
        yv[:2] = (0, -1) if d.is_signed else (0, 1)
        yv = np.where(np.abs(yv.astype(np.int64)) > 6, yv % 7, yv).astype(d.np)
    if d.kind == 2:
        a[0, :3] = (np.nan, np.inf, -0.0)
    px = C.permute(C.from_numpy(np.ascontiguousarray(a.T), d), (1, 0))
    got, miss, _ = _misses(lambda: C.fused_elementwise(p, [px, C.from_numpy(yv, d)], (5, 7)))
    assert miss == 1
    want = np_eval(p, [a, yv], (5, 7))
    for g, w, s, op in zip(got, want, p.outputs, ops):
        od = p.slot_dtype(s)
        g = C.to_numpy(g)
        assert g.dtype == od.np and g.shape == (5, 7), op
        if od.kind == 2 and op in INEXACT:
            atol = ATOL_SCALE[od] * (1.0 + np.max(np.abs(w[np.isfinite(w)]), initial=0.0))
            np.testing.assert_allclose(g.astype(np.float64), w, rtol=4 * RTOL[od], atol=atol,
                                       equal_nan=True, err_msg=op)
        else:
            np.testing.assert_array_equal(g, w.astype(od.np), err_msg=op)


@pytest.mark.parametrize("seed", range(5))
def test_random_float_programs_match_unfused_and_numpy(C, seed):
    rng = np.random.default_rng(100 + seed)
    d = (dt.float32, dt.float32, dt.float32, dt.float64, dt.float16)[seed]
    shape = ((4, 6, 5), (3, 17), (33,), (2, 3, 4, 5), (7, 9))[seed]
    n_in = int(rng.integers(2, 5))
    p = random_float_program(rng, d, n_in, int(rng.integers(6, 14)))
    pairs = [make_input(C, rng, d, shape, KINDS[(seed + k) % len(KINDS)]) for k in range(n_in)]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    got = C.fused_elementwise(p, ins, shape)
    if d is dt.float16:
        # check_outputs' fused-vs-unfused tolerance is for float32/float64
        for g, w, s in zip(got, np_eval(p, arrays, shape), p.outputs):
            np.testing.assert_allclose(C.to_numpy(g).astype(np.float64), w, rtol=RTOL[d],
                                       atol=ATOL_SCALE[d] * (1 + np.max(np.abs(w))))
        return
    check_outputs(C, p, ins, arrays, shape, got, 1e-5 if d is dt.float32 else 1e-12, 1e-6)


@pytest.mark.parametrize("d", dt.INTEGER, ids=lambda d: d.name)
def test_random_int_programs_match_unfused(C, d):
    check_random_int_program(C, d)


def test_constants_and_sizes_reuse_the_kernel(C):
    rng = np.random.default_rng(4)
    a = sample(rng, (300,), dt.float32)
    x = C.from_numpy(a, dt.float32)
    for k, scale in enumerate((2.0, -0.5, 3.25)):
        b = ProgramBuilder()
        xi = b.input(dt.float32)
        p = b.finish([b.op("exp", b.op("mul", b.op("relu", xi), b.const(scale, dt.float32)))])
        (out,), miss, hit = _misses(lambda: C.fused_elementwise(p, [x], (300,)))
        assert (miss, hit) == ((1, 0) if k == 0 else (0, 1))
        np.testing.assert_allclose(C.to_numpy(out), np.exp(np.maximum(a, 0) * scale), rtol=1e-6)
    y = C.permute(C.from_numpy(sample(rng, (4, 5), dt.float32), dt.float32), (1, 0))
    _, miss, hit = _misses(lambda: C.fused_elementwise(p, [y], (5, 4)))
    assert (miss, hit) == (0, 1)


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_fused_reduce_matches_numpy_and_unfused(C, op):
    rng = np.random.default_rng(6)
    p = reduce_program(dt.float32)
    shape = (4, 5, 6)
    px, xa = make_input(C, rng, dt.float32, shape, "transposed")
    py, ya = make_input(C, rng, dt.float32, shape, "bcast")
    (full,) = np_eval(p, [xa, ya], shape)
    (ref,) = C.fused_elementwise(p, [px, py], shape)
    for axes in [(0,), (1,), (2,), (0, 2), (0, 1, 2)]:
        for keep in (False, True):
            got = C.to_numpy(C.fused_reduce(p, [px, py], shape, op, axes, keep))
            want = getattr(np, op)(full, axis=axes, keepdims=keep)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            # another summation order than CuPy's sum: a few float32 roundings apart
            np.testing.assert_allclose(got, C.to_numpy(getattr(C, op)(ref, axes, keep)),
                                       rtol=1e-5, atol=1e-5)


def test_fused_reduce_nan_float16_and_integers(C):
    rng = np.random.default_rng(8)
    for d in (dt.float32, dt.float16):
        p = reduce_program(d)
        a = sample(rng, (3, 2000), d)
        w = sample(rng, (2000,), d)
        a[1, 777] = np.nan
        (full,) = np_eval(p, [a, w], a.shape)
        ins = [C.from_numpy(a, d), C.from_numpy(w, d)]
        for op in ("sum", "max", "min"):
            got = C.to_numpy(C.fused_reduce(p, ins, a.shape, op, (1,), False))
            assert got.dtype == d.np and np.isnan(got[1])
            np.testing.assert_allclose(got.astype(np.float64), getattr(np, op)(full, axis=1),
                                       rtol=1e-4 if d is dt.float32 else 4e-3)
    b = ProgramBuilder()
    i = b.input(dt.int32)
    p = b.finish([b.op("cast", b.op("cast", b.op("mul", i, b.const(3, dt.int32)),
                                    dtype=dt.int8), dtype=dt.int64)])
    ia = rng.integers(-100, 100, (7, 300)).astype(np.int32)
    pi = C.from_numpy(ia, dt.int32)
    wrapped = (ia.astype(np.int64) * 3).astype(np.int8).astype(np.int64)
    got = C.to_numpy(C.fused_reduce(p, [pi], ia.shape, "sum", (0, 1), True))
    assert got.dtype == np.int64 and got.tolist() == [[int(wrapped.sum())]]
    np.testing.assert_array_equal(C.to_numpy(C.fused_reduce(p, [pi], ia.shape, "min", (1,),
                                                            False)), wrapped.min(1))


def test_fused_update_writes_into_donated_buffers(C):
    rng = np.random.default_rng(14)
    b = ProgramBuilder()
    p_, g, m = b.input(dt.float32), b.input(dt.float32), b.input(dt.float32)
    m2 = b.op("add", b.op("mul", m, b.const(0.9, dt.float32)), g)
    prog = b.finish([b.op("sub", p_, b.op("mul", m2, b.const(0.01, dt.float32))), m2])
    pa, ga, ma = (sample(rng, (100,), dt.float32) for _ in range(3))
    ins = [C.from_numpy(a, dt.float32) for a in (pa, ga, ma)]
    want = np_eval(prog, [pa, ga, ma], (100,))
    outs = C.fused_update(prog, ins, (100,), {0: 0, 1: 2})
    assert outs[0] is ins[0] and outs[1] is ins[2]
    for o, w in zip(outs, want):
        np.testing.assert_allclose(C.to_numpy(o), w, rtol=1e-6)


def test_fusion_chain_is_one_kernel():
    F = st.backend("Fusion(CuPy())")
    rng = np.random.default_rng(5)
    a, bb, c = (sample(rng, (64, 33), dt.float32) for _ in range(3))
    ta, tb = st.from_numpy(a, backend=F), st.from_numpy(bb, backend=F)
    tc = st.from_numpy(c, backend=F).T.contiguous().T
    with fusion.trace() as t:
        got = ((ta * tb + tc).relu() * 2).exp().numpy()
    assert t.kernels == 1
    np.testing.assert_allclose(got, np.exp(np.maximum(a.astype(np.float64) * bb + c, 0) * 2),
                               rtol=1e-5)
    with fusion.trace() as t:
        s = ((ta - tb) ** 2).sum(dim=1).numpy()
    assert t.kernels == 1
    np.testing.assert_allclose(s, ((a.astype(np.float64) - bb) ** 2).sum(1), rtol=1e-5)
