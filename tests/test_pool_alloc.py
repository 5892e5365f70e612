"""PoolAllocator: configuration, size classes, reuse, no aliasing (also under threads), the cap,
empty_cache, stats through decorators, and string round trips."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import strata as st
from strata.core.errors import UnsupportedError
from strata.decorators import PoolAllocator, PoolConfig
from strata.decorators.pool_config import PoolConfigError
from strata.decorators.pool_device import DevicePool

KEYS = {"requests", "hits", "misses", "bytes_in_use", "bytes_cached", "peak_bytes_in_use"}


def _span(a: np.ndarray) -> tuple:
    p = a.__array_interface__["data"][0]
    return p, p + max(a.nbytes, 1)


# ---------------------------------------------------------------------- configuration
def test_size_classes_round_up_with_bounded_waste():
    cfg = PoolConfig()
    for n in [1, 511, 512, 513, 1000, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3_000_001,
              77_777_777]:
        c = cfg.size_class(n)
        assert c >= n
        if n > cfg.small_limit:
            assert c - n <= n / cfg.octave_divisions  # at most 1/8 wasted above 1 MiB
        else:
            assert c & (c - 1) == 0  # powers of two below
    assert PoolConfig(round_to="exact").size_class(1000) == 1024
    assert PoolConfig(round_to="exact").size_class(1025) == 1536
    assert PoolConfig(round_to="pow2").size_class(3_000_001) == 1 << 22


@pytest.mark.parametrize("kw, word", [({"max_bytes": 0}, "max_bytes"), ({"min_block": 100}, "min_block"),
                                      ({"octave_divisions": 3}, "octave_divisions"),
                                      ({"round_to": "fib"}, "round_to"), ({"bogus": 1}, "bogus"),
                                      ({"small_limit": 256, "min_block": 512}, "small_limit")])
def test_bad_config_is_a_clear_error(kw, word):
    with pytest.raises(PoolConfigError, match=word):
        PoolAllocator(st.backend("NumPy()"), **kw)


def test_string_round_trip_and_kwargs():
    s = "Fusion(Autodiff(PoolAllocator(NumPy(), max_bytes=1000000)))"
    B = st.backend(s)
    assert str(B) == s
    assert str(st.backend(str(B))) == s
    P = PoolAllocator(st.backend("NumPy()"), config={"round_to": "pow2"}, max_bytes=4096)
    assert str(P) == "PoolAllocator(NumPy(), max_bytes=4096, round_to='pow2')"
    assert str(st.backend(str(P))) == str(P)


def test_memory_stats_forward_through_decorators_and_error_without_pool():
    B = st.backend("Fusion(Autodiff(PoolAllocator(NumPy())))")
    assert KEYS <= set(B.memory_stats())
    with pytest.raises(UnsupportedError, match="PoolAllocator"):
        st.backend("Autodiff(NumPy())").memory_stats()


def test_one_pool_per_base_backend():
    base = st.backend("NumPy()")
    PoolAllocator(base)
    with pytest.raises(st.BackendError, match="already has a pool"):
        PoolAllocator(base)


# ---------------------------------------------------------------------- NumPy pool behaviour
def test_numpy_reuse_and_views_keep_blocks_alive():
    B = st.backend("PoolAllocator(NumPy(), host_min_bytes=0)")
    a = st.from_numpy(np.ones((64, 64), np.float32), backend=B)
    x = a + 1.0
    view = x[1:, ::2].T           # a numpy view chain of the pooled output
    span = _span(x.numpy())
    del x
    y = a * 3.0                   # same shape: must not reuse x's block while `view` lives
    assert not (_span(y.numpy())[0] < span[1] and span[0] < _span(y.numpy())[1])
    np.testing.assert_array_equal(view.numpy(), np.full((32, 63), 2.0, np.float32))
    del view, y
    s0 = B.memory_stats()
    z = a - 1.0
    s1 = B.memory_stats()
    assert s1["hits"] == s0["hits"] + 1 and s1["misses"] == s0["misses"]
    np.testing.assert_array_equal(z.numpy(), np.zeros((64, 64), np.float32))


def test_numpy_stats_in_use_and_cached_are_exact():
    B = st.backend("PoolAllocator(NumPy(), host_min_bytes=0)")
    a = st.from_numpy(np.ones(1000, np.float32), backend=B)   # 4000 B -> 4096 class
    outs = [a + float(i) for i in range(5)]
    s = B.memory_stats()
    assert s["bytes_in_use"] == 5 * 4096 and s["bytes_cached"] == 0
    del outs[:3]
    s = B.memory_stats()
    assert s["bytes_in_use"] == 2 * 4096 and s["bytes_cached"] == 3 * 4096
    assert s["peak_bytes_in_use"] >= 5 * 4096
    assert B.empty_cache() == 3 * 4096
    s = B.memory_stats()
    assert s["bytes_cached"] == 0 and s["releases"] == 3


def test_numpy_cap_releases_cached_blocks_first():
    B = st.backend("PoolAllocator(NumPy(), max_bytes=65536, host_min_bytes=0)")
    a = st.from_numpy(np.ones(4000, np.float32), backend=B)    # 16000 B -> 16384
    xs = [a + 1.0 for _ in range(3)]
    del xs
    b = st.from_numpy(np.ones(8000, np.float32), backend=B)    # 32000 B -> 32768: must evict
    y = b + 1.0
    s = B.memory_stats()
    assert s["bytes_in_use"] + s["bytes_cached"] <= 65536
    assert s["releases"] >= 1
    np.testing.assert_array_equal(y.numpy(), np.full(8000, 2.0, np.float32))
    strict = st.backend("PoolAllocator(NumPy(), max_bytes=4096, strict=True, host_min_bytes=0)")
    c = st.from_numpy(np.ones(4000, np.float32), backend=strict)
    with pytest.raises(MemoryError, match="max_bytes"):
        c + 1.0


def test_numpy_pool_threads_never_alias_live_buffers():
    B = st.backend("PoolAllocator(NumPy(), host_min_bytes=0)")
    base = np.arange(256, dtype=np.float32)
    src = st.from_numpy(base, backend=B)
    errors = []

    def worker(tid: int):
        rng = random.Random(tid)
        live = []
        try:
            for i in range(400):
                v = float(tid * 100000 + i)
                t = src * 0.0 + v             # pooled outputs, distinct value per tensor
                live.append((t, v))
                if len(live) > 12 or rng.random() < 0.4:
                    t_old, v_old = live.pop(rng.randrange(len(live)))
                    if not np.all(t_old.numpy() == v_old):
                        errors.append(f"thread {tid}: a live tensor was overwritten")
            for t, v in live:
                if not np.all(t.numpy() == v):
                    errors.append(f"thread {tid}: a live tensor was overwritten at the end")
        except Exception as e:  # surface failures of the worker in the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    s = B.memory_stats()
    assert s["hits"] > s["misses"]        # the pool was actually reused


# ---------------------------------------------------------------------- device pool logic
class _FakeRaw:
    """A raw allocator whose buffers are distinct objects; counts what it is asked."""

    def __init__(self):
        self.allocs = 0
        self.frees = 0

    def alloc(self, n):
        self.allocs += 1
        return bytearray(n)

    def free(self, buf):
        self.frees += 1


def test_device_pool_threads_never_hand_out_a_live_buffer_twice():
    raw = _FakeRaw()
    pool = DevicePool(raw, PoolConfig(max_bytes=1 << 16))
    live_ids = set()
    lock = threading.Lock()
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        mine = []
        for _ in range(2000):
            if mine and rng.random() < 0.5:
                b = mine.pop(rng.randrange(len(mine)))
                with lock:
                    live_ids.discard(id(b))
                pool.free(b)
            else:
                b = pool.alloc(rng.choice([100, 600, 3000, 9000]))
                with lock:
                    if id(b) in live_ids:
                        errors.append("buffer handed out twice")
                    live_ids.add(id(b))
                mine.append(b)
        for b in mine:
            with lock:
                live_ids.discard(id(b))
            pool.free(b)

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert not errors
    s = pool.memory_stats()
    assert s["bytes_in_use"] == 0
    assert s["requests"] == s["hits"] + s["misses"] and s["misses"] == raw.allocs
    assert s["bytes_cached"] <= 1 << 16 or s["releases"] > 0
    pool.empty_cache()
    assert raw.allocs == raw.frees
    assert pool.memory_stats()["bytes_cached"] == 0


def test_device_pool_returns_foreign_buffers_to_the_raw_allocator():
    raw = _FakeRaw()
    pool = DevicePool(raw, PoolConfig())
    pool.free(bytearray(10))   # allocated before the pool was installed
    assert pool.memory_stats()["bytes_cached"] == 0 and raw.frees == 1


def test_numpy_default_threshold_follows_malloc_tuning(monkeypatch):
    """host_min_bytes=None (the default): with strata's malloc tuning in effect NumPy keeps
    everything below the 32 MiB mmap threshold (malloc reuses it without page faults), else
    64 KiB; an explicit value wins."""
    from strata.backends import malloc_tuning
    from strata.decorators.pool_array import DEFAULT_HOST_MIN, host_threshold
    from strata.decorators import PoolConfig
    assert PoolConfig().host_min_bytes is None
    monkeypatch.setattr(malloc_tuning, "applied", True)
    assert host_threshold(np, None) == malloc_tuning.MMAP_THRESHOLD
    assert host_threshold(np, 0) == 0 and host_threshold(np, 4096) == 4096
    monkeypatch.setattr(malloc_tuning, "applied", False)
    assert host_threshold(np, None) == DEFAULT_HOST_MIN
    B = st.backend("PoolAllocator(NumPy())")
    assert B.base().allocator.min_bytes == DEFAULT_HOST_MIN


def test_numpy_small_requests_bypass_the_pool():
    """Below host_min_bytes (here 64 KiB) NumPy allocates the output itself (small elementwise
    outputs never reach the pool); the pool keeps and counts only the larger blocks."""
    B = st.backend("PoolAllocator(NumPy(), host_min_bytes=65536)")
    small = st.from_numpy(np.ones(1000, np.float32), backend=B)     # 4 KB
    big = st.from_numpy(np.ones(40000, np.float32), backend=B)      # 160 KB
    outs = [small + 1.0, small * 2.0, big + 1.0]
    s = B.memory_stats()
    assert s["misses"] == 1 and s["requests"] == s["hits"] + s["misses"] + s["bypassed"]
    assert s["bytes_in_use"] == B.pool_config().size_class(160000)
    np.testing.assert_array_equal(outs[0].numpy(), np.full(1000, 2.0, np.float32))
    del outs
    y = big * 3.0                                                    # reuses the freed block
    s2 = B.memory_stats()
    assert s2["hits"] == s["hits"] + 1 and s2["misses"] == s["misses"]
    np.testing.assert_array_equal(y.numpy(), np.full(40000, 3.0, np.float32))
    with pytest.raises(PoolConfigError, match="host_min_bytes"):
        st.backend("PoolAllocator(NumPy(), host_min_bytes=-1)")
