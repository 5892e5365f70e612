"""Conformance cases: unary, binary, comparison, logical, bitwise and activation ops."""
from __future__ import annotations

import math

import numpy as np

from ..core import dtype as dt
from .spec import ALL, FLOATS, INTS, NUMERIC, SIGNED, Arg, Case, sample

S = (3, 4)  # default elementwise shape (small: backward uses finite differences)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


_SELU_A, _SELU_L = 1.6732632423543772, 1.0507009873554805


def unary(name, run, ref, dtypes=FLOATS, domain="any", dref=None, out=None, grad=True, tol=1.0,
          shape=S):
    return Case(name, run, ref, (Arg(shape, domain),), dtypes=dtypes, dref=dref, out=out,
                grad=grad, tol=tol, group="unary")


def binary(name, run, ref, dtypes=NUMERIC, da="any", db="any", sa=S, sb=S, dref=None, out=None,
           grad=True, tol=1.0, make=None):
    return Case(name, run, ref, (Arg(sa, da), Arg(sb, db)), dtypes=dtypes, dref=dref, out=out,
                grad=grad, tol=tol, make=make, group="binary")


def _as_int(a):
    return a.astype(np.int64) if a.dtype != np.bool_ else a


def _floor_divide(a, b):
    if a.dtype.kind == "f":
        return np.floor(a / b)
    return np.floor_divide(a, b)


def _with_ties(rng, d):
    a = sample(rng, S, "any", d)
    b = sample(rng, S, "any", d)
    same = rng.random(S) < 0.3
    return [a, np.where(same, a, b).astype(a.dtype)]


def _scalar_for(x, f, i):
    return f if x.dtype.is_floating_point else i


