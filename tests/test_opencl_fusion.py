"""OpenCL fused kernels (backends/opencl/fused.py): programs built with ProgramBuilder and
through Fusion stacks, checked against a NumPy float64/int64 evaluation of the program and
against the unfused OpenCL ops (the protocol's op-by-op interpreter on the same backend).

PoCL spends ~0.25 s building each program, so the tests share program structures where they
can: every op of a dtype is one program with one output per op."""
from __future__ import annotations

import numpy as np
import pytest

import strata as st
from strata.core import dtype as dt
from strata.core.errors import DTypeError, ShapeError
from strata.decorators.fusion import ProgramBuilder
from strata.decorators.fusion.ir import BINARY_OPS, COMPARE_OPS, UNARY_OPS
from strata.tests._fusion_ref import (KINDS, check_outputs, check_random_int_program,
                                      make_input, np_eval, random_float_program, sample,
                                      unfused)
from strata.tests._opencl_util import make_backend

DTYPES = [dt.float32, dt.float64, dt.int32, dt.int64, dt.int8, dt.uint8, dt.bool_]


@pytest.fixture(scope="module")
def B():
    return make_backend()


@pytest.fixture
def launches(B, monkeypatch):
    """A counter of the kernels the backend enqueues."""
    count = [0]
    run = B._run

    def counted(*args):
        count[0] += 1
        return run(*args)
    monkeypatch.setattr(B, "_run", counted)
    return count


# ---------------------------------------------------------------------------- every op
def _applies(op: str, d) -> bool:
    from strata.backends.opencl.backend import _IDENTITY_ON_INTEGERS, _binary_ops, _unary_ops
    if op in ("gelu", "gelu_tanh"):
        return d.kind == 2
    if op in BINARY_OPS or (op in COMPARE_OPS and op not in ("isnan", "isinf")):
        return op in _binary_ops(d)
    return op in _unary_ops(d) or op in _IDENTITY_ON_INTEGERS


def every_op_program(d, skip=()):
    b = ProgramBuilder()
    x, y = b.input(d), b.input(d)
    outs = []
    for op in sorted(UNARY_OPS | BINARY_OPS | COMPARE_OPS):
        if not _applies(op, d) or op in skip:
            continue
        binary = op in BINARY_OPS or (op in COMPARE_OPS and op not in ("isnan", "isinf"))
        r = b.op(op, x, y) if binary else b.op(op, x)
        if b.dtype_of(r) is d and d in (dt.int8, dt.uint8, dt.bool_):
            # applied again with a constant: wrapping between ops counts
            k = b.const(True if d is dt.bool_ else 3, d)
            r = b.op(op, r, k) if binary else b.op(op, r)
        outs.append(r)
    outs.append(b.op("where", b.op("gt", x, y), x, y))
    return b.finish(outs)


@pytest.mark.parametrize("d", DTYPES, ids=lambda d: d.name)
def test_every_op_matches_unfused_and_numpy(B, d, launches):
    """Every op of the IR defined for d on a strided and a broadcast input, all as outputs of
    one program (one kernel), against the unfused ops and NumPy."""
    if not B.supports(d):
        pytest.skip(f"{B} has no {d.name}")
    rng = np.random.default_rng(1)
    p = every_op_program(d)
    shape = (5, 7)
    a = sample(rng, shape, d, -4, 4)
    yv = sample(rng, (7,), d, -4, 4)
    if d.kind == 1:
        yv[yv == 0] = 5
        yv[:2] = (0, -1) if d.is_signed else (0, 1)  # the guarded x / 0, x % 0 (and MIN / -1)
        yv = np.where(np.abs(yv.astype(np.int64)) > 6, yv % 7, yv).astype(d.np)  # pow: no huge
    if d.kind == 2:
        a[0, :3] = (np.nan, np.inf, -0.0)
    px = B.permute(B.from_numpy(np.ascontiguousarray(a.T), d), (1, 0))
    ins = [px, B.from_numpy(yv, d)]
    launches[0] = 0
    got = B.fused_elementwise(p, ins, shape)
    assert launches[0] == 1
    check_outputs(B, p, ins, [a, yv], shape, got, 2e-6 if d is dt.float32 else 1e-12, 1e-6)


