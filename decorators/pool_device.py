"""DevicePool: the caching allocator PoolAllocator installs into device backends (WGPU, OpenCL).

Device backends allocate through `allocator.alloc(nbytes) -> buffer` and give buffers back
through `allocator.free(buffer)` when the last tensor viewing them is collected. The pool keeps
freed buffers in per-size-class free lists and serves later requests of the same class from
them, so a training loop stops creating device buffers after its first step.

Which cached buffer a request gets: the one created first (lowest serial number) among the
free buffers of its class, as address-ordered first-fit allocators do. Reuse is then a
function of which buffers are free, not of the order they were freed in, so a repeating
training step settles within a few steps into handing every op the same buffers as the step
before. That stability is what the WGPU runtime's bind-group cache feeds on (a bind group
is reusable only for the same buffers): on the MLP step (784-128-10, Adam) every dispatch
reuses one from the 5th step on. Newest-first (LIFO) reuse, which this replaced, kept
reshuffling buffers among ops, because the Adam updates and the frees at the end of each
batch permute the free lists: 12-23 of the 49 dispatches reused a bind group over the first
~35 steps.

Why reuse is safe on both backends: OpenCL runs every kernel on one in-order queue, so work
enqueued on a reused buffer runs after the work that used it before; WGPU keeps the storages of
the open command batch alive until the batch is submitted (runtime.py `_keep`), so a buffer is
freed only after the commands using it are queued, and later writes are queue-ordered.

`free()` may run inside a garbage-collection pass triggered while this thread already holds
the lock (any allocation can collect), so it never blocks: it appends to a queue that the next
locked call drains.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import threading

from .pool_config import PoolConfig

STAT_KEYS = ("requests", "hits", "misses", "releases", "bytes_in_use", "bytes_cached",
             "peak_bytes_in_use", "bytes_reserved", "max_bytes")


class PoolStats:
    """Counters shared by both pools (read through memory_stats())."""

    def __init__(self) -> None:
        self.requests = 0
        self.bypassed = 0   # requests served by the array library, not the pool (host pools)
        self.hits = 0
        self.misses = 0
        self.releases = 0
        self.in_use = 0
        self.cached = 0
        self.peak = 0

    def snapshot(self, cap) -> dict:
        return {"requests": self.requests, "hits": self.hits, "misses": self.misses,
                "bypassed": self.bypassed,
                "releases": self.releases, "bytes_in_use": self.in_use,
                "bytes_cached": self.cached, "peak_bytes_in_use": self.peak,
                "bytes_reserved": self.in_use + self.cached, "max_bytes": cap}


class DevicePool:
    """alloc/free with the interface of the backends' DefaultAllocator, over a raw allocator."""

    def __init__(self, raw, config: PoolConfig):
        self.raw = raw
        self.config = config
        self.stats = PoolStats()
        # size class -> heap of (serial, buffer): the lowest serial is reused first
        self._free: dict[int, list] = {}
        # id(buffer) -> (buffer, size class, serial) while handed out; holding the buffer keeps
        # ids unique
        self._out: dict[int, tuple] = {}
        self._serials = itertools.count()
        self._classes: dict[int, int] = {}    # request size -> size class (memo)
        self._pending: collections.deque = collections.deque()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ allocator interface
    def alloc(self, nbytes: int):
        cls = self._classes.get(nbytes)
        if cls is None:
            cls = self._size_class(nbytes)
        with self._lock:
            if self._pending:
                self._drain()
            st = self.stats
            st.requests += 1
            lst = self._free.get(cls)
            if lst:
                serial, buf = heapq.heappop(lst)
                st.hits += 1
                st.cached -= cls
            else:
                self._make_room(cls)
                buf = self.raw.alloc(cls)
                serial = next(self._serials)
                st.misses += 1
            self._out[id(buf)] = (buf, cls, serial)
            st.in_use += cls
            if st.in_use > st.peak:
                st.peak = st.in_use
            return buf

    def _size_class(self, nbytes: int) -> int:
        cls = self.config.size_class(nbytes)
        if len(self._classes) < 65536:  # tensors of a model come in few sizes; bound the memo
            self._classes[nbytes] = cls
        return cls

    def free(self, buf) -> None:
        self._pending.append(buf)

    # ------------------------------------------------------------------ pool control
    def empty_cache(self) -> int:
        """Release every cached buffer to the device; returns the bytes released."""
        with self._lock:
            self._drain()
            return self._release_until(None)

    def memory_stats(self) -> dict:
        with self._lock:
            self._drain()
            return self.stats.snapshot(self.config.max_bytes)

    def close(self) -> None:
        self.empty_cache()

    # ------------------------------------------------------------------ internals (locked)
    def _drain(self) -> None:
        pend = self._pending
        st = self.stats
        while pend:
            buf = pend.popleft()
            rec = self._out.pop(id(buf), None)
            if rec is None or rec[0] is not buf:
                # not from this pool (allocated before it was installed): the raw allocator owns it
                self.raw.free(buf)
                continue
            cls = rec[1]
            st.in_use -= cls
            st.cached += cls
            heapq.heappush(self._free.setdefault(cls, []), (rec[2], buf))

    def _make_room(self, cls: int) -> None:
        cap = self.config.max_bytes
        st = self.stats
        if cap is None or st.in_use + st.cached + cls <= cap:
            return
        self._release_until(cap - cls)
        if self.config.strict and st.in_use + cls > cap:
            raise MemoryError(f"PoolAllocator(max_bytes={cap}, strict=True): a {cls}-byte block "
                              f"does not fit: {st.in_use} bytes are in use. Free tensors, raise "
                              f"max_bytes, or pass strict=False to let the pool exceed the cap")

    def _release_until(self, target) -> int:
        """Release cached buffers, largest classes first, until reserved bytes <= target
        (None: release all). Returns the bytes released."""
        st = self.stats
        released = 0
        for cls in sorted(self._free, reverse=True):
            lst = self._free[cls]
            while lst and (target is None or st.in_use + st.cached > target):
                buf = lst.pop()[1]  # the heap's last item: popping it keeps the heap order
                st.cached -= cls
                st.releases += 1
                released += cls
                self.raw.free(buf)
            if not lst:
                del self._free[cls]
            if target is not None and st.in_use + st.cached <= target:
                break
        return released


__all__ = ["DevicePool", "PoolStats", "STAT_KEYS"]
