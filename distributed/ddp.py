"""DistributedDataParallel: one model replica per rank, gradients averaged in buckets.

What it does, and when:

* construction: broadcasts every parameter and buffer from rank 0 (packed into flat buckets,
  one collective per bucket), so all replicas start equal whatever their seeds;
* forward: runs the wrapped module; with broadcast_buffers=True it first re-broadcasts the
  buffers (BatchNorm running statistics) from rank 0, as torch does;
* gradient averaging: `sync_gradients()` packs the gradients of up to `bucket_cap_mb` MB of
  parameters into one flat tensor per bucket (by backend and dtype, in reverse registration
  order, which is roughly the order backward produces them), starts a non-blocking
  all-reduce per bucket as soon as it is packed, and unpacks each bucket into the parameters'
  .grad once its all-reduce completes. Each bucket also carries one "has a gradient" flag per
  parameter, so a parameter without a gradient on every rank keeps grad None (and one unused
  on some ranks only is averaged with zeros from those ranks, like torch's
  find_unused_parameters=True).

When does sync_gradients() run? strata's Autodiff engine has no per-parameter gradient hook
(leaf gradients are accumulated at the end of backward()), so the averaging cannot start
inside the backward pass. Either call `ddp.sync_gradients()` between `loss.backward()` and
`optimizer.step()`, or let `ddp.wrap_optimizer(optimizer)` do it: the optimizer's step() then
averages the gradients first, once per forward through the wrapper, and not inside no_sync().

Gradient accumulation: forwards and backwards inside `with ddp.no_sync():` accumulate locally;
the step after the last (synchronised) backward averages the accumulated sums.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from ..core.grad_mode import is_grad_enabled, no_grad
from ..modules.module import Module
from . import group as G
from .collectives import ReduceOp, all_reduce, broadcast

DEFAULT_BUCKET_CAP_MB = 25.0


class _Bucket:
    """Tensors of one backend and dtype whose values travel in one flat buffer."""

    __slots__ = ("backend", "dtype", "tensors", "numel")

    def __init__(self, backend: Any, dtype: Any) -> None:
        self.backend = backend
        self.dtype = dtype
        self.tensors: list = []
        self.numel = 0

    def add(self, t: Any) -> None:
        self.tensors.append(t)
        self.numel += t.numel()

    def __repr__(self) -> str:
        return (f"_Bucket({self.backend}, {self.dtype.name}, {len(self.tensors)} tensors, "
                f"{self.numel * self.dtype.itemsize / 2**20:.2f} MB)")


def plan_buckets(tensors: list, cap_bytes: float) -> list[_Bucket]:
    """Consecutive tensors of one (backend, dtype) share a bucket until it holds cap_bytes; a
    tensor larger than the cap gets a bucket of its own."""
    open_: dict = {}
    out: list[_Bucket] = []
    for t in tensors:
        key = (str(t.backend), t.dtype)
        b = open_.get(key)
        nbytes = t.numel() * t.dtype.itemsize
        if b is not None and b.tensors and (b.numel * b.dtype.itemsize + nbytes) > cap_bytes:
            b = None
        if b is None:
            b = _Bucket(t.backend, t.dtype)
            open_[key] = b
            out.append(b)
        b.add(t)
    return out


def _flat(parts: list) -> Any:
    from ..core.ops_movement import cat
    return cat([p.reshape(-1) for p in parts])


def _broadcast_tensors(tensors: list, cap_bytes: float, src: int = 0) -> None:
    """Every rank's tensors take rank src's values, one broadcast per bucket (in place)."""
    buckets = plan_buckets(tensors, cap_bytes)
    with no_grad():
        flats = [_flat([t.detach() for t in b.tensors]) for b in buckets]
        works = [broadcast(f, src=src, async_op=True) for f in flats]
        for b, f, w in zip(buckets, flats, works):
            w.wait()
            if G.get_rank() == src:
                continue
            off = 0
            for t in b.tensors:
                n = t.numel()
                t.copy_(f[off:off + n].reshape(tuple(t.shape)))
                off += n


class DistributedDataParallel(Module):
    """Data-parallel wrapper of a strata.modules.Module (torch's DistributedDataParallel).

    module: the replica on this rank (same architecture on every rank).
    broadcast_buffers: re-broadcast buffers from rank 0 before every forward in training mode.
    bucket_cap_mb: size of the flat gradient buffers that one all-reduce moves.
    init_sync: broadcast parameters and buffers from rank 0 at construction.

    Averaging needs `ddp.sync_gradients()` before `optimizer.step()`, or an optimizer passed
    through `ddp.wrap_optimizer(optimizer)` (see the module docstring for why).
    """

    def __init__(self, module: Module, broadcast_buffers: bool = True,
                 bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB, init_sync: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a strata.modules.Module, got "
                            f"{type(module).__name__}")
        if not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        G.group()  # a clear error if init() was not called
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        self._synced = True
        params = [p for p in module.parameters() if p.requires_grad]
        # backward produces the last layers' gradients first; their buckets go out first
        self._grad_buckets = plan_buckets(params[::-1], self._cap_bytes())
        if init_sync and G.get_world_size() > 1:
            _broadcast_tensors(list(module.parameters()) + list(module.buffers()),
                               self._cap_bytes())

    def _cap_bytes(self) -> float:
        return self.bucket_cap_mb * 2**20

    @property
    def buckets(self) -> list:
        """The gradient buckets (backend, dtype, tensors, size): what one all-reduce moves."""
        return list(self._grad_buckets)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.training and self.broadcast_buffers and G.get_world_size() > 1:
            bufs = list(self.module.buffers())
            if bufs:
                _broadcast_tensors(bufs, self._cap_bytes())
        if is_grad_enabled() and self.require_backward_grad_sync:
            self._synced = False
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards and backwards inside accumulate gradients locally, without communication."""
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    # ---------------------------------------------------------------- gradient averaging
    def sync_gradients(self) -> None:
        """Average every parameter's .grad over the ranks, one all-reduce per bucket.

        Buckets are packed and their all-reduces started one after the other; unpacking
        starts when the first completes, so packing and unpacking overlap the transfers."""
        size = G.get_world_size()
        if size > 1:
            with no_grad():
                pending = []
                for b in self._grad_buckets:
                    flat = self._pack(b)
                    # AVG of the flags is > 0 exactly where some rank had a gradient
                    pending.append((b, flat, all_reduce(flat, ReduceOp.AVG, async_op=True)))
                for b, flat, w in pending:
                    w.wait()
                    self._unpack(b, flat)
        self._synced = True

    def _pack(self, b: _Bucket) -> Any:
        from ..core.creation import from_numpy, zeros
        parts, flags = [], np.zeros(len(b.tensors), b.dtype.np)
        for i, p in enumerate(b.tensors):
            g = p.grad
            if g is None:
                parts.append(zeros(p.numel(), dtype=b.dtype, backend=b.backend))
            else:
                parts.append(g)
                flags[i] = 1
        parts.append(from_numpy(flags, backend=b.backend))
        return _flat(parts)

    @staticmethod
    def _unpack(b: _Bucket, avg: Any) -> None:
        n = len(b.tensors)
        has = avg[b.numel:b.numel + n].numpy()
        off = 0
        for i, p in enumerate(b.tensors):
            k = p.numel()
            p.grad = avg[off:off + k].reshape(tuple(p.shape)) if has[i] > 0 else None
            off += k

    def wrap_optimizer(self, optimizer: Any) -> Any:
        """Make `optimizer.step()` average the gradients first (once per forward through this
        wrapper, never inside no_sync()). Returns the same optimizer object."""
        step = getattr(optimizer, "step", None)
        if not callable(step):
            raise TypeError(f"wrap_optimizer expects an optimizer with a step() method, got "
                            f"{type(optimizer).__name__}")
        if getattr(step, "_strata_ddp", None) is self:
            return optimizer

        def step_after_sync(*args: Any, **kwargs: Any) -> Any:
            if self.require_backward_grad_sync and not self._synced:
                self.sync_gradients()
            return step(*args, **kwargs)

        step_after_sync._strata_ddp = self
        step_after_sync.__doc__ = step.__doc__
        optimizer.step = step_after_sync
        return optimizer

    def extra_repr(self) -> str:
        return (f"world_size={G.get_world_size() if G.is_initialized() else '?'}, "
                f"buckets={len(self._grad_buckets)}, bucket_cap_mb={self.bucket_cap_mb:g}")
