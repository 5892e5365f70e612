"""Elementwise ops against PyTorch: values, dtypes and gradients, on every Autodiff stack,
with broadcasting, non-contiguous views, 0-d/empty/size-1 shapes and NaN/inf."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from .torch_ref import rand, run_both

UNARY = {  # name: (fn, domain)
    "neg": (lambda m, x: -x, "any"),
    "abs": (lambda m, x: x.abs(), "nonzero"),
    "abs()": (lambda m, x: abs(x), "nonzero"),
    "sign": (lambda m, x: x.sign(), "nonzero"),
    "exp": (lambda m, x: x.exp(), "any"),
    "exp2": (lambda m, x: m.m.exp2(x), "any"),
    "log": (lambda m, x: x.log(), "pos"),
    "log2": (lambda m, x: m.m.log2(x), "pos"),
    "log10": (lambda m, x: x.log10(), "pos"),
    "log1p": (lambda m, x: x.log1p(), "pos"),
    "expm1": (lambda m, x: m.m.expm1(x), "any"),
    "sqrt": (lambda m, x: x.sqrt(), "pos"),
    "rsqrt": (lambda m, x: m.m.rsqrt(x), "pos"),
    "sin": (lambda m, x: m.m.sin(x), "any"),
    "cos": (lambda m, x: x.cos(), "any"),
    "tan": (lambda m, x: x.tan(), "unit"),
    "tanh": (lambda m, x: m.m.tanh(x), "any"),
    "sigmoid": (lambda m, x: m.m.sigmoid(x), "any"),
    "relu": (lambda m, x: m.m.relu(x), "nonzero"),
    "erf": (lambda m, x: x.erf(), "any"),
    "floor": (lambda m, x: x.floor(), "any"),
    "ceil": (lambda m, x: m.m.ceil(x), "any"),
    "round": (lambda m, x: x.round(), "any"),
    "trunc": (lambda m, x: x.trunc(), "any"),
    "reciprocal": (lambda m, x: x.reciprocal(), "nonzero"),
    "clamp": (lambda m, x: x.clamp(-0.7, 1.1), "any"),
    "clamp(max=)": (lambda m, x: m.m.clamp(x, max=0.3), "any"),
    "clamp(tensor bounds)": (lambda m, x: x.clamp(x * 0 - 0.5, x * 0 + 0.5), "any"),
    "pow scalar": (lambda m, x: x ** 3, "any"),
    "pow frac": (lambda m, x: m.m.pow(x, 1.5), "pos"),
    "rpow": (lambda m, x: 3.0 ** x, "any"),
    "lerp": (lambda m, x: m.m.lerp(x, x * 2 + 1, 0.25), "any"),
    "nan_to_num": (lambda m, x: m.m.nan_to_num(x), "any"),
    "square via mul": (lambda m, x: x * x, "any"),
    "rsub": (lambda m, x: 1 - x, "any"),
    "rdiv": (lambda m, x: 2 / x, "nonzero"),
    "floordiv scalar": (lambda m, x: x // 0.7, "any"),
    "mod scalar": (lambda m, x: x % 0.7, "any"),
}

SHAPES = [(3, 4), (), (1, 5), (2, 1, 3), (0, 3)]


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_unary(ad_stack, name, dtype):
    fn, dom = UNARY[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for shape in SHAPES:
        x = rand(rng, shape, dtype, dom)
        if name in ("floordiv scalar", "mod scalar"):
            x = np.where(np.abs((x / 0.7) - np.round(x / 0.7)) < 1e-3, 0.1, x).astype(dtype)
        run_both(fn, [x], ad_stack, grad=name != "floordiv scalar")  # torch: no grad for //


@pytest.mark.parametrize("name", ["exp", "sigmoid", "abs", "relu", "tanh", "sqrt", "clamp"])
@pytest.mark.parametrize("layout", ["T", "step"])
def test_unary_non_contiguous(ad_stack, name, layout):
    fn, dom = UNARY[name]
    x = rand(np.random.default_rng(1), (3, 5), "float64", dom)
    run_both(fn, [x], ad_stack, layouts=[layout])


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 1e300])


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid", "abs", "neg", "floor",
                                  "relu", "sign", "nan_to_num", "clamp", "erf", "reciprocal"])
def test_unary_nan_inf(ad_stack, name):
    fn, _ = UNARY[name]
    with np.errstate(all="ignore"):
        run_both(fn, [SPECIAL.copy()], ad_stack, grad=False)


@pytest.mark.parametrize("name,fn", [
    ("isnan", lambda m, x: x.isnan()), ("isinf", lambda m, x: m.m.isinf(x)),
    ("isfinite", lambda m, x: x.isfinite()),
    ("nan_to_num(args)", lambda m, x: x.nan_to_num(nan=1.0, posinf=2.0, neginf=-3.0)),
    ("maximum nan", lambda m, x: m.m.maximum(x, x.flip(0))),
    ("minimum nan", lambda m, x: m.m.minimum(x, x.flip(0))),
    ("eq nan", lambda m, x: x == x), ("ne nan", lambda m, x: x != x),
])
def test_special_values(ad_stack, name, fn):
    for dtype in ("float64", "float32"):
        with np.errstate(over="ignore"):  # 1e300 becomes inf in float32, on purpose
            x = SPECIAL.astype(dtype)
        run_both(fn, [x], ad_stack, grad=False)


BINARY = {
    "add": (lambda m, a, b: a + b, "any"),
    "sub": (lambda m, a, b: a - b, "any"),
    "mul": (lambda m, a, b: a * b, "any"),
    "div": (lambda m, a, b: a / b, "nonzero"),
    "add alpha": (lambda m, a, b: m.m.add(a, b, alpha=-2), "any"),
    "sub alpha": (lambda m, a, b: m.m.sub(a, b, alpha=0.5), "any"),
    "pow": (lambda m, a, b: a.abs() ** b, "nonzero"),
    "maximum": (lambda m, a, b: m.m.maximum(a, b), "any"),
    "minimum": (lambda m, a, b: m.m.minimum(a, b), "any"),
    "remainder": (lambda m, a, b: a % b, "nonzero"),
    "floor_divide": (lambda m, a, b: a // b, "nonzero"),
    "lerp tensor weight": (lambda m, a, b: m.m.lerp(a, b, b.sigmoid()), "any"),
    "where": (lambda m, a, b: m.m.where(a > b, a, b * 2), "any"),
    "div trunc": (lambda m, a, b: m.m.div(a, b, rounding_mode="trunc"), "nonzero"),
    "div floor": (lambda m, a, b: m.m.div(a, b, rounding_mode="floor"), "nonzero"),
}

BROADCAST = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
             ((3, 1), (2, 1, 4)), ((), (2, 3)), ((2, 3), ()), ((5, 1), (1, 6)), ((0, 4), (1, 4)),
             ((1,), ())]
_NO_GRAD = ("floor_divide",)  # torch has no derivative for //


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast(ad_stack, name):
    fn, dom = BINARY[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for sa, sb in BROADCAST:
        a, b = rand(rng, sa, domain="any"), rand(rng, sb, domain=dom)
        if name in ("floor_divide", "remainder", "div trunc", "div floor") and a.size and b.size:
            q = a / b  # keep a/b off integers, where these ops jump
            if np.any(np.abs(q - np.round(q)) < 1e-3):
                continue
        run_both(fn, [a, b], ad_stack, grad=name not in _NO_GRAD)


@pytest.mark.parametrize("name", ["add", "mul", "div", "maximum", "pow", "where"])
def test_binary_non_contiguous(ad_stack, name):
    fn, dom = BINARY[name]
    rng = np.random.default_rng(3)
    a, b = rand(rng, (4, 3), domain="any"), rand(rng, (4, 3), domain=dom)
    run_both(fn, [a, b], ad_stack, layouts=["T", "step"])


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
@pytest.mark.parametrize("dtype", ["float64", "int64", "int8", "uint8", "bool"])
def test_comparisons(ad_stack, op, dtype):
    rng = np.random.default_rng(4)
    a = rand(rng, (4, 5), dtype)
    b = np.where(rng.random((4, 5)) < 0.4, a, rand(rng, (4, 5), dtype))
    fn = eval(f"lambda m, a, b: a {op} b")  # noqa: S307 (a fixed operator from the list above)
    run_both(fn, [a, b], ad_stack, grad=False)
    fs = eval(f"lambda m, a: a {op} 1")  # noqa: S307
    run_both(fs, [a], ad_stack, grad=False)
    run_both(fn, [a, b[0]], ad_stack, grad=False)


@pytest.mark.parametrize("fn", [
    lambda m, a, b: m.m.logical_and(a, b), lambda m, a, b: a.logical_or(b),
    lambda m, a, b: m.m.logical_xor(a, b), lambda m, a, b: a.logical_not(),
    lambda m, a, b: a & b, lambda m, a, b: a | b, lambda m, a, b: a ^ b, lambda m, a, b: ~a,
    lambda m, a, b: m.m.bitwise_and(a, b),
], ids=["logical_and", "logical_or", "logical_xor", "logical_not", "and", "or", "xor", "invert",
        "bitwise_and"])
@pytest.mark.parametrize("dtype", ["bool", "int64", "int32", "uint8", "int8"])
def test_logical_bitwise(ad_stack, fn, dtype):
    rng = np.random.default_rng(5)
    run_both(fn, [rand(rng, (3, 4), dtype), rand(rng, (4,), dtype)], ad_stack, grad=False)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8"])
def test_integer_arithmetic(ad_stack, dtype):
    rng = np.random.default_rng(6)
    a, b = rand(rng, (4, 5), dtype), rand(rng, (4, 5), dtype, "nonzero")
    for fn in (lambda m, a, b: a + b, lambda m, a, b: a - b, lambda m, a, b: a * b,
               lambda m, a, b: a // b, lambda m, a, b: a % b, lambda m, a, b: a / b,
               lambda m, a, b: m.m.maximum(a, b), lambda m, a, b: -a, lambda m, a, b: a.abs(),
               lambda m, a, b: a.sign(), lambda m, a, b: a.clamp(-2, 3),
               lambda m, a, b: a ** 2, lambda m, a, b: m.m.where(a > 0, a, b)):
        run_both(fn, [a, b], ad_stack, grad=False)