def test_every_float_op_dense_eight_wide(B):
    """Every float32 op on dense data in the 8-wide kernel (fused_v); remainder and
    floor_divide need statements, so a program with them runs one element per work-item."""
    rng = np.random.default_rng(2)
    p = every_op_program(dt.float32, skip=("remainder", "floor_divide"))
    n = 8 * 13 + 5  # whole vectors and a tail
    a = sample(rng, (n,), dt.float32, -4, 4)
    a[:3] = (np.nan, np.inf, -0.0)
    yv = sample(rng, (n,), dt.float32, -4, 4)
    ins = [B.from_numpy(a, dt.float32), B.from_numpy(yv, dt.float32)]
    got = B.fused_elementwise(p, ins, (n,))
    check_outputs(B, p, ins, [a, yv], (n,), got, 2e-6, 1e-6)
    modes = {k[0][3] for k in B._rt.fused_kernels if k[0][:2] == ("fused", p.key)}
    assert "v" in modes


def test_ops_a_dtype_lacks_are_clear_errors(B):
    for op, d in (("exp", dt.int32), ("div", dt.int64), ("bitwise_and", dt.float32),
                  ("neg", dt.bool_), ("gelu", dt.int8)):
        b = ProgramBuilder()
        x = b.input(d)
        p = b.finish([b.op(op, x, x) if op in BINARY_OPS else b.op(op, x)])
        xi = B.from_numpy(np.ones(4, d.np), d)
        with pytest.raises(DTypeError, match=f"{op} is not defined for {d.name}"):
            B.fused_elementwise(p, [xi], (4,))
    with pytest.raises(DTypeError, match="input 0 is float32"):
        B.fused_elementwise(p, [B.from_numpy(np.zeros(4, np.float32), dt.float32)], (4,))
    with pytest.raises(ShapeError, match="does not broadcast"):
        B.fused_elementwise(p, [B.from_numpy(np.zeros(3, np.int8), dt.int8)], (4,))
    with pytest.raises(ShapeError, match="takes 1 inputs"):
        B.fused_elementwise(p, [], (4,))


# ---------------------------------------------------------------------------- random programs
@pytest.mark.parametrize("seed", range(5))
def test_random_float_programs(B, seed, launches):
    rng = np.random.default_rng(100 + seed)
    d = dt.float64 if seed == 4 else dt.float32
    shape = ((4, 6, 5), (3, 17), (33,), (2, 3, 4, 5), (7, 9))[seed]
    n_in = int(rng.integers(2, 5))
    p = random_float_program(rng, d, n_in, int(rng.integers(6, 14)))
    pairs = [make_input(B, rng, d, shape, KINDS[(seed + k) % len(KINDS)]) for k in range(n_in)]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    launches[0] = 0
    got = B.fused_elementwise(p, ins, shape)
    assert launches[0] == 1  # three outputs, one kernel
    check_outputs(B, p, ins, arrays, shape, got, 1e-5 if d is dt.float32 else 1e-12, 1e-6)


@pytest.mark.parametrize("d", [dt.int32, dt.int64, dt.int8, dt.uint8], ids=lambda d: d.name)
def test_random_int_programs(B, d):
    check_random_int_program(B, d)


def test_casts_where_and_comparisons(B):
    rng = np.random.default_rng(3)
    b = ProgramBuilder()
    x, m = b.input(dt.float32), b.input(dt.bool_)
    v = b.op("mul", x, b.const(40.0, dt.float32))
    casts = []
    for d in (dt.int8, dt.uint8, dt.int32, dt.int64, dt.bool_, dt.float64, dt.float32):
        v = b.op("cast", v, dtype=d)
        casts.append(v)
    i = b.op("cast", x, dtype=dt.int32)
    sel = b.op("where", b.op("logical_and", m, b.op("ge", i, b.const(0, dt.int32))), i,
               b.const(-5, dt.int32))
    flag = b.op("logical_xor", b.op("ne", x, x), b.op("lt", x, b.const(0.5, dt.float32)))
    p = b.finish(casts + [sel, flag, b.op("cast", m, dtype=dt.float32)])
    shape = (8, 9)
    xa = sample(rng, shape, dt.float32, -3, 3)
    xa[0, :4] = [-0.7, 2.9, 3.2, -3.1]
    ma = rng.random((9,)) < 0.5
    ins = [B.from_numpy(xa, dt.float32), B.from_numpy(ma, dt.bool_)]
    got = B.fused_elementwise(p, ins, shape)
    check_outputs(B, p, ins, [xa, ma], shape, got, 1e-6, 0)
    assert B.to_numpy(got[0]).dtype == np.int8


