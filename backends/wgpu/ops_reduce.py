"""Reductions of the WGPU backend: sum, max, min, argmax, argmin (reduce.wgsl)."""
from __future__ import annotations

import struct

from ...core import dtype as dt
from ...core.errors import ShapeError
from ...core.shape import numel, reduced_shape
from .runtime import kernel_source
from .tensor import WTensor, coalesce, new_tensor

_MAXD = 8
# threads wanted in flight before splitting the reduced range into chunks
_PARALLEL = 4096
_MIN_CHUNK = 64

_INIT = {
    ("sum", "f"): "0.0", ("sum", "i"): "0", ("sum", "u"): "0u",
    ("max", "f"): "-f_inf()", ("max", "i"): "(-2147483647 - 1)", ("max", "u"): "0u",
    ("min", "f"): "f_inf()", ("min", "i"): "2147483647", ("min", "u"): "4294967295u",
}


def _combine(op: str, cls: str, idx: str) -> str:
    if op == "sum":
        return "acc = acc + v;"
    if op in ("max", "min"):
        return f"acc = {'f_' if cls == 'f' else ''}{op}(acc, v);"
    cmp = ">" if op == "argmax" else "<"
    better = f"v {cmp} acc"
    if cls == "f":
        better = f"(f_isnan(v) && !f_isnan(acc)) || {better}"
    return f"if (best_i < 0 || {better}) {{ acc = v; best_i = {idx}; }}"


class ReduceOps:
    def sum(self, x, axes, keepdims):
        return self._reduce("sum", x, tuple(axes), keepdims)

    def max(self, x, axes, keepdims):
        return self._reduce("max", x, tuple(axes), keepdims)

    def min(self, x, axes, keepdims):
        return self._reduce("min", x, tuple(axes), keepdims)

    def argmax(self, x, axis, keepdims):
        return self._reduce("argmax", x, (axis,), keepdims)

    def argmin(self, x, axis, keepdims):
        return self._reduce("argmin", x, (axis,), keepdims)

    def _reduce(self, op: str, x: WTensor, axes: tuple, keepdims: bool) -> WTensor:
        lay = x.layout
        shape = lay.shape
        if lay.ndim == 0:
            axes = ()
        out_shape = reduced_shape(shape, axes, keepdims)
        arg = op.startswith("arg")
        out_dtype = dt.int64 if arg else x.dtype
        R = numel(shape[a] for a in axes)
        if R == 0 and op != "sum":
            raise ShapeError(f"WGPU().{op}: cannot reduce over an empty dimension of a tensor "
                             f"of shape {shape} (the result has no identity)")
        if not axes and not arg:
            return x.view(lay)
        kept = [i for i in range(lay.ndim) if i not in axes]
        n_out = numel(shape[i] for i in kept)
        out = new_tensor(self.rt, out_shape, out_dtype)
        if n_out == 0:
            return out
        kshp, (kst,) = coalesce(tuple(shape[i] for i in kept), [[lay.strides[i] for i in kept]])
        rshp, (rst,) = coalesce(tuple(shape[i] for i in axes), [[lay.strides[i] for i in axes]])
        if len(kshp) > _MAXD or len(rshp) > _MAXD:
            return self._reduce(op, self.contiguous(x), axes, keepdims)
        w = x.w
        acc_t = w.comp
        G = 1
        if n_out < _PARALLEL and R >= 2 * _MIN_CHUNK:
            G = min(-(-_PARALLEL // n_out), -(-R // _MIN_CHUNK))
        chunk = -(-R // G) if R else 1
        G = -(-R // chunk) if R else 1
        if G == 1:
            self._reduce_pass(op, w, x, None, out, True, n_out, R, chunk, 1,
                              kshp, kst, rshp, rst, lay.offset)
            return out
        # pass 1: (n_out, G) partials in the accumulator type; pass 2 reduces them
        acc_dt = {"f": dt.float32, "i": dt.int32, "u": dt.uint8}[w.cls]
        part = new_tensor(self.rt, (n_out, G), acc_dt)
        pidx = new_tensor(self.rt, (n_out, G), dt.int32) if arg else None
        self._reduce_pass(op, w, x, pidx, part, False, n_out, R, chunk, G,
                          kshp, kst, rshp, rst, lay.offset)
        self._reduce_pass(op, w, part, pidx, out, True, n_out, G, G, 1,
                          [n_out], [G], [G], [1], 0, second=True, acc_t=acc_t)
        return out

    def _reduce_pass(self, op, w, src, idx_t, out, final, n_out, R, chunk, G,
                     kshp, kst, rshp, rst, offset, second=False, acc_t=None):
        rt = self.rt
        arg = op.startswith("arg")
        cls = w.cls
        ti = acc_t if second else w.store
        key = ("reduce", op, w.dtype, final, second)
        pipe = rt._pipelines.get(key)
        if pipe is None:
            if arg:
                to, store = ("i32", "best_i") if final else (w.comp, "acc")
            else:
                to, store = (out.w.store, out.w.wrap("acc")) if final else (w.comp, "acc")
            base_op = {"argmax": "max", "argmin": "min"}.get(op, op)
            src_code = rt.render(
                "reduce", ENABLE="enable f16;" if "f16" in (ti, to) else "",
                COMMON=kernel_source("common"), TO=to, TI=ti, ACC=w.comp,
                INIT=_INIT[(base_op, cls)],
                LOAD="f32(inp[ii])" if ti == "f16" else "inp[ii]",
                COMBINE=_combine(op, cls, "inp_idx[ii]" if second else "i32(r)"),
                STORE=store, STORE_IDX="out_idx[t] = best_i;" if arg and not final else "")
            pipe = rt.pipeline(key, lambda: src_code, "rwwrr")
        words = [n_out, R, chunk, G, len(kshp), len(rshp), offset & 0xFFFFFFFF, 0]
        for arr in (kshp, kst, rshp, rst):
            words += [v & 0xFFFFFFFF for v in arr] + [1] * (_MAXD - len(arr))
        meta = struct.pack(f"<{len(words)}I", *words)
        bufs = [out.st.buf, idx_t.st.buf if (idx_t is not None and not final) else None,
                src.st.buf, idx_t.st.buf if (idx_t is not None and second) else None]
        keep = [t.st for t in (out, src, idx_t) if t is not None]
        rt.dispatch(pipe, meta, bufs, rt.grid(-(-(n_out * G) // 64)), keep=keep)

