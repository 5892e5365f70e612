"""ArrayPool: the caching allocator PoolAllocator installs into NumPy (and CuPy) backends.

These backends ask for outputs through `allocator.empty(shape, dtype) -> ndarray`. The pool
owns blocks (1-D uint8 arrays, one size class each) and hands out arrays that view a block.

How a block comes back: NumPy collapses view chains to the array that owns the memory, so
every array derived from a handed-out array (slices, reshapes, transposes, views of views)
holds a reference to the block itself. A block is therefore free exactly when nothing outside
the pool references it, which `sys.getrefcount` tells in ~0.1 us. This needs no finalizer per
allocation (weakref.finalize costs ~2 us, an owner object per array ~4-6 us, each more than
NumPy's own allocation) and cannot hand out a block twice while any view of it is alive.

The array handed out last for a block is kept and handed out again when the next request has
the same shape and dtype and neither it nor the block is referenced outside the pool: the
steady state of a training loop then allocates nothing at all, not even an array header.

Accounting: a block counts as in use from when it is handed out until the pool sees it free.
`memory_stats()` sweeps every block first, so bytes_in_use and bytes_cached are exact when read;
between sweeps the pool learns of frees when it scans a block, so peak_bytes_in_use is an upper
bound (it may count a dead block until the pool next looks at it).
"""
from __future__ import annotations

import sys
import threading

from .pool_config import PoolConfig
from .pool_device import PoolStats

_refs = sys.getrefcount


class _Block:
    """One pooled block and the array last handed out on it (None after a re-key)."""

    __slots__ = ("mem", "view", "key", "cls", "busy")

    def __init__(self, mem, cls: int):
        self.mem = mem
        self.view = None
        self.key = None
        self.cls = cls
        self.busy = False


# References a free block's memory has when tested through `_refs(b.mem)`: the _Block slot,
# the getrefcount argument and, when a handed-out array is cached, that array's base.
_MEM_FREE_WITH_VIEW = 3
_MEM_FREE_NO_VIEW = 2
# A cached array is unreferenced outside the pool when it has its _Block slot, the local
# variable of the scan and the getrefcount argument.
_VIEW_FREE = 3


class ArrayPool:
    """`empty(shape, dtype)` from pooled blocks of an array namespace (numpy or cupy)."""

    def __init__(self, xp, config: PoolConfig):
        self.xp = xp
        self.config = config
        self.stats = PoolStats()
        self._by_key: dict[tuple, list] = {}
        self._by_class: dict[int, list] = {}
        self._lock = threading.Lock()
        self._u8 = xp.dtype(xp.uint8)

    # ------------------------------------------------------------------ allocator interface
    def empty(self, shape, dtype):
        key = (shape, dtype)
        with self._lock:
            st = self.stats
            st.requests += 1
            lst = self._by_key.get(key)
            if lst:
                for b in lst:
                    v = b.view
                    if _refs(v) == _VIEW_FREE and _refs(b.mem) == _MEM_FREE_WITH_VIEW:
                        st.hits += 1
                        if b.busy:
                            st.in_use -= b.cls   # seen free only now: it was counted as in use
                        else:
                            st.cached -= b.cls
                        b.busy = True
                        st.in_use += b.cls
                        if st.in_use > st.peak:
                            st.peak = st.in_use
                        return v
            return self._slow(shape, dtype, key)

    # ------------------------------------------------------------------ pool control
    def memory_stats(self) -> dict:
        with self._lock:
            self._sweep()
            return self.stats.snapshot(self.config.max_bytes)

    def empty_cache(self) -> int:
        with self._lock:
            self._sweep()
            return self._release_until(None)

    # ------------------------------------------------------------------ internals (locked)
    def _is_free(self, b: _Block) -> bool:
        v = b.view
        if v is None:
            return _refs(b.mem) == _MEM_FREE_NO_VIEW
        return _refs(v) == _VIEW_FREE and _refs(b.mem) == _MEM_FREE_WITH_VIEW

    def _sweep(self) -> None:
        """Mark every block nothing outside the pool references as cached."""
        st = self.stats
        for blocks in self._by_class.values():
            for b in blocks:
                if b.busy and self._is_free(b):
                    b.busy = False
                    st.in_use -= b.cls
                    st.cached += b.cls

    def _slow(self, shape, dtype, key):
        st = self.stats
        nbytes = dtype.itemsize
        for s in shape:
            nbytes *= s
        cls = self.config.size_class(nbytes)
        blocks = self._by_class.get(cls)
        found = None
        if blocks:
            for b in blocks:
                if self._is_free(b):
                    found = b
                    break
        if found is None:
            self._make_room(cls)
            found = _Block(self.xp.empty(cls, self._u8), cls)
            self._by_class.setdefault(cls, []).append(found)
            st.misses += 1
        else:
            st.hits += 1
            if found.busy:
                st.in_use -= cls
            else:
                st.cached -= cls
            self._unkey(found)
        # slicing, view and reshape keep `mem` as the base (NumPy and CuPy collapse the chain)
        v = found.mem[:nbytes].view(dtype).reshape(shape)
        found.view = v
        found.key = key
        found.busy = True
        self._by_key.setdefault(key, []).append(found)
        st.in_use += cls
        if st.in_use > st.peak:
            st.peak = st.in_use
        return v

    def _unkey(self, b: _Block) -> None:
        if b.key is not None:
            lst = self._by_key[b.key]
            lst.remove(b)
            if not lst:
                del self._by_key[b.key]
        b.view = None
        b.key = None

    def _make_room(self, cls: int) -> None:
        cap = self.config.max_bytes
        st = self.stats
        if cap is None or st.in_use + st.cached + cls <= cap:
            return
        self._sweep()
        self._release_until(cap - cls)
        if self.config.strict and st.in_use + cls > cap:
            raise MemoryError(f"PoolAllocator(max_bytes={cap}, strict=True): a {cls}-byte block "
                              f"does not fit: {st.in_use} bytes are in use. Free tensors, raise "
                              f"max_bytes, or pass strict=False to let the pool exceed the cap")

    def _release_until(self, target) -> int:
        """Drop free blocks, largest classes first, until reserved bytes <= target (None: all).
        Callers sweep first, so `busy` is exact here."""
        st = self.stats
        released = 0
        for cls in sorted(self._by_class, reverse=True):
            if target is not None and st.in_use + st.cached <= target:
                break
            blocks = self._by_class[cls]
            keep = []
            for b in blocks:
                if not b.busy and (target is None or st.in_use + st.cached > target):
                    self._unkey(b)
                    st.cached -= cls
                    st.releases += 1
                    released += cls
                else:
                    keep.append(b)
            if keep:
                self._by_class[cls] = keep
            else:
                del self._by_class[cls]
        return released


__all__ = ["ArrayPool"]
