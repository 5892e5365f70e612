"""Property test of the Fusion decorator: random elementwise/broadcast/reduction graphs of up to
12 ops (with matmuls by a 4x4 weight among them, whose consumers become matmul epilogues on
OpenCL and WGPU) give the same values and gradients on every fused stack as unfused NumPy."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import strata as st

UNARY = ["exp", "tanh", "sigmoid", "relu", "neg", "abs", "sin", "square", "gelu", "silu"]
BINARY = ["add", "sub", "mul", "maximum", "minimum", "where_gt"]
REDUCE = ["sum", "amax", "mean"]
SHAPES = [(3, 4), (1, 4), (3, 1), (4,), ()]


def _candidates():
    out = []
    # eager_below=0: NumPy would run these small graphs op by op instead of fusing them
    for spec in ("Fusion(Autodiff(NumPy()), eager_below=0)",
                 "Autodiff(Fusion(NumPy(), eager_below=0))",
                 "Fusion(Autodiff(OpenCL()))", "Autodiff(Fusion(OpenCL()))",
                 "Fusion(Autodiff(WGPU()))", "Autodiff(Fusion(WGPU()))"):
        try:
            st.backend(spec)
        except Exception as e:  # noqa: BLE001 - a missing driver is a skip, with its reason
            out.append(pytest.param(spec, marks=pytest.mark.skip(reason=f"{spec}: {e}")))
        else:
            out.append(spec)
    return out


@hs.composite
def graphs(draw):
    """A program: 3 leaf inputs of broadcastable shapes, then up to 12 ops over earlier values."""
    shapes = [draw(hs.sampled_from(SHAPES)) for _ in range(3)]
    n = draw(hs.integers(1, 12))
    ops = []
    for k in range(n):
        avail = 3 + k
        kind = draw(hs.sampled_from(["u", "u", "b", "b", "c", "r", "m"]))
        if kind == "u":
            ops.append(("u", draw(hs.sampled_from(UNARY)), draw(hs.integers(0, avail - 1))))
        elif kind == "b":
            ops.append(("b", draw(hs.sampled_from(BINARY)), draw(hs.integers(0, avail - 1)),
                        draw(hs.integers(0, avail - 1))))
        elif kind == "c":
            ops.append(("c", draw(hs.sampled_from(["add", "mul"])), draw(hs.integers(0, avail - 1)),
                        draw(hs.sampled_from([0.5, -1.5, 2.0]))))
        elif kind == "m":
            ops.append(("m", "matmul", draw(hs.integers(0, avail - 1))))
        else:
            ops.append(("r", draw(hs.sampled_from(REDUCE)), draw(hs.integers(0, avail - 1))))
    seed = draw(hs.integers(0, 2 ** 16))
    return shapes, ops, seed


def _run(B, shapes, ops, seed):
    rng = np.random.default_rng(seed)
    leaves = [st.tensor(rng.uniform(-1.5, 1.5, s).astype(np.float32), backend=B,
                        requires_grad=True) for s in shapes + [(4, 4)]]
    vals = list(leaves[:3])
    weight = leaves[3]
    for op in ops:
        if op[0] == "u":
            x = vals[op[2]]
            y = {"square": lambda t: t * t, "gelu": st.functional.gelu,
                 "silu": st.functional.silu}.get(op[1], lambda t: getattr(t, op[1])())(x)
        elif op[0] == "b":
            a, b = vals[op[2]], vals[op[3]]
            y = st.where(a > b, a, b * 0.5) if op[1] == "where_gt" else getattr(st, op[1])(a, b)
        elif op[0] == "c":
            y = vals[op[2]] + op[3] if op[1] == "add" else vals[op[2]] * op[3]
        elif op[0] == "m":
            x = vals[op[2]]
            y = x @ weight if x.ndim == 2 and x.shape[-1] == 4 else x
        else:
            x = vals[op[2]]
            y = x.sum(-1, keepdim=True) if op[1] == "sum" and x.ndim else (
                x.amax(-1, keepdim=True) if op[1] == "amax" and x.ndim else
                (x.mean(-1, keepdim=True) if x.ndim else x))
        # keep values in a range where exp cannot overflow float32
        vals.append(st.tanh(y) * 3.0)
    out = vals[-1]
    loss = (out * out).sum()
    loss.backward()
    return out.detach().numpy(), [l.grad.numpy() if l.grad is not None else np.zeros(l.shape)
                                  for l in leaves]


@pytest.mark.parametrize("spec", _candidates())
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(g=graphs())
def test_fused_stack_matches_unfused_numpy(spec, g):
    shapes, ops, seed = g
    ref_out, ref_grads = _run(st.backend("Autodiff(NumPy())"), shapes, ops, seed)
    out, grads = _run(st.backend(spec), shapes, ops, seed)
    np.testing.assert_allclose(out, ref_out, rtol=2e-5, atol=2e-5)
    for g_, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g_, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec", ["Fusion(NumPy(), eager_below=0)", "Fusion(OpenCL())"])
def test_signed_zero_constants_keep_their_sign(spec):
    """0.0 and -0.0 are equal numbers but different operands (1 / -0.0 is -inf): a fused
    program must not merge them into one constant."""
    try:
        S = st.backend(spec)
    except Exception as e:  # noqa: BLE001 - a missing driver is a skip, with its reason
        pytest.skip(f"{spec}: {e}")
    x = st.from_numpy(np.array([1.0, 2.0], np.float32), backend=S)
    y = (1.0 / (x * 0.0)) + (1.0 / (x * -0.0)) * 2.0
    np.testing.assert_array_equal(y.numpy(), np.array([np.nan, np.nan], np.float32))
    z = 1.0 / ((x + 0.0) * -0.0)
    np.testing.assert_array_equal(z.numpy(), [-np.inf, -np.inf])
