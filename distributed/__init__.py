"""strata.distributed: data-parallel training over MPI (torch.distributed's names).

    mpiexec -n 4 python train.py                  # one process per core, GPU or machine

    import strata.distributed as dist
    dist.init()                                   # rank and world size from MPI
    model = dist.DistributedDataParallel(model)   # same initial weights everywhere
    opt = model.wrap_optimizer(optim.SGD(model.parameters(), lr=0.1))
    sampler = DistributedSampler(ds, num_replicas=dist.get_world_size(), rank=dist.get_rank())
    ...  loss.backward(); opt.step()               # step() averages the gradients first
    if dist.is_main_process(): save(...)

Collectives work in place on tensors of any stack (and on NumPy arrays): through host memory
and MPI, or on NCCL for CUDA tensors of CuPy stacks when init() could set NCCL up. Needs
`pip install mpi4py mpich` (the `mpi` extra).
"""
from .collectives import (ReduceOp, all_gather, all_reduce, broadcast, broadcast_object, gather,
                          reduce, scatter)
from .ddp import DistributedDataParallel
from .group import (DistributedError, DistributedTimeoutError, Work, abort, barrier,
                    destroy_process_group, get_local_rank, get_rank, get_world_size, init,
                    is_initialized, is_main_process, uses_nccl)
from .launch import env_rank, env_world_size, launched_under_mpi, mpi4py_available

DDP = DistributedDataParallel


def init_if_launched(**kwargs) -> bool:
    """init() when started by mpiexec/mpirun/srun as one of N > 1 processes (what a CLI calls
    unconditionally); returns whether this process is now part of a distributed group."""
    if is_initialized():
        return True
    if not launched_under_mpi():
        return False
    init(**kwargs)
    return True


__all__ = ["ReduceOp", "all_gather", "all_reduce", "broadcast", "broadcast_object", "gather",
           "reduce", "scatter", "DistributedDataParallel", "DDP", "DistributedError",
           "DistributedTimeoutError", "Work", "abort", "barrier", "destroy_process_group",
           "get_local_rank", "get_rank", "get_world_size", "init", "init_if_launched",
           "is_initialized", "is_main_process", "uses_nccl", "env_rank", "env_world_size",
           "launched_under_mpi", "mpi4py_available"]
