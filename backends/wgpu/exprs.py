"""WGSL expressions of the elementwise primitives, per compute class ('f' f32, 'i' i32, 'u' u32).

Inputs are named a, b, c (already converted to the compute type); scalars arrive as inputs too.
An op missing for a class (exp on integers, say) is a DTypeError raised by the backend.
"""
from __future__ import annotations

ZERO = {"f": "0.0", "i": "0", "u": "0u"}


def _b(cond: str) -> str:
    return f"select(0u, 1u, {cond})"


UNARY = {
    "neg": {"f": "-a", "i": "-a", "u": "0u - a"},
    "exp": {"f": "exp(a)"},
    "log": {"f": "f_log(a)"},
    "sqrt": {"f": "f_sqrt(a)"},
    "sin": {"f": "sin(a)"},
    "cos": {"f": "cos(a)"},
    "tanh": {"f": "f_tanh(a)"},
    "erf": {"f": "f_erf(a)"},
    "abs": {"f": "abs(a)", "i": "abs(a)", "u": "a"},
    "sign": {"f": "f_sign(a)", "i": "i_sign(a)", "u": "min(a, 1u)"},
    "reciprocal": {"f": "1.0 / a"},
    "floor": {"f": "floor(a)", "i": "a", "u": "a"},
    "ceil": {"f": "ceil(a)", "i": "a", "u": "a"},
    "round": {"f": "round(a)", "i": "a", "u": "a"},
    "trunc": {"f": "trunc(a)", "i": "a", "u": "a"},
    "bitwise_not": {"i": "~a", "u": "~a"},
    "sigmoid": {"f": "1.0 / (1.0 + exp(-a))"},
    "relu": {"f": "select(a, 0.0, a < 0.0)", "i": "max(a, 0)", "u": "a"},
    "rsqrt": {"f": "1.0 / f_sqrt(a)"},
    "silu": {"f": "a / (1.0 + exp(-a))"},
    "tan": {"f": "tan(a)"},
}
# -> bool
UNARY_BOOL = {
    "logical_not": {"f": _b("a == 0.0"), "i": _b("a == 0"), "u": _b("a == 0u")},
    "isnan": {"f": _b("f_isnan(a)"), "i": "0u", "u": "0u"},
    "isinf": {"f": _b("f_isinf(a)"), "i": "0u", "u": "0u"},
}

BINARY = {
    "add": {"f": "a + b", "i": "a + b", "u": "a + b"},
    "sub": {"f": "a - b", "i": "a - b", "u": "a - b"},
    "mul": {"f": "a * b", "i": "a * b", "u": "a * b"},
    "div": {"f": "a / b", "i": "i_div(a, b)", "u": "u_div(a, b)"},
    "pow": {"f": "f_pow(a, b)", "i": "i_pow(a, b)", "u": "u_pow(a, b)"},
    "maximum": {"f": "f_max(a, b)", "i": "max(a, b)", "u": "max(a, b)"},
    "minimum": {"f": "f_min(a, b)", "i": "min(a, b)", "u": "min(a, b)"},
    "remainder": {"f": "f_remainder(a, b)", "i": "i_remainder(a, b)", "u": "u_rem(a, b)"},
    "floor_divide": {"f": "f_floor_divide(a, b)", "i": "i_floor_divide(a, b)", "u": "u_div(a, b)"},
    "bitwise_and": {"i": "a & b", "u": "a & b"},
    "bitwise_or": {"i": "a | b", "u": "a | b"},
    "bitwise_xor": {"i": "a ^ b", "u": "a ^ b"},
}


def _cmp(op: str) -> dict:
    # ne is !(a == b) so that NaN != NaN holds whatever ordered compare the driver emits
    cond = {"eq": "a == b", "ne": "!(a == b)", "lt": "a < b", "le": "a <= b",
            "gt": "a > b", "ge": "a >= b"}[op]
    return {k: _b(cond) for k in "fiu"}


def _logic(op: str) -> dict:
    out = {}
    for k, z in ZERO.items():
        x, y = f"!(a == {z})", f"!(b == {z})"
        cond = {"logical_and": f"{x} && {y}", "logical_or": f"{x} || {y}",
                "logical_xor": f"{x} != {y}"}[op]
        out[k] = _b(cond)
    return out


COMPARE = {op: _cmp(op) for op in ("eq", "ne", "lt", "le", "gt", "ge")}
COMPARE.update({op: _logic(op) for op in ("logical_and", "logical_or", "logical_xor")})


def cast(src_cls: str, dst) -> str:
    """Expression converting compute value `a` of class src_cls to dst's compute type."""
    from ...core import dtype as dt
    d = dst.dtype
    if d is dt.bool_:
        return _b(f"!(a == {ZERO[src_cls]})")
    if dst.cls == "f":
        return "a" if src_cls == "f" else "f32(a)"
    if dst.cls == "i":
        return {"f": "i32(a)", "i": "a", "u": "bitcast<i32>(a)"}[src_cls]
    return {"f": "bitcast<u32>(i32(a))", "i": "bitcast<u32>(a)", "u": "a"}[src_cls]
