"""The process group: MPI start-up, rank and size, barrier, loud failure, and pending work.

One group per process (the world), as in torch.distributed's default group. It holds a
duplicate of MPI.COMM_WORLD (so a user's own mpi4py traffic on COMM_WORLD cannot match
strata's collectives), the timeout every wait honours, and the NCCL communicator when the
group was set up for CuPy stacks (see nccl.py).

Failures are loud: a rank that dies from an uncaught exception aborts the whole job through
MPI_Abort (the others would otherwise wait forever in their next collective), and every wait
polls with a deadline instead of blocking in MPI, so a rank that stops calling collectives
makes the others raise DistributedTimeoutError instead of hanging.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

from ..core.errors import StrataError
from . import launch

DEFAULT_TIMEOUT = 1800.0  # seconds, torch.distributed's default
_LEAVE_TAG = 0x5E7  # 0-byte message on the control communicator: "this rank has left"
_PEER_CHECK_S = 0.005  # how often a wait looks for ranks that have left
_SPINS_BEFORE_YIELD = 200


class DistributedError(StrataError, RuntimeError):
    """Misuse of strata.distributed, or a collective that failed."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the process group's timeout."""


class _Group:
    __slots__ = ("MPI", "comm", "ctl", "rank", "size", "local_rank", "local_size", "timeout",
                 "nccl", "prev_excepthook", "prev_thread_hook")

    def __init__(self, MPI: Any, comm: Any, timeout: float) -> None:
        self.MPI = MPI
        self.comm = comm
        self.ctl = comm.Dup()  # "I have left" notices, apart from the collectives' traffic
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = node.Get_rank()
        self.local_size = node.Get_size()
        node.Free()
        self.timeout = timeout
        self.nccl = None
        self.prev_excepthook = None
        self.prev_thread_hook = None


_group: _Group | None = None


def _timeout_from_env() -> float:
    v = os.environ.get("STRATA_DIST_TIMEOUT")
    if not v:
        return DEFAULT_TIMEOUT
    try:
        t = float(v)
    except ValueError:
        raise DistributedError(f"STRATA_DIST_TIMEOUT={v!r} is not a number of seconds") from None
    if not t > 0:
        raise DistributedError(f"STRATA_DIST_TIMEOUT must be positive, got {v!r}")
    return t


def init(timeout: float | None = None, nccl: str | bool = "auto",
         abort_on_exception: bool = True) -> None:
    """Join the MPI world: rank and world size come from MPI.COMM_WORLD.

    timeout: seconds any collective or barrier may wait before raising
        DistributedTimeoutError (default: $STRATA_DIST_TIMEOUT or 1800).
    nccl: "auto" bootstraps an NCCL communicator over MPI when every rank can use one
        (CuPy with NCCL and a CUDA device importable everywhere); True requires it (an error
        names what is missing); False keeps every collective on MPI through host memory.
    abort_on_exception: install sys.excepthook / threading.excepthook wrappers that print the
        traceback and call MPI_Abort, so one failing rank stops the job instead of hanging it.

    Calling init() twice is an error; destroy_process_group() first to change settings.
    """
    global _group
    if _group is not None:
        raise DistributedError("strata.distributed.init() was already called in this process; "
                               "call destroy_process_group() first to initialise again")
    if timeout is None:
        timeout = _timeout_from_env()
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if nccl not in ("auto", True, False):
        raise ValueError(f"nccl must be 'auto', True or False, got {nccl!r}")
    ok, why = launch.mpi4py_available()
    if not ok:
        raise DistributedError(f"strata.distributed needs MPI: {why}")
    from mpi4py import MPI  # importing initialises MPI (MPI_Init_thread)
    g = _Group(MPI, MPI.COMM_WORLD.Dup(), float(timeout))
    _group = g
    try:
        if nccl is not False:
            from . import nccl as nccl_mod
            g.nccl = nccl_mod.bootstrap(g, required=nccl is True)
    except BaseException:
        _group = None
        g.ctl.Free()
        g.comm.Free()
        raise
    if abort_on_exception and g.size > 1:
        _install_abort_hooks(g)
    atexit.register(_leave_at_exit)


