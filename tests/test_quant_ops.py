"""Quantization: scheme validation, quantize -> dequantize error bounds, int4 packing, and the
quantized matmul / linear / conv2d against a float64 reference of the dequantized math, on
every base backend available here."""
from __future__ import annotations

import numpy as np
import pytest

import strata as st
import strata.quantization as Q
from strata.decorators.quantization.qtensor import pack_int4, unpack_int4_host

BASES = ["NumPy()", "OpenCL()", "WGPU()"]
SCHEMES = [
    Q.QuantScheme(),
    Q.QuantScheme(symmetric=False),
    Q.QuantScheme(granularity="per_tensor"),
    Q.QuantScheme(granularity="per_tensor", symmetric=False),
    Q.QuantScheme(dtype="int4"),
    Q.QuantScheme(dtype="int4", symmetric=False),
    Q.QuantScheme(dtype="int4", granularity="per_block", block_size=16),
    Q.QuantScheme(dtype="int4", granularity="per_block", block_size=16, symmetric=False),
    Q.QuantScheme(granularity="per_block", block_size=32),
    Q.QuantScheme(axis=1),
]


def _backend(spec):
    try:
        return st.backend(spec)
    except st.BackendError as e:
        pytest.skip(f"{spec} unavailable here: {e}")


def _sid(s):
    return s.kwargs_repr() or "int8"


@pytest.mark.parametrize("kw, word", [({"dtype": "int3"}, "dtype"), ({"block_size": 7}, "block_size"),
                                      ({"percentile": 20}, "percentile"), ({"foo": 1}, "foo"),
                                      ({"granularity": "per_row"}, "granularity")])
def test_bad_scheme_is_a_clear_error(kw, word):
    with pytest.raises(Q.QuantSchemeError, match=word):
        Q.QuantScheme.build(**kw)


def test_quantization_stack_string_round_trip_and_default_scheme():
    s = "Quantization(Autodiff(NumPy()), dtype='int4', granularity='per_block')"
    B = st.backend(s)
    assert str(B) == s and str(st.backend(str(B))) == s
    w = st.randn(8, 64, backend=B)
    q = Q.quantize(w)
    assert q.scheme.dtype == "int4" and q.scheme.granularity == "per_block"
    y = (w * 2).sum()             # float ops pass through the layer
    assert abs(y.item() - 2 * w.numpy().sum()) < 1e-3


def test_int4_pack_round_trip():
    rng = np.random.default_rng(0)
    q = rng.integers(-8, 8, (5, 12)).astype(np.int8)
    p = pack_int4(q)
    assert p.dtype == np.uint8 and p.shape == (5, 6)
    np.testing.assert_array_equal(unpack_int4_host(p), q)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scheme", SCHEMES, ids=_sid)
def test_dequantize_error_is_within_half_a_step(base, scheme):
    B = _backend(base)
    rng = np.random.default_rng(1)
    a = (rng.standard_normal((6, 37)) * rng.uniform(0.1, 3, (6, 1))).astype(np.float32)
    q = Q.quantize(st.from_numpy(a, backend=B), scheme)
    d = q.dequantize().numpy().astype(np.float64)
    assert d.shape == a.shape
    # the step of each value's group: per tensor / channel (axis) / block of the channel row
    sc = q.q_scale()
    if scheme.granularity == "per_tensor":
        step = np.full(a.shape, sc)
    elif scheme.granularity == "per_channel":
        step = np.expand_dims(sc, 1 - scheme.axis) * np.ones(a.shape)
    else:
        step = np.repeat(sc, scheme.block_size, axis=1)[:, :a.shape[1]]
    err = np.abs(d - a)
    assert np.all(err <= step / 2 * (1 + 1e-5) + 1e-7), float((err / step).max())
    codes = q.int_repr()
    assert codes.min() >= scheme.qmin and codes.max() <= scheme.qmax
    # the codes really use the range (a degenerate scale would pass the bound trivially)
    assert np.abs(codes).max() >= scheme.qmax // 2


def test_percentile_calibration_clips_outliers():
    a = np.random.default_rng(2).standard_normal((1, 4096)).astype(np.float32)
    a[0, 0] = 100.0
    x = st.from_numpy(a)
    mm = Q.quantize(x, granularity="per_tensor")
    pc = Q.quantize(x, granularity="per_tensor", calibration="percentile", percentile=99.9)
    assert pc.q_scale() < mm.q_scale() / 10
    body = np.abs(pc.dequantize().numpy()[0, 1:] - a[0, 1:]).mean()
    assert body < np.abs(mm.dequantize().numpy()[0, 1:] - a[0, 1:]).mean()


