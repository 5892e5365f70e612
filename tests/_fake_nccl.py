"""A stand-in for `cupy` + `cupy.cuda.nccl` over NumPy and MPI, to run strata.distributed's NCCL
code path (bootstrap, buffer handling, dtype and op mapping, grouped send/recv) on a machine
without a GPU.

"Device arrays" are NumPy arrays (so NumPy() tensors take the NCCL path) and the communicator
performs each NCCL call with the matching MPI call on the memory at the given addresses. It
checks what real NCCL requires of its caller: addresses of live contiguous buffers, known type
and op codes, and send/recv only inside groupStart/groupEnd. It does not stand in for CUDA
itself (streams and events complete at once).
"""
from __future__ import annotations

import ctypes
import sys
import types

import numpy as np

# codes as in nccl.h
TYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64,
         6: np.float16, 7: np.float32, 8: np.float64}
NAMES = {"NCCL_INT8": 0, "NCCL_UINT8": 1, "NCCL_INT32": 2, "NCCL_UINT32": 3, "NCCL_INT64": 4,
         "NCCL_UINT64": 5, "NCCL_FLOAT16": 6, "NCCL_FLOAT32": 7, "NCCL_FLOAT64": 8,
         "NCCL_SUM": 0, "NCCL_PROD": 1, "NCCL_MAX": 2, "NCCL_MIN": 3, "NCCL_AVG": 4}
calls: list = []  # (name, count) of every NCCL call, for the test to see the path was taken


def _at(ptr: int, count: int, dtype) -> np.ndarray:
    dt = np.dtype(TYPES[dtype])
    if not ptr:
        raise ValueError("NCCL got a null device pointer")
    buf = (ctypes.c_uint8 * (count * dt.itemsize)).from_address(ptr)
    return np.frombuffer(buf, dtype=dt)


class _Comm:
    def __init__(self, ndev: int, commId: tuple, rank: int) -> None:
        from mpi4py import MPI
        assert isinstance(commId, tuple) and len(commId) == 128, "commId is 128 chars"
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        ids = self.comm.allgather(commId)
        assert all(i == commId for i in ids), "ranks were given different NCCL unique ids"
        assert self.comm.Get_size() == ndev and self.comm.Get_rank() == rank

    def _op(self, op: int):
        M = self.MPI
        if op == 4:
            raise AssertionError("fake NCCL: NCCL_AVG is handled by the caller in this stand-in")
        return {0: M.SUM, 1: M.PROD, 2: M.MAX, 3: M.MIN}[op]

    def allReduce(self, send, recv, count, dtype, op, stream):
        calls.append(("allReduce", count))
        r = _at(recv, count, dtype)
        s = _at(send, count, dtype).copy()
        wire = s.astype(np.float32) if dtype == 6 else s  # MPI has no half type
        out = np.empty_like(wire)
        self.comm.Allreduce(wire, out, op=self._op(op))
        r[...] = out.astype(r.dtype)

    def reduce(self, send, recv, count, dtype, op, root, stream):
        calls.append(("reduce", count))
        s = _at(send, count, dtype).copy()
        wire = s.astype(np.float32) if dtype == 6 else s  # MPI has no half type
        out = np.empty_like(wire)
        self.comm.Reduce(wire, out, op=self._op(op), root=root)
        if self.comm.Get_rank() == root:
            _at(recv, count, dtype)[...] = out.astype(TYPES[dtype])

    def broadcast(self, send, recv, count, dtype, root, stream):
        calls.append(("broadcast", count))
        r = _at(recv, count, dtype)
        if self.comm.Get_rank() == root and send != recv:
            r[...] = _at(send, count, dtype)
        self.comm.Bcast(r, root=root)

    def allGather(self, send, recv, count, dtype, stream):
        calls.append(("allGather", count))
        self.comm.Allgather(_at(send, count, dtype),
                            _at(recv, count * self.comm.Get_size(), dtype))

    def send(self, buf, count, dtype, peer, stream):
        assert _group, "fake NCCL: send outside groupStart/groupEnd would deadlock"
        _group[-1].append(("send", self, _at(buf, count, dtype), peer))

    def recv(self, buf, count, dtype, peer, stream):
        assert _group, "fake NCCL: recv outside groupStart/groupEnd would deadlock"
        _group[-1].append(("recv", self, _at(buf, count, dtype), peer))

    def destroy(self):
        self.comm.Free()


_group: list = []


def groupStart():
    _group.append([])


def groupEnd():
    ops = _group.pop()
    reqs = []
    for kind, c, a, peer in ops:
        calls.append((kind, a.size))
        reqs.append(c.comm.Isend(a, dest=peer, tag=9) if kind == "send" else
                    c.comm.Irecv(a, source=peer, tag=9))
    if reqs:
        ops[0][1].MPI.Request.Waitall(reqs)


class _Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.done = False

    def record(self, stream=None):
        self.done = True  # every fake NCCL call completed before returning


class _Stream:
    ptr = 0


class _Device:
    def __init__(self, i: int) -> None:
        self.id = i

    def use(self):
        return self


def install() -> None:
    """Make `import cupy` / `from cupy.cuda import nccl` give this stand-in, and make
    strata.distributed.nccl read NumPy addresses."""
    cupy = types.ModuleType("cupy")
    cuda = types.ModuleType("cupy.cuda")
    nccl = types.ModuleType("cupy.cuda.nccl")
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 2)
    cupy.ndarray = np.ndarray
    cupy.from_dlpack = np.from_dlpack
    cupy.cuda = cuda
    cuda.nccl = nccl
    cuda.runtime = runtime
    cuda.Event = _Event
    cuda.Device = _Device
    cuda.get_current_stream = lambda: _Stream()
    nccl.available = True
    nccl.get_unique_id = lambda: tuple(int(v) for v in
                                       np.random.default_rng().integers(-128, 128, 128))
    nccl.get_version = lambda: 2_18_00  # NCCL_AVG exists, but see _Comm._op
    nccl.NcclCommunicator = _Comm
    nccl.groupStart, nccl.groupEnd = groupStart, groupEnd
    for k, v in NAMES.items():
        if k != "NCCL_AVG":
            setattr(nccl, k, v)
    sys.modules.update({"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.nccl": nccl})
    from strata.distributed import nccl as strata_nccl
    strata_nccl._ptr = lambda a: a.ctypes.data
