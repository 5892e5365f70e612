"""NumPy backend conv/pool/norm overrides, the core default compositions they replace, the
generic (CuPy) code path run on NumPy, and erf; references are PyTorch 2.13 CPU and math.erf."""
from __future__ import annotations

import math

import numpy as np
import pytest

from strata.backends.erf import erf
from strata.backends.numpy import NumPy
from strata.backends.xp import ArrayBackend
from strata.core import dtype as dt
from strata.core.backend import Backend
from strata.core.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

B = NumPy()
rng = np.random.default_rng(7)


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


CONV_CASES = [  # N, C, H, W, O, k, stride, padding, dilation, groups
    (2, 4, 9, 8, 6, 3, 1, 1, 1, 2), (1, 3, 7, 7, 4, 2, 2, 0, 1, 1), (2, 4, 10, 9, 8, 3, 2, 2, 2, 4),
    (1, 1, 5, 5, 1, 5, 1, 2, 1, 1), (3, 2, 6, 7, 4, 1, 1, 0, 1, 1), (2, 6, 8, 8, 6, 3, 3, 1, 1, 6),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("impl", ["override", "default"])
def test_conv2d_against_torch(case, impl):
    N, C, H, W, O, k, s, p, d, g = case
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C // g, k, k))
    ref = F.conv2d(T(x), T(w), stride=s, padding=p, dilation=d, groups=g).numpy()
    fn = B.conv2d if impl == "override" else lambda *a: Backend.conv2d(B, *a)
    got = fn(x, w, (s, s), (p, p), (d, d), g)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_conv2d_rectangular_and_low_precision():
    x, w = rng.standard_normal((2, 3, 11, 6)), rng.standard_normal((5, 3, 3, 2))
    ref = F.conv2d(T(x), T(w), stride=(2, 1), padding=(1, 2), dilation=(1, 2)).numpy()
    for dtype, tol in ((np.float32, 1e-5), (np.float16, 2e-2)):
        got = B.conv2d(x.astype(dtype), w.astype(dtype), (2, 1), (1, 2), (1, 2), 1)
        assert got.dtype == dtype
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol)
    with pytest.raises(ShapeError, match="groups"):
        B.conv2d(x, w, (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ShapeError, match="smaller"):
        B.conv2d(x[:, :, :2, :1], w, (1, 1), (0, 0), (1, 1), 1)


@pytest.mark.parametrize("case", [(2, 4, 5, 6, 6, 3, 2, 1, 1, 1, 2), (1, 3, 4, 4, 2, 2, 1, 0, 0, 1, 1),
                                  (2, 2, 3, 5, 4, 3, 3, 1, 2, 2, 2), (1, 2, 4, 4, 3, 3, 1, 2, 0, 1, 1)],
                         ids=str)
@pytest.mark.parametrize("impl", ["override", "default"])
def test_conv_transpose2d_against_torch(case, impl):
    N, C, H, W, O, k, s, p, op, d, g = case
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, O // g, k, k))
    ref = F.conv_transpose2d(T(x), T(w), stride=s, padding=p, output_padding=op, dilation=d,
                             groups=g).numpy()
    fn = B.conv_transpose2d if impl == "override" else lambda *a: Backend.conv_transpose2d(B, *a)
    got = fn(x, w, (s, s), (p, p), (op, op), (d, d), g)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("impl", ["override", "default"])
def test_conv2d_weight_backward_against_torch(case, impl):
    N, C, H, W, O, k, s, p, d, g = case
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C // g, k, k))
    tw = T(w).requires_grad_()
    y = F.conv2d(T(x), tw, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(tuple(y.shape))
    (ref,) = torch.autograd.grad(y, tw, T(gy))
    fn = B.conv2d_weight_backward if impl == "override" else \
        lambda *a: Backend.conv2d_weight_backward(B, *a)
    got = fn(x, gy, w.shape, (s, s), (p, p), (d, d), g)
    assert got.shape == w.shape
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-11, atol=1e-11)
    got32 = B.conv2d_weight_backward(x.astype(np.float32), gy.astype(np.float32), w.shape,
                                     (s, s), (p, p), (d, d), g)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, ref.numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ShapeError, match="gradient shape"):
        B.conv2d_weight_backward(x, gy[:, :, :1], w.shape, (s, s), (p, p), (d, d), g)


