"""Distributed benchmarks: all-reduce throughput (1-100 MB) and data-parallel MLP steps on 1
and 2 MPI processes, timed by the ordinary runner.

Each row's work runs in a pool of MPI processes that this module starts with
`mpiexec -n N python -m bench.distributed --serve` and keeps for the whole run. Rank 0 of the
pool takes requests from this process over a localhost socket and broadcasts them to the other
ranks; `Work.run` sends one request ("run prepared item k once") and returns when every rank
has done it, so the runner's clock covers the real collective across processes plus a fixed
request round trip (shown by the `dist_barrier` rows: a barrier is nearly free, so its time is
that overhead).

Rows: raw NumPy = mpi4py's blocking Allreduce on NumPy arrays (the MPI floor); PyTorch =
torch.distributed with gloo (all_reduce, and DistributedDataParallel for the MLP); strata
stacks = strata.distributed.all_reduce on a tensor of the stack (through host memory unless
the stack is on CUDA with NCCL), and DistributedDataParallel + SGD for the MLP. All-reduces
use MAX so that repeating one in place keeps the values (and the first result is checked).
Every rank runs one BLAS thread (STRATA_BENCH_THREADS_PER_RANK changes that), so the MLP rows
compare one core with two cores working data-parallel.
"""
from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from .registry import NotApplicable, Work, benchmark
from .targets import Target

ROOT = Path(__file__).resolve().parent.parent
SIZES_MB = (1, 10, 100)
GLOBAL_BATCH = 128
HIDDEN = 128
START_TIMEOUT = 120.0  # seconds for a pool's ranks to import strata and connect