def test_dense_eight_wide_path_with_bools_and_broadcast_values(B):
    """Dense float programs with bool inputs/outputs and one-value inputs run 8 elements per
    work-item (float32 and float64), the tail and short sizes element by element."""
    rng = np.random.default_rng(11)
    for d in (dt.float32, dt.float64):
        b = ProgramBuilder()
        x, s, y, m = b.input(d), b.input(d), b.input(d), b.input(dt.bool_)
        h = b.op("gelu", b.op("sub", b.op("mul", x, s), y))
        keep = b.op("logical_and", m, b.op("gt", h, b.const(0.1, d)))
        outs = [h, keep, b.op("where", keep, h, b.const(-1.0, d)),
                b.op("logical_not", b.op("logical_or", m, b.const(False, dt.bool_)))]
        p = b.finish(outs)
        for n in (64 + 3, 20):
            xa, ya = sample(rng, (n,), d), sample(rng, (n + 3,), d)
            sa = np.array(1.5, d.np)
            ma = rng.random(n) < 0.5
            ins = [B.from_numpy(xa, d), B.from_numpy(sa, d),
                   B.slice(B.from_numpy(ya, d), (3,), (n + 3,), (1,)), B.from_numpy(ma, dt.bool_)]
            got = B.fused_elementwise(p, ins, (n,))
            check_outputs(B, p, ins, [xa, sa, ya[3:], ma], (n,), got,
                          1e-5 if d is dt.float32 else 1e-12, 1e-6)
        modes = {k[0][3] for k in B._rt.fused_kernels if k[0][:2] == ("fused", p.key)}
        assert modes == {"v", "c"}


def test_rows_with_bias_and_row_statistics_eight_wide(B):
    """Strided programs whose inputs run along rows with unit stride (x, a bias row) or zero
    stride (a per-row mean, a column mask) take 8 elements of a row per work-item (fused_w);
    rows whose length is not a multiple of 8 end element by element."""
    rng = np.random.default_rng(13)
    for d, shape in ((dt.float32, (5, 21)), (dt.float64, (3, 4, 16))):
        b = ProgramBuilder()
        x, bias, mean, keep = b.input(d), b.input(d), b.input(d), b.input(dt.bool_)
        h = b.op("gelu", b.op("mul", b.op("sub", b.op("add", x, bias), mean), b.const(1.5, d)))
        p = b.finish([h, b.op("where", keep, h, b.const(0.0, d)), b.op("gt", x, mean)])
        xa = sample(rng, shape, d)
        ba, ma = sample(rng, shape[-1:], d), sample(rng, shape[:-1] + (1,), d)
        ka = rng.random(shape[:-1] + (1,)) < 0.5
        ins = [B.from_numpy(xa, d), B.from_numpy(ba, d), B.from_numpy(ma, d),
               B.from_numpy(ka, dt.bool_)]
        got = B.fused_elementwise(p, ins, shape)
        check_outputs(B, p, ins, [xa, ba, ma, ka], shape, got,
                      1e-5 if d is dt.float32 else 1e-12, 1e-6)
        modes = {k[0][3] for k in B._rt.fused_kernels if k[0][:2] == ("fused", p.key)}
        assert modes == {"w"}


