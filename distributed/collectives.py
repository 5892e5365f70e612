"""Collectives on tensors of any backend (and on NumPy arrays): torch.distributed's names.

Every function works in place on its tensor arguments, as torch.distributed does, and
returns None, or a `Work` to wait on when async_op=True.

Paths:
* CUDA tensors (a CuPy() stack that hands out device memory through DLPack) go through the
  NCCL communicator when init() set one up (nccl.py): no host copy.
* Everything else goes through host memory: `detach().numpy()` gives a contiguous NumPy array,
  mpi4py's buffer (upper-case) methods move it (never pickled), and the result comes back
  with `strata.from_numpy` + in-place `copy_` under no_grad (which keeps a parameter's identity
  and its .grad). Non-blocking MPI calls (Iallreduce, Ibcast, ...) carry every collective so
  that waits can honour the group's timeout.

Reductions follow torch: SUM, AVG (mean over ranks, floating dtypes), PRODUCT, MIN, MAX. bool
tensors reduce as logical or (SUM, MAX) or and (PRODUCT, MIN); float16 is summed in float32.
"""
from __future__ import annotations

import enum
import os
import zlib
from typing import Any, Sequence

import numpy as np

from ..core.errors import DTypeError, ShapeError
from . import group as G
from .group import DistributedError, Work


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    MEAN = "avg"  # alias: torch spells it AVG, the issue spells it mean
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def _op(op: Any) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str):
        try:
            return ReduceOp(op.lower() if op.lower() != "mean" else "avg")
        except ValueError:
            pass
    raise ValueError(f"unknown reduce op {op!r}: use strata.distributed.ReduceOp.SUM, AVG (MEAN), "
                     f"PRODUCT, MIN or MAX")


# ------------------------------------------------------------------ arguments
def _tensor_cls():
    from ..core.tensor import Tensor
    return Tensor


def _check(x: Any, what: str) -> None:
    if isinstance(x, np.ndarray):
        return
    if not isinstance(x, _tensor_cls()):
        raise TypeError(f"{what} must be a strata Tensor or a numpy.ndarray, got "
                        f"{type(x).__name__}")


def _shape(x: Any) -> tuple:
    return tuple(x.shape)


def _np_dtype(x: Any) -> np.dtype:
    return x.dtype if isinstance(x, np.ndarray) else np.dtype(x.dtype.np)


def _check_rank(r: Any, what: str, size: int) -> int:
    if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or not 0 <= r < size:
        raise ValueError(f"{what}={r!r} is not a rank of this world (0..{size - 1})")
    return int(r)


def _check_list(xs: Any, like: Any, what: str, size: int) -> list:
    if not isinstance(xs, (list, tuple)):
        raise TypeError(f"{what} must be a list of {size} tensors (one per rank), got "
                        f"{type(xs).__name__}")
    if len(xs) != size:
        raise ValueError(f"{what} has {len(xs)} tensors but the world has {size} ranks; pass "
                         f"exactly one per rank")
    for i, x in enumerate(xs):
        _check(x, f"{what}[{i}]")
        if _shape(x) != _shape(like) or _np_dtype(x) != _np_dtype(like):
            raise ShapeError(f"{what}[{i}] has shape {_shape(x)} and dtype {_np_dtype(x)}, but the "
                             f"tensor has shape {_shape(like)} and dtype {_np_dtype(like)}; every "
                             f"entry must match it")
    return list(xs)


def _check_same_everywhere(g, what: str, x: Any) -> None:
    """With STRATA_DIST_DEBUG=1: every rank must call the same collective on the same shape and
    dtype; a mismatch would otherwise corrupt data or hang, so name the ranks that differ."""
    if os.environ.get("STRATA_DIST_DEBUG") != "1" or g.size == 1:
        return
    desc = f"{what} shape={_shape(x)} dtype={_np_dtype(x)}"
    mine = np.array([zlib.crc32(desc.encode())], np.int64)
    every = np.empty(g.size, np.int64)
    G.mpi_work([g.comm.Iallgather(mine, every)], None, f"{what} (debug check)",
               (mine, every)).wait()
    if not (every == mine[0]).all():
        odd = [r for r in range(g.size) if every[r] != every[0]]
        raise DistributedError(f"ranks disagree on the collective: rank {g.rank} calls {desc}, "
                               f"and ranks {odd} differ from rank 0; every rank must call the "
                               f"same collectives in the same order with the same shapes")


# ------------------------------------------------------------------ host transport
def host_array(x: Any) -> np.ndarray:
    """x's values as a C-contiguous NumPy array (a view where possible; never written to)."""
    a = x if isinstance(x, np.ndarray) else x.detach().numpy()
    return np.ascontiguousarray(a)


def store(x: Any, value: np.ndarray) -> None:
    """Write `value` (shape and dtype of x) into x in place."""
    value = value.reshape(_shape(x))
    if isinstance(x, np.ndarray):
        if not x.flags.writeable:
            raise ValueError("the output numpy.ndarray is read-only; pass a writeable array")
        np.copyto(x, value)
        return
    from ..core.creation import from_numpy
    from ..core.grad_mode import no_grad
    with no_grad():
        x.copy_(from_numpy(value, backend=x.backend))


