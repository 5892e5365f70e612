"""OpenCL plumbing for the OpenCL backend: finding a device, building and caching programs,
the allocator hook and reference-counted storage.

pyopencl is imported only when an OpenCL backend is constructed, so `import strata` works
without it. pyopencl's wheels ship an ICD loader that also looks inside pyopencl's own `.libs`
folder (pyopencl sets PYOPENCL_HOME for it), which is where `pocl-binary-distribution` puts
PoCL's `pocl.icd`: a fresh `pip install strata[opencl]` finds PoCL with no environment
variable, and even with OCL_ICD_VENDORS pointing elsewhere (checked). tinygrad needs
OCL_ICD_VENDORS only because it loads the system libOpenCL instead. So strata sets nothing.
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ...core import dtype as dt
from ...core.dtype import DType
from ...core.errors import BackendError, DTypeError

KERNEL_DIR = Path(__file__).resolve().parent
INSTALL_HINT = "pip install strata[opencl]  (installs pyopencl and the PoCL CPU driver)"

# OpenCL C type of each strata dtype (bool is stored as one byte holding 0 or 1, like NumPy)
CL_TYPE = {dt.bool_: "uchar", dt.uint8: "uchar", dt.int8: "char", dt.int16: "short",
           dt.int32: "int", dt.int64: "long", dt.float16: "half", dt.float32: "float",
           dt.float64: "double"}


def import_pyopencl():
    try:
        import pyopencl as cl  # noqa: F401
    except ImportError as e:
        raise BackendError(f"the OpenCL backend needs pyopencl, which is not importable ({e}); "
                           f"install it with `{INSTALL_HINT}`") from None
    return cl


def _platforms(cl):
    try:
        return cl.get_platforms()
    except cl.Error:
        # the ICD loader reports "no platform" as an error rather than an empty list
        return []


def select_device(cl, platform, device):
    """(platform, device) from user choices: None, an index, or a substring of the name."""
    plats = _platforms(cl)
    if not plats:
        raise BackendError(
            "OpenCL(): no OpenCL platform found. Install a driver, e.g. the PoCL CPU driver with "
            f"`{INSTALL_HINT}`; if a system-wide ICD loader is used instead of pyopencl's own, "
            "point OCL_ICD_VENDORS at the folder holding pocl.icd (pyopencl/.libs)")
    if platform is None:
        cands = plats
    elif isinstance(platform, int):
        if not 0 <= platform < len(plats):
            raise BackendError(f"OpenCL(platform={platform}): only {len(plats)} platform(s): "
                               + ", ".join(f"{i}: {p.name}" for i, p in enumerate(plats)))
        cands = [plats[platform]]
    else:
        cands = [p for p in plats if str(platform).lower() in p.name.lower()]
        if not cands:
            raise BackendError(f"OpenCL(platform={platform!r}): no platform matches; available: "
                               + ", ".join(p.name for p in plats))
    devices = []
    for p in cands:
        try:
            devices.extend((p, d) for d in p.get_devices())
        except cl.Error:
            continue
    if not devices:
        raise BackendError("OpenCL(): the platform(s) " + ", ".join(p.name for p in cands)
                           + " report no device; check the driver installation")
    if device is None:
        # prefer GPUs when several kinds are present
        gpus = [pd for pd in devices if pd[1].type & cl.device_type.GPU]
        return (gpus or devices)[0]
    if isinstance(device, int):
        if not 0 <= device < len(devices):
            raise BackendError(f"OpenCL(device={device}): only {len(devices)} device(s): "
                               + ", ".join(f"{i}: {d.name}" for i, (_, d) in enumerate(devices)))
        return devices[device]
    hits = [pd for pd in devices if str(device).lower() in pd[1].name.lower()]
    if not hits:
        raise BackendError(f"OpenCL(device={device!r}): no device matches; available: "
                           + ", ".join(d.name for _, d in devices))
    return hits[0]


class DefaultAllocator:
    """Plain cl.Buffer allocation. PoolAllocator installs its own object with the same methods."""

    def __init__(self, ctx, cl):
        self._ctx = ctx
        self._flags = cl.mem_flags.READ_WRITE
        self._cl = cl

    def alloc(self, nbytes: int):
        # OpenCL rejects zero-size buffers; rounding to 8 also keeps word-sized atomics in bounds
        return self._cl.Buffer(self._ctx, self._flags, max(8, (nbytes + 7) & ~7))

    def free(self, buf) -> None:
        # the driver keeps the memory alive until enqueued kernels that use it have finished
        buf.release()


_FLOAT_MAX: dict = {}


def scalar_arg(v, d: DType):
    """A Python scalar as a NumPy scalar of d (bool as one byte), wrapping out-of-range ints."""
    if d.kind == 2:
        f = float(v)
        top = _FLOAT_MAX.get(d)
        if top is None:
            top = _FLOAT_MAX[d] = float(np.finfo(d.np).max)
        if -top <= f <= top or f != f or f in (math.inf, -math.inf):
            return d.np.type(f)
        # rounds to ±inf in d: without the (costly) errstate NumPy warns about overflow
        with np.errstate(over="ignore"):
            return d.np.type(f)
    if d.kind == 1:
        if isinstance(v, float):
            if not math.isfinite(v):
                raise DTypeError(f"cannot use {v} as a value of an {d.name} tensor")
            v = int(v)
        bits = 8 * d.itemsize
        v = int(v) & ((1 << bits) - 1)
        if d.is_signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        return d.np.type(v)
    return np.uint8(bool(v))


_KERNEL_CLASS: list = []


def kernel_class(cl) -> type:
    """cl.Kernel with a faster call for the arguments strata passes (built once, on first use).

    Why: pyopencl's generic argument path (a kernel without set_scalar_arg_dtypes) takes
    ~9 µs per NumPy scalar or array argument on PoCL (measured, pyopencl 2026.1), against
    ~0.1 µs for a buffer and ~0.1 µs for `_set_arg_buf` with the same bytes. strata's launches
    pass 5-10 scalars and shape/stride vectors each, so that conversion was most of the
    40-110 µs a launch costs the host thread, which is the critical path on PoCL. The bytes
    handed to the driver are the same (a NumPy value's own bytes, size-checked by the driver);
    anything else goes through pyopencl's set_arg, and keyword arguments, a wrong argument
    count or a rejected argument take pyopencl's own call (and its error messages).
    """
    if _KERNEL_CLASS:
        return _KERNEL_CLASS[0]
    import numpy as np
    from pyopencl import _cl
    enqueue = getattr(_cl, "enqueue_nd_range_kernel", None)
    if enqueue is None or not hasattr(cl.Kernel, "_set_arg_buf"):
        # a pyopencl without these internals: its own (slower) call
        _KERNEL_CLASS.append(cl.Kernel)
        return cl.Kernel
    raw_types = (np.generic, np.ndarray)

    class Kernel(cl.Kernel):
        def __init__(self, program, name: str):
            super().__init__(program, name)
            self._nargs = self.num_args

        def __call__(self, queue, global_size, local_size, *args, **kwargs):
            if kwargs or len(args) != self._nargs:
                return super().__call__(queue, global_size, local_size, *args, **kwargs)
            set_bytes = self._set_arg_buf
            set_arg = self.set_arg
            try:
                for i, a in enumerate(args):
                    if isinstance(a, raw_types):
                        set_bytes(i, a)
                    else:
                        set_arg(i, a)   # buffers (fast in pyopencl), None, LocalMemory ...
            except Exception:
                # a bad argument: pyopencl's path raises its own error, naming the argument
                return super().__call__(queue, global_size, local_size, *args)
            # positional, as pyopencl's own invoker calls it (keywords are slow in the binding)
            return enqueue(queue, self, global_size, local_size, None, None, False, False)

    _KERNEL_CLASS.append(Kernel)
    return Kernel


class Storage:
    """A device buffer shared by every view of it; gives the buffer back when the last view dies."""

    __slots__ = ("buf", "nbytes", "allocator", "__weakref__")

    def __init__(self, allocator, nbytes: int):
        self.allocator = allocator
        self.nbytes = nbytes
        self.buf = allocator.alloc(nbytes)

    def __del__(self):
        buf = self.buf
        if buf is not None:
            self.buf = None
            try:
                self.allocator.free(buf)
            except Exception:  # interpreter shutdown: the driver reclaims everything anyway
                pass


def _cache_dir() -> Path:
    base = os.environ.get("STRATA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "strata")
    return Path(base) / "opencl"


class ProgramCache:
    """Programs built once per (source, options, device), kept in memory and as binaries on disk.

    Kernels are looked up once and kept: pyopencl builds a new cl.Kernel on every
    `program.name` access. PoCL is the exception to our on-disk binaries: asking it for a
    program binary compiles every kernel of the program for the CPU up front (seconds per
    program), while PoCL already keeps each kernel it compiles in its own disk cache
    (~/.cache/pocl/kcache, keyed by source hash and device), so rebuilding from source there
    takes milliseconds on the next run.
    """

    def __init__(self, cl, ctx, device):
        self.cl = cl
        self.ctx = ctx
        self.device = device
        self._sources: dict[str, str] = {}
        self._programs: dict[tuple, object] = {}
        self._kernels: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._dev_key = "|".join((device.name, device.platform.name, device.platform.version,
                                  device.driver_version))
        self.dir = _cache_dir()
        self.save_binaries = "portable computing language" not in device.platform.name.lower()

    def source(self, *names: str) -> str:
        """The text of the named .cl files, after dims.cl (which every kernel file uses)."""
        out = []
        for n in ("dims.cl",) + names:
            if n not in self._sources:
                self._sources[n] = (KERNEL_DIR / n).read_text()
            out.append(self._sources[n])
        return "\n".join(out)

    def kernel(self, key: tuple, build_source, name: str):
        """The kernel `name` of the program identified by key; build_source() gives its text."""
        k = self._kernels.get((key, name))
        if k is not None:
            return k
        with self._lock:
            prg = self._programs.get(key)
            if prg is None:
                prg = self._build(build_source())
                self._programs[key] = prg
            k = kernel_class(self.cl)(prg, name)
            self._kernels[(key, name)] = k
        return k

    def _build(self, src: str):
        cl = self.cl
        digest = hashlib.sha256((self._dev_key + "\0" + src).encode()).hexdigest()[:32]
        path = self.dir / f"{digest}.bin"
        if path.exists():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return cl.Program(self.ctx, [self.device], [path.read_bytes()]).build()
            except Exception:
                pass  # stale or corrupt binary: rebuild from source below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PoCL prints harmless notes as "compiler output"
            try:
                prg = cl.Program(self.ctx, src).build(options=["-cl-std=CL1.2", "-w"])
            except cl.RuntimeError as e:
                raise BackendError(f"OpenCL kernel build failed on {self.device.name}: {e}") from None
        if not self.save_binaries:
            return prg
        try:
            binary = prg.get_info(cl.program_info.BINARIES)[0]
            if binary:
                self.dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(binary)
                os.replace(tmp, path)
        except OSError:
            pass  # a read-only home only costs a rebuild next time
        return prg


def type_header(d: DType, name: str = "T") -> str:
    """#defines describing one element type to the kernel sources."""
    kind = d.kind
    lines = [f"#define {name} {CL_TYPE[d]}", f"#define {name}_KIND {kind}",
             f"#define {name}_SIZE {d.itemsize}"]
    if kind == 1:
        import numpy as np
        info = np.iinfo(d.np)
        suffix = "L" if d.itemsize == 8 else ""
        lo = f"({info.min + 1}{suffix} - 1)" if info.min else "0"
        lines += [f"#define {name}_MIN {lo}", f"#define {name}_MAX ({info.max}{suffix})",
                  f"#define {name}_SIGNED {int(info.min < 0)}"]
    elif kind == 0:
        lines += [f"#define {name}_MIN 0", f"#define {name}_MAX 1", f"#define {name}_SIGNED 0"]
    else:
        lines += [f"#define {name}_MIN (-INFINITY)", f"#define {name}_MAX INFINITY",
                  f"#define {name}_SIGNED 1"]
    return "\n".join(lines) + "\n"


def extensions_header(*dtypes: DType) -> str:
    out = ""
    if dt.float64 in dtypes:
        out += "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    if dt.float16 in dtypes:
        out += "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
    return out
