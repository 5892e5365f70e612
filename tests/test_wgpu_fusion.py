"""WGPU fused kernels (backends/wgpu/fused.py): programs built with ProgramBuilder and through
Fusion stacks, checked against a NumPy float64/int64 evaluation of the program and against the
unfused WGPU ops (the protocol's op-by-op interpreter on the same backend)."""
from __future__ import annotations


import numpy as np
import pytest

from strata.tests._wgpu_util import make_backend  # (sets XDG_RUNTIME_DIR)
pytest.importorskip("wgpu")

import strata as st  # noqa: E402
from strata.core import dtype as dt  # noqa: E402
from strata.core.errors import DTypeError, ShapeError  # noqa: E402
from strata.decorators.fusion import ProgramBuilder  # noqa: E402
from strata.decorators.fusion.ir import BINARY_OPS, COMPARE_OPS, UNARY_OPS  # noqa: E402
from strata.tests._fusion_ref import (KINDS, check_outputs, check_random_int_program,  # noqa: E402
                                      make_input, np_eval, random_float_program, sample,
                                      unfused)


@pytest.fixture(scope="module")
def B():
    return make_backend()


def dispatches(B) -> int:
    return B.rt.stats["dispatches"]


# ---------------------------------------------------------------------------- every op
def _applies(op, d):
    from strata.backends.wgpu import exprs
    cls = "u" if d in (dt.bool_, dt.uint8) else ("f" if d.is_floating_point else "i")
    for table in (exprs.UNARY, exprs.UNARY_BOOL, exprs.BINARY, exprs.COMPARE):
        if op in table:
            return cls in table[op] or (op == "bitwise_not" and d is dt.bool_)
    return cls == "f"  # log1p, expm1, gelu, gelu_tanh: float compositions


@pytest.mark.parametrize("d", [dt.float32, dt.float16, dt.int32, dt.int8, dt.uint8, dt.bool_])
def test_every_op_matches_unfused(B, d):
    """Each op on a strided and a broadcast input, as outputs of one program; for float16 and
    narrow integers applied twice (with a constant), so rounding and wrapping between ops count."""
    if not B.supports(d):
        pytest.skip("no shader-f16 on this adapter")
    rng = np.random.default_rng(1)
    b = ProgramBuilder()
    x, y = b.input(d), b.input(d)
    outs = []
    for op in sorted(UNARY_OPS | BINARY_OPS | COMPARE_OPS):
        if not _applies(op, d):
            continue
        binary = op in BINARY_OPS or (op in COMPARE_OPS and op not in ("isnan", "isinf"))
        r = b.op(op, x, y) if binary else b.op(op, x)
        if b.dtype_of(r) is d and d in (dt.float16, dt.int8, dt.uint8):
            k = b.const(0.7 if d.is_floating_point else (True if d is dt.bool_ else 3), d)
            r = b.op(op, r, k) if binary else b.op(op, r)
        outs.append(r)
    p = b.finish(outs)
    shape = (5, 7)
    a = sample(rng, shape, d, -4, 4)
    yv = sample(rng, (7,), d, -4, 4)
    if not d.is_floating_point and d is not dt.bool_:
        yv[yv == 0] = 5
    px = B.permute(B.from_numpy(np.ascontiguousarray(a.T), d), (1, 0))
    ins = [px, B.from_numpy(yv, d)]
    got = B.fused_elementwise(p, ins, shape)
    ref = unfused(B, p, ins, shape)
    for s, g, r in zip(p.outputs, got, ref):
        g, r = B.to_numpy(g), B.to_numpy(r)
        op = p.instrs[s - p.first_instr_slot][0]
        if d is dt.float32:
            np.testing.assert_allclose(g, r, rtol=2e-6, atol=1e-7, equal_nan=True, err_msg=op)
        else:
            np.testing.assert_array_equal(g, r, err_msg=op)