def _bytes(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1).view(np.uint8)


def _reduce_spec(dtype: np.dtype, op: ReduceOp, size: int, what: str):
    """(wire dtype, MPI op name, post-processing of the received array)."""
    kind = dtype.kind
    if op is ReduceOp.AVG and kind != "f":
        raise DTypeError(f"{what} with ReduceOp.AVG needs a floating-point tensor, got {dtype}; "
                         f"use ReduceOp.SUM and divide, or cast to float first")
    mpi_name = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD",
                ReduceOp.MIN: "MIN", ReduceOp.MAX: "MAX"}[op]
    wire = dtype
    if kind == "b":
        wire = np.dtype(np.uint8)
        mpi_name = "MAX" if op in (ReduceOp.SUM, ReduceOp.MAX) else "MIN"
    elif dtype == np.float16:
        wire = np.dtype(np.float32)  # MPI has no standard half type; float32 also sums better

    def post(r: np.ndarray) -> np.ndarray:
        if op is ReduceOp.AVG:
            r /= size
        return r.astype(dtype, copy=False)

    return wire, mpi_name, post


def _done(w: Work, async_op: bool) -> Work | None:
    if async_op:
        return w
    w.wait()
    return None


def _nccl_for(g, *xs: Any):
    """The NCCL context if every tensor of the call lives in CUDA memory, else None."""
    if g.nccl is None:
        return None
    return g.nccl if all(g.nccl.accepts(x) for x in xs) else None


# ------------------------------------------------------------------ collectives
def all_reduce(tensor: Any, op: ReduceOp = ReduceOp.SUM, async_op: bool = False) -> Work | None:
    """Reduce `tensor` over all ranks; every rank ends with the result (in place)."""
    g = G.group()
    op = _op(op)
    _check(tensor, "tensor")
    _check_same_everywhere(g, "all_reduce", tensor)
    nc = _nccl_for(g, tensor)
    if nc is not None:
        return _done(nc.all_reduce(tensor, op), async_op)
    a = host_array(tensor)
    wire, name, post = _reduce_spec(a.dtype, op, g.size, "all_reduce")
    send = a.reshape(-1).astype(wire, copy=False)
    recv = np.empty_like(send)
    req = g.comm.Iallreduce(send, recv, op=getattr(g.MPI, name))
    w = G.mpi_work([req], lambda: store(tensor, post(recv)), "all_reduce", (send, recv))
    return _done(w, async_op)


def broadcast(tensor: Any, src: int = 0, async_op: bool = False) -> Work | None:
    """Every rank's `tensor` takes the value of rank `src`'s (in place)."""
    g = G.group()
    _check(tensor, "tensor")
    src = _check_rank(src, "src", g.size)
    _check_same_everywhere(g, "broadcast", tensor)
    nc = _nccl_for(g, tensor)
    if nc is not None:
        return _done(nc.broadcast(tensor, src), async_op)
    if g.rank == src:
        buf = _bytes(host_array(tensor))
        if not buf.flags.writeable:  # MPI_Ibcast takes one in/out buffer
            buf = buf.copy()
        finish = None
    else:
        buf = np.empty(int(np.prod(_shape(tensor))) * _np_dtype(tensor).itemsize, np.uint8)
        finish = lambda: store(tensor, buf.view(_np_dtype(tensor)))  # noqa: E731
    req = g.comm.Ibcast([buf, g.MPI.BYTE], root=src)
    return _done(G.mpi_work([req], finish, "broadcast", buf), async_op)


def reduce(tensor: Any, dst: int = 0, op: ReduceOp = ReduceOp.SUM,
           async_op: bool = False) -> Work | None:
    """Reduce `tensor` over all ranks into rank `dst`'s tensor; the others keep theirs."""
    g = G.group()
    op = _op(op)
    _check(tensor, "tensor")
    dst = _check_rank(dst, "dst", g.size)
    _check_same_everywhere(g, "reduce", tensor)
    nc = _nccl_for(g, tensor)
    if nc is not None:
        return _done(nc.reduce(tensor, dst, op), async_op)
    a = host_array(tensor)
    wire, name, post = _reduce_spec(a.dtype, op, g.size, "reduce")
    send = a.reshape(-1).astype(wire, copy=False)
    recv = np.empty_like(send) if g.rank == dst else None
    req = g.comm.Ireduce(send, recv, op=getattr(g.MPI, name), root=dst)
    finish = (lambda: store(tensor, post(recv))) if g.rank == dst else None
    return _done(G.mpi_work([req], finish, "reduce", (send, recv)), async_op)


