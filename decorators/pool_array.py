"""ArrayPool: the caching allocator PoolAllocator installs into NumPy (and CuPy) backends.

These backends ask for outputs through `allocator.empty(shape, dtype) -> ndarray`. The pool
owns blocks (1-D uint8 arrays, one size class each) and hands out arrays that view a block.

How a block comes back: NumPy collapses view chains to the array that owns the memory, so
every array derived from a handed-out array (slices, reshapes, transposes, views of views)
holds a reference to the block itself. A block is therefore free exactly when nothing outside
the pool references it, which `sys.getrefcount` tells in ~0.1 us. This needs no finalizer per
allocation (weakref.finalize costs ~2 us, an owner object per array ~4-6 us, each more than
NumPy's own allocation) and cannot hand out a block twice while any view of it is alive.

Blocks of a size class are scanned newest first (malloc's LIFO order, which keeps reused memory
in the CPU caches). The array handed out last on a block is kept and handed out again when the
next request on that block has the same shape and dtype and neither it nor the block is
referenced outside the pool, so most requests of a training loop create no array header.

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

    __slots__ = ("mem", "off", "view", "key", "cls", "busy")

    def __init__(self, mem, off: int, cls: int):
        self.mem = mem
        self.off = off
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
_PAGE = 4096
_COLOURS = 16        # block starts spread over 16 offsets of 256 bytes within a page
_COLOUR_MIN = 65536  # below this malloc already spreads blocks over the page


DEFAULT_HOST_MIN = 64 << 10


def host_threshold(xp, configured) -> int:
    """PoolConfig.host_min_bytes resolved: None means NumPy's mmap threshold while strata's
    malloc tuning is in effect (smaller blocks come back from malloc without page faults and
    still cache-warm), else DEFAULT_HOST_MIN."""
    if configured is not None:
        return configured
    if getattr(xp, "__name__", "") == "numpy":
        from ..backends import malloc_tuning
        if malloc_tuning.applied:
            return malloc_tuning.MMAP_THRESHOLD
    return DEFAULT_HOST_MIN


class ArrayPool:
    """`empty(shape, dtype)` from pooled blocks of an array namespace (numpy or cupy)."""

    def __init__(self, xp, config: PoolConfig):
        self.xp = xp
        self.config = config
        self.stats = PoolStats()
        self._by_class: dict[int, list] = {}    # size class -> blocks, last handed out last
        self._classes: dict[tuple, int] = {}    # (shape, dtype) -> size class (memo)
        self._lock = threading.Lock()
        self._u8 = xp.dtype(xp.uint8)
        self._colour = 0
        # NumPy's op wrappers read this and allocate smaller outputs themselves, without
        # calling empty(); what does call empty() below it is served unpooled and counted
        self.min_bytes = host_threshold(xp, config.host_min_bytes)

    # ------------------------------------------------------------------ allocator interface
    def empty(self, shape, dtype):
        key = (shape, dtype)
        cls = self._classes.get(key)
        if cls is None:
            cls = self._class_of(shape, dtype, key)
        if not cls:   # below host_min_bytes: the library's allocator is faster
            with self._lock:
                self.stats.bypassed += 1
                self.stats.requests += 1
            return self.xp.empty(shape, dtype)
        with self._lock:
            st = self.stats
            st.requests += 1
            blocks = self._by_class.get(cls)
            if blocks:
                # newest first: the block handed out most recently and already dead (say, a
                # temporary of the previous op) is likely still in the CPU caches, which is
                # what malloc's LIFO reuse gives NumPy; reusing a cold block costs more than
                # the allocation saved
                i = len(blocks) - 1
                while i >= 0:
                    b = blocks[i]
                    v = b.view
                    if v is None:
                        free = _refs(b.mem) == _MEM_FREE_NO_VIEW
                    else:
                        free = _refs(v) == _VIEW_FREE and _refs(b.mem) == _MEM_FREE_WITH_VIEW
                    if free:
                        st.hits += 1
                        if not b.busy:
                            st.cached -= cls
                            st.in_use += cls
                            if st.in_use > st.peak:
                                st.peak = st.in_use
                        # else: seen free only now; it stays counted as in use (handed out again)
                        b.busy = True
                        if i != len(blocks) - 1:
                            del blocks[i]
                            blocks.append(b)
                        if b.key != key:
                            v = b.view = self._view(b, shape, dtype)
                            b.key = key
                        return v
                    i -= 1
            return self._new_block(shape, dtype, key, cls)

    def _class_of(self, shape, dtype, key) -> int:
        nbytes = dtype.itemsize
        for s in shape:
            nbytes *= s
        cls = self.config.size_class(nbytes) if nbytes >= self.min_bytes else 0
        if len(self._classes) < 65536:  # a model's tensors come in few shapes; bound the memo
            self._classes[key] = cls
        return cls

    @staticmethod
    def _view(b: _Block, shape, dtype):
        # slicing, view and reshape keep `mem` as the base (NumPy and CuPy collapse the chain)
        nbytes = dtype.itemsize
        for s in shape:
            nbytes *= s
        return b.mem[b.off:b.off + nbytes].view(dtype).reshape(shape)

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

    def _new_block(self, shape, dtype, key, cls: int):
        st = self.stats
        self._make_room(cls)
        b = self._allocate(cls)
        self._by_class.setdefault(cls, []).append(b)
        st.misses += 1
        v = b.view = self._view(b, shape, dtype)
        b.key = key
        b.busy = True
        st.in_use += cls
        if st.in_use > st.peak:
            st.peak = st.in_use
        return v

    def _allocate(self, cls: int) -> _Block:
        """A new block whose start has its own offset modulo 4 KiB ("cache colouring").

        Large allocations come from mmap and all start at the same offset in a page; an
        elementwise op whose input and output addresses agree in their low 12 bits stalls
        on 4K aliasing (a pool of such blocks made an MLP step 2.4x slower when page-aligned
        and ~15% slower as malloc gives them). Small blocks are left as malloc places them."""
        if cls < _COLOUR_MIN:
            return _Block(self.xp.empty(cls, self._u8), 0, cls)
        mem = self.xp.empty(cls + _PAGE, self._u8)
        addr = mem.__array_interface__["data"][0] if self.xp.__name__ == "numpy" else 0
        self._colour = (self._colour + 1) % _COLOURS
        off = (-addr) % 64 + self._colour * (_PAGE // _COLOURS)
        return _Block(mem, off, cls)

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
                    b.view = None
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