POOL_CASES = [  # H, W, kernel, stride, padding, dilation, ceil_mode
    (7, 7, 3, 2, 1, 1, False), (7, 7, 3, 2, 1, 1, True), (8, 9, 2, 2, 0, 1, False),
    (6, 5, 3, 2, 1, 2, True), (5, 5, 2, 3, 1, 1, True), (9, 9, 3, 3, 0, 2, False),
    (4, 4, 4, 1, 2, 1, True), (6, 6, 3, 1, 1, 1, False),
]


def _special_input(shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    x[0, 0] = -np.inf  # a whole plane of -inf: indices must point at real positions
    x[0, 1, 1:3, 1:3] = 0.0  # ties: the first maximum wins
    x[1, 0, ::2, ::3] = np.nan  # several NaNs in one window: torch keeps the last one
    return x.astype(dtype)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("impl", ["override", "default"])
def test_max_pool2d_against_torch(case, impl):
    H, W, k, s, p, d, cm = case
    x = _special_input((2, 3, H, W))
    rv, ri = F.max_pool2d(T(x), k, s, p, d, ceil_mode=cm, return_indices=True)
    fn = B.max_pool2d if impl == "override" else lambda *a: Backend.max_pool2d(B, *a)
    v, i = fn(x, (k, k), (s, s), (p, p), (d, d), cm)
    assert v.shape == tuple(rv.shape) and i.dtype == np.int64
    np.testing.assert_array_equal(v, rv.numpy())
    if impl == "override":  # the default composition takes the first NaN, not the last
        np.testing.assert_array_equal(i, ri.numpy())
    else:
        finite = ~np.isnan(v)
        np.testing.assert_array_equal(i[finite], ri.numpy()[finite])


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("dtype", (np.float64, np.float32, np.int16))
def test_max_pool2d_without_nan_or_padding_maxima_against_torch(case, dtype):
    """The NumPy fast path (no NaN, no window whose maximum is the padding value): few distinct
    values so that most windows tie, and the first maximum in window order must win."""
    H, W, k, s, p, d, cm = case
    x = rng.integers(-2, 3, (2, 3, H, W)).astype(dtype)
    rv, ri = F.max_pool2d(T(x.astype(np.float64)), k, s, p, d, ceil_mode=cm, return_indices=True)
    v, i = B.max_pool2d(x, (k, k), (s, s), (p, p), (d, d), cm)
    assert v.dtype == dtype
    np.testing.assert_array_equal(v.astype(np.float64), rv.numpy())
    np.testing.assert_array_equal(i, ri.numpy())


@pytest.mark.parametrize("dtype", (np.float32, np.float16, np.int32, np.uint8))
def test_max_pool2d_dtypes(dtype):
    x = rng.integers(0, 100, (2, 2, 7, 6)).astype(dtype)
    x[0, 0, :3, :3] = np.iinfo(dtype).min if np.dtype(dtype).kind in "iu" else -np.inf
    v, i = B.max_pool2d(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    rv, ri = F.max_pool2d(T(x.astype(np.float64)), 3, 2, 1, 1, ceil_mode=True, return_indices=True)
    assert v.dtype == dtype
    np.testing.assert_array_equal(v.astype(np.float64), rv.numpy())
    np.testing.assert_array_equal(i, ri.numpy())
    with pytest.raises(ShapeError, match="half"):
        B.max_pool2d(x, (2, 2), (2, 2), (2, 2), (1, 1), False)


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[5] == 1], ids=str)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor", [None, 5])
@pytest.mark.parametrize("impl", ["override", "default"])
def test_avg_pool2d_against_torch(case, count_include_pad, divisor, impl):
    H, W, k, s, p, _, cm = case
    x = rng.standard_normal((2, 3, H, W))
    ref = F.avg_pool2d(T(x), k, s, p, ceil_mode=cm, count_include_pad=count_include_pad,
                       divisor_override=divisor).numpy()
    fn = B.avg_pool2d if impl == "override" else lambda *a: Backend.avg_pool2d(B, *a)
    got = fn(x, (k, k), (s, s), (p, p), cm, count_include_pad, divisor)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-13)


def test_avg_pool2d_low_precision_and_ints():
    x = rng.standard_normal((1, 2, 6, 6))
    ref = F.avg_pool2d(T(x), 2).numpy()
    got = B.avg_pool2d(x.astype(np.float16), (2, 2), (2, 2), (0, 0), False, True)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), ref, atol=3e-3)
    with pytest.raises(DTypeError):
        B.avg_pool2d(x.astype(np.int32), (2, 2), (2, 2), (0, 0), False, True)