# ---------------------------------------------------------------------------- kernel cache
def test_constants_and_sizes_change_hit_the_cache(B):
    from strata import fusion
    rng = np.random.default_rng(4)
    a = sample(rng, (300,), dt.float32)
    x = B.from_numpy(a, dt.float32)
    deltas = []
    for scale in (2.0, -0.5, 3.25):
        b = ProgramBuilder()
        xi = b.input(dt.float32)
        p = b.finish([b.op("exp", b.op("mul", b.op("relu", xi), b.const(scale, dt.float32)))])
        s0 = fusion.stats()
        (out,) = B.fused_elementwise(p, [x], (300,))
        s1 = fusion.stats()
        deltas.append((s1["cache_hits"] - s0["cache_hits"],
                       s1["cache_misses"] - s0["cache_misses"]))
        np.testing.assert_allclose(B.to_numpy(out), np.exp(np.maximum(a, 0) * scale), rtol=1e-6)
    assert deltas[1] == (1, 0) and deltas[2] == (1, 0)
    # another size of a dense input is a hit (sizes are arguments)
    s0 = fusion.stats()
    B.fused_elementwise(p, [B.from_numpy(sample(rng, (4, 50), dt.float32), dt.float32)], (4, 50))
    assert fusion.stats()["cache_hits"] - s0["cache_hits"] == 1
    # a strided input of rank 2 is another specialisation; other 2-D strided sizes hit it
    for shape in ((5, 4), (9, 7)):
        y = B.permute(B.from_numpy(sample(rng, shape[::-1], dt.float32), dt.float32), (1, 0))
        B.fused_elementwise(p, [y], shape)
    s1 = fusion.stats()
    assert (s1["cache_misses"] - s0["cache_misses"], s1["cache_hits"] - s0["cache_hits"]) == (1, 2)


# ---------------------------------------------------------------------------- through Fusion
def test_fusion_chain_is_one_kernel(B, launches):
    from strata import fusion
    F = st.backend("Fusion(OpenCL())")
    rng = np.random.default_rng(5)
    a, bb, c = (sample(rng, (64, 33), dt.float32) for _ in range(3))
    ta, tb = st.from_numpy(a, backend=F), st.from_numpy(bb, backend=F)
    tc = st.from_numpy(c, backend=F).T.contiguous().T  # strided view
    F.base()._run = B._run  # count the launches of the stack's backend too
    launches[0] = 0
    with fusion.trace() as t:
        y = ((ta * tb + tc).relu() * 2).exp()
        got = y.numpy()
    assert t.kernels == 1 and t.fused == [("mul", "add", "relu", "mul", "exp")]
    assert launches[0] == 1
    np.testing.assert_allclose(got, np.exp(np.maximum(a.astype(np.float64) * bb + c, 0) * 2),
                               rtol=1e-5)
    launches[0] = 0
    with fusion.trace() as t:
        s = ((ta - tb) ** 2).sum(dim=1).numpy()
    assert t.kernels == 1 and launches[0] == 1
    np.testing.assert_allclose(s, ((a.astype(np.float64) - bb) ** 2).sum(1), rtol=1e-5)
    del F.base()._run


