"""The WGPU runtime's bind-group cache (backends/wgpu/bind_groups.py): bind groups reused while
the same buffers are bound again, dropped when a buffer is destroyed, LRU-bounded; with
PoolAllocator a training step reuses them all after warm-up and computes the same numbers."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import strata.tests._wgpu_util  # noqa: F401  (sets XDG_RUNTIME_DIR)

import strata as st  # noqa: E402
from strata import modules as nn  # noqa: E402
from strata.backends.wgpu.bind_groups import BindGroupCache  # noqa: E402
from strata.core import dtype as dt  # noqa: E402


# ---------------------------------------------------------------- the cache alone (no adapter)
class _FakeDevice:
    def __init__(self):
        self.created = 0

    def create_bind_group(self, layout, entries):
        self.created += 1
        return ("bg", layout, tuple(e["resource"] for e in entries[1:]))


class _Buf:
    """Stands in for a GPUBuffer (identity is all the cache uses)."""


def _cache(capacity=8):
    stats = {}
    dev = _FakeDevice()
    return BindGroupCache(dev, _Buf(), 256, stats, capacity=capacity), dev, stats


def test_same_buffers_hit_and_other_buffers_miss():
    c, dev, stats = _cache()
    lay, a, b = object(), _Buf(), _Buf()
    g1 = c.get(lay, [a, b])
    assert c.get(lay, (a, b)) is g1
    assert c.get(lay, [b, a]) is not g1          # binding order is part of the key
    assert c.get(object(), [a, b]) is not g1     # so is the layout
    assert (stats["bind_group_hits"], stats["bind_group_misses"], dev.created) == (1, 3, 3)


def test_forget_drops_every_entry_of_the_buffer_and_its_index():
    c, _, _ = _cache()
    lay, w, x, y = object(), _Buf(), _Buf(), _Buf()
    c.get(lay, [x, w])
    c.get(lay, [y, w])
    c.get(lay, [x, x])                            # one buffer bound twice
    assert len(c) == 3 and c.buffers_bound() == 3
    c.forget(x)
    assert len(c) == 1 and c.buffers_bound() == 2   # only [y, w] is left
    c.forget(y)
    assert len(c) == 0 and c.buffers_bound() == 0   # w's index went with its last entry


def test_lru_bound_keeps_the_recently_used_entries():
    c, _, stats = _cache(capacity=4)
    lay, w = object(), _Buf()
    bufs = [_Buf() for _ in range(10)]
    for b in bufs[:4]:
        c.get(lay, [b, w])
    c.get(lay, [bufs[0], w])                     # touch the oldest: it stays
    for b in bufs[4:]:
        c.get(lay, [b, w])
    assert len(c) == 4 and c.buffers_bound() == 5   # 4 outputs + w
    hits = stats["bind_group_hits"]
    c.get(lay, [bufs[-1], w])
    assert stats["bind_group_hits"] == hits + 1
    c.get(lay, [bufs[1], w])                     # evicted long ago: a miss
    assert stats["bind_group_hits"] == hits + 1


# ---------------------------------------------------------------- on a WebGPU adapter
def _wgpu(spec: str):
    pytest.importorskip("wgpu")
    try:
        return st.backend(spec)
    except st.BackendError as e:
        pytest.skip(f"{spec} unavailable here: {e}")


def _mlp_step(B, seed: int = 0):
    rng = np.random.default_rng(seed)
    st.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128, backend=B), nn.ReLU(),
                          nn.Linear(128, 10, backend=B))
    opt = st.optim.Adam(model.parameters(), lr=1e-3)
    xs = [st.from_numpy(rng.random((16, 1, 28, 28), dtype=np.float32), backend=B) for _ in range(2)]
    ys = [st.from_numpy(rng.integers(0, 10, 16), backend=B) for _ in range(2)]

    def step(i):
        loss = st.functional.cross_entropy(model(xs[i % 2]), ys[i % 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()   # a read-back per step, as a training loop logging its loss
    return step, model


def test_pooled_step_reuses_bind_groups_and_matches_the_plain_step_bit_for_bit():
    plain = _wgpu("Autodiff(WGPU())")
    pooled = _wgpu("Autodiff(PoolAllocator(WGPU()))")
    run_a, model_a = _mlp_step(plain)
    run_b, model_b = _mlp_step(pooled)
    rt = pooled.base().rt
    losses_a, losses_b = [], []
    for i in range(12):
        if i == 6:
            s0 = dict(rt.stats)
        losses_a.append(run_a(i))
        losses_b.append(run_b(i))
    # recycled buffers behind cached bind groups: the same numbers, bit for bit
    assert np.array_equal(np.float32(losses_a), np.float32(losses_b)), (losses_a, losses_b)
    for (name, pa), (_, pb) in zip(model_a.named_parameters(), model_b.named_parameters()):
        assert np.array_equal(pa.detach().numpy(), pb.detach().numpy()), name
    hits = rt.stats["bind_group_hits"] - s0["bind_group_hits"]
    misses = rt.stats["bind_group_misses"] - s0["bind_group_misses"]
    dispatches = rt.stats["dispatches"] - s0["dispatches"]
    assert hits + misses == dispatches
    assert hits >= 0.9 * dispatches, (hits, misses)   # all of them once settled (measured)
    # and the plain stack, whose every op writes a new buffer, keeps only live entries
    assert plain.base().rt.stats["bind_group_hits"] < plain.base().rt.stats["dispatches"] / 10


def test_destroyed_buffers_leave_the_cache_without_a_pool():
    B = _wgpu("WGPU()")
    rt = B.rt
    destroyed = []
    forget = rt.allocator.on_destroy
    rt.allocator.on_destroy = lambda buf: (destroyed.append(buf), forget(buf))
    try:
        x = B.from_numpy(np.arange(256, dtype=np.float32), dt.float32)
        y = x
        for _ in range(100):
            y = B.add(B.mul(y, 0.5), x)
        want = B.to_numpy(y)
        assert len(rt.bind_groups) <= 3   # the temporaries died: only entries binding y or x
        alive = {id(b) for entry in rt.bind_groups._entries.values() for b in entry[1]}
        assert not alive & {id(b) for b in destroyed}
        del x, y
        gc.collect()
        B.sync()
        assert len(destroyed) >= 200
        assert len(rt.bind_groups) == 0 and rt.bind_groups.buffers_bound() == 0
    finally:
        rt.allocator.on_destroy = forget
    ref = np.arange(256, dtype=np.float32)
    acc = ref
    for _ in range(100):
        acc = acc * np.float32(0.5) + ref
    np.testing.assert_allclose(want, acc, rtol=1e-6)


def test_cache_stays_bounded_and_values_right_past_the_bound():
    B = _wgpu("WGPU()")
    rt = B.rt
    saved = rt.bind_groups.capacity
    rt.bind_groups.capacity = 16
    try:
        x = B.from_numpy(np.arange(64, dtype=np.float32), dt.float32)
        live = [B.add(x, float(i)) for i in range(100)]   # 100 live outputs: 100 entries made
        assert len(rt.bind_groups) <= 16 and rt.bind_groups.buffers_bound() <= 17
        outs = [B.to_numpy(B.mul(t, 2.0)) for t in live]
        for i, o in enumerate(outs):
            np.testing.assert_array_equal(o, (np.arange(64, dtype=np.float32) + i) * 2)
        assert len(rt.bind_groups) <= 16
    finally:
        rt.bind_groups.capacity = saved


def test_pool_release_drops_the_entries_of_released_buffers():
    B = _wgpu("Autodiff(PoolAllocator(WGPU()))")
    rt = B.base().rt
    run, model = _mlp_step(B)
    for i in range(3):
        run(i)
    assert len(rt.bind_groups) > 0
    del run, model
    gc.collect()
    B.sync()
    B.empty_cache()                   # every buffer back to the device: destroyed
    assert B.memory_stats()["bytes_reserved"] == 0
    assert len(rt.bind_groups) == 0 and rt.bind_groups.buffers_bound() == 0
