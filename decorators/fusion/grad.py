"""Symbolic reverse-mode differentiation of a fused program into another fused program.

`backward_program(p, wrt, has_grad)` returns a Program whose inputs are p's inputs followed by
the incoming gradient of each output in `has_grad`, and whose outputs are the gradients of the
inputs listed in `wrt` (full broadcast shape; the caller sums them back to each input's shape).
The forward instructions are replayed inside the backward kernel instead of being saved, so
the backward costs one kernel and no stored intermediates (recomputing elementwise math is
cheaper than a round trip through memory).
"""
from __future__ import annotations

import math


from .ir import Program, ProgramBuilder, replay

_NO_GRAD = frozenset(("sign", "floor", "ceil", "round", "trunc", "logical_not", "bitwise_not",
                      "isnan", "isinf", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
                      "logical_or", "logical_xor", "floor_divide", "bitwise_and", "bitwise_or",
                      "bitwise_xor"))
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def backward_program(p: Program, wrt, has_grad):
    """-> (Program, wrt_with_grad): inputs with no path from a graded output are dropped."""
    b = ProgramBuilder()
    ins = [b.input(d) for d in p.input_dtypes]
    refs = replay(p, b, ins)
    adj: dict = {}
    for k, out_slot in enumerate(p.outputs):
        if k in has_grad:
            g = b.input(p.slot_dtype(out_slot))
            _acc(b, adj, out_slot, g)
    first = p.first_instr_slot
    for k in range(len(p.instrs) - 1, -1, -1):
        slot = first + k
        g = adj.get(slot)
        if g is None:
            continue
        op, args, d = p.instrs[k]
        if op in _NO_GRAD or not d.is_floating_point and op != "cast":
            continue
        a = [refs[s] for s in args]
        out = refs[slot]
        for arg_slot, contrib in _rule(b, op, a, out, g, d, p, args):
            if contrib is not None and p.slot_dtype(arg_slot).is_floating_point:
                _acc(b, adj, arg_slot, contrib)
    outs, kept = [], []
    for i in wrt:
        g = adj.get(i)
        if g is not None:
            want = p.input_dtypes[i]
            if b.dtype_of(g) is not want:
                g = b.op("cast", g, dtype=want)
            outs.append(g)
            kept.append(i)
    return b.finish(outs), kept


def _acc(b, adj, slot, g):
    prev = adj.get(slot)
    adj[slot] = g if prev is None else b.op("add", prev, g)


def _c(b, v, d):
    return b.const(float(v), d)