def test_linear_is_composed_in_the_fusing_layer_and_the_loss_is_one_kernel(B, launches):
    """OpenCL() has no linear kernel of its own, so Fusion composes it: the bias add and the
    ReLU after it become the matmul's epilogue. The loss is OpenCL's own nll_loss, one kernel
    (no masking or scaling launches); results match NumPy and the unfused OpenCL() stack."""
    from strata import fusion
    F = st.backend("Fusion(OpenCL())")
    rng = np.random.default_rng(6)
    x, w, b = (sample(rng, s, dt.float32) for s in ((16, 20), (8, 20), (8,)))
    y = rng.integers(0, 8, 16)
    y[3] = -100
    F.base()._run = B._run
    launches[0] = 0
    with fusion.trace() as t:
        h = st.functional.linear(st.from_numpy(x, backend=F), st.from_numpy(w, backend=F),
                                 st.from_numpy(b, backend=F)).relu()
        got = h.numpy()
        loss = st.functional.cross_entropy(h, st.from_numpy(y, backend=F)).item()
    assert t.events == [("fused", ("matmul", "add", "relu")), ("op", ("log_softmax",)),
                        ("op", ("nll_loss",))]
    assert launches[0] == 3
    del F.base()._run
    ref = np.maximum(x.astype(np.float64) @ w.T.astype(np.float64) + b, 0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    plain = st.backend("OpenCL()")
    hp = st.functional.linear(st.from_numpy(x, backend=plain), st.from_numpy(w, backend=plain),
                              st.from_numpy(b, backend=plain)).relu()
    want = st.functional.cross_entropy(hp, st.from_numpy(y, backend=plain)).item()
    assert loss == pytest.approx(want, rel=1e-6)
    # the bounds check waits for the next read-back instead of stalling the queue mid-step
    bad = st.functional.cross_entropy(h, st.from_numpy(np.full(16, 9), backend=F))
    with pytest.raises(IndexError, match="target 9 is out of bounds for 8 classes.*read-back"):
        bad.item()
    assert st.functional.cross_entropy(h, st.from_numpy(y, backend=F)).item() == \
        pytest.approx(want, rel=1e-6)   # nothing left over from the failed check


def test_a_loss_the_base_lacks_is_composed_under_autodiff_and_its_gradient_matches(B):
    """A base with only the protocol's nll_loss composition (here OpenCL with its loss kernels
    taken away): under Fusion(Autodiff(.)) the loss reaches Fusion as primitives (nll_loss
    is looked through Autodiff), so no single nll_loss op runs and its masking fuses; the
    input gradient equals the one-kernel loss of the plain OpenCL() stack."""
    from strata import fusion
    from strata.backends.opencl import OpenCL
    from strata.core.backend import Backend
    from strata.decorators import Autodiff, Fusion

    class NoLossKernels(OpenCL):
        nll_loss = Backend.nll_loss
        nll_loss_backward = Backend.nll_loss_backward

    rng = np.random.default_rng(8)
    x = sample(rng, (12, 6), dt.float32)
    y = rng.integers(0, 6, 12)
    y[5] = -100
    grads = []
    for S in (Fusion(Autodiff(NoLossKernels())), st.backend("Autodiff(OpenCL())")):
        t = st.from_numpy(x, backend=S).requires_grad_()
        with fusion.trace() as tr:
            loss = st.functional.cross_entropy(t, st.from_numpy(y, backend=S))
            loss.backward()
            grads.append((loss.item(), t.grad.numpy()))
        if isinstance(S, Fusion):
            assert "nll_loss" not in tr.summary() and tr.fused
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)


def test_nll_loss_kernel_matches_the_composition(B):
    """OpenCL's one-kernel nll_loss and its gradient against the protocol's composition on
    the same device and torch (float64): every reduction, class weights, ignored targets,
    spatial targets; past NLL_MAX targets the composition runs (same values)."""
    torch = pytest.importorskip("torch")
    from strata.backends.nll_dims import NLL_MAX
    from strata.core.backend import Backend
    rng = np.random.default_rng(9)
    cases = [((64, 10), None), ((5, 7, 3, 4), None), ((6, 4), "w"), ((3, 5, 8), "w")]
    for (shape, wt), red in ((c, r) for c in cases for r in ("mean", "sum", "none")):
        x = np.log(rng.dirichlet(np.ones(shape[1]), size=(shape[0],) + shape[2:]))
        x = np.moveaxis(x, -1, 1).astype(np.float32)
        t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
        t.flat[1] = -100
        w = rng.random(shape[1]).astype(np.float32) if wt else None
        args = [B.from_numpy(x, dt.float32), B.from_numpy(t, dt.int64),
                None if w is None else B.from_numpy(w, dt.float32), -100, red]
        got = B.to_numpy(B.nll_loss(*args))
        comp = B.to_numpy(Backend.nll_loss(B, *args))
        ref = torch.nn.functional.nll_loss(torch.tensor(x, dtype=torch.float64), torch.tensor(t),
                                           None if w is None else torch.tensor(w, dtype=torch.float64),
                                           ignore_index=-100, reduction=red).numpy()
        np.testing.assert_allclose(got, comp, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-5)
        gshape = t.shape if red == "none" else ()
        g = rng.standard_normal(gshape).astype(np.float32)
        gargs = [B.from_numpy(g, dt.float32)] + args
        np.testing.assert_allclose(B.to_numpy(B.nll_loss_backward(*gargs)),
                                   B.to_numpy(Backend.nll_loss_backward(B, *gargs)),
                                   rtol=1e-6, atol=1e-7)
    big = NLL_MAX + 3
    x = rng.standard_normal((big, 2)).astype(np.float32)
    t = rng.integers(0, 2, big)
    args = [B.from_numpy(x, dt.float32), B.from_numpy(t, dt.int64), None, -100, "sum"]
    np.testing.assert_allclose(B.to_numpy(B.nll_loss(*args)),
                               -np.float64(x[np.arange(big), t]).sum(), rtol=1e-4)


