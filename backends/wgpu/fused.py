"""Fused elementwise programs on WGPU: one generated WGSL kernel per program structure.

`fused_elementwise` runs a whole program (decorators/fusion/ir.py) in one dispatch: each
thread loads its element of every input straight from the input's strided/broadcast view,
evaluates the instructions in registers (fused_codegen.py) and writes each output once.
`fused_reduce` evaluates the program inside the reduction loop of a reduce.wgsl-shaped kernel,
so a chain feeding sum/max/min is one launch (plus the partials pass of long reductions).

Compiled pipelines are cached by structure: the program's key (ops, dtypes, wiring, not the
constant values), the coalesced rank, each input's access pattern (contiguous / broadcast
scalar / strided) and which inputs share a buffer. Constants, sizes, strides and offsets are
metadata words of each dispatch, so changing them reuses the kernel. When every input is read
contiguously (or is a single broadcast value) a variant handles four elements per invocation
with vec4 loads and stores.
"""
from __future__ import annotations

import struct

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.errors import DTypeError, ShapeError
from ...core.shape import contiguous_strides, numel, reduced_shape
from ...decorators.fusion import stats
from .dtypes import WTYPES
from ...decorators.fusion.ir import check_reduce, live_slots, plan_outputs
from .fused_codegen import const_values, program_body, settle, uses_f16
from .ops_reduce import _INIT, _MIN_CHUNK, _PARALLEL, _combine
from .runtime import META_BYTES, Runtime, kernel_source
from .tensor import WTensor, coalesce, new_tensor

_UNIFORM_WORDS = META_BYTES // 4
_ACC_DTYPE = {"f": dt.float32, "i": dt.int32, "u": dt.uint8}


def _pipeline(rt: Runtime, key, build, kinds: str):
    pipe = rt._pipelines.get(key)
    stats.record_cache(pipe is not None)
    return pipe if pipe is not None else rt.pipeline(key, build, kinds)


def _meta_parts(words: list, binding: int) -> tuple:
    """(uniform bytes, META_DECL, META_READ, extra storage words or None). Metadata that does
    not fit the uniform block (many inputs, dims or constants) goes to a storage buffer."""
    if len(words) <= _UNIFORM_WORDS:
        return (struct.pack(f"<{len(words)}I", *words),
                "@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;",
                "md[k >> 2u][k & 3u]", None)
    return (b"", f"@group(0) @binding({binding}) var<storage, read> mx: array<u32>;", "mx[k]",
            words)


def _bindings(ins: list) -> tuple:
    """Binding slot of each input; views of one buffer read as one type share a binding."""
    slots, seen = [], {}
    for t in ins:
        k = (id(t.st), t.w.store)
        if k not in seen:
            seen[k] = len(seen)
        slots.append(seen[k])
    return tuple(slots), len(seen)


def _binding_decls(out_names: list, outs_store: list, in_store: list) -> str:
    lines = [f"@group(0) @binding({1 + j}) var<storage, read_write> {o}: array<{s}>;"
             for j, (o, s) in enumerate(zip(out_names, outs_store))]
    base = 1 + len(outs_store)
    lines += [f"@group(0) @binding({base + b}) var<storage, read> in{b}: array<{s}>;"
              for b, s in enumerate(in_store)]
    return "\n".join(lines)


def _coords(prefix: str, var: str, nd: int, shape_word: int) -> list:
    """Unrolled row-major decomposition of `var` into coordinates <prefix>0..<prefix>nd-1."""
    if nd == 0:
        return []
    lines = [f"var {prefix}q = {var};"]
    for d in range(nd - 1, 0, -1):
        lines.append(f"let {prefix}{d} = {prefix}q % M({shape_word + d}u); "
                     f"{prefix}q = {prefix}q / M({shape_word + d}u);")
    lines.append(f"let {prefix}0 = {prefix}q;")
    return lines


def _dot(prefix: str, nd: int, stride_word: int) -> str:
    return "".join(f" + i32({prefix}{d}) * bitcast<i32>(M({stride_word + d}u))" for d in range(nd))