def _ref_linear(x, wd, b, act, int_path):
    x = x.astype(np.float64)
    if int_path:
        xq = np.clip(np.round(x.astype(np.float32) / np.float32(act.scale)) + act.zero_point,
                     act.qmin, act.qmax)
        x = (xq - act.zero_point) * act.scale
    return x @ wd.T + (0 if b is None else b)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scheme", SCHEMES[:8], ids=_sid)
@pytest.mark.parametrize("calibrated", [False, True])
def test_quantized_linear_matches_float64_reference(base, scheme, calibrated):
    B = _backend(base)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 40)).astype(np.float32)
    w = rng.standard_normal((24, 40)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    q = Q.quantize(st.from_numpy(w, backend=B), scheme)
    act = Q.calibrate_activation([x]) if calibrated else None
    y = Q.linear(st.from_numpy(x, backend=B), q, st.from_numpy(b, backend=B), act=act)
    path = Q.last_path()["path"]
    int_path = calibrated and scheme.granularity != "per_block"
    assert path.startswith("int8-") == int_path, path
    wd = q.dequantize().numpy().astype(np.float64)
    ref = _ref_linear(x, wd, b, act, int_path)
    assert y.shape == (2, 3, 24)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("base", BASES)
def test_quantized_matmul_per_column(base):
    B = _backend(base)
    rng = np.random.default_rng(4)
    a = rng.random((7, 30)).astype(np.float32)
    m = rng.standard_normal((30, 11)).astype(np.float32)
    q = Q.quantize(st.from_numpy(m, backend=B), axis=1)
    act = Q.calibrate_activation([a])
    y = Q.matmul(st.from_numpy(a, backend=B), q, act=act)
    assert Q.last_path()["path"].startswith("int8-")
    md = q.dequantize().numpy().astype(np.float64)
    ref = _ref_linear(a, md.T, None, act, True)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("scheme", [Q.QuantScheme(), Q.QuantScheme(dtype="int4", symmetric=False),
                                    Q.QuantScheme(dtype="int4", granularity="per_block", block_size=8)],
                         ids=_sid)
@pytest.mark.parametrize("calibrated", [False, True])
def test_quantized_conv2d_matches_float64_reference(base, scheme, calibrated):
    import torch
    B = _backend(base)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    q = Q.quantize(st.from_numpy(w, backend=B), scheme)
    act = Q.calibrate_activation([x]) if calibrated else None
    y = Q.conv2d(st.from_numpy(x, backend=B), q, st.from_numpy(b, backend=B), stride=2,
                 padding=1, groups=2, act=act)
    int_path = calibrated and scheme.granularity != "per_block"
    assert Q.last_path()["path"].startswith("int8-") == int_path
    xr = x.astype(np.float64)
    if int_path:
        xq = np.clip(np.round(x / np.float32(act.scale)) + act.zero_point, act.qmin, act.qmax)
        xr = ((xq - act.zero_point) * act.scale).astype(np.float64)
    wd = q.dequantize().numpy().astype(np.float64)
    ref = torch.nn.functional.conv2d(torch.from_numpy(xr), torch.from_numpy(wd),
                                     torch.from_numpy(b.astype(np.float64)), 2, 1, 1, 2).numpy()
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_bad_inputs_are_clear_errors():
    w = Q.quantize(st.randn(4, 8))
    with pytest.raises(st.ShapeError, match="features"):
        Q.linear(st.randn(2, 5), w)
    with pytest.raises(TypeError, match="QuantizedTensor"):
        Q.linear(st.randn(2, 8), st.randn(4, 8))
    with pytest.raises(st.DTypeError, match="floating"):
        Q.quantize(st.arange(8))
    with pytest.raises(ValueError, match="NaN"):
        Q.quantize(st.tensor([1.0, float("nan")]))
    other = st.backend("NumPy()")
    with pytest.raises(st.BackendError, match="on"):
        Q.linear(st.randn(2, 8, backend=other), w)
    # activation codes must be int8: the integer kernels (WGPU packs bytes) would wrap
    for kw, word in [(dict(scale=0.0, zero_point=0), "scale"),
                     (dict(scale=float("inf"), zero_point=0), "scale"),
                     (dict(scale=0.1, zero_point=0, qmin=-1000, qmax=1000), "qmin"),
                     (dict(scale=0.1, zero_point=300), "zero_point"),
                     (dict(scale=0.1, zero_point=0, qmin=3, qmax=3), "qmin < qmax"),
                     (dict(scale=0.1, zero_point=0.5), "zero_point")]:
        with pytest.raises(Q.QuantSchemeError, match=word):
            Q.ActQuant(**kw)
    assert Q.ActQuant(np.float32(0.1), np.int64(-3)).zero_point == -3


@pytest.mark.parametrize("spec", [None, "WGPU()"])
def test_int32_and_float32_exact_accumulation_agree_bit_for_bit(spec):
    """The integer path (the backend's int8_matmul: int32 operands, on WGPU dot4I8Packed
    where the adapter compiles it) gives the bits of the float32-exact path."""
    if spec is None:
        S, int_path = st.get_default_backend(), "int8-int32"
    else:
        pytest.importorskip("wgpu")
        try:
            S = st.backend(spec)
        except st.BackendError as e:
            pytest.skip(f"{spec}: {e}")
        int_path = "int8-dot4I8Packed" if S.int8_dot4 else "int8-int32"
    rng = np.random.default_rng(6)
    x = st.from_numpy(rng.standard_normal((9, 300)).astype(np.float32), backend=S)
    q = Q.quantize(st.from_numpy(rng.standard_normal((20, 300)).astype(np.float32), backend=S))
    act = Q.calibrate_activation([x])
    try:
        Q.set_int_accumulation("int32")
        a = Q.linear(x, q, act=act).numpy()
        assert Q.last_path()["path"] == int_path
        Q.set_int_accumulation("float32-exact")
        b = Q.linear(x, q, act=act).numpy()
        assert Q.last_path()["path"] == "int8-float32-exact"
    finally:
        Q.set_int_accumulation("auto")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="mode"):
        Q.set_int_accumulation("int16")