# ---------------------------------------------------------------------------- random programs
@pytest.mark.parametrize("seed", range(5))
def test_random_float_programs(B, seed):
    rng = np.random.default_rng(100 + seed)
    d = dt.float16 if seed == 4 and B.supports(dt.float16) else dt.float32
    shape = ((4, 6, 5), (3, 17), (33,), (2, 3, 4, 5), (7, 9))[seed]
    n_in = int(rng.integers(2, 5))
    p = random_float_program(rng, d, n_in, int(rng.integers(6, 14)))
    pairs = [make_input(B, rng, d, shape, KINDS[(seed + k) % len(KINDS)]) for k in range(n_in)]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    before = dispatches(B)
    got = B.fused_elementwise(p, ins, shape)
    assert dispatches(B) - before == 1  # three outputs, one kernel
    tol = (2e-2, 2e-2) if d is dt.float16 else (1e-4, 1e-5)
    check_outputs(B, p, ins, arrays, shape, got, *tol)


@pytest.mark.parametrize("d", [dt.int32, dt.int64, dt.int8, dt.uint8])
def test_random_int_programs(B, d):
    check_random_int_program(B, d)


def test_casts_where_and_comparisons(B):
    rng = np.random.default_rng(3)
    b = ProgramBuilder()
    x, m = b.input(dt.float32), b.input(dt.bool_)
    chain = [dt.int8, dt.uint8, dt.int32, dt.bool_, dt.float32]
    if B.supports(dt.float16):
        chain.append(dt.float16)
    v = b.op("mul", x, b.const(40.0, dt.float32))
    casts = []
    for d in chain:
        v = b.op("cast", v, dtype=d)
        casts.append(v)
    i = b.op("cast", x, dtype=dt.int32)
    sel = b.op("where", b.op("logical_and", m, b.op("ge", i, b.const(0, dt.int32))), i,
               b.const(-5, dt.int32))
    flag = b.op("logical_xor", b.op("ne", x, x), b.op("lt", x, b.const(0.5, dt.float32)))
    p = b.finish(casts + [sel, flag])
    shape = (8, 9)
    xa = sample(rng, shape, dt.float32, -5, 5)
    xa[0, :4] = [-0.7, 2.9, 3.2, -6.6]
    ma = rng.random((9,)) < 0.5
    ins = [B.from_numpy(xa, dt.float32), B.from_numpy(ma, dt.bool_)]
    got = B.fused_elementwise(p, ins, shape)
    check_outputs(B, p, ins, [xa, ma], shape, got, 1e-3, 0)
    assert B.to_numpy(got[0]).dtype == np.int8


@pytest.mark.parametrize("n", [64, 66])
def test_contiguous_four_wide_path(B, n):
    """Contiguous inputs and one broadcast value take the four-elements-per-invocation kernel
    (n % 4 == 0, offsets % 4 == 0); an odd size or offset falls back to the scalar kernel."""
    rng = np.random.default_rng(11)
    d16 = dt.float16 if B.supports(dt.float16) else dt.float32
    b = ProgramBuilder()
    x, s, y = b.input(dt.float32), b.input(dt.float32), b.input(dt.float32)
    if n % 4:  # a structure of its own, so that the kernels it compiles can be told apart
        x = b.op("neg", b.op("neg", x))
    h = b.op("gelu", b.op("sub", b.op("mul", x, s), y))
    outs = [h, b.op("cast", h, dtype=d16), b.op("cast", b.op("mul", h, b.const(50.0, dt.float32)),
                                               dtype=dt.uint8),
            b.op("gt", h, b.const(0.1, dt.float32))]
    p = b.finish(outs)
    xa = sample(rng, (n,), dt.float32)
    sa = np.float32(1.5)
    big = sample(rng, (n + 5,), dt.float32)
    for off in (4, 1):
        ya = big[off:off + n]
        ins = [B.from_numpy(xa, dt.float32), B.from_numpy(np.array(sa), dt.float32),
               B.slice(B.from_numpy(big, dt.float32), (off,), (off + n,), (1,))]
        got = B.fused_elementwise(p, ins, (n,))
        check_outputs(B, p, ins, [xa, np.array(sa), ya], (n,), got,
                      1e-3 if d16 is dt.float16 else 1e-5, 1e-6)
    vec = {k[-1] for k in B.rt._pipelines if k[0] == "fused" and k[1] == p.key}
    assert vec == ({True, False} if n % 4 == 0 else {False})


