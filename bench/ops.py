"""Op microbenchmarks: elementwise, reduction, matmul, movement, and per-op overhead.

Byte counts are the minimum traffic of the op (every input read once, the output written
once), so GB/s is comparable with the machine's DRAM traffic peak. Every benchmark checks its
first result against a float64 NumPy reference.
"""
from __future__ import annotations

import numpy as np

from .registry import NotApplicable, Work, benchmark
from .targets import Target

N_ELEM = 4 * 2**20          # 4M float32 = 16 MiB per operand: well past the last-level cache
SIDE = 2048                 # SIDE x SIDE = N_ELEM
F32 = 4


def _data(*shape: int, seed: int = 0, positive: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape, dtype=np.float32)
    return np.abs(a) + 0.5 if positive else a


def _elementwise(t: Target, op: str) -> Work:
    a64 = _data(N_ELEM, seed=1)
    b64 = _data(N_ELEM, seed=2, positive=True)
    a, b = t.array(a64), t.array(b64)
    if op == "add":
        return Work(lambda: a + b, bytes=3 * N_ELEM * F32, note="4M f32",
                    expected=a64.astype(np.float64) + b64)
    if op == "mul":
        return Work(lambda: a * b, bytes=3 * N_ELEM * F32, note="4M f32",
                    expected=a64.astype(np.float64) * b64)
    # exp of values in about [-5, 5] stays well inside float32's range
    return Work(lambda: t.exp(a), bytes=2 * N_ELEM * F32, note="4M f32",
                expected=np.exp(a64.astype(np.float64)))


@benchmark("add_4M", group="elementwise")
def add_4m(t: Target) -> Work:
    """a + b on 4M float32."""
    return _elementwise(t, "add")


@benchmark("mul_4M", group="elementwise")
def mul_4m(t: Target) -> Work:
    """a * b on 4M float32."""
    return _elementwise(t, "mul")


@benchmark("exp_4M", group="elementwise")
def exp_4m(t: Target) -> Work:
    """exp(a) on 4M float32."""
    return _elementwise(t, "exp")


def _sum(t: Target, dim: int) -> Work:
    a64 = _data(SIDE, SIDE, seed=3)
    a = t.array(a64)
    return Work(lambda: t.sum(a, dim), bytes=(SIDE * SIDE + SIDE) * F32,
                note=f"2048x2048 f32, dim={dim}", expected=a64.astype(np.float64).sum(axis=dim),
                rtol=1e-4)


@benchmark("sum_dim0", group="reduction")
def sum_dim0(t: Target) -> Work:
    """sum over the leading (strided) axis of a 2048x2048 float32 matrix."""
    return _sum(t, 0)


@benchmark("sum_dim1", group="reduction")
def sum_dim1(t: Target) -> Work:
    """sum over the contiguous axis of a 2048x2048 float32 matrix."""
    return _sum(t, 1)


def _matmul(t: Target, n: int) -> Work:
    a64, b64 = _data(n, n, seed=4), _data(n, n, seed=5)
    a, b = t.array(a64), t.array(b64)
    return Work(lambda: a @ b, flops=2.0 * n**3, note=f"{n}x{n} f32",
                expected=a64.astype(np.float64) @ b64, rtol=1e-4)


@benchmark("matmul_256", group="matmul")
def matmul_256(t: Target) -> Work:
    """256x256 @ 256x256 float32."""
    return _matmul(t, 256)


@benchmark("matmul_1024", group="matmul")
def matmul_1024(t: Target) -> Work:
    """1024x1024 @ 1024x1024 float32."""
    return _matmul(t, 1024)


@benchmark("transpose_copy", group="movement")
def transpose_copy(t: Target) -> Work:
    """2048x2048 float32 transposed and copied into the new layout (x.transpose(0, 1).reshape(-1))."""
    a64 = _data(SIDE, SIDE, seed=6)
    a = t.array(a64)
    return Work(lambda: t.transpose_copy(a), bytes=2 * N_ELEM * F32, note="2048x2048 f32",
                expected=a64.T.reshape(-1).astype(np.float64), rtol=0)


@benchmark("cat_dim1", group="movement")
def cat_dim1(t: Target) -> Work:
    """two 2048x1024 float32 matrices concatenated along dim 1."""
    a64, b64 = _data(SIDE, SIDE // 2, seed=7), _data(SIDE, SIDE // 2, seed=8)
    a, b = t.array(a64), t.array(b64)
    return Work(lambda: t.cat([a, b], 1), bytes=2 * N_ELEM * F32, note="2x 2048x1024 f32",
                expected=np.concatenate([a64, b64], axis=1).astype(np.float64), rtol=0)


def _overhead(t: Target, tracked: bool) -> Work:
    a64, b64 = _data(64, 128, seed=9), _data(64, 128, seed=10)
    if tracked and not t.has_autograd:
        raise NotApplicable("needs autograd (a stack with Autodiff)")
    a, b = t.array(a64, requires_grad=tracked), t.array(b64)
    return Work(lambda: a + b, note="64x128 f32" + (", a.requires_grad" if tracked else ""),
                expected=a64.astype(np.float64) + b64)


@benchmark("overhead_add", group="overhead")
def overhead_add(t: Target) -> Work:
    """per-op time of a + b on 64x128 float32: framework overhead dominates."""
    return _overhead(t, tracked=False)


@benchmark("overhead_add_tracked", group="overhead")
def overhead_add_tracked(t: Target) -> Work:
    """per-op time of a + b on 64x128 float32 with a requiring grad (graph recording)."""
    return _overhead(t, tracked=True)
