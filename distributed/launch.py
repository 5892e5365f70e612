"""How strata finds out it runs under MPI, and how it starts MPI jobs (tests, bench, users).

Detection reads only the environment, so it costs nothing and never initialises MPI: a plain
`strata train` stays a plain single process, and the same command under `mpiexec -n N`
becomes data-parallel.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# World-size variables set by the common process managers: MPICH/Hydra and Intel MPI (PMI_SIZE,
# MPI_LOCALNRANKS), Open MPI (OMPI_COMM_WORLD_SIZE), MVAPICH2 (MV2_COMM_WORLD_SIZE), Slurm's srun
# with PMI/PMIx (PMI_SIZE, PMIX_SIZE is not standard, so only PMI_SIZE there).
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")

INSTALL_HINT = ("install MPI for Python with `pip install mpi4py mpich` (or `pip install "
                "strata[mpi]`); the mpich wheel provides `mpiexec` next to the Python executable")


def launched_under_mpi() -> bool:
    """Whether a process manager (mpiexec, mpirun, srun) started this process as one of N > 1."""
    return env_world_size() > 1


def env_world_size() -> int:
    """The world size the process manager announced, or 1 when none did."""
    for name in SIZE_VARIABLES:
        v = os.environ.get(name)
        if v:
            try:
                n = int(v)
            except ValueError:
                continue
            if n > 0:
                return n
    return 1


def env_rank() -> int:
    """The rank the process manager announced (0 when none did): for logging before init()."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK"):
        v = os.environ.get(name)
        if v and v.isdigit():
            return int(v)
    return 0


def mpi4py_available() -> tuple[bool, str]:
    """(True, "") if `mpi4py` imports (without initialising MPI), else (False, why + fix)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError as e:
        return False, f"mpi4py is not importable ({e}); {INSTALL_HINT}"
    return True, ""


def find_mpiexec() -> str | None:
    """The mpiexec that matches this interpreter's mpi4py: the one beside sys.executable first
    (the mpich wheel installs it there), then $MPIEXEC, then the PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    env = os.environ.get("MPIEXEC")
    if env and shutil.which(env):
        return shutil.which(env)
    return shutil.which("mpiexec")


def mpiexec_command(n: int, argv: list[str], hosts: str | None = None) -> list[str]:
    """`mpiexec -n N [-hosts H] python argv...` with this interpreter.

    Raises RuntimeError naming the fix when mpiexec cannot be found."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of processes must be a positive int, got {n!r}")
    exe = find_mpiexec()
    if exe is None:
        raise RuntimeError(f"mpiexec was not found beside {sys.executable}, in $MPIEXEC or on "
                           f"the PATH; {INSTALL_HINT}")
    cmd = [exe, "-n", str(n)]
    if hosts:
        cmd += ["-hosts", hosts]
    return cmd + [sys.executable] + list(argv)
