"""The WGPU primitive (a buffer plus a strided Layout) and the strided map launcher."""
from __future__ import annotations

import struct

import numpy as np

from ..strided import Layout
from .dtypes import WTYPES, WType
from .runtime import Runtime, Storage

MAXD = 8
_HDR = struct.Struct("<16I")


class WTensor:
    """A device tensor: `st` (Storage) viewed through `layout` as `dtype`."""

    __slots__ = ("st", "layout", "dtype", "__weakref__")

    def __init__(self, st: Storage, layout: Layout, dtype):
        self.st = st
        self.layout = layout
        self.dtype = dtype

    @property
    def shape(self) -> tuple:
        return self.layout.shape

    @property
    def w(self) -> WType:
        return WTYPES[self.dtype]

    def view(self, layout: Layout) -> "WTensor":
        return WTensor(self.st, layout, self.dtype)

    def __repr__(self) -> str:
        return f"WTensor(shape={self.layout.shape}, dtype={self.dtype.name})"


def coalesce(shape: tuple, stride_sets: list) -> tuple:
    """Drop size-1 dims and merge neighbours that are contiguous in every operand."""
    dims = [i for i, s in enumerate(shape) if s != 1]
    shp = [shape[i] for i in dims]
    sts = [[st[i] for i in dims] for st in stride_sets]
    j = len(shp) - 1
    while j > 0:
        if all(s[j - 1] == s[j] * shp[j] for s in sts):
            shp[j - 1] *= shp[j]
            for s in sts:
                s[j - 1] = s[j]
                del s[j]
            del shp[j]
        j -= 1
    return shp, sts


def pack_map_meta(n: int, shp: list, offsets: list, sts: list, s0: int, s1: int) -> bytes:
    nd = len(shp)
    words = [n, nd, s0, s1, 0, 0, 0, 0] + shp + [1] * (MAXD - nd)
    for off, st in zip(offsets, sts):
        words.append(off & 0xFFFFFFFF)
        words.extend(x & 0xFFFFFFFF for x in st)
        words.extend([0] * (MAXD - nd))
    return struct.pack(f"<{len(words)}I", *words)


def run_map(rt: Runtime, has_f16: bool, expr: str, out: WTensor, ins: list,
            scalars: tuple = ()) -> None:
    """out[...] = expr elementwise, where expr names tensor inputs v0, v1, v2 (WTensors already
    expanded to out's shape, loaded in their compute type) and scalars s0, s1 given as
    (32-bit pattern, WGSL compute type) pairs."""
    lay = out.layout
    n = lay.numel
    if n == 0:
        return
    layouts = [lay] + [t.layout for t in ins]
    shp, sts = coalesce(lay.shape, [list(l.strides) for l in layouts])
    if len(shp) > MAXD:
        # split along the first dim and recurse: rare (more than 8 non-mergeable dims)
        k = lay.shape.index(next(s for s in lay.shape if s != 1))
        for i in range(lay.shape[k]):
            st0 = tuple(i if d == k else 0 for d in range(lay.ndim))
            sp0 = tuple(i + 1 if d == k else s for d, s in enumerate(lay.shape))
            one = (1,) * lay.ndim
            run_map(rt, has_f16, expr, out.view(lay.slice(st0, sp0, one)),
                    [t.view(t.layout.slice(st0, sp0, one)) for t in ins], scalars)
        return
    contig = tuple(len(s) == 0 or (len(s) == 1 and s[0] == 1) for s in sts)
    wts = tuple(t.w for t in ins)
    ow = out.w
    stypes = tuple(t for _, t in scalars)
    key = ("map", expr, ow.dtype, tuple(w.dtype for w in wts), contig, stypes)
    pipe = rt._pipelines.get(key)
    if pipe is None:
        pipe = rt.pipeline(key, lambda: _map_source(expr, ow, wts, contig, stypes, has_f16),
                           "rw" + "r" * len(ins))
    bits = [b for b, _ in scalars] + [0, 0]
    meta = pack_map_meta(n, shp, [l.offset for l in layouts], sts, bits[0], bits[1])
    rt.dispatch(pipe, meta, [out.st.buf] + [t.st.buf for t in ins], rt.grid(-(-n // 256)),
                keep=[out.st] + [t.st for t in ins])


def _map_source(expr: str, ow: WType, wts: tuple, contig: tuple, stypes: tuple,
                has_f16: bool) -> str:
    from .runtime import kernel_source
    decls = []
    body = [f"let s{k} = bitcast<{t}>(M({2 + k}));" for k, t in enumerate(stypes)]
    for k, w in enumerate(wts):
        decls.append(f"@group(0) @binding({k + 2}) var<storage, read> in{k}: array<{w.store}>;")
        idx = f"u32(bitcast<i32>(M({16 + 9 * (k + 1)})) + i32(i))" if contig[k + 1] \
            else f"strided_index(i, {16 + 9 * (k + 1)}u)"
        body.append(f"let v{k} = {w.load(f'in{k}[{idx}]')};")
    oidx = "u32(bitcast<i32>(M(16)) + i32(i))" if contig[0] else "strided_index(i, 16u)"
    body.append(f"out[{oidx}] = {ow.wrap(expr)};")
    uses_f16 = ow.store == "f16" or any(w.store == "f16" for w in wts)
    return Runtime.render("map", ENABLE="enable f16;" if uses_f16 and has_f16 else "",
                          COMMON=kernel_source("common"), TO=ow.store, INPUTS="\n".join(decls),
                          BODY="\n    ".join(body))


def new_tensor(rt: Runtime, shape: tuple, dtype) -> WTensor:
    lay = Layout.contiguous(tuple(shape))
    return WTensor(rt.storage(lay.numel * WTYPES[dtype].size), lay, dtype)


def upload(rt: Runtime, a: np.ndarray, dtype) -> WTensor:
    lay = Layout.contiguous(a.shape)
    return WTensor(rt.upload(a.reshape(-1).data if a.size else b"", a.nbytes), lay, dtype)
