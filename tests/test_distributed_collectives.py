"""strata.distributed: collectives under `mpiexec -n 2` against NumPy, and loud failures.

The MPI programs live in _distributed_worker.py; each checks its own results against NumPy
and raises on a mismatch (which aborts the job, so the exit status carries the verdict).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from strata import distributed as dist
from strata.distributed import launch

WORKER = str(Path(__file__).with_name("_distributed_worker.py"))

_ok, _why = launch.mpi4py_available()
needs_mpi = pytest.mark.skipif(not _ok or launch.find_mpiexec() is None,
                               reason=_why or f"mpiexec not found; {launch.INSTALL_HINT}")


def run_mpi(n: int, *args: str, timeout: float = 90) -> tuple[subprocess.CompletedProcess, float]:
    """`mpiexec -n N python _distributed_worker.py args...`, with one BLAS thread per rank (the
    ranks share the machine's cores); returns the finished process and its wall time."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"))
    env.pop("STRATA_DIST_TIMEOUT", None)
    t0 = time.monotonic()
    p = subprocess.run(launch.mpiexec_command(n, [WORKER, *args]), capture_output=True, text=True,
                       timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return p, time.monotonic() - t0


def _tail(p: subprocess.CompletedProcess) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}"


@needs_mpi
def test_collectives_match_numpy_on_every_available_backend():
    p, _ = run_mpi(2, "collectives")
    assert p.returncode == 0, _tail(p)
    ok = [line for line in p.stdout.splitlines() if line.startswith("OK collectives")]
    assert ok, _tail(p)
    # numpy arrays plus at least the two NumPy stacks are always there
    assert "NumPy()" in ok[0] and "Autodiff(NumPy())" in ok[0], ok[0]
    for line in p.stdout.splitlines():
        if line.startswith("SKIPPED"):
            print(line)  # an OpenCL/WGPU stack that cannot be built here, and why


@needs_mpi
def test_a_rank_that_raises_stops_the_job_within_a_minute():
    p, took = run_mpi(2, "crash", timeout=120)
    assert p.returncode != 0, _tail(p)
    assert took < 60, f"the job took {took:.1f} s to stop"
    assert "simulated failure on rank 1" in p.stderr, _tail(p)
    assert "aborting all ranks" in p.stderr, _tail(p)


@needs_mpi
def test_a_rank_that_exits_early_makes_the_waiting_rank_fail():
    p, took = run_mpi(2, "exit", timeout=120)
    assert p.returncode != 0, _tail(p)
    assert took < 60, f"the job took {took:.1f} s to stop"
    assert "rank 1 has left the process group" in p.stderr, _tail(p)


@needs_mpi
def test_a_collective_that_never_completes_times_out():
    p, took = run_mpi(2, "timeout", timeout=120)
    assert p.returncode != 0, _tail(p)
    assert "DistributedTimeoutError" in p.stderr and "within 2 s" in p.stderr, _tail(p)
    assert took < 45, f"the job took {took:.1f} s to stop"


@needs_mpi
def test_nccl_code_path_with_a_stand_in_for_cupy_and_nccl():
    # _fake_nccl replaces cupy + NCCL with NumPy memory and MPI: everything of the NCCL path
    # but CUDA itself runs (bootstrap, buffer handling, dtype/op mapping, grouped send/recv)
    p, _ = run_mpi(2, "fake_nccl")
    assert p.returncode == 0, _tail(p)
    assert "OK fake_nccl" in p.stdout, _tail(p)


def _gpus() -> tuple[int, str]:
    try:
        import cupy
        from cupy.cuda import nccl
        if not getattr(nccl, "available", False):
            return 0, "CuPy was built without NCCL"
        return int(cupy.cuda.runtime.getDeviceCount()), ""
    except Exception as e:  # ImportError, or no CUDA driver/device
        return 0, f"{type(e).__name__}: {e}"


@needs_mpi
@pytest.mark.gpu
def test_nccl_path_on_cupy_tensors():
    n, why = _gpus()
    if n == 0:
        pytest.skip(f"the NCCL path needs CuPy with NCCL and a CUDA GPU ({why or 'no device'}); "
                    f"it is written against cupy.cuda.nccl's API and was not run on this machine")
    p, _ = run_mpi(min(2, n), "nccl", timeout=300)
    assert p.returncode == 0, _tail(p)
    assert "OK nccl" in p.stdout, _tail(p)


# ---------------------------------------------------------------- without MPI processes
def test_launch_detection_reads_the_process_manager_environment(monkeypatch):
    for name in launch.SIZE_VARIABLES + ("PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not dist.launched_under_mpi() and dist.env_world_size() == 1
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not dist.launched_under_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert dist.launched_under_mpi() and dist.env_world_size() == 4 and dist.env_rank() == 3


def test_calls_before_init_say_what_to_do():
    assert not dist.is_initialized()
    assert dist.is_main_process()  # a lone process prints and saves
    for call in (dist.get_rank, dist.get_world_size, dist.barrier,
                 lambda: dist.all_reduce(np.zeros(2, np.float32))):
        with pytest.raises(dist.DistributedError, match="init"):
            call()


def test_mpiexec_command_uses_this_interpreter():
    if launch.find_mpiexec() is None:
        with pytest.raises(RuntimeError, match="mpiexec"):
            launch.mpiexec_command(2, ["x.py"])
        return
    cmd = launch.mpiexec_command(3, ["x.py", "--flag"], hosts="a,b")
    assert cmd[1:5] == ["-n", "3", "-hosts", "a,b"] and cmd[5] == sys.executable
    assert cmd[-2:] == ["x.py", "--flag"]
    with pytest.raises(ValueError):
        launch.mpiexec_command(0, ["x.py"])


def test_reduce_op_names():
    R = dist.ReduceOp
    assert R.MEAN is R.AVG
    from strata.distributed.collectives import _op
    assert _op("mean") is R.AVG and _op("SUM") is R.SUM and _op(R.MAX) is R.MAX
    with pytest.raises(ValueError, match="ReduceOp"):
        _op("median")
