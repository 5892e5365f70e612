"""DistributedDataParallel: two MPI processes with a global batch of 128 train to the same
weights as one process with batch 128 (also with no_sync gradient accumulation and several
buckets), starting from different seeds on each rank (so the initial broadcast matters)."""
from __future__ import annotations

import numpy as np
import pytest

from strata.tests import _distributed_worker as worker
from strata.tests.test_distributed_collectives import _tail, needs_mpi, run_mpi


@needs_mpi
def test_two_processes_train_to_the_weights_of_one(tmp_path):
    out = tmp_path / "ddp.npz"
    p, _ = run_mpi(2, "ddp", str(out), timeout=120)
    assert p.returncode == 0, _tail(p)
    got = np.load(out)
    ref = worker.train_mlp(world=1, rank=0, init_seed=7)
    for mode in ("plain", "accumulate"):
        for k, want in ref.items():
            g = got[f"{mode}/{k}"]
            assert g.shape == want.shape, (mode, k)
            np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5, err_msg=f"{mode} {k}")
    # and training moved the weights: a run that did nothing would not match by accident
    import strata as st
    from strata import modules as nn
    st.manual_seed(7)
    init = nn.Sequential(nn.Linear(784, worker.HIDDEN), nn.ReLU(), nn.Linear(worker.HIDDEN, 10))
    moved = max(float(np.abs(ref[k] - v.numpy()).max()) for k, v in init.state_dict().items())
    assert moved > 1e-2


def test_buckets_group_by_dtype_and_respect_the_cap():
    import strata as st
    from strata.distributed.ddp import plan_buckets
    a = st.zeros(1000)                      # 4000 bytes
    b = st.zeros(10)
    c = st.zeros(500, dtype=st.float64)     # another dtype: another bucket
    d = st.zeros(2000)                      # larger than the cap: a bucket of its own
    buckets = plan_buckets([a, b, c, d], cap_bytes=5000)
    got = [([id(t) for t in bk.tensors], bk.dtype) for bk in buckets]
    assert got == [([id(a), id(b)], st.float32), ([id(c)], st.float64), ([id(d)], st.float32)]
    assert buckets[0].numel == 1010


def test_ddp_needs_an_initialised_group():
    from strata import distributed as dist
    from strata import modules as nn
    with pytest.raises(dist.DistributedError, match="init"):
        dist.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="Module"):
        dist.DistributedDataParallel(object())
