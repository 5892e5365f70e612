"""Quantization: float vs quantized linear and conv2d on each base backend, in one run
(`python -m bench --only quant`). int8 rows quantize activations with a calibrated static scale
and run the integer path (strata.quantization.last_path() is in the note); int4 rows are
weight-only (per-block scales: the weight is dequantized each call, then the float op runs)."""
from __future__ import annotations

import numpy as np

from .registry import NotApplicable, Work, benchmark

N, K, M = 256, 1024, 512
CN, CC, CO, HW = 16, 16, 32, 28


def _target(t):
    if t.kind != "strata":
        raise NotApplicable("compares strata's float and quantized ops")
    if t.has_autograd:
        raise NotApplicable("inference ops: run on the stacks without Autodiff")
    return t.st, t.backend


def _linear_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, K)).astype(np.float32)
    w = (rng.standard_normal((M, K)) / np.sqrt(K)).astype(np.float32)
    return x, w


def _conv_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((CN, CC, HW, HW)).astype(np.float32)
    w = (rng.standard_normal((CO, CC, 3, 3)) / 12).astype(np.float32)
    return x, w


_SCHEMES = {"int8": dict(dtype="int8"),
            "int4": dict(dtype="int4", granularity="per_block", block_size=32)}


def _linear(t, kind: str, mode: str = "auto") -> Work:
    st, B = _target(t)
    import strata.functional as F
    import strata.quantization as Q
    x, w = _linear_data()
    X = st.from_numpy(x, backend=B)
    W = st.from_numpy(w, backend=B)
    flops = 2.0 * N * K * M
    if kind == "float":
        return Work(lambda: F.linear(X, W), flops=flops, note=f"{N}x{K} @ {K}x{M}",
                    expected=x.astype(np.float64) @ w.T.astype(np.float64))
    q = Q.quantize(W, **_SCHEMES[kind])
    act = Q.calibrate_activation([x]) if kind == "int8" else None

    def run():
        Q.set_int_accumulation(mode)
        try:
            return Q.linear(X, q, act=act)
        finally:
            Q.set_int_accumulation("auto")
    run()
    path = Q.last_path()["path"]
    wd = q.dequantize().numpy().astype(np.float64)
    xr = x.astype(np.float64)
    if act is not None:
        xq = np.clip(np.round(x / np.float32(act.scale)) + act.zero_point, act.qmin, act.qmax)
        xr = (xq - act.zero_point) * act.scale
    return Work(run, flops=flops, note=f"{N}x{K} @ {K}x{M}; {path}", expected=xr @ wd.T)


def _conv(t, kind: str, mode: str = "auto") -> Work:
    st, B = _target(t)
    import strata.functional as F
    import strata.quantization as Q
    import torch
    x, w = _conv_data()
    X = st.from_numpy(x, backend=B)
    W = st.from_numpy(w, backend=B)
    flops = 2.0 * CN * CO * HW * HW * CC * 9
    note = f"{CN}x{CC}x{HW}x{HW} * {CO}x{CC}x3x3, pad 1"
    ref = lambda a, b: torch.nn.functional.conv2d(torch.from_numpy(a), torch.from_numpy(b),  # noqa: E731
                                                  padding=1).numpy()
    if kind == "float":
        return Work(lambda: F.conv2d(X, W, padding=1), flops=flops, note=note,
                    expected=ref(x.astype(np.float64), w.astype(np.float64)))
    q = Q.quantize(W, **_SCHEMES[kind])
    act = Q.calibrate_activation([x]) if kind == "int8" else None

    def run():
        Q.set_int_accumulation(mode)
        try:
            return Q.conv2d(X, q, padding=1, act=act)
        finally:
            Q.set_int_accumulation("auto")
    run()
    path = Q.last_path()["path"]
    wd = q.dequantize().numpy().astype(np.float64)
    xr = x.astype(np.float64)
    if act is not None:
        xq = np.clip(np.round(x / np.float32(act.scale)) + act.zero_point, act.qmin, act.qmax)
        xr = ((xq - act.zero_point) * act.scale).astype(np.float64)
    return Work(run, flops=flops, note=f"{note}; {path}", expected=ref(xr, wd))


@benchmark("quant_linear_float", group="quant")
def quant_linear_float(t) -> Work:
    """float32 linear (reference for the quantized rows)."""
    return _linear(t, "float")


@benchmark("quant_linear_int8", group="quant")
def quant_linear_int8(t) -> Work:
    """int8 weights (per channel) x int8 activations, exact integer accumulation."""
    return _linear(t, "int8")


@benchmark("quant_linear_int8_int32", group="quant")
def quant_linear_int8_int32(t) -> Work:
    """int8 linear forced onto the backend's int32 matmul (NumPy: no BLAS for integers)."""
    return _linear(t, "int8", mode="int32")


@benchmark("quant_linear_int8_f32x", group="quant")
def quant_linear_int8_f32x(t) -> Work:
    """int8 linear forced onto float32-exact accumulation (the float matmul of integer codes)."""
    return _linear(t, "int8", mode="float32-exact")


@benchmark("quant_linear_int4", group="quant")
def quant_linear_int4(t) -> Work:
    """int4 per-block (32) weights, dequantized per call, float activations."""
    return _linear(t, "int4")


@benchmark("quant_conv_float", group="quant")
def quant_conv_float(t) -> Work:
    """float32 conv2d 3x3 (reference for the quantized rows)."""
    return _conv(t, "float")


@benchmark("quant_conv_int8", group="quant")
def quant_conv_int8(t) -> Work:
    """int8 conv2d: int8 weights and activations, exact accumulation."""
    return _conv(t, "int8")


@benchmark("quant_conv_int8_f32x", group="quant")
def quant_conv_int8_f32x(t) -> Work:
    """int8 conv2d forced onto float32-exact accumulation (the float conv of integer codes)."""
    return _conv(t, "int8", mode="float32-exact")


@benchmark("quant_conv_int4", group="quant")
def quant_conv_int4(t) -> Work:
    """int4 per-block conv2d weights, dequantized per call."""
    return _conv(t, "int4")