@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64))
def test_softmax_log_softmax_layer_norm(dtype):
    x = rng.standard_normal((3, 4, 5)) * 4
    x[0, 0, :] = -np.inf
    x[0, 0, 2] = 1.0
    tol = {np.float16: 3e-3, np.float32: 1e-6, np.float64: 1e-13}[dtype]
    for axis in (0, 2):
        for name, tf in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
            got = getattr(B, name)(x.astype(dtype), axis)
            ref = tf(T(x.astype(dtype).astype(np.float64)), dim=axis).numpy()
            assert got.dtype == dtype
            np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol)
            dflt = getattr(Backend, name)(B, x.astype(dtype), axis)
            np.testing.assert_allclose(dflt.astype(np.float64), ref, rtol=tol * 4, atol=tol * 4)
    y = rng.standard_normal((4, 3, 6))
    w, b = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    ref = F.layer_norm(T(y), (3, 6), T(w), T(b), eps=1e-5).numpy()
    got = B.layer_norm(y.astype(dtype), 2, w.astype(dtype), b.astype(dtype), 1e-5)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol * 10, atol=tol * 10)
    ref1 = F.layer_norm(T(y), (6,)).numpy()
    np.testing.assert_allclose(B.layer_norm(y, 1, None, None, 1e-5), ref1, rtol=1e-12, atol=1e-12)


def test_core_defaults_prod_cumsum_scatter():
    x = rng.standard_normal((3, 5, 4))
    for axes in ((0,), (1,), (0, 2), (0, 1, 2)):
        for kd in (True, False):
            np.testing.assert_allclose(Backend.prod(B, x, axes, kd), np.prod(x, axis=axes, keepdims=kd),
                                       rtol=1e-12)
    assert Backend.prod(B, np.zeros((2, 0)), (1,), False).tolist() == [1.0, 1.0]
    for axis in range(3):
        np.testing.assert_allclose(Backend.cumsum(B, x, axis), torch.cumsum(T(x), axis).numpy(), rtol=1e-12)
        np.testing.assert_allclose(Backend.cumprod(B, x, axis), torch.cumprod(T(x), axis).numpy(), rtol=1e-12)
    x2, src = rng.standard_normal((2, 6)), rng.standard_normal((2, 5))
    idx = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]], np.int64)
    ref = torch.scatter(T(x2), 1, T(idx), T(src)).numpy()
    np.testing.assert_array_equal(Backend.scatter(B, x2, 1, idx, src), ref)
    np.testing.assert_array_equal(Backend.index_select(B, x2, 1, np.array([5, 0, 5])), x2[:, [5, 0, 5]])


# ------------------------------------------------------------------ the generic (CuPy) code path
G = ArrayBackend(np, numpy_fast_path=False)


def test_generic_path_elementwise_matches_numpy_fast_path():
    assert "add" in G.__dict__ and not G._numpy_mode
    for dtype in (np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64):
        a = rng.uniform(1, 5, (3, 4)).astype(dtype)
        b = rng.uniform(1, 5, (1, 4)).astype(dtype)
        for name in ("add", "sub", "mul", "maximum", "minimum", "remainder", "floor_divide",
                     "eq", "lt", "ge", "logical_or", "pow"):
            np.testing.assert_array_equal(getattr(G, name)(a, b), getattr(B, name)(a, b), err_msg=name)
            got = getattr(G, name)(a, 3)
            assert got.dtype == getattr(B, name)(a, 3).dtype, name
            np.testing.assert_array_equal(got, getattr(B, name)(a, 3), err_msg=name)
        for name in ("neg", "abs", "floor", "logical_not", "isnan", "round", "sign"):
            if name == "neg" and dtype is np.uint8:
                continue
            np.testing.assert_array_equal(getattr(G, name)(a), getattr(B, name)(a), err_msg=name)
    f = rng.uniform(0.1, 3, (5,)).astype(np.float32)
    for name in ("exp", "log", "sqrt", "tanh", "erf", "sigmoid", "reciprocal", "div"):
        args = (f, f) if name == "div" else (f,)
        np.testing.assert_array_equal(getattr(G, name)(*args), getattr(B, name)(*args), err_msg=name)


def test_generic_path_contract_and_scalars():
    assert G.add(np.array([250], np.uint8), 10).tolist() == [4]  # wraps like torch
    assert G.lt(np.array([1, 2], np.int8), 1.5).tolist() == [True, False]
    z = G.add(np.array(1.0, np.float32), 2.0)
    assert isinstance(z, np.ndarray) and z.dtype == np.float32
    with pytest.raises(DTypeError):
        G.add(np.ones(2, np.float32), np.ones(2, np.float64))
    with pytest.raises(DTypeError):
        G.exp(np.arange(3))  # would silently give float64 without the result check
    with pytest.raises(DTypeError):
        G.div(np.arange(3), np.arange(1, 4))
    s = G.sum(np.ones((2, 3), np.float32), (0, 1), False)
    assert isinstance(s, np.ndarray) and s == 6 and s.dtype == np.float32


