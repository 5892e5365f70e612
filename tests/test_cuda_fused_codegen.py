"""The CUDA C of the CuPy backend's fused kernels (backends/cuda/), checked without a GPU.

The generated element functions are __host__ __device__, so nvcc builds the exact kernel text
(parameter lists, operation, preamble; tests/_cuda_host.py wraps it the way CuPy does) into a
CPU program. It runs every op on every dtype (one program per dtype, one output per op),
random programs, all casts and the reductions, compared with tests/_fusion_ref.py's NumPy
reference: exact for exact ops, a tolerance for transcendental ones (the host libm is not
CUDA's). The same text is compiled to PTX for sm_90, proving the device code is valid CUDA C.
Everything is one host build and one PTX build (nvcc takes seconds per build); without nvcc
(CI) those tests skip and the checks that need no compiler still run.

The CuPy glue (backends/cuda/fused.py, the CuPy methods) runs here against a stand-in for the
cupy module that records kernel launches; launching for real needs a GPU
(tests/test_cupy_fusion.py).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from strata import fusion
from strata.backends import CuPy
from strata.backends.cuda import codegen, kernels
from strata.core import dtype as dt
from strata.core.errors import DTypeError, ShapeError
from strata.decorators.fusion import ProgramBuilder
from strata.decorators.fusion.ir import BINARY_OPS, COMPARE_OPS, UNARY_OPS
from strata.tests import _cuda_host as host
from strata.tests._fusion_ref import np_eval, random_float_program, random_int_program, sample

nvcc = pytest.mark.skipif(host.NVCC is None, reason="nvcc (the CUDA toolkit) is not on PATH: "
                          "the host and PTX builds of the generated CUDA C need it")

# ops whose float results depend on the math library (host libm here, CUDA's on a GPU), or
# that round several times where the float64 reference rounds once
INEXACT = frozenset(("exp", "log", "sin", "cos", "tanh", "erf", "sigmoid", "silu", "log1p",
                     "expm1", "tan", "pow", "gelu", "gelu_tanh", "rsqrt"))
RTOL = {dt.float16: 4e-3, dt.float32: 2e-6, dt.float64: 1e-13}
ATOL_SCALE = {dt.float16: 4e-3, dt.float32: 1e-6, dt.float64: 1e-13}


# ---------------------------------------------------------------------------- the cases
def every_op_program(d):
    """Every op of the IR the generator has for d, one output each (ops named in order)."""
    b = ProgramBuilder()
    x, y = b.input(d), b.input(d)
    outs, ops = [], []
    for op in sorted(UNARY_OPS | BINARY_OPS | COMPARE_OPS):
        if not codegen.defined(op, d):
            continue
        binary = op in BINARY_OPS or (op in COMPARE_OPS and op not in ("isnan", "isinf"))
        r = b.op(op, x, y) if binary else b.op(op, x)
        if b.dtype_of(r) is d and d in (dt.int8, dt.uint8, dt.bool_, dt.float16):
            # applied again with a constant: wrapping (rounding) between ops counts
            k = b.const(True if d is dt.bool_ else (3.0 if d.kind == 2 else 3), d)
            r = b.op(op, r, k) if binary else b.op(op, r)
        outs.append(r)
        ops.append(op)
    outs.append(b.op("where", b.op("gt", x, y), x, y))
    ops.append("where")
    return b.finish(outs), ops


def _every_op_inputs(d):
    rng = np.random.default_rng(1)
    a = sample(rng, (5, 7), d, -4, 4)
    yv = sample(rng, (7,), d, -4, 4)
    if d.kind == 1:
        yv[yv == 0] = 5
        yv[:2] = (0, -1) if d.is_signed else (0, 1)  # the guarded x / 0, x % 0 (and MIN / -1)
        yv = np.where(np.abs(yv.astype(np.int64)) > 6, yv % 7, yv).astype(d.np)  # pow: no huge
        if d.is_signed:
            a[1, 1] = np.iinfo(d.np).min   # MIN // -1, MIN % -1, -MIN, abs(MIN)
    if d.kind == 2:
        a[0, :3] = (np.nan, np.inf, -0.0)
        a[2, :2] = (-np.inf, 0.5)          # round half to even, floor of a half
        yv[3] = 0.0                        # float x / 0, x % 0, x // 0
    return [a, yv]


def casts_program():
    b = ProgramBuilder()
    xs = [b.input(d) for d in dt.ALL]
    outs = [b.op("cast", x, dtype=dst) for x in xs for dst in dt.ALL]
    return b.finish(outs)


def _casts_inputs():
    rng = np.random.default_rng(4)
    arrays = []
    for d in dt.ALL:
        a = sample(rng, (6, 8), d, -1000, 1000)   # wider than int8: narrowing wraps
        if d.kind == 2:
            a[0, :4] = (-0.0, 2.5, -2.5, 0.75)
        arrays.append(a)
    return arrays


def reduce_program(d):
    b = ProgramBuilder()
    x, y = b.input(d), b.input(d)
    return b.finish([b.op("sub", b.op("maximum", b.op("mul", x, y), y),
                          b.op("mul", y, b.const(0.25, d)))])


def _reduce_cases() -> dict:
    rng = np.random.default_rng(8)
    cases = {}
    for d, ops in ((dt.float32, ("sum", "max", "min")), (dt.float16, ("sum", "max")),
                   (dt.float64, ("max", "min"))):
        a, w = sample(rng, (4, 300), d), sample(rng, (300,), d)
        a[1, 77] = np.nan   # max and min propagate NaN, like the unfused reductions
        p = reduce_program(d)
        if d is dt.float64:
            # a row of negative values (max starts from -inf) and one of positive values
            b = ProgramBuilder()
            x, y = b.input(d), b.input(d)
            p = b.finish([b.op("mul", x, y)])
            a[2], a[3], w = -np.abs(a[2]) - 1, np.abs(a[3]) + 1, np.abs(w) + 1
        for op in ops:
            cases[f"reduce_{d.name}_{op}"] = host.ReduceCase(p, [a, w], (4, 300), op)
    # int8 values wrap before an int64 sum, like the unfused cast-then-sum
    b = ProgramBuilder()
    i = b.input(dt.int32)
    p = b.finish([b.op("cast", b.op("cast", b.op("mul", i, b.const(3, dt.int32)),
                                    dtype=dt.int8), dtype=dt.int64)])
    ia = rng.integers(-100, 100, (7, 300)).astype(np.int32)
    for op in ("sum", "min"):
        cases[f"reduce_int64_{op}"] = host.ReduceCase(p, [ia], (7, 300), op)
    # sums in a narrow dtype wrap in it; uint8 extremes start from 0 and 255
    for d in (dt.int8, dt.uint8):
        b = ProgramBuilder()
        x = b.input(d)
        p = b.finish([b.op("add", x, b.const(100, d))])
        xa = sample(rng, (5, 40), d)
        for op in ("sum", "max", "min"):
            cases[f"reduce_{d.name}_{op}"] = host.ReduceCase(p, [xa], (5, 40), op)
    b = ProgramBuilder()
    x, y = b.input(dt.float32), b.input(dt.float32)
    p = b.finish([b.op("gt", x, y)])
    xa, ya = sample(rng, (6, 9), dt.float32), sample(rng, (6, 9), dt.float32)
    xa[0], ya[0] = 1.0, 0.0    # a row of all true
    xa[1], ya[1] = 0.0, 1.0    # a row of all false
    for op in ("sum", "max", "min"):
        cases[f"reduce_bool_{op}"] = host.ReduceCase(p, [xa, ya], (6, 9), op)
    return cases


def _cases() -> dict:
    cases = {}
    for d in dt.ALL:
        p, _ = every_op_program(d)
        cases[f"every_op_{d.name}"] = host.MapCase(p, _every_op_inputs(d), (5, 7))
    for seed, d in enumerate((dt.float32, dt.float32, dt.float64, dt.float16, dt.float16)):
        rng = np.random.default_rng(100 + seed)
        n_in = int(rng.integers(2, 5))
        p = random_float_program(rng, d, n_in, int(rng.integers(6, 14)))
        shape = ((4, 6, 5), (3, 17), (33,), (2, 3, 4, 5), (7, 9))[seed]
        arrays = [sample(rng, (shape, shape[1:], (1,) * len(shape))[k % 3], d)
                  for k in range(n_in)]
        cases[f"random_{d.name}_{seed}"] = host.MapCase(p, arrays, shape)
    for d in dt.INTEGER:
        rng = np.random.default_rng(7)
        p = random_int_program(rng, d, 3, 14)
        cases[f"random_{d.name}"] = host.MapCase(p, [sample(rng, (6, 5, 4), d),
                                                     sample(rng, (5, 1), d),
                                                     sample(rng, (4,), d)], (6, 5, 4))
    cases["casts"] = host.MapCase(casts_program(), _casts_inputs(), (6, 8))
    cases.update(_reduce_cases())
    return cases


CASES = _cases()
# the PTX build: every op on every dtype, the casts and the reductions
PTX_CASES = {k: v for k, v in CASES.items() if not k.startswith("random")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One host build (run on the CPU) and one PTX build, compiled side by side."""
    work = tmp_path_factory.mktemp("cuda_fused")
    ptx = host.compile_cuda(host.source(PTX_CASES, device=True), work, device=True)
    proc = host.compile_cuda(host.source(CASES, device=False), work, device=False)
    try:
        results = host.run_host(CASES, work, proc)
    finally:
        log = host.finish(ptx, "PTX")
    return results, (work / "fused.ptx").read_text(), log