# ---------------------------------------------------------------------------- kernel cache
def test_constants_change_hits_the_cache(B):
    from strata import fusion
    rng = np.random.default_rng(4)
    a = sample(rng, (300,), dt.float32)
    x = B.from_numpy(a, dt.float32)
    results = []
    for scale in (2.0, -0.5, 3.25):
        b = ProgramBuilder()
        xi = b.input(dt.float32)
        p = b.finish([b.op("exp", b.op("mul", b.op("relu", xi), b.const(scale, dt.float32)))])
        s0 = fusion.stats()
        (out,) = B.fused_elementwise(p, [x], (300,))
        s1 = fusion.stats()
        results.append((s1["cache_hits"] - s0["cache_hits"],
                        s1["cache_misses"] - s0["cache_misses"]))
        np.testing.assert_allclose(B.to_numpy(out), np.exp(np.maximum(a, 0) * scale), rtol=1e-5)
    assert results[1] == (1, 0) and results[2] == (1, 0)
    # another shape and layout of the same structure is also a hit (sizes are metadata)
    s0 = fusion.stats()
    y = B.permute(B.from_numpy(sample(rng, (5, 4), dt.float32), dt.float32), (1, 0))
    B.fused_elementwise(p, [B.reshape(B.from_numpy(sample(rng, (20,), dt.float32), dt.float32),
                                      (4, 5))], (4, 5))
    assert fusion.stats()["cache_hits"] - s0["cache_hits"] == 1
    B.fused_elementwise(p, [y], (4, 5))  # strided: another specialisation
    assert fusion.stats()["cache_misses"] - s0["cache_misses"] == 1


# ---------------------------------------------------------------------------- through Fusion
def test_fusion_chain_is_one_kernel(B):
    from strata import fusion
    F = st.backend("Fusion(WGPU())")
    rng = np.random.default_rng(5)
    a, bb, c = (sample(rng, (64, 33), dt.float32) for _ in range(3))
    ta, tb = st.from_numpy(a, backend=F), st.from_numpy(bb, backend=F)
    tc = st.from_numpy(c, backend=F).T.contiguous().T  # strided view
    W = F.base()
    before = dispatches(W)
    with fusion.trace() as t:
        y = ((ta * tb + tc).relu() * 2).exp()
        got = y.numpy()
    assert t.kernels == 1 and t.fused == [("mul", "add", "relu", "mul", "exp")]
    assert dispatches(W) - before == 1
    np.testing.assert_allclose(got, np.exp(np.maximum(a.astype(np.float64) * bb + c, 0) * 2),
                               rtol=1e-5)
    with fusion.trace() as t:
        s = ((ta - tb) ** 2).sum(dim=1).numpy()
    assert t.kernels == 1
    np.testing.assert_allclose(s, ((a.astype(np.float64) - bb) ** 2).sum(1), rtol=1e-5)


# ---------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_fused_reduce_matches_unfused(B, op):
    rng = np.random.default_rng(6)
    b = ProgramBuilder()
    x, y = b.input(dt.float32), b.input(dt.float32)
    p = b.finish([b.op("sub", b.op("tanh", b.op("mul", x, y)),
                       b.op("mul", y, b.const(0.25, dt.float32)))])
    shape = (4, 5, 6)
    px, xa = make_input(B, rng, dt.float32, shape, "transposed")
    py, ya = make_input(B, rng, dt.float32, shape, "bcast")
    (full,) = np_eval(p, [xa, ya], shape)
    (ref,) = unfused(B, p, [px, py], shape)
    for axes in [(0,), (1,), (2,), (0, 2), (0, 1, 2)]:
        for keep in (False, True):
            before = dispatches(B)
            got = B.to_numpy(B.fused_reduce(p, [px, py], shape, op, axes, keep))
            assert dispatches(B) - before <= 2  # the kernel (+ the readback's copy is no dispatch)
            want = getattr(np, op)(full, axis=axes, keepdims=keep)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(got, B.to_numpy(getattr(B, op)(ref, axes, keep)))


