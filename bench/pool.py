"""PoolAllocator: the MLP training step (784-128-10, batch 64, Adam) on each Autodiff stack,
with and without a PoolAllocator under it, in one run (`python -m bench --only pool`).

Each variant builds its own stack from the target's string (installing a pool changes the base
backend object, so pooled and unpooled stacks never share one). The pooled row's note gives the
blocks the pool created during three warm-up steps and after them, and on WGPU how many of the
pooled steps' dispatches reused a cached bind group (the pool's stable buffers make that
possible: see backends/wgpu/bind_groups.py)."""
from __future__ import annotations

import time

import numpy as np

from .models import MLP_FLOPS, _batch, _mlp_weights, _strata_step
from .registry import NotApplicable, Work, benchmark


def _stack(t, pooled: bool):
    if t.kind != "strata":
        raise NotApplicable("compares strata stacks with and without PoolAllocator")
    if not t.has_autograd:
        raise NotApplicable(f"{t.name} has no Autodiff layer (training step)")
    spec = str(t.backend)
    if "PoolAllocator(" in spec:
        raise NotApplicable("the target already has a pool")
    base = str(t.backend.base())
    if pooled:
        spec = spec.replace(base, f"PoolAllocator({base})", 1)
    return t.st.backend(spec)


def _step(t, B):
    nn = t.st.modules
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128, backend=B), nn.ReLU(),
                          nn.Linear(128, 10, backend=B))
    model.load_state_dict(_mlp_weights())
    x, y = _batch()

    class _T:  # _strata_step needs .st and .backend
        st = t.st
        backend = B
    return _strata_step(_T, model, x, y)


def _ab(plain, pooled, Bp, Bq, budget: float = 3.0, block: int = 8) -> tuple:
    """Median step times of the two stacks, alternating blocks of `block` steps so that both
    see the same load (the host's speed drifts between the runner's separate rows). Blocks
    rather than single steps: a stack whose step follows the other stack's step finds its
    own buffers evicted from the CPU caches, while malloc hands the plain stack memory the
    other stack has just touched, a bias no single-model training run has. The first step of
    each block (the one after the switch) is not counted. Returns (plain, pooled, steps)."""
    ta, tb = [], []
    start = time.perf_counter()
    i = 0
    while (time.perf_counter() - start < budget or i < 4) and i < 50:
        pair = ((plain, Bp, ta), (pooled, Bq, tb)) if i % 2 else ((pooled, Bq, tb), (plain, Bp, ta))
        for f, B, out in pair:
            for k in range(block):
                t0 = time.perf_counter()
                f()
                B.sync()
                if k:
                    out.append(time.perf_counter() - t0)
        i += 1
    return float(np.median(ta)), float(np.median(tb)), i * block


def _work(t, pooled: bool) -> Work:
    B = _stack(t, pooled)
    run = _step(t, B)
    note = "784-128-10, batch 64, Adam"
    if pooled:
        for _ in range(3):
            run()
        B.sync()
        s0 = B.memory_stats()
        Bp = _stack(t, False)
        plain = _step(t, Bp)
        for _ in range(3):
            plain()
        bg0 = _bind_group_counts(B)
        ta, tb, n = _ab(plain, run, Bp, B)
        s1 = B.memory_stats()
        note += (f"; pool blocks: {s0['misses']} in 3 warm-up steps, "
                 f"{s1['misses'] - s0['misses']} in the next {n}; "
                 f"{s0['peak_bytes_in_use'] / 2**20:.1f} MiB peak")
        if bg0 is not None:
            hits, misses = (b - a for a, b in zip(bg0, _bind_group_counts(B)))
            note += (f"; bind groups per pooled step: {hits / n:.1f} reused, "
                     f"{misses / n:.1f} created")
        note += (f"; A/B in alternating 8-step blocks over {n} steps: plain {ta * 1e3:.2f} ms, "
                 f"pooled {tb * 1e3:.2f} ms ({tb / ta:.2f}x)")

    def timed():
        # B is its own backend object (the harness syncs the target's): wait for it here, as
        # the A/B above does, or the device rows time only the queueing
        out = run()
        B.sync()
        return out
    return Work(timed, flops=MLP_FLOPS, note=note)


def _bind_group_counts(B):
    """(hits, misses) of the WGPU runtime's bind-group cache, None on other backends."""
    stats = getattr(getattr(B.base(), "rt", None), "stats", None)
    if not isinstance(stats, dict) or "bind_group_hits" not in stats:
        return None
    return stats["bind_group_hits"], stats["bind_group_misses"]


@benchmark("pool_mlp_step_plain", group="pool")
def pool_mlp_step_plain(t) -> Work:
    """MLP training step on the target stack as is (no pool)."""
    return _work(t, pooled=False)


@benchmark("pool_mlp_step_pooled", group="pool")
def pool_mlp_step_pooled(t) -> Work:
    """MLP training step with PoolAllocator inserted above the base backend."""
    return _work(t, pooled=True)


CHURN_SHAPE = (1024, 768)   # 3 MiB float32: above malloc's mmap threshold


def _churn(t, pooled: bool) -> Work:
    """Eight 3 MiB temporaries alive at once (what a backward pass over wide layers holds)."""
    if t.kind != "strata":
        raise NotApplicable("compares strata stacks with and without PoolAllocator")
    if t.has_autograd:
        raise NotApplicable("elementwise allocation pattern: run on the stacks without Autodiff")
    spec = str(t.backend)
    base = str(t.backend.base())
    B = t.st.backend(spec.replace(base, f"PoolAllocator({base})", 1) if pooled else spec)
    x = t.st.from_numpy(np.random.default_rng(0).random(CHURN_SHAPE, dtype=np.float32), backend=B)

    def run():
        live = [x * float(i) + 1.0 for i in range(8)]
        # B is its own backend object (the harness syncs the target's): run every pending
        # chain and wait for the device here, or Fusion and WGPU rows time nothing
        B.sync()
        return live[-1]
    n = CHURN_SHAPE[0] * CHURN_SHAPE[1]
    return Work(run, bytes=16 * 4.0 * n * 2, note="8 live 3 MiB results of x * c + 1")


@benchmark("pool_churn_plain", group="pool")
def pool_churn_plain(t) -> Work:
    """Many large temporaries alive at once, no pool."""
    return _churn(t, pooled=False)


@benchmark("pool_churn_pooled", group="pool")
def pool_churn_pooled(t) -> Work:
    """Many large temporaries alive at once, with PoolAllocator."""
    return _churn(t, pooled=True)
