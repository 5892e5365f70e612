"""Counters behind strata.fusion diagnostics: kernels launched, what fused, cache hits/misses."""
from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()
counters = {"fused_kernels": 0, "fused_ops": 0, "unfused_ops": 0, "cache_hits": 0,
            "cache_misses": 0}
_log = {"on": os.environ.get("STRATA_FUSION_LOG", "") not in ("", "0")}
_trace: list | None = None


def record_fused(ops, program) -> None:
    with _lock:
        counters["fused_kernels"] += 1
        counters["fused_ops"] += len(ops)
    if _trace is not None:
        _trace.append(("fused", tuple(ops)))
    if _log["on"]:
        print(f"[strata.fusion] kernel {counters['fused_kernels']}: {' -> '.join(ops)}",
              file=sys.stderr)


def record_unfused(op: str) -> None:
    with _lock:
        counters["unfused_ops"] += 1
    if _trace is not None:
        _trace.append(("op", (op,)))
    if _log["on"]:
        print(f"[strata.fusion] op: {op}", file=sys.stderr)


def record_cache(hit: bool) -> None:
    """Backends call this when they look up a compiled fused kernel."""
    with _lock:
        counters["cache_hits" if hit else "cache_misses"] += 1
