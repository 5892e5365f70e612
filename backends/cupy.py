"""CuPy(device=0, allow_tf32=False): the CUDA backend. Primitives are cupy.ndarray objects.

All array logic is shared with NumPy in xp.py; this file holds only what is CUDA-specific:
import and device checks, the TF32 switch, stream sync, host transfer, erf and scatter-add
through cupyx, and the Fusion decorator's fused kernels (generated CUDA C, backends/cuda/).
Random numbers run the Philox reference (core/philox.py) on the host and upload the result,
so CuPy draws bit-identical numbers to every other backend.
Importing this module never imports cupy; constructing CuPy() does.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import BackendError
from .xp import ArrayBackend

_INSTALL_HINT = ("install CuPy for your CUDA version: pip install strata[cuda] "
                 "(which installs cupy-cuda12x), or pip install cupy-cuda11x for CUDA 11")


def _import_cupy():
    try:
        import cupy
    except ImportError as e:
        raise BackendError(f"CuPy() needs the cupy package, which is not importable ({e}); "
                           f"{_INSTALL_HINT}") from None
    return cupy


def _device_count(cp) -> int:
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception as e:  # CUDARuntimeError when there is no driver or no device
        raise BackendError(f"CuPy() found no CUDA device ({type(e).__name__}: {e}); it needs an "
                           f"NVIDIA GPU with a working driver. Use NumPy() on this machine") from None


class _ComputeType:
    """cuBLAS float32 compute type: TF32 tensor cores on or off (a process-wide CuPy setting,
    so it is re-applied before each float32 matmul of a backend that differs from it)."""

    def __init__(self, allow_tf32: bool):
        try:
            from cupy._core import _routines_linalg as rl
        except ImportError:
            rl = None
        self._rl = rl
        if rl is not None:
            self.want = getattr(rl, "COMPUTE_TYPE_TF32", 7) if allow_tf32 else \
                getattr(rl, "COMPUTE_TYPE_DEFAULT", 1)

    def apply(self) -> None:
        rl = self._rl
        if rl is not None and rl.get_compute_type(np.float32) != self.want:
            rl.set_compute_type(np.float32, self.want)


class CuPy(ArrayBackend):
    """NVIDIA GPU backend on CuPy; every dtype of strata (float16/float64 included).

    Ops run on the current CUDA device; constructing CuPy(device=k) makes device k current.
    TF32 is off by default so float32 matmul matches NumPy to float32 precision.
    """

    def __init__(self, device: int = 0, allow_tf32: bool = False):
        cp = _import_cupy()
        n = _device_count(cp)
        if n == 0:
            raise BackendError("CuPy() found no CUDA device (device count is 0); use NumPy()")
        if not 0 <= int(device) < n:
            raise BackendError(f"CuPy(device={device}): this machine has {n} CUDA device(s), "
                               f"numbered 0..{n - 1}")
        self.device = int(device)
        self.allow_tf32 = bool(allow_tf32)
        self._cp = cp
        self._dev = cp.cuda.Device(self.device)
        self._dev.use()
        self._compute = _ComputeType(self.allow_tf32)
        self._compute.apply()
        super().__init__(cp)

    def _ctor_args(self) -> tuple:
        return (self.device, self.allow_tf32)

    def __repr__(self) -> str:
        args = []
        if self.device != 0:
            args.append(f"device={self.device}")
        if self.allow_tf32:
            args.append("allow_tf32=True")
        return f"CuPy({', '.join(args)})"

    __str__ = __repr__

    def device_name(self) -> str:
        props = self._cp.cuda.runtime.getDeviceProperties(self.device)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        return f"cuda:{self.device} {name} (CuPy)"

    def limits(self) -> dict:
        props = self._cp.cuda.runtime.getDeviceProperties(self.device)
        return {"total_memory": int(props["totalGlobalMem"]),
                "max_threads_per_block": int(props["maxThreadsPerBlock"])}

    def sync(self) -> None:
        with self._dev:
            self._cp.cuda.get_current_stream().synchronize()

    # ---------------------------------------------------------------- transfer
    def from_numpy(self, a: np.ndarray, dtype):
        with self._dev:
            return self._cp.asarray(np.asarray(a, dtype=dtype.np))

    def to_numpy(self, x) -> np.ndarray:
        return self._cp.asnumpy(x)

    def random_uniform(self, shape, seed, offset, dtype):
        with self._dev:
            return self._cp.asarray(self._host_random(shape, seed, offset, dtype, False))

    def random_normal(self, shape, seed, offset, dtype):
        with self._dev:
            return self._cp.asarray(self._host_random(shape, seed, offset, dtype, True))

    # ---------------------------------------------------------------- CUDA-specific kernels
    def erf(self, x):
        self._float_only("erf", x)
        try:
            from cupyx.scipy.special import erf as cupy_erf
        except ImportError:
            return super().erf(x)
        return cupy_erf(x).astype(x.dtype, copy=False)

    def _index_add_flat(self, out_flat, flat, vals) -> None:
        # cupyx.scatter_add uses atomicAdd, which CUDA has for these types only
        if out_flat.dtype in (np.float32, np.float64, np.int32, np.uint32, np.uint64):
            import cupyx
            cupyx.scatter_add(out_flat, flat, vals)
            return
        host = self._cp.asnumpy(out_flat)
        np.add.at(host, self._cp.asnumpy(flat), self._cp.asnumpy(vals))
        out_flat[...] = self._cp.asarray(host)

    # ---------------------------------------------------------------- fused kernels (Fusion)
    # One generated CUDA kernel per program structure (backends/cuda/); imported on first use,
    # so constructing CuPy() costs nothing for code that never fuses.
    def fused_elementwise(self, program, inputs, shape):
        from .cuda import fused
        return fused.fused_elementwise(self, program, inputs, shape)

    def fused_update(self, program, inputs, shape, donate):
        from .cuda import fused
        return fused.fused_elementwise(self, program, inputs, shape, donate)

    def fused_reduce(self, program, inputs, shape, op, axes, keepdims):
        from .cuda import fused
        return fused.fused_reduce(self, program, inputs, shape, op, axes, keepdims)

    def _make_matmul(self):
        base = super()._make_matmul()
        compute = self._compute

        def matmul(a, b):
            compute.apply()
            return base(a, b)
        return matmul


__all__ = ["CuPy"]
