"""BindGroupCache: the WGPU runtime's bind groups, reused while the same buffers are bound again.

Why: on lavapipe (wgpu-py 0.32) `device.create_bind_group` costs ~50-90 µs, more than encoding
the dispatch itself, and an MLP training step makes 50-90 dispatches. A bind group depends only
on its layout and the buffers it binds (the per-dispatch metadata is bound with a dynamic
offset, see runtime.py), so a dispatch that binds the same buffers as an earlier one can reuse
its bind group. Buffer identity is what a caching allocator (PoolAllocator) keeps stable from
one training step to the next: with a pool, a step after warm-up creates (almost) no bind group.

Keys are ids of the GPUBuffer objects; every entry holds its buffers, so an id cannot be reused
by a new buffer while an entry with it exists. An entry must not outlive the destruction of a
buffer it binds (a destroyed buffer in a submitted bind group is a validation error), so the
allocator that destroys buffers reports them through `forget(buf)`; entries are LRU-bounded.

`forget()` runs in the allocator's free(), which may be called from a garbage-collection pass
that interrupts this very cache (any allocation can collect) or from another thread: so it only
queues the buffer, and the next cache call drops the entries. Until then such an entry cannot
be hit (its key's ids are pinned, and a destroyed buffer is never handed out again).
"""
from __future__ import annotations

import collections
from typing import Sequence

DEFAULT_CAPACITY = 4096


class BindGroupCache:
    """Bind groups keyed by (layout, buffers bound at bindings 1..); binding 0 is `meta`
    (bound at offset 0 with a dynamic offset given to set_bind_group)."""

    def __init__(self, device, meta_buf, meta_bytes: int, stats: dict,
                 capacity: int = DEFAULT_CAPACITY):
        self.device = device
        self.capacity = capacity
        self._meta = {"binding": 0, "resource": {"buffer": meta_buf, "offset": 0,
                                                 "size": meta_bytes}}
        self._entries: collections.OrderedDict = collections.OrderedDict()  # key -> (bg, bufs)
        self._keys: dict[int, set] = {}   # id(buffer) -> keys of the entries binding it
        self._dead: collections.deque = collections.deque()   # destroyed, entries not yet dropped
        self.stats = stats
        stats["bind_group_hits"] = 0
        stats["bind_group_misses"] = 0

    def get(self, bgl, buffers: Sequence):
        """The bind group of layout `bgl` binding `buffers` (GPUBuffers) at bindings 1..."""
        if self._dead:
            self._drop_dead()
        key = (id(bgl), *map(id, buffers))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.stats["bind_group_hits"] += 1
            return entry[0]
        return self._create(key, bgl, tuple(buffers))

    def create(self, bgl, buffers: Sequence):
        """A bind group made now and not kept: without a pool every dispatch binds a fresh
        output buffer, so a cached entry would never be found again and only cost bookkeeping
        (~1% of a plain MLP step)."""
        entries = [self._meta]
        entries += [{"binding": i, "resource": b} for i, b in enumerate(buffers, 1)]
        self.stats["bind_group_misses"] += 1
        return self.device.create_bind_group(layout=bgl, entries=entries)

    def forget(self, buf) -> None:
        """`buf` is being destroyed: its entries go before the next lookup. Never blocks."""
        self._dead.append(buf)

    def __len__(self) -> int:
        if self._dead:
            self._drop_dead()
        return len(self._entries)

    def buffers_bound(self) -> int:
        """How many distinct buffers the cached entries hold (bookkeeping size, for tests)."""
        if self._dead:
            self._drop_dead()
        return len(self._keys)

    def clear(self) -> None:
        self._dead.clear()
        self._entries.clear()
        self._keys.clear()

    # ------------------------------------------------------------------ internals
    def _create(self, key: tuple, bgl, bufs: tuple):
        entries = [self._meta]
        entries += [{"binding": i, "resource": b} for i, b in enumerate(bufs, 1)]
        bg = self.device.create_bind_group(layout=bgl, entries=entries)
        self.stats["bind_group_misses"] += 1
        while self._entries and len(self._entries) >= self.capacity:
            self._drop(next(iter(self._entries)))   # the least recently used
        self._entries[key] = (bg, bufs)
        keys = self._keys
        for b in bufs:
            s = keys.get(id(b))
            if s is None:
                keys[id(b)] = {key}
            else:
                s.add(key)
        return bg

    def _drop(self, key: tuple) -> None:
        """Remove one entry (LRU eviction) and its key from the index of every buffer it binds."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(key, entry[1], None)

    def _unindex(self, key: tuple, bufs: tuple, skip) -> None:
        keys = self._keys
        for b in bufs:
            if b is skip:
                continue
            s = keys.get(id(b))
            if s is not None:
                s.discard(key)
                if not s:
                    del keys[id(b)]

    def _drop_dead(self) -> None:
        dead = self._dead
        entries = self._entries
        while dead:
            buf = dead.popleft()
            for key in self._keys.pop(id(buf), ()):
                entry = entries.pop(key, None)
                if entry is not None:
                    self._unindex(key, entry[1], buf)


__all__ = ["BindGroupCache", "DEFAULT_CAPACITY"]