# ---------------------------------------------------------------- the bench side
class _Pool:
    """One mpiexec job of n ranks that runs prepared items on request."""

    def __init__(self, n: int) -> None:
        from strata.distributed import launch
        self.n = n
        self.token = secrets.token_hex(16)
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"strata-bench-mpi{n}-", suffix=".log",
                                               delete=False)
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(START_TIMEOUT)
        # One BLAS/OpenMP thread per rank: 1 -> 2 processes is then 1 -> 2 cores, and no rank's
        # thread pool fights the other rank for the cores (OpenBLAS threads that lose their
        # core spin and make a step many times slower).
        threads = os.environ.get("STRATA_BENCH_THREADS_PER_RANK", "1")
        env = dict(os.environ, STRATA_BENCH_TOKEN=self.token, OMP_NUM_THREADS=threads,
                   OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", tempfile.gettempdir()),
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        cmd = launch.mpiexec_command(n, ["-m", "bench.distributed", "--serve", "127.0.0.1",
                                         str(srv.getsockname()[1])])
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            sock, _ = srv.accept()
        except socket.timeout:
            self.close()
            raise RuntimeError(f"the {n}-process MPI pool did not connect within "
                               f"{START_TIMEOUT:g} s: {self._tail()}") from None
        finally:
            srv.close()
        sock.settimeout(None)
        self.conn = Connection(sock.detach())
        if self.conn.recv() != self.token:
            self.close()
            raise RuntimeError("a process other than the MPI pool connected to the bench")
        self.next_id = 0
        self.to_free: list[int] = []

    def _tail(self) -> str:
        self.log.flush()
        try:
            text = Path(self.log.name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        lines = [ln for ln in text.splitlines() if ln.strip() and "XDG_RUNTIME_DIR" not in ln]
        return " | ".join(lines[-6:])[-600:] or "(empty log)"

    def call(self, *msg: Any) -> Any:
        if self.to_free:
            frees, self.to_free = self.to_free, []
            self._request(("free", frees))
        return self._request(msg)

    def _request(self, msg: tuple) -> Any:
        try:
            self.conn.send(msg)
            status, value = self.conn.recv()
        except (EOFError, OSError):
            self.proc.wait(timeout=30)
            _POOLS.pop(self.n, None)
            raise RuntimeError(f"the {self.n}-process MPI pool died: {self._tail()}") from None
        if status != "ok":
            raise RuntimeError(value)
        return value

    def prepare(self, item: tuple) -> int:
        self.next_id += 1
        self.call("setup", self.next_id, *item)
        return self.next_id

    def close(self) -> None:
        try:
            if getattr(self, "conn", None) is not None:
                self.conn.send(("quit",))
                self.conn.recv()
        except (EOFError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        os.unlink(self.log.name)


_POOLS: dict[int, _Pool] = {}
_TORCH_PORT: dict[int, int] = {}


def _pool(n: int) -> _Pool:
    from strata.distributed import launch
    ok, why = launch.mpi4py_available()
    if not ok:
        raise NotApplicable(why)
    if launch.find_mpiexec() is None:
        raise NotApplicable(f"mpiexec not found; {launch.INSTALL_HINT}")
    if n not in _POOLS:
        _POOLS[n] = _Pool(n)
    return _POOLS[n]


@atexit.register
def _close_pools() -> None:
    for p in list(_POOLS.values()):
        p.close()
    _POOLS.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spec(t: Target) -> tuple[str, str]:
    """(kind, stack) the workers understand for this target."""
    if t.kind == "strata":
        return "strata", str(t.backend)
    return t.kind, ""


def _work(pool: _Pool, item: tuple, **kw: Any) -> Work:
    kind = item[0]
    if kind == "torch" and pool.n not in _TORCH_PORT:
        _TORCH_PORT[pool.n] = _free_port()
    k = pool.prepare(item + (_TORCH_PORT.get(pool.n, 0),))
    w = Work(lambda: pool.call("run", k), **kw)
    # the runner drops its Work after the benchmark: let the ranks free their buffers then
    weakref.finalize(w, pool.to_free.append, k)
    return w


def _allreduce(t: Target, mb: int) -> Work:
    kind, stack = _spec(t)
    nbytes = mb * 2**20
    return _work(_pool(2), (kind, stack, "allreduce", nbytes), bytes=nbytes,
                 note=f"{mb} MB f32, 2 ranks, MAX")


def _mlp(t: Target, n: int) -> Work:
    kind, stack = _spec(t)
    if kind == "numpy":
        raise NotApplicable("raw NumPy has no autograd or DDP")
    if kind == "strata" and not t.has_autograd:
        raise NotApplicable(f"{stack} has no Autodiff layer")
    flops = 6.0 * GLOBAL_BATCH * (784 * HIDDEN + HIDDEN * 10)
    return _work(_pool(n), (kind, stack, "mlp", GLOBAL_BATCH), flops=flops,
                 note=f"784-{HIDDEN}-10 SGD, global batch {GLOBAL_BATCH} = {n} x "
                      f"{GLOBAL_BATCH // n}")


@benchmark("allreduce_1MB", group="distributed")
def allreduce_1mb(t: Target) -> Work:
    """all_reduce of 1 MB of float32 over 2 MPI processes."""
    return _allreduce(t, 1)


@benchmark("allreduce_10MB", group="distributed")
def allreduce_10mb(t: Target) -> Work:
    """all_reduce of 10 MB of float32 over 2 MPI processes."""
    return _allreduce(t, 10)


@benchmark("allreduce_100MB", group="distributed")
def allreduce_100mb(t: Target) -> Work:
    """all_reduce of 100 MB of float32 over 2 MPI processes."""
    return _allreduce(t, 100)


@benchmark("dist_barrier", group="distributed")
def dist_barrier(t: Target) -> Work:
    """barrier over 2 MPI processes: the fixed cost of one request to the pool."""
    kind, stack = _spec(t)
    if kind == "strata" and stack != "NumPy()":
        raise NotApplicable("a barrier moves no tensor data: measured once, on NumPy()")
    return _work(_pool(2), (kind, stack, "barrier", 0), note="2 ranks")


@benchmark("ddp_mlp_step_1proc", group="distributed")
def ddp_mlp_step_1proc(t: Target) -> Work:
    """one training step of a 784-128-10 MLP, global batch 128, in 1 MPI process."""
    return _mlp(t, 1)


@benchmark("ddp_mlp_step_2proc", group="distributed")
def ddp_mlp_step_2proc(t: Target) -> Work:
    """the same step data-parallel over 2 MPI processes (DDP, batch 64 each)."""
    return _mlp(t, 2)


# ---------------------------------------------------------------- the MPI side
def _setup(kind: str, stack: str, what: str, size: int, torch_port: int) -> Any:
    """A callable that does the item's work once on this rank."""
    import strata.distributed as dist
    rank, world = dist.get_rank(), dist.get_world_size()
    torch_mod = _torch_group(torch_port) if kind == "torch" else None
    if what == "barrier":
        if kind == "numpy":
            return dist.group.group().comm.Barrier
        if kind == "torch":
            return torch_mod.distributed.barrier
        return dist.barrier
    if what == "allreduce":
        return _setup_allreduce(kind, stack, size, rank, world, torch_mod)
    return _setup_mlp(kind, stack, size, rank, world, torch_mod)


def _checked(run, get, world: int):
    """run() with its first result checked: MAX over ranks of (rank + 1) is world everywhere."""
    state = {"first": True}

    def once() -> None:
        run()
        if state["first"]:
            state["first"] = False
            v = get()
            if not (v.size and v[0] == world and v[-1] == world):
                raise AssertionError(f"all-reduce gave {v[:4]}, expected {world} everywhere")
    return once


def _setup_allreduce(kind, stack, nbytes, rank, world, torch_mod):
    import strata.distributed as dist
    n = nbytes // 4
    if kind == "numpy":
        comm, MPI = dist.group.group().comm, dist.group.group().MPI
        a = np.full(n, rank + 1, np.float32)
        b = np.empty_like(a)
        return _checked(lambda: comm.Allreduce(a, b, op=MPI.MAX), lambda: b, world)
    if kind == "torch":
        x = torch_mod.full((n,), float(rank + 1))
        op = torch_mod.distributed.ReduceOp.MAX
        return _checked(lambda: torch_mod.distributed.all_reduce(x, op=op), x.numpy, world)
    import strata as st
    B = st.backend(stack)
    x = st.full((n,), float(rank + 1), backend=B)

    def run() -> None:
        dist.all_reduce(x, op=dist.ReduceOp.MAX)
        B.sync()
    return _checked(run, lambda: x.numpy(), world)


def _mlp_data(rank: int, world: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    local = batch // world
    return x[rank * local:(rank + 1) * local], y[rank * local:(rank + 1) * local]


def _setup_mlp(kind, stack, batch, rank, world, torch_mod):
    x, y = _mlp_data(rank, world, batch)
    if kind == "torch":
        torch = torch_mod
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                    torch.nn.Linear(HIDDEN, 10))
        net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        xb, yb = torch.from_numpy(x), torch.from_numpy(y)

        def step() -> None:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
        return step
    import strata as st
    import strata.distributed as dist
    import strata.functional as F
    from strata import modules as nn, optim
    B = st.backend(stack)
    st.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10)).to(B)
    net = dist.DistributedDataParallel(model) if world > 1 else model
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    if world > 1:
        opt = net.wrap_optimizer(opt)
    xb, yb = st.from_numpy(x, backend=B), st.from_numpy(y, backend=B)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(net(xb), yb).backward()
        opt.step()
        B.sync()
    return step


def _torch_group(port: int):
    import torch
    import torch.distributed as tdist
    import strata.distributed as dist
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if not tdist.is_initialized():
        tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                                 rank=dist.get_rank(), world_size=dist.get_world_size())
    return torch


def _serve(host: str, port: int) -> None:
    import strata.distributed as dist
    dist.init(nccl="auto")
    rank = dist.get_rank()
    conn = None
    if rank == 0:
        conn = Connection(socket.create_connection((host, port)).detach())
        conn.send(os.environ["STRATA_BENCH_TOKEN"])
    items: dict[int, Any] = {}
    while True:
        msg = conn.recv() if rank == 0 else None
        msg = dist.broadcast_object(msg, src=0)
        op = msg[0]
        if op == "run":
            items[msg[1]]()
        elif op == "setup":
            items[msg[1]] = _setup(*msg[2:])
        elif op == "free":
            for k in msg[1]:
                items.pop(k, None)
        if rank == 0:
            conn.send(("ok", None))
        if op == "quit":
            break
    dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: python -m bench --only distributed  (this module's --serve mode is "
                 "started by the bench itself under mpiexec)")
