"""Bounded memo tables: the caches of launch plans, kernels and programs the host path keeps."""
from __future__ import annotations

LIMIT = 4096


def memo(cache: dict, key, make, on_hit=None, limit: int = LIMIT):
    """cache[key], made by make() on a miss (on_hit() runs on a hit). The table is emptied
    when it reaches `limit`: what it holds is cheap to make again, and a workload of ever new
    shapes must not grow it without bound."""
    hit = cache.get(key)
    if hit is None:
        if len(cache) >= limit:
            cache.clear()
        hit = cache[key] = make()
    elif on_hit is not None:
        on_hit()
    return hit