# ---------------------------------------------------------------------------- reductions
def _reduce_program(d):
    b = ProgramBuilder()
    x, y = b.input(d), b.input(d)
    return b.finish([b.op("sub", b.op("maximum", b.op("mul", x, y), y),
                          b.op("mul", y, b.const(0.25, d)))])


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_fused_reduce_matches_unfused_bit_for_bit(B, op, launches):
    """Over every set of axes of strided and broadcast inputs: the same bits as the unfused
    program followed by the unfused reduction (same accumulation order), and NumPy."""
    rng = np.random.default_rng(6)
    p = _reduce_program(dt.float32)
    shape = (4, 5, 6)
    px, xa = make_input(B, rng, dt.float32, shape, "transposed")
    py, ya = make_input(B, rng, dt.float32, shape, "bcast")
    (full,) = np_eval(p, [xa, ya], shape)
    (ref,) = unfused(B, p, [px, py], shape)
    for axes in [(0,), (1,), (2,), (0, 2), (0, 1, 2)]:
        for keep in (False, True):
            launches[0] = 0
            got = B.fused_reduce(p, [px, py], shape, op, axes, keep)
            assert launches[0] == 1
            got = B.to_numpy(got)
            want = getattr(np, op)(full, axis=axes, keepdims=keep)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(got, B.to_numpy(getattr(B, op)(ref, axes, keep)))


def test_fused_reduce_long_rows_nan_and_integers(B, launches):
    rng = np.random.default_rng(8)
    p = _reduce_program(dt.float32)
    a = rng.standard_normal((3, 20000)).astype(np.float32)
    w = rng.standard_normal((20000,)).astype(np.float32)
    a[1, 777] = np.nan
    ins = [B.from_numpy(a, dt.float32), B.from_numpy(w, dt.float32)]
    (ref,) = unfused(B, p, ins, a.shape)
    (full,) = np_eval(p, [a, w], a.shape)
    for op in ("sum", "max"):
        launches[0] = 0
        got = B.fused_reduce(p, ins, a.shape, op, (1,), False)
        assert launches[0] == 2  # work-group partials over chunks + their reduction
        got = B.to_numpy(got)
        np.testing.assert_array_equal(got, B.to_numpy(getattr(B, op)(ref, (1,), False)))
        np.testing.assert_allclose(got, getattr(np, op)(full, axis=1), rtol=1e-4)
        assert np.isnan(got[1])
    # int8 values wrap before an int64 sum, like the unfused cast-then-sum
    b = ProgramBuilder()
    i = b.input(dt.int32)
    p = b.finish([b.op("cast", b.op("cast", b.op("mul", i, b.const(3, dt.int32)), dtype=dt.int8),
                       dtype=dt.int64)])
    ia = rng.integers(-100, 100, (7, 300)).astype(np.int32)
    pi = B.from_numpy(ia, dt.int32)
    got = B.to_numpy(B.fused_reduce(p, [pi], ia.shape, "sum", (0, 1), True))
    assert got.dtype == np.int64
    assert got.tolist() == [[int((ia.astype(np.int64) * 3).astype(np.int8).astype(np.int64).sum())]]
    got = B.to_numpy(B.fused_reduce(p, [pi], ia.shape, "min", (1,), False))
    np.testing.assert_array_equal(got, (ia.astype(np.int64) * 3).astype(np.int8).min(1))
    with pytest.raises(ShapeError, match="size 0"):
        B.fused_reduce(p, [B.from_numpy(ia[:0], dt.int32)], (0, 300), "max", (0,), False)
    empty = B.fused_reduce(p, [B.from_numpy(ia[:0], dt.int32)], (0, 300), "sum", (0,), False)
    assert B.to_numpy(empty).tolist() == [0] * 300