def _check_map(results, name, ops=None):
    case = CASES[name]
    p = case.program
    want = np_eval(p, case.arrays, case.shape)
    got = results[name]
    for i, (s, w) in enumerate(zip(p.outputs, want)):
        d = p.slot_dtype(s)
        g = got[s]
        op = ops[i] if ops else None
        assert g.dtype == d.np and g.shape == tuple(case.shape)
        msg = f"{name}: output {i} ({op or p.instrs[s - p.first_instr_slot][0]})"
        if d.kind == 2 and (ops is None or op in INEXACT):
            atol = ATOL_SCALE[d] * (1.0 + np.max(np.abs(w[np.isfinite(w)]), initial=0.0))
            np.testing.assert_allclose(g.astype(np.float64), w, rtol=RTOL[d], atol=atol,
                                       equal_nan=True, err_msg=msg)
        else:
            np.testing.assert_array_equal(g, w.astype(d.np), err_msg=msg)


# ---------------------------------------------------------------------------- host runs
@nvcc
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # the float16 reference
@pytest.mark.parametrize("d", dt.ALL, ids=lambda d: d.name)
def test_every_op_on_every_dtype(built, d):
    """Every op the generator has for d (strata's semantics: floor remainder, NaN-propagating
    maximum, round half to even, sign(NaN) = 0, integer x / 0 = 0, narrow ints wrap, float16
    rounded after each op) against the NumPy reference: exact but for transcendental ops."""
    _, ops = every_op_program(d)
    _check_map(built[0], f"every_op_{d.name}", ops)


