"""The WebGPU runtime under the WGPU backend: device, allocator, shader cache and batching.

Why batching: on lavapipe one dispatch submitted alone costs ~0.3 ms, while dispatches that
share one command encoder and one compute pass cost ~0.06 ms each. So every op is encoded into
the current compute pass and the batch is submitted only when a result is read back, a buffer
must be written after queued work, or the batch reaches `batch_limit` ops.

Per-op metadata (shapes, strides, scalars) is packed into one host bytearray per batch and
uploaded with a single `queue.write_buffer` right before the batch is submitted; each dispatch
reads its own aligned slice of that buffer through a dynamic offset, so that its bind group
depends only on the storage buffers it binds and can be reused (bind_groups.py).
"""
from __future__ import annotations

import os
import string
import weakref
from typing import Sequence

from ...core.errors import BackendError, UnsupportedError
from .bind_groups import BindGroupCache

# size of the uniform metadata block of every kernel (array<vec4<u32>, 16>)
META_BYTES = 256
_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
_SOURCES: dict = {}


def kernel_source(name: str) -> str:
    src = _SOURCES.get(name)
    if src is None:
        with open(os.path.join(_KERNEL_DIR, name + ".wgsl"), encoding="utf-8") as f:
            src = _SOURCES[name] = f.read()
    return src


def import_wgpu():
    try:
        import wgpu  # the wgpu-py package, not this folder (absolute import)
    except ImportError as e:
        raise BackendError("the WGPU backend needs wgpu-py: `pip install strata[wgpu]` "
                           f"(import failed: {e})") from None
    return wgpu


class DefaultAllocator:
    """Creates one GPUBuffer per allocation; PoolAllocator replaces it with a caching pool
    (which keeps this one as its raw allocator and frees through it only what it releases).

    on_destroy(buf) is told of every buffer destroyed here: the runtime's bind-group cache
    drops the bind groups that bind it. An allocator built without it (or one that destroys
    buffers itself) leaves such entries to the cache's LRU bound; they are never reused."""

    def __init__(self, device, usage: int, on_destroy=None):
        self.device = device
        self.usage = usage
        self.on_destroy = on_destroy

    def alloc(self, nbytes: int):
        return self.device.create_buffer(size=nbytes, usage=self.usage)

    def free(self, buf) -> None:
        if self.on_destroy is not None:
            self.on_destroy(buf)
        buf.destroy()


class Storage:
    """A device buffer owned by tensors; returned to the allocator when the last view dies."""

    __slots__ = ("buf", "nbytes", "__weakref__")

    def __init__(self, rt: "Runtime", nbytes: int):
        self.nbytes = nbytes
        self.buf = rt.allocator.alloc(nbytes)
        weakref.finalize(self, _release, rt.allocator, self.buf)


def _release(allocator, buf) -> None:
    try:
        allocator.free(buf)
    except Exception:  # the device may already be gone at interpreter exit
        pass