def test_fused_reduce_long_and_integer(B):
    rng = np.random.default_rng(8)
    b = ProgramBuilder()
    x = b.input(dt.float32)
    p = b.finish([b.op("exp", b.op("neg", b.op("mul", x, x)))])
    a = rng.standard_normal((3, 20000)).astype(np.float32)
    px = B.from_numpy(a, dt.float32)
    before = dispatches(B)
    got = B.fused_reduce(p, [px], a.shape, "sum", (1,), False)
    assert dispatches(B) - before == 2  # chunked partials + their reduction
    (ref,) = unfused(B, p, [px], a.shape)
    np.testing.assert_array_equal(B.to_numpy(got), B.to_numpy(B.sum(ref, (1,), False)))
    np.testing.assert_allclose(B.to_numpy(got), np.exp(-a.astype(np.float64) ** 2).sum(1),
                               rtol=1e-4)
    # int8 values wrap before an int64 sum, like the unfused cast-then-sum
    b = ProgramBuilder()
    i = b.input(dt.int32)
    p = b.finish([b.op("cast", b.op("cast", b.op("mul", i, b.const(3, dt.int32)), dtype=dt.int8),
                       dtype=dt.int64)])
    ia = rng.integers(-100, 100, (7, 300)).astype(np.int32)
    got = B.to_numpy(B.fused_reduce(p, [B.from_numpy(ia, dt.int32)], ia.shape, "sum", (0, 1), True))
    assert got.dtype == np.int64
    assert got.tolist() == [[int((ia.astype(np.int64) * 3).astype(np.int8).astype(np.int64).sum())]]
    with pytest.raises(ShapeError, match="empty"):
        B.fused_reduce(p, [B.from_numpy(ia[:0], dt.int32)], (0, 300), "max", (0,), False)


# ---------------------------------------------------------------------------- limits and edges
def test_big_metadata_and_more_inputs_than_bindings(B):
    rng = np.random.default_rng(9)
    # 12 strided 3-D inputs + 20 constants: more metadata than the 256-byte uniform block
    b = ProgramBuilder()
    xs = [b.input(dt.float32) for _ in range(12)]
    acc = xs[0]
    for k, x in enumerate(xs[1:]):
        acc = b.op("add", acc, b.op("mul", x, b.const(0.5 + k, dt.float32)))
    for k in range(20):
        acc = b.op("maximum", acc, b.const(-10.0 - k, dt.float32))
    p = b.finish([acc])
    shape = (3, 4, 5)
    pairs = [make_input(B, rng, dt.float32, shape, "transposed") for _ in xs]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    check_outputs(B, p, ins, arrays, shape, B.fused_elementwise(p, ins, shape), 1e-5, 1e-6)
    red = B.to_numpy(B.fused_reduce(p, ins, shape, "sum", (0, 2), False))
    np.testing.assert_allclose(red, np_eval(p, arrays, shape)[0].sum((0, 2)), rtol=1e-5)
    # both kernels read their metadata from a storage buffer (key field: uniform metadata?)
    assert {k[0] for k in B.rt._pipelines if k[1] == p.key and k[-2 if k[0] == "fused" else -1]
            is False} == {"fused", "fused_reduce"}
    # more distinct input buffers than the adapter binds: still correct (op by op)
    n = B.rt.max_storage + 2
    b = ProgramBuilder()
    xs = [b.input(dt.float32) for _ in range(n)]
    acc = xs[0]
    for x in xs[1:]:
        acc = b.op("add", acc, x)
    p = b.finish([acc])
    arrays = [sample(rng, (10,), dt.float32) for _ in range(n)]
    (got,) = B.fused_elementwise(p, [B.from_numpy(a, dt.float32) for a in arrays], (10,))
    np.testing.assert_allclose(B.to_numpy(got), np.sum(arrays, axis=0, dtype=np.float64), rtol=1e-5)