UNARY = [
    unary("neg", lambda st, F, x: -x, lambda x: -x, NUMERIC, dref=lambda g, x: (-g,)),
    unary("exp", lambda st, F, x: x.exp(), np.exp, dref=lambda g, x: (g * np.exp(x),)),
    unary("exp2", lambda st, F, x: st.exp2(x), np.exp2),
    unary("log", lambda st, F, x: x.log(), np.log, domain="pos", dref=lambda g, x: (g / x,)),
    unary("log2", lambda st, F, x: x.log2(), np.log2, domain="pos"),
    unary("log10", lambda st, F, x: x.log10(), np.log10, domain="pos"),
    unary("log1p", lambda st, F, x: x.log1p(), np.log1p, domain="pos"),
    unary("expm1", lambda st, F, x: x.expm1(), np.expm1),
    unary("sqrt", lambda st, F, x: x.sqrt(), np.sqrt, domain="pos",
          dref=lambda g, x: (g * 0.5 / np.sqrt(x),)),
    unary("rsqrt", lambda st, F, x: x.rsqrt(), lambda x: 1 / np.sqrt(x), domain="pos"),
    unary("sin", lambda st, F, x: x.sin(), np.sin, dref=lambda g, x: (g * np.cos(x),)),
    unary("cos", lambda st, F, x: x.cos(), np.cos, dref=lambda g, x: (-g * np.sin(x),)),
    unary("tan", lambda st, F, x: x.tan(), np.tan, domain="unit"),
    unary("tanh", lambda st, F, x: x.tanh(), np.tanh,
          dref=lambda g, x: (g * (1 - np.tanh(x) ** 2),)),
    unary("sigmoid", lambda st, F, x: x.sigmoid(), _sigmoid,
          dref=lambda g, x: (g * _sigmoid(x) * (1 - _sigmoid(x)),)),
    unary("sigmoid(wide)", lambda st, F, x: st.sigmoid(x), _sigmoid, domain="wide"),
    unary("erf", lambda st, F, x: x.erf(), _erf,
          dref=lambda g, x: (g * 2 / math.sqrt(math.pi) * np.exp(-x * x),)),
    unary("abs", lambda st, F, x: x.abs(), np.abs, NUMERIC, domain="nonzero",
          dref=lambda g, x: (g * np.sign(x),)),
    unary("sign", lambda st, F, x: x.sign(), np.sign, NUMERIC, domain="nonzero"),
    unary("reciprocal", lambda st, F, x: x.reciprocal(), lambda x: 1 / x, domain="nonzero",
          dref=lambda g, x: (-g / (x * x),)),
    unary("floor", lambda st, F, x: x.floor(), np.floor, FLOATS + INTS, domain="frac"),
    unary("ceil", lambda st, F, x: x.ceil(), np.ceil, FLOATS + INTS, domain="frac"),
    unary("round", lambda st, F, x: x.round(), np.round, FLOATS + INTS, domain="frac"),
    unary("trunc", lambda st, F, x: x.trunc(), np.trunc, FLOATS + INTS, domain="frac"),
    unary("relu", lambda st, F, x: x.relu(), lambda x: np.maximum(x, 0), NUMERIC,
          domain="nonzero", dref=lambda g, x: (g * (x > 0),)),
    unary("clamp", lambda st, F, x: x.clamp(-0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
          domain="small"),
    unary("clamp(int)", lambda st, F, x: x.clamp(1, 6), lambda x: np.clip(x, 1, 6), INTS),
    unary("clamp(min)", lambda st, F, x: x.clamp(min=0.25), lambda x: np.maximum(x, 0.25)),
    unary("logical_not", lambda st, F, x: x.logical_not(), np.logical_not, ALL, out="bool",
          grad=False),
    unary("bitwise_not", lambda st, F, x: ~x,
          lambda x: np.logical_not(x) if x.dtype == np.bool_ else ~_as_int(x),
          INTS + (dt.bool_,), grad=False),
    unary("isnan", lambda st, F, x: x.isnan(), np.isnan, domain="special", out="bool",
          grad=False),
    unary("isinf", lambda st, F, x: x.isinf(), np.isinf, domain="special", out="bool",
          grad=False),
    unary("isfinite", lambda st, F, x: x.isfinite(), np.isfinite, domain="special", out="bool",
          grad=False),
    unary("nan_to_num", lambda st, F, x: x.nan_to_num(nan=0.5, posinf=7.0, neginf=-7.0),
          lambda x: np.nan_to_num(x, nan=0.5, posinf=7.0, neginf=-7.0), domain="special",
          grad=False),
    unary("pow(x, 2)", lambda st, F, x: x ** 2, lambda x: x ** 2, NUMERIC, domain="small"),
    unary("pow(x, 0.5)", lambda st, F, x: x ** 0.5, np.sqrt, domain="pos"),
    unary("pow(2, x)", lambda st, F, x: 2 ** x, lambda x: np.power(2.0, x)),
    unary("add(scalar)", lambda st, F, x: x + _scalar_for(x, 2.5, 3),
          lambda x: x + (2.5 if x.dtype.kind == "f" else 3), NUMERIC),
    unary("rsub(scalar)", lambda st, F, x: _scalar_for(x, 1.5, 2) - x,
          lambda x: (1.5 if x.dtype.kind == "f" else 2) - x, FLOATS + SIGNED),
    unary("mul(scalar)", lambda st, F, x: x * _scalar_for(x, -1.5, 3),
          lambda x: x * (-1.5 if x.dtype.kind == "f" else 3), NUMERIC),
    unary("div(scalar)", lambda st, F, x: x / 4, lambda x: x / 4.0, NUMERIC, out="div"),
    unary("rdiv(scalar)", lambda st, F, x: 3.0 / x, lambda x: 3.0 / x, domain="nonzero"),
]

ACTIVATIONS = [
    unary("F.relu", lambda st, F, x: F.relu(x), lambda x: np.maximum(x, 0), domain="nonzero"),
    unary("F.leaky_relu", lambda st, F, x: F.leaky_relu(x, 0.1),
          lambda x: np.where(x > 0, x, 0.1 * x), domain="nonzero"),
    unary("F.elu", lambda st, F, x: F.elu(x), lambda x: np.where(x > 0, x, np.expm1(x)),
          domain="nonzero"),
    unary("F.selu", lambda st, F, x: F.selu(x),
          lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(x)), domain="nonzero"),
    unary("F.gelu", lambda st, F, x: F.gelu(x), _gelu),
    unary("F.gelu(tanh)", lambda st, F, x: F.gelu(x, approximate="tanh"), _gelu_tanh),
    unary("F.silu", lambda st, F, x: F.silu(x), lambda x: x * _sigmoid(x)),
    unary("F.mish", lambda st, F, x: F.mish(x), lambda x: x * np.tanh(_softplus(x))),
    unary("F.softplus", lambda st, F, x: F.softplus(x), _softplus),
    unary("F.softplus(wide)", lambda st, F, x: F.softplus(x), _softplus, domain="wide"),
    unary("F.hardswish", lambda st, F, x: F.hardswish(x * 2),
          lambda x: 2 * x * np.clip(2 * x + 3, 0, 6) / 6),
    unary("F.hardsigmoid", lambda st, F, x: F.hardsigmoid(x * 2),
          lambda x: np.clip(2 * x + 3, 0, 6) / 6),
    unary("F.sigmoid", lambda st, F, x: F.sigmoid(x), _sigmoid),
    unary("F.tanh", lambda st, F, x: F.tanh(x), np.tanh),
]