class Runtime:
    """One wgpu device with its pipeline cache and the open command batch."""

    def __init__(self, power_preference: str = "high-performance", adapter=None,
                 batch_limit: int = 256):
        wgpu = import_wgpu()
        self.wgpu = wgpu
        if adapter is None:
            err = "no adapter returned"
            try:
                adapter = wgpu.gpu.request_adapter_sync(power_preference=power_preference)
            except Exception as e:  # wgpu raises a generic error when no driver answers
                err = str(e)
            if adapter is None:
                raise BackendError(
                    f"WGPU(): no WebGPU adapter found ({err}). Install a Vulkan/Metal/D3D12 "
                    "driver; on CPU-only machines install Mesa's lavapipe: "
                    "`apt-get install mesa-vulkan-drivers`")
        self.adapter = adapter
        feats = set(adapter.features)
        self.has_f16 = "shader-f16" in feats
        alimits = adapter.limits
        want = {"max-storage-buffer-binding-size": alimits["max-storage-buffer-binding-size"],
                "max-buffer-size": alimits["max-buffer-size"],
                "max-compute-workgroups-per-dimension": alimits["max-compute-workgroups-per-dimension"],
                # fused kernels bind one buffer per input and output; the default is 8
                "max-storage-buffers-per-shader-stage":
                    min(alimits["max-storage-buffers-per-shader-stage"], 32)}
        self.device = adapter.request_device_sync(
            required_features=["shader-f16"] if self.has_f16 else [], required_limits=want)
        lim = self.device.limits
        self.max_binding = min(lim["max-storage-buffer-binding-size"], lim["max-buffer-size"])
        self.max_groups = lim["max-compute-workgroups-per-dimension"]
        self.max_storage = lim["max-storage-buffers-per-shader-stage"]
        # every dispatch binds META_BYTES of uniform metadata at an aligned offset
        self.align = max(lim["min-uniform-buffer-offset-alignment"], META_BYTES)
        self.queue = self.device.queue
        BU = wgpu.BufferUsage
        self.batch_limit = batch_limit
        self._pipelines: dict = {}
        self._layouts: dict = {}
        # stand-ins for bindings a kernel variant does not use (read-only and writable ones
        # must differ: one buffer may not be both in a dispatch)
        self._dummy = self.device.create_buffer(size=16, usage=BU.STORAGE)
        self._dummy_w = self.device.create_buffer(size=16, usage=BU.STORAGE)
        self._meta_cap = max(1 << 20, self.align * (batch_limit + 1))
        self._meta_buf = self.device.create_buffer(size=self._meta_cap,
                                                   usage=BU.UNIFORM | BU.COPY_DST)
        self._staging = None
        self._reset_batch()
        self.stats = {"dispatches": 0, "submits": 0}
        self.int8_dot4 = None   # whether dot4I8Packed compiles here (int8.py finds out once)
        self.bind_groups = BindGroupCache(self.device, self._meta_buf, META_BYTES, self.stats)
        self.allocator = DefaultAllocator(self.device, BU.STORAGE | BU.COPY_SRC | BU.COPY_DST,
                                          on_destroy=self.bind_groups.forget)

    # ------------------------------------------------------------------ allocation
    def storage(self, nbytes: int) -> Storage:
        size = max(4, (nbytes + 3) & ~3)
        if size > self.max_binding:
            raise UnsupportedError(
                f"WGPU(): a tensor of {nbytes} bytes exceeds this adapter's largest storage "
                f"binding ({self.max_binding} bytes); split the tensor, or use NumPy() / OpenCL()")
        return Storage(self, size)

    def upload(self, data: bytes | memoryview, nbytes: int) -> Storage:
        st = self.storage(nbytes)
        if nbytes:
            mv = memoryview(data).cast("B")
            if len(mv) % 4:
                mv = memoryview(bytes(mv) + b"\0" * (4 - len(mv) % 4))
            # write_buffer runs before the next submit; the buffer is fresh, so no queued
            # command of the open batch can be reading it
            self.queue.write_buffer(st.buf, 0, mv)
        return st

    # ------------------------------------------------------------------ pipelines
    def layout(self, kinds: str):
        """Bind group layout for a signature: one char per binding, 'r' read-only, 'w' read-write;
        binding 0 is always the uniform metadata block (uniform loads are scalar on CPU drivers,
        where per-invocation storage loads of the same words doubled an add's cost), bound with
        a dynamic offset so that one bind group serves every position in a batch."""
        lay = self._layouts.get(kinds)
        if lay is None:
            wgpu = self.wgpu
            entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                        "buffer": {"type": wgpu.BufferBindingType.uniform if i == 0 else
                                   wgpu.BufferBindingType.read_only_storage if k == "r"
                                   else wgpu.BufferBindingType.storage,
                                   "has_dynamic_offset": i == 0}}
                       for i, k in enumerate(kinds)]
            bgl = self.device.create_bind_group_layout(entries=entries)
            pl = self.device.create_pipeline_layout(bind_group_layouts=[bgl])
            lay = self._layouts[kinds] = (bgl, pl)
        return lay

    def pipeline(self, key, build, kinds: str, entry: str = "main"):
        """The compute pipeline cached under `key`; `build()` returns its WGSL on a miss."""
        p = self._pipelines.get(key)
        if p is None:
            src = build()
            bgl, pl = self.layout(kinds)
            try:
                module = self.device.create_shader_module(code=src)
                pipe = self.device.create_compute_pipeline(
                    layout=pl, compute={"module": module, "entry_point": entry})
            except Exception as e:
                raise BackendError(f"WGPU(): compiling kernel {key!r} failed: {e}") from None
            p = self._pipelines[key] = (pipe, bgl, kinds)
        return p

    @staticmethod
    def render(name: str, **subs) -> str:
        return string.Template(kernel_source(name)).substitute(subs)

    # ------------------------------------------------------------------ batching
    def _reset_batch(self) -> None:
        self._encoder = None
        self._pass = None
        self._meta = bytearray()
        self._keep: list = []
        self._count = 0

    def _ensure_pass(self):
        if self._encoder is None:
            self._encoder = self.device.create_command_encoder()
        if self._pass is None:
            self._pass = self._encoder.begin_compute_pass()
        return self._pass

    def dispatch(self, pipe, meta: bytes, buffers: Sequence, groups: tuple,
                 keep: Sequence = ()) -> None:
        """Encode one dispatch. buffers: GPUBuffers for bindings 1.. (binding 0 is `meta`)."""
        pipeline, bgl, kinds = pipe
        if len(self._meta) + self.align > self._meta_cap or self._count >= self.batch_limit:
            self.flush()
        if len(meta) > META_BYTES:
            raise BackendError(f"WGPU(): kernel metadata of {len(meta)} bytes exceeds {META_BYTES}")
        off = len(self._meta)
        self._meta += meta
        self._meta += bytes(self.align - len(meta))
        if None in buffers:
            buffers = [b if b is not None else self._dummy if kinds[i] == "r" else self._dummy_w
                       for i, b in enumerate(buffers, 1)]
        # cached only where buffers come back (a pool): with the default allocator each
        # dispatch binds at least one new output buffer, so no entry would ever be reused
        if type(self.allocator) is DefaultAllocator:
            bg = self.bind_groups.create(bgl, buffers)
        else:
            bg = self.bind_groups.get(bgl, buffers)
        cp = self._ensure_pass()
        cp.set_pipeline(pipeline)
        cp.set_bind_group(0, bg, (off,))
        cp.dispatch_workgroups(*groups)
        # the storages of this batch must outlive it: a pooled buffer freed and rewritten by
        # write_buffer before the submit would otherwise be read with the wrong contents
        self._keep.append(keep)
        self._count += 1
        self.stats["dispatches"] += 1

    def grid(self, nwg: int) -> tuple:
        """A 1-D count of workgroups as an (x, y, z) grid within the per-dimension limit
        (kernels rebuild the linear id from num_workgroups and skip the overhang)."""
        m = self.max_groups
        if nwg <= m:
            return (max(nwg, 1), 1, 1)
        y = -(-nwg // m)
        if y <= m:
            return (m, y, 1)
        z = -(-y // m)
        if z > m:
            raise UnsupportedError(f"WGPU(): {nwg} workgroups exceed the adapter's grid limit "
                                   f"({m} per dimension)")
        return (m, m, z)

    def copy(self, src, src_off: int, dst, dst_off: int, nbytes: int, keep=()) -> None:
        if self._pass is not None:
            self._pass.end()
            self._pass = None
        if self._encoder is None:
            self._encoder = self.device.create_command_encoder()
        self._encoder.copy_buffer_to_buffer(src, src_off, dst, dst_off, nbytes)
        self._keep.append(keep)

    def flush(self) -> None:
        """Submit the open batch (its metadata is written first, in queue order)."""
        if self._encoder is None:
            return
        if self._pass is not None:
            self._pass.end()
        if self._meta:
            if len(self._meta) > self._meta_cap:  # pragma: no cover - guarded in dispatch
                raise BackendError("WGPU(): metadata overflow")
            self.queue.write_buffer(self._meta_buf, 0, bytes(self._meta))
        self.queue.submit([self._encoder.finish()])
        self.stats["submits"] += 1
        self._reset_batch()

    def read(self, buf, offset: int, nbytes: int) -> bytes:
        """Bytes [offset, offset + nbytes) of buf after all queued work (4-byte aligned)."""
        BU = self.wgpu.BufferUsage
        if self._staging is None or self._staging.size < nbytes:
            size = max(nbytes, 1 << 16)
            self._staging = self.device.create_buffer(size=size, usage=BU.COPY_DST | BU.MAP_READ)
        st = self._staging
        self.copy(buf, offset, st, 0, nbytes)
        self.flush()
        st.map_sync(self.wgpu.MapMode.READ, 0, nbytes)
        try:
            data = bytes(st.read_mapped(0, nbytes, copy=False))
        finally:
            st.unmap()
        return data

    def sync(self) -> None:
        self.flush()
        # wgpu-py 0.32's on_submitted_work_done_sync raises TypeError: mapping a buffer after
        # the last submit waits for it instead
        self.read(self._dummy_copy_src(), 0, 4)

    def _dummy_copy_src(self):
        b = getattr(self, "_sync_src", None)
        if b is None:
            BU = self.wgpu.BufferUsage
            b = self._sync_src = self.device.create_buffer(size=4, usage=BU.COPY_SRC)
        return b