def test_outputs_that_are_inputs_or_constants_and_odd_shapes(B):
    b = ProgramBuilder()
    x = b.input(dt.float32)
    k = b.const(2.5, dt.float32)
    y = b.op("add", x, k)
    p = b.finish([x, k, y, y])
    xa = np.arange(3, dtype=np.float32)
    outs = B.fused_elementwise(p, [B.from_numpy(xa, dt.float32)], (2, 3))
    want = [np.broadcast_to(xa, (2, 3)), np.full((2, 3), 2.5), np.broadcast_to(xa + 2.5, (2, 3))]
    for g, w in zip(outs, want + want[2:]):
        np.testing.assert_array_equal(B.to_numpy(g), w)
    xs = B.from_numpy(xa, dt.float32)
    assert B.to_numpy(B.fused_reduce(b.finish([k]), [xs], (2, 3), "sum", (0,), False)).tolist() \
        == [5.0, 5.0, 5.0]
    assert B.to_numpy(B.fused_reduce(b.finish([x]), [xs], (2, 3), "max", (1,), True)).tolist() \
        == [[2.0], [2.0]]
    # 0-d and empty
    one = B.from_numpy(np.array(1.0, np.float32), dt.float32)
    (z,) = B.fused_elementwise(b.finish([y]), [one], ())
    assert B.to_numpy(z).tolist() == 3.5
    empty = B.from_numpy(np.zeros((0, 3), np.float32), dt.float32)
    (e,) = B.fused_elementwise(b.finish([y]), [empty], (0, 3))
    assert B.to_numpy(e).shape == (0, 3)


def test_grids_split_over_dimensions(B):
    """More workgroups than one grid dimension holds: the kernels rebuild the linear id from a
    2-D/3-D grid (the limit is lowered here so that small tensors exercise it)."""
    rng = np.random.default_rng(12)
    b = ProgramBuilder()
    x = b.input(dt.float32)
    p = b.finish([b.op("sigmoid", b.op("mul", x, b.const(3.0, dt.float32)))])
    a = sample(rng, (5 * 4 * 256 + 4,), dt.float32)  # scalar kernel: 21 groups of 256
    r = sample(rng, (700, 6), dt.float32)
    prev = B.rt.max_groups
    B.rt.max_groups = 4
    try:
        assert B.rt.grid(21) == (4, 4, 2)  # a 3-D grid with overhanging groups
        (got,) = B.fused_elementwise(p, [B.from_numpy(a, dt.float32)], a.shape)
        red = B.fused_reduce(p, [B.from_numpy(r, dt.float32)], r.shape, "max", (1,), False)
        got, red = B.to_numpy(got), B.to_numpy(red)  # read back while the low limit holds
    finally:
        B.rt.max_groups = prev
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-3 * a.astype(np.float64))), rtol=1e-5)
    np.testing.assert_allclose(red, (1 / (1 + np.exp(-3 * r.astype(np.float64)))).max(1), rtol=1e-5)


def test_bad_programs_are_clear_errors(B):
    b = ProgramBuilder()
    x = b.input(dt.int32)
    p = b.finish([b.op("exp", x)])
    xi = B.from_numpy(np.arange(4, dtype=np.int32), dt.int32)
    with pytest.raises(DTypeError, match="exp is not defined for int32"):
        B.fused_elementwise(p, [xi], (4,))
    with pytest.raises(DTypeError, match="input 0 is float32"):
        B.fused_elementwise(p, [B.from_numpy(np.zeros(4, np.float32), dt.float32)], (4,))


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("spec", ["Fusion(Autodiff(WGPU()))", "Autodiff(Fusion(WGPU()))"])
def test_gradients_match_torch(spec):
    torch = pytest.importorskip("torch")
    import strata.functional as F
    S = st.backend(spec)
    rng = np.random.default_rng(10)
    xa = rng.standard_normal((6, 5)).astype(np.float32)
    wa = rng.standard_normal((5,)).astype(np.float32)
    ba = rng.standard_normal((6, 1)).astype(np.float32)

    def f(x, w, bias, mod):
        h = x * w + bias
        out = mod.gelu(h, approximate="tanh") * mod.sigmoid(x) + (-(x * x)).exp() / (w.abs() + 1)
        return out.maximum(h * 0.5).sum()

    xs = [st.tensor(a, backend=S, requires_grad=True) for a in (xa, wa, ba)]
    f(*xs, F).backward()
    ts = [torch.tensor(a, requires_grad=True) for a in (xa, wa, ba)]
    f(*ts, torch.nn.functional).backward()
    for s, t in zip(xs, ts):
        np.testing.assert_allclose(s.grad.numpy(), t.grad.numpy(), rtol=2e-4, atol=2e-5)
    if spec.startswith("Fusion"):
        # the symbolic backward ran as fused kernels writing several gradients each
        assert any(k[0] == "fused" and len(k[2]) > 1 for k in S.base().rt._pipelines)