@nvcc
@pytest.mark.parametrize("name", [k for k in CASES if k.startswith("random")])
def test_random_programs(built, name):
    _check_map(built[0], name)


@nvcc
def test_every_cast(built):
    """All 81 dtype pairs: float -> int truncates (narrow ints wrap through int64), -> bool
    is != 0, float64 -> float16 rounds once."""
    _check_map(built[0], "casts", ["cast"] * 81)


@nvcc
@pytest.mark.parametrize("name", [k for k in CASES if k.startswith("reduce")])
def test_reductions(built, name):
    """The ReductionKernel pieces (identity, REDUCE, map and post-map expressions) folded
    over rows: NaN propagates through max/min, float16 sums accumulate in float, integer sums
    wrap in their dtype, bool sum/max is `or` and min `and`."""
    case = CASES[name]
    (full,) = np_eval(case.program, case.arrays, case.shape)
    d = case.program.slot_dtype(case.program.outputs[0])
    got = built[0][name]
    assert got.dtype == d.np and got.shape == case.shape[:1]
    if d.kind == 1 and case.op == "sum":
        want = full.astype(np.int64).sum(axis=1).astype(d.np)   # wraps like the dtype's sum
    elif d is dt.bool_:
        want = {"sum": np.any, "max": np.any, "min": np.all}[case.op](full, axis=1)
    else:
        want = getattr(np, case.op)(full, axis=1)
    if d.kind == 2:
        assert np.isnan(got[1]) and np.isnan(want[1])
        np.testing.assert_allclose(got.astype(np.float64), want,
                                   rtol=1e-5 if d is dt.float32 else RTOL[d], equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- device code
@nvcc
def test_device_code_compiles_to_ptx(built):
    """The ElementwiseKernel/ReductionKernel-equivalent kernels of every op on every dtype,
    the casts and the reductions compile for sm_90 (valid device CUDA C, no warnings)."""
    _, ptx, log = built
    for i, (name, case) in enumerate(PTX_CASES.items()):
        kind = "map" if isinstance(case, host.MapCase) else "reduce"
        assert f".entry case{i}_{kind}(" in ptx, name
    # no diagnostics on the generated source (nvcc's own notices are not ours to judge)
    assert not [ln for ln in log.splitlines() if ".cu(" in ln], log


# ---------------------------------------------------------------------------- no compiler
def test_ops_a_dtype_lacks_are_clear_errors():
    for op, d in (("exp", dt.int32), ("div", dt.int64), ("bitwise_and", dt.float32),
                  ("neg", dt.bool_), ("gelu", dt.int8), ("sub", dt.bool_)):
        b = ProgramBuilder()
        x = b.input(d)
        p = b.finish([b.op(op, x, x) if op in BINARY_OPS else b.op(op, x)])
        assert not codegen.defined(op, d)
        with pytest.raises(DTypeError, match=f"{op} is not defined for {d.name} tensors on"):
            kernels.map_kernel(p)
    b = ProgramBuilder()
    x = b.input(dt.int8)
    with pytest.raises(DTypeError, match="condition must be bool"):
        kernels.map_kernel(b.finish([b.op("where", x, x, x)]))


def test_source_depends_on_the_structure_not_the_constants():
    """Constants are kernel parameters: programs that differ only in constant values share
    the kernel source (and CuPy's compiled binary); dead code and unread inputs are left out."""
    specs, args = [], []
    for scale in (2.0, -0.5):
        b = ProgramBuilder()
        x, unused, m = b.input(dt.float32), b.input(dt.float32), b.input(dt.bool_)
        b.op("exp", unused)                                   # dead
        y = b.op("mul", b.op("relu", x), b.const(scale, dt.float32))
        p = b.finish([b.op("where", m, y, b.const(0.0, dt.float32)), x])
        spec = kernels.map_kernel(p)
        specs.append(spec)
        args.append(kernels.const_args(p, spec.consts))
    assert specs[0] == specs[1]
    spec = specs[0]
    assert spec.used == (0, 2) and len(spec.write) == 1    # output x is a view: not written
    assert spec.in_params == "float32 in0, bool in2, float32 c0, float32 c1"
    assert "const float t0 " not in spec.preamble and "2.0" not in spec.preamble
    assert [[v.item() for v in a] for a in args] == [[2.0, 0.0], [-0.5, 0.0]]
    assert kernels.OPTIONS == ("--fmad=false",)


def test_constant_arguments_round_and_wrap_like_scalar_operands():
    b = ProgramBuilder()
    ks = [b.const(0.1, dt.float16), b.const(0.1, dt.float32), b.const(0.1, dt.float64),
          b.const(300, dt.int8), b.const(-1, dt.uint8), b.const(2 ** 40, dt.int64),
          b.const(1, dt.bool_)]
    p = b.finish(ks)
    spec = kernels.map_kernel(p)
    vals = kernels.const_args(p, spec.consts)
    assert [v.dtype for v in vals] == [np.float32, np.float32, np.float64, np.int8, np.uint8,
                                       np.int64, np.bool_]
    assert vals[0] == np.float32(np.float16(0.1)) and vals[1] == np.float32(0.1)
    assert [v.item() for v in vals[2:]] == [0.1, 44, 255, 2 ** 40, True]
    assert spec.in_params.startswith("float32 c0, float32 c1, float64 c2, int8 c3")


# ---------------------------------------------------------------------------- CuPy glue
class _FakeKernel:
    """Stands in for cupy.ElementwiseKernel / ReductionKernel: records its construction and
    launches, and checks every argument against its parameter declaration as CuPy does."""

    def __init__(self, log, reduction, in_params, out_params, *exprs, **kw):
        self.log, self.reduction, self.kw = log, reduction, kw
        self.ins, self.outs = host._params(in_params), host._params(out_params)
        log.append(("build", self))

    def __call__(self, *args, **kw):
        self.log.append(("run", self, args, kw))
        n = len(self.ins)
        assert len(args) == n + (0 if self.reduction else len(self.outs))
        for (ty, name), a in zip(self.ins + self.outs, args):
            assert a.dtype == np.dtype(ty), (name, a.dtype, ty)
            assert isinstance(a, np.ndarray) == (not name.startswith("c")), name
        if self.reduction:
            return np.zeros((), self.outs[0][0])
        return None


class _FakeCupy:
    ndarray = np.ndarray
    empty = staticmethod(np.empty)
    broadcast_to = staticmethod(np.broadcast_to)
    may_share_memory = staticmethod(np.may_share_memory)

    def __init__(self):
        self.log = []

    def ElementwiseKernel(self, *a, **kw):  # noqa: N802 (cupy's name)
        return _FakeKernel(self.log, False, *a, **kw)

    def ReductionKernel(self, *a, **kw):  # noqa: N802
        return _FakeKernel(self.log, True, *a, **kw)


@pytest.fixture
def fake():
    """A CuPy() whose cupy module is _FakeCupy over NumPy arrays (no GPU needed)."""
    from strata.backends.cuda import fused
    from strata.backends.xp import ArrayBackend
    B = CuPy.__new__(CuPy)
    B.device, B.allow_tf32 = 0, False
    B._compute = SimpleNamespace(apply=lambda: None)   # the TF32 switch of matmul
    ArrayBackend.__init__(B, np, numpy_fast_path=False)
    B._cp = _FakeCupy()
    fused._KERNELS.clear()
    return B


def _runs(B):
    return [e for e in B._cp.log if e[0] == "run"]


def test_cupy_fused_elementwise_builds_one_kernel_per_structure(fake):
    B = fake
    b = ProgramBuilder()
    x, y = b.input(dt.float16), b.input(dt.float16)
    t = b.op("mul", b.op("add", x, y), b.const(0.5, dt.float16))
    p = b.finish([t, x, b.op("gt", t, x), t])
    xa = np.ones((3, 4), np.float16)
    ya = np.ones((4,), np.float16)
    s0 = fusion.stats()
    outs = B.fused_elementwise(p, [xa, ya], (3, 4))
    outs2 = B.fused_elementwise(p.with_consts([2.0]), [xa[:2], ya], (2, 4))
    s1 = fusion.stats()
    assert (s1["cache_misses"] - s0["cache_misses"], s1["cache_hits"] - s0["cache_hits"]) == (1, 1)
    builds = [e for e in B._cp.log if e[0] == "build"]
    assert len(builds) == 1 and builds[0][1].kw["options"] == ("--fmad=false",)
    (_, k, args, _), (_, _, args2, _) = _runs(B)
    assert args[0] is xa and args[1] is ya and args[2] == np.float32(0.5)
    assert args2[2] == np.float32(2.0)
    # outputs: new arrays in the kernel's order; an output that is an input is the input
    # itself; a repeated output is the same array
    assert outs[0] is args[3] and outs[2] is args[4] and outs[3] is outs[0]
    assert outs[1] is xa and outs[0].shape == (3, 4) and outs[2].dtype == np.bool_
    assert outs2[0].shape == (2, 4)
    # outputs that are all inputs launch nothing; an empty shape launches nothing
    assert B.fused_elementwise(b.finish([x]), [xa, ya], (2, 3, 4))[0].shape == (2, 3, 4)
    B.fused_elementwise(p, [np.ones((0, 4), np.float16), ya], (0, 4))
    assert len(_runs(B)) == 2


def test_cupy_fused_elementwise_rejects_bad_inputs(fake):
    b = ProgramBuilder()
    x = b.input(dt.int8)
    p = b.finish([b.op("neg", x)])
    with pytest.raises(DTypeError, match="input 0 is float32"):
        fake.fused_elementwise(p, [np.zeros(4, np.float32)], (4,))
    with pytest.raises(DTypeError, match="not a CuPy primitive"):
        fake.fused_elementwise(p, [[1, 2]], (2,))
    with pytest.raises(ShapeError, match="does not broadcast"):
        fake.fused_elementwise(p, [np.zeros(3, np.int8)], (4,))
    with pytest.raises(ShapeError, match="takes 1 inputs"):
        fake.fused_elementwise(p, [], (4,))
    b = ProgramBuilder()
    x = b.input(dt.int8)
    with pytest.raises(DTypeError, match="exp is not defined for int8 tensors on CuPy()"):
        fake.fused_elementwise(b.finish([b.op("exp", x)]), [np.zeros(4, np.int8)], (4,))


def test_cupy_fused_update_writes_into_donated_buffers(fake):
    B = fake
    b = ProgramBuilder()
    p_, g, m = b.input(dt.float32), b.input(dt.float32), b.input(dt.float32)
    m2 = b.op("add", b.op("mul", m, b.const(0.9, dt.float32)), g)
    prog = b.finish([b.op("sub", p_, b.op("mul", m2, b.const(0.01, dt.float32))), m2])
    pa, ga, ma = (np.ones(8, np.float32) for _ in range(3))
    outs = B.fused_update(prog, [pa, ga, ma], (8,), {0: 0, 1: 2})
    assert outs[0] is pa and outs[1] is ma
    (_, _, args, _), = _runs(B)
    assert args[-2] is pa and args[-1] is ma
    # not donated: a broadcast input, a wrong dtype, a buffer another input also views, an
    # input that is itself an output
    x, y = np.ones(1, np.float32), np.ones(4, np.float32)
    outs = B.fused_update(prog, [x, y, y], (4,), {0: 0, 1: 2})
    assert outs[0] is not x and outs[1] is not y
    big = np.ones(8, np.float32)
    outs = B.fused_update(prog, [big[:4], big[2:6], np.ones(4, np.float32)], (4,), {0: 0})
    assert outs[0] is not None and not np.shares_memory(outs[0], big)
    b = ProgramBuilder()
    xi = b.input(dt.float32)
    p2 = b.finish([xi, b.op("neg", xi)])
    outs = B.fused_update(p2, [y], (4,), {1: 0})
    assert outs[0] is y and outs[1] is not y


def test_cupy_fused_reduce_passes_full_shape_views(fake):
    B = fake
    p = reduce_program(dt.float32)
    xa, wa = np.ones((4, 5), np.float32), np.ones((5,), np.float32)
    B.fused_reduce(p, [xa, wa], (4, 5), "max", (1,), True)
    (_, k), (_, _, args, kw) = B._cp.log
    assert k.reduction and k.kw["options"] == ("--fmad=false",)
    assert k.kw["name"] == "strata_fused_max" and k.kw["reduce_type"] == "float"
    # the broadcast input reaches the kernel as a view of the full shape
    assert args[0] is xa and args[1].shape == (4, 5) and np.shares_memory(args[1], wa)
    assert kw == {"axis": (1,), "keepdims": True}
    # a program of constants only runs the elementwise kernel, then the unfused sum
    b = ProgramBuilder()
    x = b.input(dt.float32)
    c = b.finish([b.op("add", b.const(1.0, dt.float32), b.const(2.0, dt.float32))])
    assert B.fused_reduce(c, [xa], (4, 5), "sum", (0,), False).shape == (5,)
    assert not B._cp.log[-1][1].reduction
    # no axes, empty reductions and bad requests
    assert B.fused_reduce(b.finish([b.op("neg", x)]), [xa], (4, 5), "sum", (), False).shape \
        == (4, 5)
    e = np.ones((0, 5), np.float32)
    assert B.fused_reduce(p, [e, wa], (0, 5), "sum", (0,), False).tolist() == [0.0] * 5
    with pytest.raises(ShapeError, match="size 0"):
        B.fused_reduce(p, [e, wa], (0, 5), "max", (0,), False)
    with pytest.raises(ValueError, match="sum, max or min"):
        B.fused_reduce(p, [xa, wa], (4, 5), "prod", (0,), False)


def test_cupy_programs_too_big_for_a_kernel_run_op_by_op(fake):
    """More inputs than CUDA's 4 KiB of kernel parameters hold: the protocol's interpreter
    (the backend's unfused ops) instead of a launch."""
    rng = np.random.default_rng(9)
    b = ProgramBuilder()
    xs = [b.input(dt.float32) for _ in range(70)]   # 70 rank-3 CArrays: 4.5 KiB
    acc = xs[0]
    for k, x in enumerate(xs[1:]):
        acc = b.op("add", acc, b.op("mul", x, b.const(0.5 + k, dt.float32)))
    p = b.finish([acc])
    arrays = [sample(rng, (3, 4, 5), dt.float32) for _ in xs]
    (got,) = fake.fused_elementwise(p, arrays, (3, 4, 5))
    np.testing.assert_allclose(got, np_eval(p, arrays, (3, 4, 5))[0], rtol=1e-5)
    red = fake.fused_reduce(p, arrays, (3, 4, 5), "sum", (0, 2), False)
    np.testing.assert_allclose(red, np_eval(p, arrays, (3, 4, 5))[0].sum((0, 2)), rtol=1e-5)
    assert not _runs(fake)


def test_cupy_outputs_come_from_the_pool_allocator(fake):
    taken = []

    class Pool:
        def empty(self, shape, dtype):
            taken.append((shape, np.dtype(dtype)))
            return np.empty(shape, dtype)

    fake.allocator = Pool()
    b = ProgramBuilder()
    x = b.input(dt.float32)
    p = b.finish([b.op("neg", x), b.op("gt", x, b.const(0.0, dt.float32))])
    fake.fused_elementwise(p, [np.ones((2, 3), np.float32)], (2, 3))
    fake.fused_reduce(b.finish([b.op("neg", x)]), [np.ones((2, 3), np.float32)], (2, 3),
                      "sum", (1,), True)
    assert taken == [((2, 3), np.float32), ((2, 3), np.bool_), ((2, 1), np.float32)]
    *_, (_, k, args, kw) = fake._cp.log
    assert k.reduction and kw["out"].shape == (2, 1)
