"""PoolAllocator(inner, config=None, **options): a caching allocator under any stack.

    B = Autodiff(PoolAllocator(WGPU()))
    B = strata.backend("Fusion(Autodiff(PoolAllocator(OpenCL(), max_bytes=1000000000)))")
    B.memory_stats()   # requests, hits, misses, bytes_in_use, bytes_cached, peak_bytes_in_use ...
    B.empty_cache()    # give every cached buffer back to the device

The pool is installed into the BASE backend of the stack through its allocator hook, so it
serves every allocation of the stack wherever PoolAllocator sits in it:
* NumPy/CuPy: `set_allocator(pool)` with `pool.empty(shape, dtype)` (pool_array.py);
* WGPU/OpenCL: the `allocator` attribute, `alloc(nbytes)` / `free(buffer)` (pool_device.py).

Primitives are the inner backend's own, unchanged, and every op is the inner backend's bound
method installed on the instance, so the layer costs nothing per op. Installing a pool changes
the base backend object itself: build a fresh base for a pooled stack (strings do) rather than
sharing one base between pooled and unpooled stacks.
"""
from __future__ import annotations

from ..core.backend import Backend
from ..core.errors import BackendError, UnsupportedError
from .pool_array import ArrayPool
from .pool_config import PoolConfig
from .pool_device import DevicePool

# Names PoolAllocator answers itself instead of forwarding to the inner backend.
_OWN = frozenset({"base", "memory_stats", "empty_cache", "pool_config"})


def _forwarded_names() -> list:
    names = []
    for n in dir(Backend):
        if n.startswith("_") or n in _OWN:
            continue
        if callable(getattr(Backend, n)):
            names.append(n)
    return names


_FORWARDED = _forwarded_names()


class PoolAllocator(Backend):
    """Caching allocator decorator. Options: see PoolConfig (max_bytes, strict, round_to,
    min_block, small_limit, octave_divisions)."""

    def __init__(self, inner: Backend, config: PoolConfig | dict | None = None, **options):
        if not isinstance(inner, Backend):
            raise TypeError(f"PoolAllocator wraps a backend, got {type(inner).__name__}; "
                            f"e.g. PoolAllocator(NumPy())")
        self.inner = inner
        self.config = PoolConfig.build(config, **options)
        base = inner.base()
        current = getattr(base, "allocator", None)
        if isinstance(current, (ArrayPool, DevicePool)):
            raise BackendError(
                f"PoolAllocator: {base} already has a pool installed by another PoolAllocator; "
                f"one base backend takes one pool. Build a new base, e.g. "
                f"strata.backend(\"PoolAllocator({base})\"), or use that stack")
        if callable(getattr(base, "set_allocator", None)) and hasattr(base, "xp"):
            self._pool = ArrayPool(base.xp, self.config)
            base.set_allocator(self._pool)
        elif current is not None and callable(getattr(current, "alloc", None)) and \
                callable(getattr(current, "free", None)):
            self._pool = DevicePool(current, self.config)
            base.allocator = self._pool
        else:
            raise UnsupportedError(
                f"PoolAllocator: the base backend {base} has no allocator hook (an `allocator` "
                f"with alloc(nbytes)/free(buffer), or set_allocator(obj with empty(shape, dtype))); "
                f"give it one so that its buffers can be pooled, or leave PoolAllocator out")
        # bound methods of the inner backend on the instance: no extra call per op. Bound after
        # set_allocator, which reinstalls the NumPy backend's per-instance closures.
        d = self.__dict__
        for n in _FORWARDED:
            d[n] = getattr(inner, n)

    def __repr__(self) -> str:
        extra = self.config.kwargs_repr()
        return f"PoolAllocator({self.inner!r}{', ' + extra if extra else ''})"

    __str__ = __repr__

    # ------------------------------------------------------------------ pool interface
    def memory_stats(self) -> dict:
        """Pool counters: requests, hits (served from cache), misses (new device/host buffers),
        releases (buffers given back), bytes_in_use, bytes_cached, bytes_reserved (both),
        peak_bytes_in_use, max_bytes. Sizes are block sizes (requests rounded to size classes)."""
        return self._pool.memory_stats()

    def empty_cache(self) -> int:
        """Give every cached (unused) buffer back to the device or the OS; returns the bytes."""
        return self._pool.empty_cache()

    def pool_config(self) -> PoolConfig:
        return self.config


__all__ = ["PoolAllocator", "PoolConfig"]