def test_generic_path_allocator_and_nn():
    g = ArrayBackend(np, numpy_fast_path=False)
    made = []
    g.set_allocator(type("A", (), {"empty": lambda self, s, d: made.append(np.empty(s, d)) or made[-1]})())
    x = rng.standard_normal((2, 3)).astype(np.float32)
    out = g.mul(x, 2.0)
    assert out is made[-1] and np.array_equal(out, x * 2)
    assert g.sum(x, (1,), False) is made[-1]
    xi, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_allclose(g.conv2d(xi, w, (1, 1), (1, 1), (1, 1), 1),
                               F.conv2d(T(xi), T(w), padding=1).numpy(), rtol=1e-12, atol=1e-12)


def test_generic_path_takes_no_numpy_only_shortcuts():
    """The code CuPy runs (numpy_fast_path=False) must give the NumPy fast paths' results
    without them: where, max_pool2d, nll_loss and its backward, conv_transpose2d,
    conv2d_weight_backward."""
    g = ArrayBackend(np, numpy_fast_path=False)
    c = rng.random((50, 60)) > 0.5
    a, b = rng.standard_normal((50, 60)), rng.standard_normal((50, 60))
    assert np.array_equal(g.where(c, a, b), B.where(c, a, b))
    x = rng.integers(-2, 3, (2, 3, 8, 9)).astype(np.float32)
    for got, want in zip(g.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False),
                         B.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)):
        assert np.array_equal(got, want)
    logp = np.log(rng.dirichlet(np.ones(5), 6))
    t = rng.integers(0, 5, 6)
    for red in ("mean", "sum"):
        np.testing.assert_allclose(g.nll_loss(logp, t, None, -100, red),
                                   B.nll_loss(logp, t, None, -100, red), rtol=1e-14)
        gy = np.asarray(0.7)
        np.testing.assert_allclose(g.nll_loss_backward(gy, logp, t, None, -100, red),
                                   B.nll_loss_backward(gy, logp, t, None, -100, red), rtol=1e-14)
    xi, w = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(g.conv_transpose2d(xi, w, (1, 1), (1, 1), (0, 0), (1, 1), 1),
                               F.conv_transpose2d(T(xi), T(w), padding=1).numpy(), rtol=1e-12,
                               atol=1e-12)
    gy = rng.standard_normal((2, 3, 3, 4))
    np.testing.assert_allclose(g.conv2d_weight_backward(xi, gy, (3, 4, 3, 3), (1, 1), (0, 0),
                                                        (1, 1), 1),
                               B.conv2d_weight_backward(xi, gy, (3, 4, 3, 3), (1, 1), (0, 0),
                                                        (1, 1), 1), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ erf
def test_erf_dense_grid_against_math_erf():
    x = np.concatenate([np.linspace(-7, 7, 140_001), np.geomspace(1e-300, 1e-3, 200),
                        -np.geomspace(1e-300, 1e-3, 200), [0.46875, -0.46875, 4.0, -4.0, 5.9999, 6.0, 27.0]])
    got = erf(x, np)
    ref = np.array([math.erf(v) for v in x])
    ulp = np.abs(got - ref) / np.spacing(np.abs(ref))
    assert ulp.max() <= 4, f"max error {ulp.max()} ulp at x={x[np.argmax(ulp)]}"
    special = erf(np.array([np.inf, -np.inf, np.nan, -0.0, 0.0]), np)
    assert special[0] == 1 and special[1] == -1 and np.isnan(special[2])
    assert np.signbit(special[3]) and not np.signbit(special[4])
    for dtype in (np.float16, np.float32):
        xs = x.astype(dtype)
        r = erf(xs, np)
        assert r.dtype == dtype
        # computed in float64 and rounded once: equal to the correctly rounded value
        np.testing.assert_array_equal(r, np.array([math.erf(v) for v in xs.astype(np.float64)]).astype(dtype))
    assert erf(np.zeros((0, 2), np.float32), np).shape == (0, 2)
    assert B.erf(np.array(0.5, np.float32)).shape == ()


def test_dtype_support_and_str():
    assert all(B.supports(d) for d in dt.ALL) and str(G) == "ArrayBackend()"