class FusedOps:
    """Mixin of the WGPU backend: fused_elementwise and fused_reduce."""

    def _fused_check(self, program, inputs) -> None:
        if len(inputs) != program.n_inputs:
            raise ShapeError(f"WGPU().fused_elementwise: the program takes {program.n_inputs} "
                             f"inputs, got {len(inputs)}")
        for k, (x, d) in enumerate(zip(inputs, program.input_dtypes)):
            if type(x) is not WTensor:
                raise DTypeError(f"WGPU().fused_elementwise: input {k} is a "
                                 f"{type(x).__name__}, not a WGPU primitive")
            if x.dtype is not d:
                raise DTypeError(f"WGPU().fused_elementwise: input {k} is {x.dtype.name} but "
                                 f"the program expects {d.name}")
        checked = self.__dict__.setdefault("_fused_checked", set())
        if program.key not in checked:
            for d in program.const_dtypes + tuple(d for _, _, d in program.instrs):
                self._check(d)
            checked.add(program.key)

    # ------------------------------------------------------------------ elementwise
    def fused_elementwise(self, program, inputs, shape: tuple) -> list:
        shape = tuple(shape)
        inputs = list(inputs)
        self._fused_check(program, inputs)
        n_in = program.n_inputs
        res, made, write = plan_outputs(
            program, lambda k: self._expand_to(inputs[k], shape),
            lambda s: new_tensor(self.rt, shape, program.slot_dtype(s)))
        if not write or numel(shape) == 0:
            return res
        live = live_slots(program, write)
        used = [k for k in range(n_in) if k in live]
        ins = [self._expand_to(inputs[k], shape) for k in used]
        bind, n_bind = _bindings(ins)
        # one storage binding per output and per distinct input buffer (+1 for big metadata)
        room = self.rt.max_storage - n_bind - 1
        if room < 1:
            # more distinct input buffers than the adapter can bind: run op by op
            return Backend.fused_elementwise(self, program, inputs, shape)
        for g in range(0, len(write), room):
            part = write[g:g + room]
            self._launch_map(program, shape, part, [made[s] for s in part], used, ins, bind,
                             n_bind, live if len(part) == len(write) else
                             live_slots(program, part))
        return res

    def _launch_map(self, program, shape, slots, outs, used, ins, bind, n_bind, live) -> None:
        rt = self.rt
        n = numel(shape)
        ostr = list(contiguous_strides(shape))
        shp, sts = coalesce(shape, [ostr] + [list(t.layout.strides) for t in ins])
        nd = len(shp)
        ost = sts[0]
        pattern, at, words = [], [], [n, nd] + shp
        for t, st, k in zip(ins, sts[1:], used):
            if k not in live:
                pattern.append("-")
                at.append(None)
                continue
            at.append(len(words))
            words.append(t.layout.offset & 0xFFFFFFFF)
            if st == ost:
                pattern.append("c")
            elif not any(st):
                pattern.append("z")
            else:
                pattern.append("s")
                words.extend(v & 0xFFFFFFFF for v in st)
        # four elements per invocation with vec4 loads and stores when every input is read
        # contiguously (or is one broadcast value): CPU drivers turn per-lane scalar loads into
        # gathers, and this quarters them
        vbind = {b for b, p in zip(bind, pattern) if p == "c"}
        vec = n % 4 == 0 and "s" not in pattern and not vbind & {
            b for b, p in zip(bind, pattern) if p == "z"} and all(
            t.layout.offset % 4 == 0 for t, p in zip(ins, pattern) if p == "c")
        if vec:
            words[0] = n // 4
        cbase = len(words)
        words.extend(const_values(program))
        n_out = len(outs)
        meta, decl, read, extra = _meta_parts(words, 1 + n_out + n_bind)
        key = ("fused", program.key, tuple(slots), nd, tuple(pattern), bind, extra is None, vec)
        in_store = [None] * n_bind
        for t, b in zip(ins, bind):
            in_store[b] = f"vec4<{t.w.store}>" if vec and b in vbind else t.w.store

        def build() -> str:
            lanes = ("_0", "_1", "_2", "_3") if vec else ("",)
            consts, body, index, names = [], [], [], []
            for lane in lanes:
                consts, lines, nm = program_body(program, live, lambda j: cbase + j, lane)
                body += lines
                names.append(nm)
            if "s" in pattern:
                index = _coords("i", "i", nd, 2)
            for t, k, b, p, w0 in zip(ins, used, bind, pattern, at):
                if p == "-":
                    continue
                if vec and p == "c":
                    index.append(f"let v{k} = in{b}[(M({w0}u) >> 2u) + i];")
                    index += [f"let x{k}{ln} = {t.w.load(f'v{k}[{j}]')};"
                              for j, ln in enumerate(lanes)]
                    continue
                idx = {"c": f"M({w0}u) + i", "z": f"M({w0}u)"}.get(
                    p, f"u32(bitcast<i32>(M({w0}u)){_dot('i', nd, w0 + 1)})")
                index.append(f"let x{k} = {t.w.load(f'in{b}[{idx}]')};")
                if vec:
                    index += [f"let x{k}{ln} = x{k};" for ln in lanes]
            store = []
            for j, (o, s) in enumerate(zip(outs, slots)):
                vals = ", ".join(o.w.wrap(nm[s]) for nm in names)
                store.append(f"out{j}[i] = vec4<{o.w.store}>({vals});" if vec else
                             f"out{j}[i] = {vals};")
            f16 = uses_f16(program) and self._f16
            ostore = [f"vec4<{o.w.store}>" if vec else o.w.store for o in outs]
            return rt.render("fused_map", ENABLE="enable f16;" if f16 else "",
                             COMMON=kernel_source("common"), META_DECL=decl, META_READ=read,
                             BINDINGS=_binding_decls([f"out{j}" for j in range(n_out)],
                                                     ostore, in_store),
                             INDEX="\n    ".join(index),
                             BODY="\n    ".join(consts + body), STORE="\n    ".join(store))

        kinds = "r" + "w" * n_out + "r" * n_bind + ("r" if extra is not None else "")
        pipe = _pipeline(rt, key, build, kinds)
        self._dispatch_fused(pipe, meta, extra, outs, ins, bind, n_bind,
                             -(-(n // 4 if vec else n) // 256))

    def _dispatch_fused(self, pipe, meta, extra, outs, ins, bind, n_bind, groups) -> None:
        rt = self.rt
        bufs: list = [o.st.buf for o in outs] + [None] * n_bind
        for t, b in zip(ins, bind):
            bufs[len(outs) + b] = t.st.buf
        keep = [o.st for o in outs] + [t.st for t in ins]
        if extra is not None:
            st = rt.upload(struct.pack(f"<{len(extra)}I", *extra), 4 * len(extra))
            bufs.append(st.buf)
            keep.append(st)
        rt.dispatch(pipe, meta, bufs, rt.grid(groups), keep=keep)

    # ------------------------------------------------------------------ reduction
    def fused_reduce(self, program, inputs, shape: tuple, op: str, axes: tuple,
                     keepdims: bool) -> WTensor:
        check_reduce("WGPU()", program, op)
        shape = tuple(shape)
        inputs = list(inputs)
        axes = tuple(axes) if shape else ()
        self._fused_check(program, inputs)
        s = program.outputs[0]
        n_in = program.n_inputs
        R = numel(shape[a] for a in axes)
        if R == 0 and op != "sum":
            raise ShapeError(f"WGPU().{op}: cannot reduce over an empty dimension of a tensor "
                             f"of shape {shape} (the result has no identity)")
        if not axes or s < n_in:
            # nothing to fuse: the value is a view of an input, or nothing is reduced
            (v,) = self.fused_elementwise(program, inputs, shape)
            return self._reduce(op, v, axes, keepdims)
        w = WTYPES[program.slot_dtype(s)]
        out = new_tensor(self.rt, reduced_shape(shape, axes, keepdims), w.dtype)
        kept = [i for i in range(len(shape)) if i not in axes]
        n_out = numel(shape[i] for i in kept)
        if n_out == 0:
            return out
        live = live_slots(program, [s])
        used = [k for k in range(n_in) if k in live]
        ins = [self._expand_to(inputs[k], shape) for k in used]
        bind, n_bind = _bindings(ins)
        if n_bind + 2 > self.rt.max_storage:
            (v,) = Backend.fused_elementwise(self, program, inputs, shape)
            return self._reduce(op, v, axes, keepdims)
        kshp, ksts = coalesce(tuple(shape[i] for i in kept),
                              [[t.layout.strides[i] for i in kept] for t in ins])
        rshp, rsts = coalesce(tuple(shape[i] for i in axes),
                              [[t.layout.strides[i] for i in axes] for t in ins])
        G = 1
        if n_out < _PARALLEL and R >= 2 * _MIN_CHUNK:
            G = min(-(-_PARALLEL // n_out), -(-R // _MIN_CHUNK))
        chunk = -(-R // G) if R else 1
        G = -(-R // chunk) if R else 1
        if G == 1:
            target = out
        else:
            target = new_tensor(self.rt, (n_out, G), _ACC_DTYPE[w.cls])
        self._launch_reduce(program, op, w, s, target, G == 1, n_out, R, chunk, G,
                            kshp, ksts, rshp, rsts, used, ins, bind, n_bind, live)
        if G > 1:
            self._reduce_pass(op, w, target, None, out, True, n_out, G, G, 1,
                              [n_out], [G], [G], [1], 0, second=True, acc_t=w.comp)
        return out

    def _launch_reduce(self, program, op, w, s, target, final, n_out, R, chunk, G,
                       kshp, ksts, rshp, rsts, used, ins, bind, n_bind, live) -> None:
        rt = self.rt
        kd, rd = len(kshp), len(rshp)
        words = [n_out, R, chunk, G] + kshp + rshp
        at = []
        for t, ks, rs in zip(ins, ksts, rsts):
            at.append(len(words))
            words.append(t.layout.offset & 0xFFFFFFFF)
            words.extend(v & 0xFFFFFFFF for v in ks)
            words.extend(v & 0xFFFFFFFF for v in rs)
        cbase = len(words)
        words.extend(const_values(program))
        meta, decl, read, extra = _meta_parts(words, 2 + n_bind)
        key = ("fused_reduce", program.key, op, final, kd, rd, bind, extra is None)
        in_store = [None] * n_bind
        for t, b in zip(ins, bind):
            in_store[b] = t.w.store

        def build() -> str:
            consts, body, names = program_body(program, live, lambda j: cbase + j)
            pro = _coords("k", "o", kd, 4) + consts
            index = _coords("r", "r", rd, 4 + kd)
            for t, k, b, w0 in zip(ins, used, bind, at):
                pro.append(f"let b{k} = bitcast<i32>(M({w0}u)){_dot('k', kd, w0 + 1)};")
                idx = f"u32(b{k}{_dot('r', rd, w0 + 1 + kd)})"
                index.append(f"let x{k} = {t.w.load(f'in{b}[{idx}]')};")
            value = names[s] if s >= program.first_instr_slot else settle(w, names[s])
            to = target.w.store
            f16 = (uses_f16(program) or to == "f16") and self._f16
            return rt.render("fused_reduce", ENABLE="enable f16;" if f16 else "",
                             COMMON=kernel_source("common"), META_DECL=decl, META_READ=read,
                             BINDINGS=_binding_decls(["out"], [to], in_store),
                             PROLOGUE="\n    ".join(pro), ACC=w.comp, INIT=_INIT[(op, w.cls)],
                             INDEX="\n        ".join(index), BODY="\n        ".join(body),
                             VALUE=value, COMBINE=_combine(op, w.cls, ""),
                             STORE=w.wrap("acc") if final else "acc")

        kinds = "rw" + "r" * n_bind + ("r" if extra is not None else "")
        pipe = _pipeline(rt, key, build, kinds)
        self._dispatch_fused(pipe, meta, extra, [target], ins, bind, n_bind, -(-(n_out * G) // 64))
