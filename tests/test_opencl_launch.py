"""The OpenCL runtime's kernel call (runtime.kernel_class): NumPy scalars and arrays go to the
driver as their own bytes, buffers and anything else through pyopencl, and a call pyopencl
would reject (wrong argument count, keywords) takes pyopencl's own path."""
from __future__ import annotations

import numpy as np
import pytest

from strata.tests._opencl_util import make_backend

_SRC = """
typedef struct { long v[4]; } long4s;
__kernel void axpy(__global float* out, __global const float* x, float a, long n, long4s off) {
    long i = get_global_id(0);
    if (i < n) out[i] = a * x[i + off.v[2]] + (float)off.v[0];
}
"""


@pytest.fixture(scope="module")
def B():
    return make_backend()


def _kernel(B):
    return B._programs.kernel(("test_launch",), lambda: _SRC, "axpy")


def test_kernels_come_from_the_fast_class_and_compute_the_same(B):
    from strata.backends.opencl import runtime as rt
    cl = B._cl
    k = _kernel(B)
    assert isinstance(k, rt.kernel_class(cl)) and isinstance(k, cl.Kernel)
    n = 100
    xs = np.arange(n + 3, dtype=np.float32)
    x = cl.Buffer(B.ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=xs)
    outs = []
    for call in (k, cl.Kernel.__call__.__get__(k)):   # the fast call, then pyopencl's
        out = cl.Buffer(B.ctx, cl.mem_flags.READ_WRITE, n * 4)
        call(B.queue, (128,), (64,), out, x, np.float32(2.5), np.int64(n),
             np.array([7, 0, 3, 0], np.int64))
        host = np.empty(n, np.float32)
        cl.enqueue_copy(B.queue, host, out)
        outs.append(host)
    np.testing.assert_array_equal(outs[0], 2.5 * xs[3:] + 7)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_wrong_calls_fail_as_pyopencl_fails_them(B):
    cl = B._cl
    k = _kernel(B)
    out = cl.Buffer(B.ctx, cl.mem_flags.READ_WRITE, 64)
    with pytest.raises(Exception, match="(?i)argument"):   # one argument missing
        k(B.queue, (64,), None, out, out, np.float32(1), np.int64(4))
    with pytest.raises(cl.Error, match="arg#4"):             # 4 bytes for an 8-byte long
        k(B.queue, (64,), None, out, out, np.float32(1), np.int32(4),
          np.zeros(4, np.int64))
    B.queue.finish()