# ---------------------------------------------------------------------------- limits and edges
def test_more_arguments_than_the_device_takes(B):
    """A program whose kernel would need more argument bytes than the device allows runs op
    by op (the protocol's interpreter): correct, unfused."""
    rng = np.random.default_rng(9)
    n = B._rt.device.max_parameter_size // (8 * 5) + 2  # strided 3-D inputs: 5 words each
    b = ProgramBuilder()
    xs = [b.input(dt.float32) for _ in range(n)]
    acc = xs[0]
    for k, x in enumerate(xs[1:]):
        acc = b.op("add", acc, b.op("mul", x, b.const(0.5 + k, dt.float32)))
    p = b.finish([acc])
    shape = (3, 4, 5)
    pairs = [make_input(B, rng, dt.float32, shape, "transposed") for _ in xs]
    ins, arrays = [q for q, _ in pairs], [a for _, a in pairs]
    (got,) = B.fused_elementwise(p, ins, shape)
    np.testing.assert_allclose(B.to_numpy(got), np_eval(p, arrays, shape)[0], rtol=1e-5)
    red = B.to_numpy(B.fused_reduce(p, ins, shape, "sum", (0, 2), False))
    np.testing.assert_allclose(red, np_eval(p, arrays, shape)[0].sum((0, 2)), rtol=1e-5)


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
    one = B.from_numpy(np.array(1.0, np.float32), dt.float32)
    (z,) = B.fused_elementwise(b.finish([y]), [one], ())
    assert B.to_numpy(z).tolist() == 3.5
    empty = B.from_numpy(np.zeros((0, 3), np.float32), dt.float32)
    (e,) = B.fused_elementwise(b.finish([y]), [empty], (0, 3))
    assert B.to_numpy(e).shape == (0, 3)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("spec", ["Fusion(Autodiff(OpenCL()))", "Autodiff(Fusion(OpenCL()))"])
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
        assert any(k[0][0] == "fused" and len(k[0][2]) > 1 for k in S.base()._rt.fused_kernels)


# ---------------------------------------------------------------------------- donated buffers
def test_fused_update_writes_into_donated_buffers(B):
    """fused_update (optimizer steps) writes an output into a donated input's buffer when that
    input is a dense array of the output's shape and dtype that no other input views."""
    rng = np.random.default_rng(14)
    b = ProgramBuilder()
    p_, g, m = b.input(dt.float32), b.input(dt.float32), b.input(dt.float32)
    m2 = b.op("add", b.op("mul", m, b.const(0.9, dt.float32)), g)
    prog = b.finish([b.op("sub", p_, b.op("mul", m2, b.const(0.01, dt.float32))), m2])
    for n in (100, 7):  # 8-wide and element-wise kernels
        pa, ga, ma = (sample(rng, (n,), dt.float32) for _ in range(3))
        ins = [B.from_numpy(a, dt.float32) for a in (pa, ga, ma)]
        bufs = [x.storage for x in ins]
        want = np_eval(prog, [pa, ga, ma], (n,))
        outs = B.fused_update(prog, ins, (n,), {0: 0, 1: 2})
        assert outs[0].storage is bufs[0] and outs[1].storage is bufs[2]
        for o, w in zip(outs, want):
            np.testing.assert_allclose(B.to_numpy(o), w, rtol=1e-6)
    # not donated: a broadcast input, a wrong dtype, a buffer another input also views
    x = B.from_numpy(sample(rng, (1,), dt.float32), dt.float32)
    y = B.from_numpy(sample(rng, (4,), dt.float32), dt.float32)
    outs = B.fused_update(prog, [x, y, y], (4,), {0: 0, 1: 2})
    assert outs[0].storage is not x.storage and outs[1].storage is not y.storage
    np.testing.assert_allclose(
        B.to_numpy(outs[0]), np_eval(prog, [B.to_numpy(x), B.to_numpy(y), B.to_numpy(y)],
                                     (4,))[0], rtol=1e-6)