def is_initialized() -> bool:
    return _group is not None


def group() -> _Group:
    """The initialised group, or a DistributedError saying to call init()."""
    if _group is None:
        raise DistributedError("the process group is not initialised: call "
                               "strata.distributed.init() first (under `mpiexec -n N python ...`)")
    return _group


def get_rank() -> int:
    return group().rank


def get_world_size() -> int:
    return group().size


def get_local_rank() -> int:
    """This process's rank among the ranks on the same machine (picks its GPU)."""
    return group().local_rank


def is_main_process() -> bool:
    """True on rank 0, and in a process that never initialised distributed (one process is its
    own main process): the one that prints progress and writes checkpoints."""
    return _group is None or _group.rank == 0


def uses_nccl() -> bool:
    """Whether CUDA tensors take the NCCL path (False: every collective goes through MPI)."""
    return _group is not None and _group.nccl is not None


def destroy_process_group() -> None:
    """Leave the group once every rank has left it too (a rank still waiting in a collective
    learns that this one has gone and raises). Frees the NCCL communicator and the duplicated
    MPI communicators and restores the exception hooks. MPI itself stays initialised (it cannot
    be re-initialised), so init() may be called again."""
    global _group
    g = group()
    _leave(g)
    atexit.unregister(_leave_at_exit)
    if g.nccl is not None:
        g.nccl.destroy()
        g.nccl = None
    if g.prev_excepthook is not None:
        sys.excepthook = g.prev_excepthook
        threading.excepthook = g.prev_thread_hook
    g.ctl.Free()
    g.comm.Free()
    _group = None


def _leave(g: _Group) -> None:
    """Tell every other rank that this one has left, and wait until all of them have too."""
    if g.size == 1:
        return
    MPI = g.MPI
    peers = [r for r in range(g.size) if r != g.rank]
    token = np.zeros(1, np.uint8)
    got = np.zeros(len(peers), np.uint8)
    reqs = [g.ctl.Isend([token, MPI.BYTE], dest=r, tag=_LEAVE_TAG) for r in peers]
    reqs += [g.ctl.Irecv([got[i:i + 1], MPI.BYTE], source=r, tag=_LEAVE_TAG)
             for i, r in enumerate(peers)]
    Work(lambda: MPI.Request.Testall(reqs), None,
         "leaving the process group (every rank must finish or call destroy_process_group())",
         (token, got), check_peers=False).wait()


def _leave_at_exit() -> None:
    """A process that exits while still in the group (a script that ends without
    destroy_process_group(), sys.exit on one rank) leaves it first, so that ranks still waiting
    in a collective fail loudly instead of hanging. Runs before mpi4py's MPI_Finalize."""
    global _group
    g = _group
    if g is None:
        return
    try:
        _leave(g)
    except BaseException as e:  # never hang in MPI_Finalize after a failed goodbye
        sys.stderr.write(f"strata.distributed: {e}\n")
        sys.stderr.flush()
        _abort(g, 1)
    _group = None


