"""Collectives for CUDA tensors on NCCL, with the communicator bootstrapped over MPI.

Bootstrap (init(nccl="auto"|True)): every rank checks that CuPy, CuPy's NCCL binding and a
CUDA device for it are present; the ranks agree (so that either all of
them or none take this path: a split would deadlock), each rank selects the GPU
`local_rank % device_count` (NCCL needs one GPU per rank), rank 0 creates the NCCL unique id,
MPI broadcasts its 128 bytes, and every rank builds `cupy.cuda.nccl.NcclCommunicator(world,
id, rank)`.

Data path: a tensor qualifies when its primitive is a cupy.ndarray (the CuPy() stack) or its
stack hands out CUDA memory through DLPack (`__dlpack_device__()` is kDLCUDA); other tensors of
a CUDA stack (e.g. Autodiff(CuPy()) while Autodiff does not forward DLPack) take the host path,
which is correct but copies through host memory. NCCL never writes into a tensor's own
buffer, because strata primitives may be shared views ("ops never modify their inputs"):
each collective writes into a fresh tensor of the same stack (a clone or `strata.empty`),
seen by CuPy without a copy, and the caller's tensor takes the result with an in-place
`copy_`. Work completes when a CUDA event recorded after the NCCL calls on the current stream
fires. The agreement step is an MPI all-gather of one flag per rank.

This path needs a GPU and was written against CuPy's NCCL API (cupy.cuda.nccl: get_unique_id,
NcclCommunicator.allReduce/broadcast/reduce/allGather/send/recv, groupStart/groupEnd). Without
a GPU the tests run it against tests/_fake_nccl.py (NumPy memory, MPI transport) and skip the
real-GPU test with the reason.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .group import DistributedError, Work

KDL_CUDA = 2  # DLPack device type of CUDA memory


def probe(local_size: int) -> tuple[bool, str]:
    """(True, "") if this rank can use NCCL, else (False, the reason)."""
    try:
        import cupy
        from cupy.cuda import nccl
    except Exception as e:  # ImportError, or CUDA libraries that fail to load
        return False, f"CuPy with NCCL is not importable ({type(e).__name__}: {e})"
    if not getattr(nccl, "available", False):
        return False, "this CuPy was built without NCCL (cupy.cuda.nccl.available is False)"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, f"no usable CUDA device ({type(e).__name__}: {e})"
    if n == 0:
        return False, "no CUDA device"
    if local_size > n:
        return False, (f"{local_size} ranks share {n} GPU(s) on this machine and NCCL needs one "
                       f"GPU per rank: start at most {n} ranks per machine (mpiexec -ppn {n})")
    return True, ""


def bootstrap(g, required: bool) -> "NcclContext | None":
    ok, why = probe(g.local_size)
    mine = np.array([1 if ok else 0], np.int32)
    every = np.empty(g.size, np.int32)
    g.comm.Allgather(mine, every)
    if not every.all():
        if required:
            bad = [r for r in range(g.size) if not every[r]]
            raise DistributedError(f"init(nccl=True): ranks {bad} cannot use NCCL"
                                   + (f"; this rank: {why}" if why else "")
                                   + "; use init(nccl=False) to keep collectives on MPI")
        return None
    import cupy
    from cupy.cuda import nccl
    device = g.local_rank % cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(device).use()
    # the id is a tuple of 128 C chars (signed or not, by platform): int16 carries either
    uid = np.zeros(128, np.int16)
    if g.rank == 0:
        uid[:] = nccl.get_unique_id()
    g.comm.Bcast(uid, root=0)
    comm = nccl.NcclCommunicator(g.size, tuple(int(v) for v in uid), g.rank)
    return NcclContext(g, cupy, nccl, comm, device)


def _ptr(a) -> int:
    """Device address of a CuPy array's first element."""
    return a.data.ptr


def _bytes(a):
    """A 1-D uint8 view of a C-contiguous array (0-d included)."""
    return a.reshape(-1).view(np.uint8)