def all_gather(tensor_list: Sequence[Any], tensor: Any, async_op: bool = False) -> Work | None:
    """tensor_list[r] takes rank r's `tensor` on every rank."""
    g = G.group()
    _check(tensor, "tensor")
    outs = _check_list(tensor_list, tensor, "tensor_list", g.size)
    _check_same_everywhere(g, "all_gather", tensor)
    nc = _nccl_for(g, tensor, *outs)
    if nc is not None:
        return _done(nc.all_gather(outs, tensor), async_op)
    send = _bytes(host_array(tensor))
    recv = np.empty((g.size, send.size), np.uint8)
    req = g.comm.Iallgather([send, g.MPI.BYTE], [recv, g.MPI.BYTE])
    dtype = _np_dtype(tensor)

    def finish() -> None:
        for r, out in enumerate(outs):
            store(out, recv[r].view(dtype))

    return _done(G.mpi_work([req], finish, "all_gather", (send, recv)), async_op)


def gather(tensor: Any, gather_list: Sequence[Any] | None = None, dst: int = 0,
           async_op: bool = False) -> Work | None:
    """gather_list[r] on rank `dst` takes rank r's `tensor`; other ranks pass gather_list=None."""
    g = G.group()
    _check(tensor, "tensor")
    dst = _check_rank(dst, "dst", g.size)
    if g.rank == dst:
        if gather_list is None:
            raise ValueError(f"gather: rank {dst} is dst and needs a gather_list of {g.size} "
                             f"tensors shaped like the input")
        outs = _check_list(gather_list, tensor, "gather_list", g.size)
    elif gather_list is not None and len(gather_list) > 0:
        raise ValueError(f"gather: only rank dst={dst} receives; rank {g.rank} must pass "
                         f"gather_list=None")
    else:
        outs = []
    _check_same_everywhere(g, "gather", tensor)
    nc = _nccl_for(g, tensor, *outs)
    if nc is not None:
        return _done(nc.gather(tensor, outs, dst), async_op)
    send = _bytes(host_array(tensor))
    recv = np.empty((g.size, send.size), np.uint8) if g.rank == dst else None
    req = g.comm.Igather([send, g.MPI.BYTE], [recv, g.MPI.BYTE] if recv is not None else None,
                         root=dst)
    dtype = _np_dtype(tensor)

    def finish() -> None:
        for r, out in enumerate(outs):
            store(out, recv[r].view(dtype))

    return _done(G.mpi_work([req], finish, "gather", (send, recv)), async_op)


def scatter(tensor: Any, scatter_list: Sequence[Any] | None = None, src: int = 0,
            async_op: bool = False) -> Work | None:
    """Rank r's `tensor` takes scatter_list[r] of rank `src`; other ranks pass scatter_list=None."""
    g = G.group()
    _check(tensor, "tensor")
    src = _check_rank(src, "src", g.size)
    if g.rank == src:
        if scatter_list is None:
            raise ValueError(f"scatter: rank {src} is src and needs a scatter_list of {g.size} "
                             f"tensors shaped like the output tensor")
        ins = _check_list(scatter_list, tensor, "scatter_list", g.size)
    elif scatter_list is not None and len(scatter_list) > 0:
        raise ValueError(f"scatter: only rank src={src} sends; rank {g.rank} must pass "
                         f"scatter_list=None")
    else:
        ins = []
    _check_same_everywhere(g, "scatter", tensor)
    nc = _nccl_for(g, tensor, *ins)
    if nc is not None:
        return _done(nc.scatter(tensor, ins, src), async_op)
    dtype = _np_dtype(tensor)
    nbytes = int(np.prod(_shape(tensor))) * dtype.itemsize
    send = None
    if g.rank == src:
        send = np.empty((g.size, nbytes), np.uint8)
        for r, x in enumerate(ins):
            send[r] = _bytes(host_array(x))
    recv = np.empty(nbytes, np.uint8)
    req = g.comm.Iscatter([send, g.MPI.BYTE] if send is not None else None, [recv, g.MPI.BYTE],
                          root=src)
    return _done(G.mpi_work([req], lambda: store(tensor, recv.view(dtype)), "scatter",
                            (send, recv)), async_op)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """A small JSON-serialisable object (numbers, strings, lists, dicts: a config, a seed, a
    file name) from rank `src` to all. JSON, not pickle: nothing received is ever unpickled.
    Not for tensor data: use broadcast() for that."""
    import json
    g = G.group()
    src = _check_rank(src, "src", g.size)
    payload = None
    if g.rank == src:
        try:
            payload = np.frombuffer(json.dumps(obj).encode(), np.uint8)
        except TypeError as e:
            raise TypeError(f"broadcast_object sends JSON (numbers, strings, lists, dicts, "
                            f"bool, None); {e}. Send tensors with broadcast()") from None
    n = np.array([payload.size if payload is not None else 0], np.int64)
    G.mpi_work([g.comm.Ibcast(n, root=src)], None, "broadcast_object (size)", n).wait()
    buf = payload.copy() if payload is not None else np.empty(int(n[0]), np.uint8)
    G.mpi_work([g.comm.Ibcast([buf, g.MPI.BYTE], root=src)], None, "broadcast_object",
               buf).wait()
    return obj if g.rank == src else json.loads(buf.tobytes().decode())