BINARY = [
    binary("add", lambda st, F, a, b: a + b, lambda a, b: a + b, ALL,
           dref=lambda g, a, b: (g, g)),
    binary("add(broadcast)", lambda st, F, a, b: a + b, lambda a, b: a + b, NUMERIC,
           sa=(2, 1, 4), sb=(3, 1)),
    binary("add(alpha)", lambda st, F, a, b: st.add(a, b, alpha=2), lambda a, b: a + 2 * b,
           FLOATS + SIGNED),
    binary("sub", lambda st, F, a, b: a - b, lambda a, b: a - b, NUMERIC,
           dref=lambda g, a, b: (g, -g)),
    binary("mul", lambda st, F, a, b: a * b, lambda a, b: a * b, ALL,
           dref=lambda g, a, b: (g * b, g * a)),
    binary("mul(broadcast)", lambda st, F, a, b: a * b, lambda a, b: a * b, NUMERIC,
           sa=(4,), sb=(3, 1)),
    binary("div", lambda st, F, a, b: a / b, lambda a, b: a / b, NUMERIC, db="nonzero",
           out="div", dref=lambda g, a, b: (g / b, -g * a / (b * b))),
    binary("floor_divide", lambda st, F, a, b: a // b, _floor_divide, NUMERIC, db="nonzero",
           grad=False),
    binary("remainder", lambda st, F, a, b: a % b,
           lambda a, b: a - np.floor(a / b) * b if a.dtype.kind == "f" else np.remainder(a, b),
           NUMERIC, db="nonzero", tol=4.0),
    binary("pow", lambda st, F, a, b: a ** b, np.power, FLOATS, da="pos", db="exponent",
           tol=4.0, dref=lambda g, a, b: (g * b * a ** (b - 1), g * np.log(a) * a ** b)),
    binary("maximum", lambda st, F, a, b: st.maximum(a, b), np.maximum, NUMERIC),
    binary("minimum", lambda st, F, a, b: st.minimum(a, b), np.minimum, NUMERIC),
    binary("lerp", lambda st, F, a, b: st.lerp(a, b, 0.3), lambda a, b: a + 0.3 * (b - a),
           FLOATS),
]
# integer pow: small bases and exponents 0..3 so int8 does not overflow
BINARY.append(Case("pow(int)", lambda st, F, a, b: a ** b, lambda a, b: np.power(a, b),
                   (Arg(S, "small"), Arg(S, "exponent")), dtypes=SIGNED, grad=False,
                   group="binary"))

COMPARE = [
    binary(name, fn, ref, ALL, out="bool", grad=False, make=_with_ties)
    for name, fn, ref in [
        ("eq", lambda st, F, a, b: a == b, np.equal),
        ("ne", lambda st, F, a, b: a != b, np.not_equal),
        ("lt", lambda st, F, a, b: a < b, np.less),
        ("le", lambda st, F, a, b: a <= b, np.less_equal),
        ("gt", lambda st, F, a, b: a > b, np.greater),
        ("ge", lambda st, F, a, b: a >= b, np.greater_equal),
        ("logical_and", lambda st, F, a, b: a.logical_and(b), np.logical_and),
        ("logical_or", lambda st, F, a, b: a.logical_or(b), np.logical_or),
        ("logical_xor", lambda st, F, a, b: a.logical_xor(b), np.logical_xor),
    ]
] + [
    binary("lt(scalar)", lambda st, F, a, b: a < 1, lambda a, b: a < 1, NUMERIC, out="bool",
           grad=False),
]

BITWISE = [
    binary(name, fn, lambda a, b, _r=ref: _r(_as_int(a), _as_int(b)), INTS + (dt.bool_,),
           grad=False)
    for name, fn, ref in [
        ("bitwise_and", lambda st, F, a, b: a & b, np.bitwise_and),
        ("bitwise_or", lambda st, F, a, b: a | b, np.bitwise_or),
        ("bitwise_xor", lambda st, F, a, b: a ^ b, np.bitwise_xor),
    ]
]

WHERE = [
    Case("where", lambda st, F, c, a, b: st.where(c, a, b), lambda c, a, b: np.where(c, a, b),
         (Arg((3, 1), dtype=dt.bool_), Arg(S), Arg((1, 4))), dtypes=ALL, group="binary"),
    Case("where(scalar)", lambda st, F, c, a: st.where(c, a, 0), lambda c, a: np.where(c, a, 0),
         (Arg(S, dtype=dt.bool_), Arg(S)), dtypes=NUMERIC, group="binary"),
    Case("add(transposed)", lambda st, F, a, b: a + b, lambda a, b: a + b,
         (Arg((4, 3), transposed=True), Arg((4, 3))), dtypes=NUMERIC, group="binary"),
    Case("exp(transposed)", lambda st, F, a: a.exp(), np.exp, (Arg((4, 3), transposed=True),),
         group="unary"),
]

CASES = UNARY + ACTIVATIONS + BINARY + COMPARE + BITWISE + WHERE
