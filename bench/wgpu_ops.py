"""WGPU-specific benchmarks: what command batching buys, and the register-blocked matmul.

They apply to stacks whose base backend is WGPU(); other targets report NotApplicable.
(Elementwise GB/s on WGPU is measured by ops.py's add_4M / exp_4M like every other stack.)
"""
from __future__ import annotations

import numpy as np

from .registry import NotApplicable, Work, benchmark
from .targets import Target


def _wgpu(t: Target) -> None:
    base = getattr(getattr(t, "backend", None), "base", None)
    if t.kind != "strata" or base is None or type(base()).__name__ != "WGPU":
        raise NotApplicable("WGPU-only benchmark")


def _small(t: Target, seed: int) -> tuple:
    a = np.random.default_rng(seed).standard_normal((64, 128), dtype=np.float32)
    return t.array(a), a


@benchmark("wgpu_dispatch_batched", group="wgpu")
def wgpu_dispatch_batched(t: Target) -> Work:
    """per-op a + b (64x128 f32) encoded into the shared command batch (submitted at sync)."""
    _wgpu(t)
    (a, a64), (b, b64) = _small(t, 1), _small(t, 2)
    return Work(lambda: a + b, note="64x128 f32, batched", expected=a64.astype(np.float64) + b64)


@benchmark("wgpu_dispatch_unbatched", group="wgpu")
def wgpu_dispatch_unbatched(t: Target) -> Work:
    """per-op a + b (64x128 f32) with a submit and wait after every op (no batching)."""
    _wgpu(t)
    (a, a64), (b, b64) = _small(t, 1), _small(t, 2)

    def run():
        c = a + b
        t.sync()
        return c
    return Work(run, note="64x128 f32, submit+wait per op", expected=a64.astype(np.float64) + b64)


@benchmark("wgpu_matmul_1024", group="wgpu")
def wgpu_matmul_1024(t: Target) -> Work:
    """1024x1024 float32 matmul with the register-blocked WGSL kernel."""
    _wgpu(t)
    rng = np.random.default_rng(3)
    a64 = rng.standard_normal((1024, 1024), dtype=np.float32)
    b64 = rng.standard_normal((1024, 1024), dtype=np.float32)
    a, b = t.array(a64), t.array(b64)
    return Work(lambda: a @ b, flops=2 * 1024 ** 3, bytes=3 * 1024 * 1024 * 4, note="1024² f32",
                expected=a64.astype(np.float64) @ b64, rtol=1e-3)


@benchmark("wgpu_matmul_1024_transposed", group="wgpu")
def wgpu_matmul_1024_transposed(t: Target) -> Work:
    """a @ b.T (1024² f32): the strided-B path, no transpose copy."""
    _wgpu(t)
    rng = np.random.default_rng(4)
    a64 = rng.standard_normal((1024, 1024), dtype=np.float32)
    b64 = rng.standard_normal((1024, 1024), dtype=np.float32)
    a, b = t.array(a64), t.array(b64)
    return Work(lambda: a @ b.transpose(0, 1), flops=2 * 1024 ** 3, note="1024² f32, b.T view",
                expected=a64.astype(np.float64) @ b64.T, rtol=1e-3)
