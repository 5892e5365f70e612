"""OpenCL-specific benchmarks: the register-blocked matmul (NN and the x @ w.T path), the
unfused elementwise chain exp(relu(a*b+c)*2) next to each of its five kernels alone, and the
per-op launch cost with and without a finish after every op.

They apply to stacks whose base backend is OpenCL(); other targets report NotApplicable.
`python -m bench.opencl_ops` prints the chain against the sum of its kernels directly.
"""
from __future__ import annotations

import time

import numpy as np

from .registry import NotApplicable, Work, benchmark
from .targets import Target

N = 4 * 2**20
F32 = 4


def _opencl(t: Target) -> None:
    base = getattr(getattr(t, "backend", None), "base", None)
    if t.kind != "strata" or base is None or type(base()).__name__ != "OpenCL":
        raise NotApplicable("OpenCL-only benchmark")


def _mat(t: Target, seed: int, n: int = 1024):
    a = np.random.default_rng(seed).standard_normal((n, n), dtype=np.float32)
    return t.array(a), a


@benchmark("opencl_matmul_1024", group="opencl")
def opencl_matmul_1024(t: Target) -> Work:
    """1024x1024 float32 a @ b with the register-blocked OpenCL kernel (b rows as vectors)."""
    _opencl(t)
    (a, a64), (b, b64) = _mat(t, 1), _mat(t, 2)
    return Work(lambda: a @ b, flops=2 * 1024 ** 3, bytes=3 * 1024 * 1024 * F32, note="1024² f32",
                expected=a64.astype(np.float64) @ b64, rtol=1e-3)


@benchmark("opencl_matmul_1024_bT", group="opencl")
def opencl_matmul_1024_bt(t: Target) -> Work:
    """a @ b.T (1024² f32), the Linear-layer layout: vectors along k, no transpose copy."""
    _opencl(t)
    (a, a64), (b, b64) = _mat(t, 3), _mat(t, 4)
    return Work(lambda: a @ b.transpose(0, 1), flops=2 * 1024 ** 3, note="1024² f32, b.T view",
                expected=a64.astype(np.float64) @ b64.T, rtol=1e-3)


def _chain_inputs(t: Target):
    rng = np.random.default_rng(5)
    arrs = [rng.standard_normal(N, dtype=np.float32) for _ in range(3)]
    return [t.array(x) for x in arrs], arrs


def _chain_ref(a, b, c):
    return np.exp(np.maximum(a.astype(np.float64) * b + c, 0) * 2)


@benchmark("opencl_chain_unfused", group="opencl")
def opencl_chain_unfused(t: Target) -> Work:
    """exp(relu(a*b+c)*2) on 4M float32 as five kernels (no Fusion)."""
    _opencl(t)
    (a, b, c), raw = _chain_inputs(t)
    return Work(lambda: ((a * b + c).relu() * 2).exp(), bytes=13 * N * F32, note="4M f32, 5 kernels",
                expected=_chain_ref(*raw), rtol=1e-4)


def _step(t: Target, which: str) -> Work:
    _opencl(t)
    (a, b, c), (a64, b64, c64) = _chain_inputs(t)
    steps = {
        "mul": (lambda: a * b, 3, a64.astype(np.float64) * b64),
        "add": (lambda: a + c, 3, a64.astype(np.float64) + c64),
        "relu": (lambda: a.relu(), 2, np.maximum(a64.astype(np.float64), 0)),
        "scale": (lambda: a * 2, 2, a64.astype(np.float64) * 2),
        "exp": (lambda: a.exp(), 2, np.exp(a64.astype(np.float64))),
    }
    run, operands, ref = steps[which]
    return Work(run, bytes=operands * N * F32, note=f"4M f32, one kernel ({which})", expected=ref)


@benchmark("opencl_chain_step_mul", group="opencl")
def opencl_chain_step_mul(t: Target) -> Work:
    """a * b alone (step 1 of the chain)."""
    return _step(t, "mul")


@benchmark("opencl_chain_step_add", group="opencl")
def opencl_chain_step_add(t: Target) -> Work:
    """x + c alone (step 2 of the chain)."""
    return _step(t, "add")


@benchmark("opencl_chain_step_relu", group="opencl")
def opencl_chain_step_relu(t: Target) -> Work:
    """relu(x) alone (step 3 of the chain)."""
    return _step(t, "relu")


@benchmark("opencl_chain_step_scale", group="opencl")
def opencl_chain_step_scale(t: Target) -> Work:
    """x * 2 alone (step 4 of the chain)."""
    return _step(t, "scale")


@benchmark("opencl_chain_step_exp", group="opencl")
def opencl_chain_step_exp(t: Target) -> Work:
    """exp(x) alone (step 5 of the chain)."""
    return _step(t, "exp")


@benchmark("opencl_launch_queued", group="opencl")
def opencl_launch_queued(t: Target) -> Work:
    """per-op a + b (64x128 f32), enqueued without waiting (finish only at sync)."""
    _opencl(t)
    rng = np.random.default_rng(6)
    a64, b64 = (rng.standard_normal((64, 128), dtype=np.float32) for _ in range(2))
    a, b = t.array(a64), t.array(b64)
    return Work(lambda: a + b, note="64x128 f32, queued", expected=a64.astype(np.float64) + b64)


@benchmark("opencl_launch_finish", group="opencl")
def opencl_launch_finish(t: Target) -> Work:
    """per-op a + b (64x128 f32) with a finish after every op."""
    _opencl(t)
    rng = np.random.default_rng(7)
    a64, b64 = (rng.standard_normal((64, 128), dtype=np.float32) for _ in range(2))
    a, b = t.array(a64), t.array(b64)

    def run():
        c = a + b
        t.sync()
        return c
    return Work(run, note="64x128 f32, finish per op", expected=a64.astype(np.float64) + b64)


def _best(fn, sync, reps: int) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def chain_report(reps: int = 7) -> dict:
    """Times (best of reps, seconds) of the chain and of each kernel, interleaved in one window."""
    import strata as st
    B = st.backend("OpenCL()")
    rng = np.random.default_rng(8)
    a, b, c = (st.from_numpy(rng.standard_normal(N, dtype=np.float32), backend=B) for _ in range(3))
    x = a * b + c
    parts = {"mul": lambda: a * b, "add": lambda: x + c, "relu": lambda: x.relu(),
             "scale": lambda: x * 2, "exp": lambda: x.exp()}
    out = {"chain": _best(lambda: ((a * b + c).relu() * 2).exp(), B.sync, reps)}
    for k, f in parts.items():
        out[k] = _best(f, B.sync, reps)
    out["sum_of_kernels"] = sum(out[k] for k in parts)
    out["ratio"] = out["chain"] / out["sum_of_kernels"]
    return out


if __name__ == "__main__":
    r = chain_report()
    for k, v in r.items():
        print(f"{k:>15}: {v * 1e3:8.2f} ms" if k != "ratio" else f"{k:>15}: {v:8.2f}x")