def _rule(b, op, a, out, g, d, p, args):
    """Yield (arg_slot, gradient contribution) pairs for one instruction."""
    m = lambda x, y: b.op("mul", x, y)  # noqa: E731
    s = args
    if op == "add":
        return [(s[0], g), (s[1], g)]
    if op == "sub":
        return [(s[0], g), (s[1], b.op("neg", g))]
    if op == "mul":
        return [(s[0], m(g, a[1])), (s[1], m(g, a[0]))]
    if op == "div":
        ga = b.op("div", g, a[1])
        return [(s[0], ga), (s[1], b.op("neg", m(ga, out)))]
    if op == "neg":
        return [(s[0], b.op("neg", g))]
    if op == "exp":
        return [(s[0], m(g, out))]
    if op == "log":
        return [(s[0], b.op("div", g, a[0]))]
    if op == "sqrt":
        return [(s[0], b.op("div", m(g, _c(b, 0.5, d)), out))]
    if op == "sin":
        return [(s[0], m(g, b.op("cos", a[0])))]
    if op == "cos":
        return [(s[0], b.op("neg", m(g, b.op("sin", a[0]))))]
    if op == "tanh":
        return [(s[0], m(g, b.op("sub", _c(b, 1, d), m(out, out))))]
    if op == "tan":
        return [(s[0], m(g, b.op("add", _c(b, 1, d), m(out, out))))]
    if op == "erf":
        e = b.op("exp", b.op("neg", m(a[0], a[0])))
        return [(s[0], m(g, m(e, _c(b, 2.0 / math.sqrt(math.pi), d))))]
    if op == "abs":
        return [(s[0], m(g, b.op("sign", a[0])))]
    if op == "reciprocal":
        return [(s[0], b.op("neg", m(g, m(out, out))))]
    if op == "rsqrt":
        return [(s[0], m(g, m(_c(b, -0.5, d), m(out, m(out, out)))))]
    if op == "sigmoid":
        return [(s[0], m(g, m(out, b.op("sub", _c(b, 1, d), out))))]
    if op == "relu":
        return [(s[0], b.op("where", b.op("gt", a[0], _c(b, 0, d)), g, _c(b, 0, d)))]
    if op == "log1p":
        return [(s[0], b.op("div", g, b.op("add", a[0], _c(b, 1, d))))]
    if op == "expm1":
        return [(s[0], m(g, b.op("add", out, _c(b, 1, d))))]
    if op == "silu":
        sg = b.op("sigmoid", a[0])
        inner = b.op("add", sg, m(a[0], m(sg, b.op("sub", _c(b, 1, d), sg))))
        return [(s[0], m(g, inner))]
    if op == "gelu":
        x = a[0]
        cdf = m(_c(b, 0.5, d), b.op("add", _c(b, 1, d), b.op("erf", m(x, _c(b, _INV_SQRT_2, d)))))
        pdf = m(_c(b, _INV_SQRT_2PI, d), b.op("exp", m(_c(b, -0.5, d), m(x, x))))
        return [(s[0], m(g, b.op("add", cdf, m(x, pdf))))]
    if op == "gelu_tanh":
        x = a[0]
        x3 = m(m(x, x), x)
        inner = m(_c(b, _SQRT_2_OVER_PI, d), b.op("add", x, m(_c(b, 0.044715, d), x3)))
        t = b.op("tanh", inner)
        dinner = m(_c(b, _SQRT_2_OVER_PI, d),
                   b.op("add", _c(b, 1, d), m(_c(b, 3 * 0.044715, d), m(x, x))))
        left = m(_c(b, 0.5, d), b.op("add", _c(b, 1, d), t))
        right = m(m(_c(b, 0.5, d), x), m(b.op("sub", _c(b, 1, d), m(t, t)), dinner))
        return [(s[0], m(g, b.op("add", left, right)))]
    if op == "pow":
        base, ex = a
        # d/dbase = ex * base^(ex-1); torch gives 0 where ex == 0
        dbase = m(ex, b.op("pow", base, b.op("sub", ex, _c(b, 1, d))))
        dbase = b.op("where", b.op("eq", ex, _c(b, 0, d)), _c(b, 0, d), dbase)
        # d/dex = out * log(base); 0 where base == 0 and ex >= 0 (torch's convention)
        dex = m(out, b.op("log", base))
        dex = b.op("where", b.op("logical_and", b.op("eq", base, _c(b, 0, d)),
                                 b.op("ge", ex, _c(b, 0, d))), _c(b, 0, d), dex)
        return [(s[0], m(g, dbase)), (s[1], m(g, dex))]
    if op in ("maximum", "minimum"):
        x, y = a
        win = b.op("gt" if op == "maximum" else "lt", x, y)
        tie = b.op("eq", x, y)
        half = m(g, _c(b, 0.5, d))
        zero = _c(b, 0, d)
        gx = b.op("where", tie, half, b.op("where", win, g, zero))
        gy = b.op("where", tie, half, b.op("where", win, zero, g))
        return [(s[0], gx), (s[1], gy)]
    if op == "remainder":
        q = b.op("floor_divide", a[0], a[1])
        return [(s[0], g), (s[1], b.op("neg", m(g, q)))]
    if op == "where":
        zero = _c(b, 0, d)
        return [(s[1], b.op("where", a[0], g, zero)), (s[2], b.op("where", a[0], zero, g))]
    if op == "cast":
        src = p.slot_dtype(s[0])
        if not src.is_floating_point:
            return []
        return [(s[0], b.op("cast", g, dtype=src))]
    raise ValueError(f"fusion: no derivative rule for {op!r}")


