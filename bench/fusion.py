"""Fusion (issue 7): elementwise chains, layer norm, GELU and ReLU linear layers and the MLP training
step on X, Fusion(X), Fusion(Autodiff(X)) and Autodiff(Fusion(X)) beside PyTorch eager and raw
NumPy (`python -m bench --only fusion`). The chain also has a row for one hand-written
OpenCL kernel (the floor a generated kernel can reach), on the OpenCL() target.

A Fusion stack records elementwise work lazily and runs it when a value is read or realized;
the runner realizes each run's result on such stacks (bench/runner.py), as reading the value
would, without timing a copy to the host.
"""
from __future__ import annotations

import math

import numpy as np

from .models import mlp_step
from .registry import NotApplicable, Work, benchmark
from .targets import Target

N = 4 * 2**20
F32 = 4


def _data(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---------------------------------------------------------------------------- elementwise chain
def _chain_ref(a, b, c):
    return np.exp(np.maximum(a.astype(np.float64) * b + c, 0) * 2)


@benchmark("fusion_chain_4M", group="fusion")
def fusion_chain(t: Target) -> Work:
    """exp(relu(a*b+c)*2) on 4M float32: five kernels unfused, one fused."""
    raw = [_data(s, N) for s in (1, 2, 3)]
    a, b, c = (t.array(x) for x in raw)
    note = "4M f32, 5 ops"
    ref = _chain_ref(*raw)
    if t.kind == "numpy":
        return Work(lambda: np.exp(np.maximum(a * b + c, 0) * 2), bytes=4 * N * F32, note=note,
                    expected=ref)
    if t.kind == "torch":
        torch = t.torch
        return Work(lambda: torch.exp(torch.relu(a * b + c) * 2), bytes=4 * N * F32, note=note,
                    expected=ref)
    return Work(lambda: ((a * b + c).relu() * 2).exp(), bytes=4 * N * F32,
                note=note, expected=ref)


_HAND_KERNEL = """
__kernel void chain(__global const float* a, __global const float* b, __global const float* c,
                    __global float* o, const long n) {
    const long i = get_global_id(0) * 8;
    if (i + 8 <= n) {
        const float8 v = vload8(0, a + i) * vload8(0, b + i) + vload8(0, c + i);
        vstore8(exp((v > (float8)0 ? v : (float8)0) * 2.0f), 0, o + i);
    } else {
        for (long j = i; j < n; ++j) {
            const float v = a[j] * b[j] + c[j];
            o[j] = exp((v > 0.0f ? v : 0.0f) * 2.0f);
        }
    }
}
"""


@benchmark("fusion_chain_4M_handwritten", group="fusion")
def fusion_chain_hand(t: Target) -> Work:
    """The same chain as one hand-written 8-wide OpenCL kernel (OpenCL() target only)."""
    if t.kind != "strata" or str(t.backend) != "OpenCL()":
        raise NotApplicable("a raw pyopencl kernel: runs on the OpenCL() target only")
    B = t.backend
    cl = B._cl
    kernel = cl.Kernel(cl.Program(B.ctx, _HAND_KERNEL).build(), "chain")
    raw = [_data(s, N) for s in (1, 2, 3)]
    bufs = [B.from_numpy(x, _f32()) for x in raw]
    # one output buffer, reused: the floor (the generated kernels allocate a new output)
    out = B._new((N,), _f32())

    class _Result:  # what the runner's result check reads (Tensor-like)
        def detach(self):
            return self

        def numpy(self):
            return B.to_numpy(out)
    res = _Result()
    grid = (-(-N // (8 * 64)) * 64,)

    def run():
        kernel(B.queue, grid, (64,), *(x.buf for x in bufs), out.buf, np.int64(N))
        return res
    return Work(run, bytes=4 * N * F32, note="4M f32, hand-written float8 kernel",
                expected=_chain_ref(*raw))


def _f32():
    from strata.core import dtype as dt
    return dt.float32


# ---------------------------------------------------------------------------- layer norm
@benchmark("fusion_layer_norm", group="fusion")
def fusion_layer_norm(t: Target) -> Work:
    """layer_norm over the last dim of a 1024x1024 float32 matrix, with weight and bias."""
    n = 1024
    x64, w64, b64 = _data(4, n, n), _data(5, n), _data(6, n)
    mu = x64.astype(np.float64).mean(1, keepdims=True)
    var = x64.astype(np.float64).var(1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(var + 1e-5) * w64 + b64
    x, w, b = t.array(x64), t.array(w64), t.array(b64)
    note = "1024x1024 f32"
    if t.kind == "numpy":
        def run():
            m = x.mean(1, keepdims=True)
            xc = x - m
            return xc / np.sqrt((xc * xc).mean(1, keepdims=True) + 1e-5) * w + b
        return Work(run, bytes=2 * n * n * F32, note=note, expected=ref)
    if t.kind == "torch":
        F = t.torch.nn.functional
        return Work(lambda: F.layer_norm(x, (n,), w, b, 1e-5), bytes=2 * n * n * F32, note=note,
                    expected=ref)
    F = t.st.functional
    return Work(lambda: F.layer_norm(x, (n,), w, b, 1e-5), bytes=2 * n * n * F32,
                note=note, expected=ref)


# ---------------------------------------------------------------------------- GELU linear
@benchmark("fusion_gelu_linear", group="fusion")
def fusion_gelu_linear(t: Target) -> Work:
    """gelu(x @ w + b), x 512x1024, w 1024x1024: the bias add and GELU fuse after the matmul."""
    x64, w64, b64 = _data(7, 512, 1024), _data(8, 1024, 1024) / 32, _data(9, 1024)
    h = x64.astype(np.float64) @ w64 + b64
    from strata.backends.erf import erf
    ref = 0.5 * h * (1 + erf(h / math.sqrt(2), np))
    x, w, b = t.array(x64), t.array(w64), t.array(b64)
    flops = 2.0 * 512 * 1024 * 1024
    note = "512x1024 @ 1024x1024 f32"
    if t.kind == "numpy":
        from strata.backends.erf import erf as np_erf  # NumPy has no erf of its own

        def run():
            y = x @ w + b
            return 0.5 * y * (1 + np_erf(y * np.float32(1 / math.sqrt(2)), np))
        return Work(run, flops=flops, note=note, expected=ref, rtol=1e-3)
    if t.kind == "torch":
        F = t.torch.nn.functional
        return Work(lambda: F.gelu(x @ w + b), flops=flops, note=note, expected=ref, rtol=1e-3)
    F = t.st.functional
    return Work(lambda: F.gelu(x @ w + b), flops=flops, note=note, expected=ref,
                rtol=1e-3)


# ---------------------------------------------------------------------------- linear + ReLU
@benchmark("fusion_linear_relu", group="fusion")
def fusion_linear_relu(t: Target) -> Work:
    """relu(x @ w.T + b) (inference), x 256x512, w 512x512: on OpenCL and WGPU the bias add and
    ReLU become the matmul's epilogue (one kernel, the product never written)."""
    x64, w64, b64 = _data(10, 256, 512), _data(11, 512, 512) / 16, _data(12, 512)
    ref = np.maximum(x64.astype(np.float64) @ w64.T + b64, 0)
    x, w, b = t.array(x64), t.array(w64), t.array(b64)
    flops = 2.0 * 256 * 512 * 512
    note = "256x512 @ 512x512.T f32"
    if t.kind == "numpy":
        return Work(lambda: np.maximum(x @ w.T + b, 0), flops=flops, note=note, expected=ref,
                    rtol=1e-4)
    if t.kind == "torch":
        F = t.torch.nn.functional
        return Work(lambda: F.relu(F.linear(x, w, b)), flops=flops, note=note, expected=ref,
                    rtol=1e-4)
    F = t.st.functional

    def run():
        with t.st.no_grad():
            return F.relu(F.linear(x, w, b))
    return Work(run, flops=flops, note=note, expected=ref, rtol=1e-4)


# ---------------------------------------------------------------------------- MLP step
@benchmark("fusion_mlp_step", group="fusion")
def fusion_mlp_step(t: Target) -> Work:
    """MLP 784-128-10 training step (batch 64, Adam) on the Fusion stacks and their peers:
    the model group's step, listed here so `--only fusion` shows it beside the fused stacks."""
    return mlp_step(t)