class NcclContext:
    def __init__(self, g, cupy, nccl, comm, device: int) -> None:
        self.g = g
        self.cupy = cupy
        self.nccl = nccl
        self.comm = comm
        self.device = device
        self.types = {np.dtype(k): getattr(nccl, v) for k, v in (
            ("int8", "NCCL_INT8"), ("uint8", "NCCL_UINT8"), ("int32", "NCCL_INT32"),
            ("int64", "NCCL_INT64"), ("float16", "NCCL_FLOAT16"), ("float32", "NCCL_FLOAT32"),
            ("float64", "NCCL_FLOAT64"))}
        # NCCL_AVG exists from NCCL 2.10 when the CuPy binding exposes it
        self.has_avg = hasattr(nccl, "NCCL_AVG") and nccl.get_version() >= 21000

    def destroy(self) -> None:
        self.comm.destroy()

    # ---------------------------------------------------------------- tensors <-> CUDA memory
    def _device_array(self, t: Any):
        """t's CUDA memory as a zero-copy cupy.ndarray, or None when t is not in CUDA memory.
        A CuPy() primitive is a cupy.ndarray (backends/cupy.py); a decorated stack qualifies
        when its tensors export CUDA memory through DLPack."""
        if isinstance(t, np.ndarray):
            return None
        p = getattr(t, "_p", None)
        if isinstance(p, self.cupy.ndarray):
            return p
        dev = getattr(t, "__dlpack_device__", None)
        if dev is not None and dev()[0] == KDL_CUDA:
            return self.cupy.from_dlpack(t)
        return None

    def accepts(self, x: Any) -> bool:
        return self._device_array(x) is not None

    def _view(self, t: Any):
        """A zero-copy, C-contiguous CuPy view of t's buffer (t must be ours to write)."""
        v = self._device_array(t)
        if v is None or not v.flags.c_contiguous:
            raise DistributedError(f"a fresh {t.backend} tensor did not expose contiguous CUDA "
                                   f"memory; NCCL needs it (use init(nccl=False) to go through "
                                   f"host memory instead)")
        return v

    def _fresh_copy(self, t: Any):
        c = t.detach().clone()
        return c, self._view(c)

    def _fresh(self, shape: tuple, like: Any):
        from ..core.creation import empty
        e = empty(shape, dtype=like.dtype, backend=like.backend)
        return e, self._view(e)

    def _work(self, finish, what: str, keep) -> Work:
        ev = self.cupy.cuda.Event(block=False, disable_timing=True)
        ev.record(self.cupy.cuda.get_current_stream())
        return Work(lambda: ev.done, finish, what, keep)

    @staticmethod
    def _copy_into(dst: Any, src: Any) -> None:
        from ..core.grad_mode import no_grad
        with no_grad():
            dst.copy_(src)

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def _reduce_args(self, v, op):
        """(buffer to reduce, NCCL type, NCCL op, post(buffer) -> result of v's dtype)."""
        from .collectives import ReduceOp
        n = self.nccl
        dt = v.dtype
        if op is ReduceOp.AVG and dt.kind != "f":
            from ..core.errors import DTypeError
            raise DTypeError(f"ReduceOp.AVG needs a floating-point tensor, got {dt}; use SUM "
                             f"and divide, or cast to float first")
        code = {ReduceOp.SUM: n.NCCL_SUM, ReduceOp.AVG: n.NCCL_SUM, ReduceOp.PRODUCT: n.NCCL_PROD,
                ReduceOp.MIN: n.NCCL_MIN, ReduceOp.MAX: n.NCCL_MAX}[op]
        buf = v
        if dt.kind == "b":
            buf = _bytes(v)
            code = n.NCCL_MAX if op in (ReduceOp.SUM, ReduceOp.MAX) else n.NCCL_MIN
        elif dt not in self.types:
            buf = v.astype(np.int32 if dt.kind in "iu" else np.float32)
        if op is ReduceOp.AVG and self.has_avg:
            code = n.NCCL_AVG
        size = self.g.size
        avg_by_hand = op is ReduceOp.AVG and not self.has_avg

        def post(b):
            if avg_by_hand:
                b /= size
            if b is not v and b.dtype != dt:
                v[...] = b.astype(dt).reshape(v.shape)
            return v

        return buf, self.types[buf.dtype], code, post

    # ---------------------------------------------------------------- collectives
    def all_reduce(self, t: Any, op) -> Work:
        res, v = self._fresh_copy(t)
        buf, typ, code, post = self._reduce_args(v, op)
        self.comm.allReduce(_ptr(buf), _ptr(buf), buf.size, typ, code, self._stream())
        post(buf)
        return self._work(lambda: self._copy_into(t, res), "all_reduce (NCCL)", (res, buf))

    def broadcast(self, t: Any, src: int) -> Work:
        res, v = self._fresh_copy(t)
        b = _bytes(v)
        self.comm.broadcast(_ptr(b), _ptr(b), b.size, self.nccl.NCCL_UINT8, src,
                            self._stream())
        finish = None if self.g.rank == src else (lambda: self._copy_into(t, res))
        return self._work(finish, "broadcast (NCCL)", res)

    def reduce(self, t: Any, dst: int, op) -> Work:
        res, v = self._fresh_copy(t)
        buf, typ, code, post = self._reduce_args(v, op)
        self.comm.reduce(_ptr(buf), _ptr(buf), buf.size, typ, code, dst, self._stream())
        if self.g.rank != dst:
            return self._work(None, "reduce (NCCL)", (res, buf))
        post(buf)
        return self._work(lambda: self._copy_into(t, res), "reduce (NCCL)", (res, buf))

    def all_gather(self, outs: list, t: Any) -> Work:
        src, sv = self._fresh_copy(t)
        res, rv = self._fresh((self.g.size,) + tuple(t.shape), t)
        s = _bytes(sv)
        self.comm.allGather(_ptr(s), _ptr(_bytes(rv)), s.size, self.nccl.NCCL_UINT8,
                            self._stream())

        def finish() -> None:
            for r, o in enumerate(outs):
                self._copy_into(o, res[r])

        return self._work(finish, "all_gather (NCCL)", (src, res))

    def gather(self, t: Any, outs: list, dst: int) -> Work:
        src, sv = self._fresh_copy(t)
        s = _bytes(sv)
        n, stream, U8 = s.size, self._stream(), self.nccl.NCCL_UINT8
        res = None
        self.nccl.groupStart()
        try:
            if self.g.rank == dst:
                res, rv = self._fresh((self.g.size,) + tuple(t.shape), t)
                r8 = _bytes(rv).reshape(self.g.size, -1)
                for r in range(self.g.size):
                    if r == dst:
                        r8[r] = s
                    else:
                        self.comm.recv(_ptr(r8[r]), n, U8, r, stream)
            else:
                self.comm.send(_ptr(s), n, U8, dst, stream)
        finally:
            self.nccl.groupEnd()

        def finish() -> None:
            for r, o in enumerate(outs):
                self._copy_into(o, res[r])

        return self._work(finish if res is not None else None, "gather (NCCL)", (src, res))

    def scatter(self, t: Any, ins: list, src: int) -> Work:
        res, rv = self._fresh(tuple(t.shape), t)
        r8 = _bytes(rv)
        n, stream, U8 = r8.size, self._stream(), self.nccl.NCCL_UINT8
        keep = [res]
        self.nccl.groupStart()
        try:
            if self.g.rank == src:
                for r, x in enumerate(ins):
                    c, cv = self._fresh_copy(x)
                    keep.append(c)
                    c8 = _bytes(cv)
                    if r == src:
                        r8[...] = c8
                    else:
                        self.comm.send(_ptr(c8), n, U8, r, stream)
            else:
                self.comm.recv(_ptr(r8), n, U8, src, stream)
        finally:
            self.nccl.groupEnd()
        return self._work(lambda: self._copy_into(t, res), "scatter (NCCL)", keep)