# ------------------------------------------------------------------ loud failure
def abort(code: int = 1, reason: str = "") -> None:
    """Stop every rank of the job now (MPI_Abort), after printing why on this rank."""
    g = group()
    msg = f"strata.distributed: rank {g.rank} of {g.size} aborts the job"
    sys.stderr.write(msg + (f": {reason}" if reason else "") + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    _abort(g, code)


def _install_abort_hooks(g: _Group) -> None:
    prev, prev_thread = sys.excepthook, threading.excepthook
    g.prev_excepthook, g.prev_thread_hook = prev, prev_thread

    def excepthook(exc_type, exc, tb) -> None:
        try:
            prev(exc_type, exc, tb)
        finally:
            _abort_after(g, exc_type)

    def thread_hook(args) -> None:
        try:
            prev_thread(args)
        finally:
            if args.exc_type is not SystemExit:
                _abort_after(g, args.exc_type)

    sys.excepthook = excepthook
    threading.excepthook = thread_hook


def _abort_after(g: _Group, exc_type) -> None:
    sys.stderr.write(f"strata.distributed: rank {g.rank} of {g.size} raised "
                     f"{getattr(exc_type, '__name__', exc_type)}; aborting all ranks "
                     f"(MPI_Abort) so that none waits forever\n")
    sys.stderr.flush()
    sys.stdout.flush()
    _abort(g, 1)


# ------------------------------------------------------------------ pending work
class Work:
    """A collective in flight (what torch.distributed returns for async_op=True).

    wait() blocks until it completes (or the group's timeout passes) and then writes the result
    into the output tensors; is_completed() checks without blocking and also writes the result
    when it is done. Until then the tensors passed to the collective must not be used.
    """

    __slots__ = ("_test", "_finish", "_what", "_done", "_keep", "_check_peers")

    def __init__(self, test: Callable[[], bool], finish: Callable[[], None] | None, what: str,
                 keep: Any = None, check_peers: bool = True) -> None:
        self._check_peers = check_peers
        self._test = test
        self._finish = finish
        self._what = what
        self._done = False
        self._keep = keep  # buffers the transport reads or writes until completion

    def is_completed(self) -> bool:
        if not self._done and self._test():
            self._complete()
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        if self._done:
            return True
        g = group()
        limit = g.timeout if timeout is None else float(timeout)
        test = self._test
        now = time.monotonic()
        deadline = now + limit
        next_check = now + _PEER_CHECK_S
        # Poll Test without sleeping: MPI progresses a non-blocking collective only inside MPI
        # calls, so a sleep between polls would stall large transfers. After a short spin each
        # poll yields the core, so that ranks sharing cores with other work (more ranks than
        # cores, a rank writing a checkpoint) are not starved by the waiting ones.
        spins = 0
        while not test():
            spins += 1
            if spins > _SPINS_BEFORE_YIELD:
                os.sched_yield()
            now = time.monotonic()
            if self._check_peers and now > next_check:
                _raise_if_a_rank_left(g, self._what)
                next_check = now + _PEER_CHECK_S
            if now > deadline:
                raise DistributedTimeoutError(
                    f"{self._what} did not complete on rank {g.rank} of {g.size} within "
                    f"{limit:g} s: another rank stopped, crashed, or called a different "
                    f"collective (every rank must call the same collectives in the same order "
                    f"with the same shapes); if the work is only slow, pass a larger timeout "
                    f"to strata.distributed.init() or set STRATA_DIST_TIMEOUT")
        self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        self._keep = None
        fin, self._finish = self._finish, None
        if fin is not None:
            fin()

    def __repr__(self) -> str:
        return f"Work({self._what}, {'completed' if self._done else 'pending'})"


def _raise_if_a_rank_left(g: _Group, what: str) -> None:
    st = g.MPI.Status()
    if g.ctl.Iprobe(source=g.MPI.ANY_SOURCE, tag=_LEAVE_TAG, status=st):
        raise DistributedError(f"rank {st.Get_source()} has left the process group (it exited "
                               f"or called destroy_process_group()) while rank {g.rank} waits in "
                               f"{what}, which can therefore never complete; every rank must "
                               f"call the same collectives")


def mpi_work(requests: list, finish: Callable[[], None] | None, what: str, keep: Any) -> Work:
    testall = group().MPI.Request.Testall
    return Work(lambda: testall(requests), finish, what, keep)


def barrier(timeout: float | None = None) -> None:
    """Wait until every rank has reached this call (within the group's timeout)."""
    g = group()
    mpi_work([g.comm.Ibarrier()], None, "barrier()", None).wait(timeout)


def _abort(g, code: int) -> None:
    """MPI_Abort after giving mpiexec a moment to relay this rank's last lines: Hydra forwards
    output asynchronously and drops what is still in flight when the job is torn down, which
    lost the very message that says why the job stopped."""
    try:
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        time.sleep(0.5)
        g.MPI.COMM_WORLD.Abort(code)
