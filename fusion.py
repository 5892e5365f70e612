"""strata.fusion — diagnostics of the Fusion decorator.

    with strata.fusion.trace() as t:        # what ran, kernel by kernel
        loss = step()
    print(t.kernels, t.summary())
    strata.fusion.stats()                   # global counters incl. compile-cache hits/misses
    STRATA_FUSION_LOG=1 python train.py     # print every fused kernel as it launches
"""
from __future__ import annotations

from contextlib import contextmanager

from .decorators.fusion import stats as _s


def stats() -> dict:
    """Counters since start (or reset): fused_kernels, fused_ops, unfused_ops, cache_hits,
    cache_misses; `kernels` = fused kernels + unfused ops (each unfused op is one launch)."""
    c = dict(_s.counters)
    c["kernels"] = c["fused_kernels"] + c["unfused_ops"]
    return c


def reset_stats() -> None:
    for k in _s.counters:
        _s.counters[k] = 0


def set_log(on: bool) -> None:
    """Print each fused kernel (its op chain) and each unfused op to stderr."""
    _s._log["on"] = bool(on)


class Trace:
    def __init__(self):
        self.events: list = []

    @property
    def kernels(self) -> int:
        return len(self.events)

    @property
    def fused(self) -> list:
        return [ops for kind, ops in self.events if kind == "fused"]

    def summary(self) -> str:
        lines = []
        for i, (kind, ops) in enumerate(self.events):
            tag = "fused " if kind == "fused" else "single"
            lines.append(f"{i:4d} {tag} {' -> '.join(ops)}")
        return "\n".join(lines)


@contextmanager
def trace():
    """Record every kernel launched by Fusion layers inside the block."""
    t = Trace()
    prev = _s._trace
    _s._trace = t.events
    try:
        yield t
    finally:
        _s._trace = prev