def _conv_case(B, scheme):
    """Inputs of a conv with every geometry the integer path handles (padding, stride,
    dilation, groups) and affine activations (zero point != 0, which the padding must
    stand for)."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, 4, 11, 10)) + 1.0).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    q = Q.quantize(st.from_numpy(w, backend=B), scheme)
    act = Q.calibrate_activation([x])
    assert act.zero_point != 0
    conv = dict(stride=2, padding=1, dilation=2, groups=2, act=act)
    return x, b, q, act, conv


def _int_path(B) -> str:
    return "int8-dot4I8Packed" if getattr(B.base(), "int8_dot4", False) else "int8-int32"


@pytest.mark.parametrize("base", ["OpenCL()", "WGPU()"])
@pytest.mark.parametrize("scheme", [Q.QuantScheme(), Q.QuantScheme(granularity="per_tensor"),
                                    Q.QuantScheme(dtype="int4", symmetric=False)], ids=_sid)
def test_quantized_conv2d_int8_matmul_path_matches_float64_reference(base, scheme):
    """On OpenCL and WGPU the integer conv accumulates in int8_matmul (the im2col of codes
    padded with the activations' zero point)."""
    import torch
    B = _backend(base)
    x, b, q, act, conv = _conv_case(B, scheme)
    y = Q.conv2d(st.from_numpy(x, backend=B), q, st.from_numpy(b, backend=B), **conv)
    assert Q.last_path()["path"] == _int_path(B)
    xq = np.clip(np.round(x / np.float32(act.scale)) + act.zero_point, act.qmin, act.qmax)
    xr = ((xq - act.zero_point) * act.scale).astype(np.float64)
    wd = q.dequantize().numpy().astype(np.float64)
    ref = torch.nn.functional.conv2d(torch.from_numpy(xr), torch.from_numpy(wd),
                                     torch.from_numpy(b.astype(np.float64)), 2, 1, 2, 2).numpy()
    assert y.shape == ref.shape == (2, 6, 5, 4)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("spec", [None, "OpenCL()", "WGPU()"])
def test_conv2d_int32_and_float32_exact_accumulation_agree_bit_for_bit(spec):
    """The conv's int8_matmul path (uncentred codes, zero-point padding, zx * colsum taken
    off in int32) gives the bits of the float conv of centred codes."""
    S = st.get_default_backend() if spec is None else _backend(spec)
    x, b, q, act, conv = _conv_case(S, Q.QuantScheme())
    X, bias = st.from_numpy(x, backend=S), st.from_numpy(b, backend=S)
    try:
        Q.set_int_accumulation("int32")
        a = Q.conv2d(X, q, bias, **conv).numpy()
        assert Q.last_path()["path"] == _int_path(S)
        Q.set_int_accumulation("float32-exact")
        f = Q.conv2d(X, q, bias, **conv).numpy()
        assert Q.last_path()["path"] == "int8-float32-exact"
    finally:
        Q.set_int_accumulation("auto")
    np.testing.assert_array_equal(a, f)


def test_conv2d_affine_int8_weight_keeps_the_float32_exact_path():
    """An affine int8 weight's code - zero point can leave -128..127: not int8_matmul's input."""
    S = st.get_default_backend()
    x, b, q, act, conv = _conv_case(S, Q.QuantScheme(symmetric=False))
    centred = q.int_repr().astype(np.int64) - q.q_zero_point().reshape(-1, 1, 1, 1)
    assert np.abs(centred).max() > 127
    try:
        Q.set_int_accumulation("int32")
        Q.conv2d(st.from_numpy(x, backend=S), q, **conv)
    finally:
        Q.set_int_accumulation("auto")
    assert Q.last_path()["path"] == "int8-float32-exact"


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("mode", ["auto", "int32"])
def test_zero_point_term_is_exact_past_float32_range(base, mode):
    """Affine activations near their zero point against an all-positive weight: the
    accumulator (~5e7) and zx * colsum nearly cancel. Taken in float32, both round to a few
    units and their ~1e4 difference loses ~1e-4 of itself; the int32 paths subtract exactly."""
    B = _backend(base)
    rng = np.random.default_rng(9)
    K = 4096
    w = rng.uniform(0.9, 1.0, (8, K)).astype(np.float32)
    x = rng.uniform(-0.1, 0.1, (4, K)).astype(np.float32)
    act = Q.ActQuant.from_range(-1.0, 10.0)            # zero point -105
    assert act.zero_point < -100
    q = Q.quantize(st.from_numpy(w, backend=B), granularity="per_tensor")
    Q.set_int_accumulation(mode)
    try:
        y = Q.linear(st.from_numpy(x, backend=B), q, act=act).numpy()
        path = Q.last_path()["path"]
    finally:
        Q.set_int_accumulation("auto")
    assert path.startswith("int8-") and path != "int8-float32-exact", path
    xq = np.clip(np.round(x / np.float32(act.scale)) + act.zero_point, act.qmin, act.qmax)
    wq = q.int_repr().astype(np.float64)
    ref = (xq.astype(np.float64) - act.zero_point) @ wq.T * float(q.q_scale()) * act.scale
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=0)


@pytest.mark.parametrize("base", BASES)
def test_fused_quantize_and_rescale_programs_match_op_by_op(base, monkeypatch):
    """The activation quantization and the rescale run as fused programs where the base
    fuses at that size (devices: always; NumPy: from 2^18 elements); forced either way they
    give the same values (same ops, same order)."""
    from strata.decorators.quantization import ops as qops
    B = _backend(base)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 40)).astype(np.float32)
    xc = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    q = Q.quantize(st.from_numpy(rng.standard_normal((24, 40)).astype(np.float32), backend=B))
    qc = Q.quantize(st.from_numpy(rng.standard_normal((6, 2, 3, 3)).astype(np.float32),
                                  backend=B))
    act, actc = Q.calibrate_activation([x + 1.0]), Q.calibrate_activation([xc + 1.0])
    assert act.zero_point and actc.zero_point
    out = {}
    for fuse in (True, False):
        monkeypatch.setattr(qops, "_fuses", lambda B, n, f=fuse: f)
        out[fuse] = (Q.linear(st.from_numpy(x, backend=B), q, st.from_numpy(b, backend=B),
                              act=act).numpy(),
                     Q.conv2d(st.from_numpy(xc, backend=B), qc, st.from_numpy(b[:6], backend=B),
                              padding=1, groups=2, act=actc).numpy())
    for fused, plain in zip(out[True], out[False]):
        np.testing.assert_allclose(fused, plain, rtol=1e-6, atol=1e-6 * np.abs(plain).max())
