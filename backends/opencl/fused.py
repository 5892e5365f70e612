"""Fused elementwise programs on OpenCL: one generated OpenCL C kernel per program structure.

`fused_elementwise` runs a whole program (decorators/fusion/ir.py) in one launch: each
work-item reads its element of every input straight from the input's strided/broadcast view,
evaluates the instructions in registers (fused_codegen.py) and writes each output once.
`fused_reduce` evaluates the program inside the loop of a reduce.cl-shaped kernel, so a
chain feeding sum/max/min is one launch (plus reduce.cl's partials pass for long rows).
`fused_update` (optimizer steps) writes outputs into donated input buffers where it can.

Compiled kernels are cached by structure: the program's key (ops, dtypes, wiring, not the
constant values), the outputs written, the layout (dense; dense 8-wide; strided, or strided
8 elements of a row at a time, with the collapsed rank) and each input's access pattern
(contiguous, one broadcast value, strided; along rows: unit or zero stride).
Constants, sizes, strides and offsets are kernel arguments, so changing them reuses the kernel
(PoCL spends ~0.25 s on every program build).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.errors import DTypeError, ShapeError
from ...core.memo import memo
from ...core.shape import contiguous_strides, numel, reduced_shape
from ...decorators.fusion import stats
from ..strided import Layout
from . import runtime as rt
from .array import CLArray, broadcast_layout, collapse
from ...decorators.fusion.ir import check_reduce, live_slots
from .fused_codegen import LANES, Codegen, mask_type, vector_dtype
from .reduce_index import CHUNK_MIN, ROW_LIMIT, WG

# a launch plan found: the kernel lookup it saves counts as a compile-cache hit
_PLAN_HIT = partial(stats.record_cache, True)

# dense programs shorter than this run the one-element kernel (no 8-wide build for them)
VECTOR_MIN = 64


def _template(name: str) -> str:
    t = _TEMPLATES.get(name)
    if t is None:
        t = _TEMPLATES[name] = (rt.KERNEL_DIR / name).read_text()
    return t


_TEMPLATES: dict = {}


def _render(name: str, **parts: str) -> str:
    text = _template(name)
    for k, v in parts.items():
        text = text.replace("${" + k + "}", v)
    return text


def _pattern(strides: list, out: list) -> str:
    if not any(strides):
        return "z"
    return "c" if strides == out else "s"


class FusedOps:
    """Mixin of OpenCL: fused_elementwise and fused_reduce."""

    # ---------------------------------------------------------------- plumbing
    def _fused_kernel(self, key: tuple, name: str, build):
        """The cached kernel of a program structure; each lookup is a Fusion cache hit/miss."""
        cache = self._rt.fused_kernels
        k = cache.get((key, name))
        stats.record_cache(k is not None)
        if k is None:
            k = cache[(key, name)] = self._kernel(key, name, build)
        return k

    def _fused_check(self, program, inputs: list, shape: tuple, who: str) -> None:
        if len(inputs) != program.n_inputs:
            raise ShapeError(f"{self}.{who}: the program takes {program.n_inputs} inputs, got "
                             f"{len(inputs)}")
        nd = len(shape)
        for k, (x, d) in enumerate(zip(inputs, program.input_dtypes)):
            if type(x) is not CLArray:
                raise DTypeError(f"{self}.{who}: input {k} is a {type(x).__name__}, not an "
                                 f"OpenCL primitive")
            if x.dtype is not d:
                raise DTypeError(f"{self}.{who}: input {k} is {x.dtype.name} but the program "
                                 f"expects {d.name}")
            s = x.layout.shape
            if len(s) > nd or any(a != b and a != 1 for a, b in zip(s[::-1], shape[::-1])):
                raise ShapeError(f"{self}.{who}: input {k} of shape {s} does not broadcast to "
                                 f"the program's shape {shape}")
        checked = self._rt.fused_checked
        if program.key not in checked:
            for d in set(program.const_dtypes) | {d for _, _, d in program.instrs}:
                self._check_dtype(d)
            checked.add(program.key)

    def _checked(self, program, inputs: list, shape: tuple, who: str) -> tuple:
        """_fused_check once per (program structure, shape, input layouts and dtypes): the
        key that launch plans are cached under. The checks cost ~10 µs of a launch's host
        time, which is the critical path of a step on PoCL."""
        if all(type(x) is CLArray for x in inputs):
            lays = tuple((x.layout.shape, x.layout.strides, x.dtype) for x in inputs)
        else:   # not OpenCL primitives: the check names the culprit
            lays = None
        key = (program.key, shape, lays)
        valid = self._rt.fused_valid
        if lays is None or key not in valid:
            self._fused_check(program, inputs, shape, who)
            if len(valid) > 8192:
                valid.clear()
            valid.add(key)
        return key

    def _const_args(self, program, live: set) -> tuple:
        """(parameter declarations, argument values) of the live constants."""
        n_in = program.n_inputs
        decl, vals = [], []
        for j, (v, d) in enumerate(zip(program.consts, program.const_dtypes)):
            if n_in + j in live:
                decl.append(f"const {rt.CL_TYPE[d]} c{j}")
                vals.append(rt.scalar_arg(v, d))
        return decl, vals

    def _fits(self, n_args: int) -> bool:
        # every argument takes at most 8 bytes; PoCL allows 1024 bytes of arguments
        return 8 * n_args <= self._rt.max_parameter_size

    def _fused_header(self, program, cg: Codegen, define: str) -> str:
        dtypes = set(program.input_dtypes) | set(program.const_dtypes) | {
            d for _, _, d in program.instrs}
        return (rt.extensions_header(*dtypes) + _template("fused_ops.cl") + "\n"
                + cg.helper_defs() + f"\n#define {define} 1\n")

    # ---------------------------------------------------------------- elementwise
    def fused_elementwise(self, program, inputs, shape: tuple) -> list:
        return self._fused_map(program, inputs, shape, None)

    def fused_update(self, program, inputs, shape: tuple, donate: dict) -> list:
        """fused_elementwise writing output j into input donate[j]'s buffer where that input
        is a dense, unshared array of the output's shape and dtype (an optimizer step then
        allocates nothing); other outputs get new buffers."""
        return self._fused_map(program, inputs, shape, donate)

    def _donor(self, program, inputs, shape, j: int, donate, taken: set):
        k = donate.get(j) if donate else None
        if k is None or not 0 <= k < len(inputs) or k in taken:
            return None
        x = inputs[k]
        lay = x.layout
        if (x.dtype is not program.slot_dtype(program.outputs[j]) or lay.shape != shape
                or lay.offset or not lay.is_contiguous()):
            return None
        # another input viewing the same buffer would read values this kernel overwrites
        if any(y.storage is x.storage for i, y in enumerate(inputs) if i != k):
            return None
        taken.add(k)
        return k

    def _fused_map(self, program, inputs, shape: tuple, donate) -> list:
        shape = tuple(shape)
        inputs = list(inputs)
        ckey = self._checked(program, inputs, shape,
                             "fused_elementwise" if donate is None else "fused_update")
        n_in = program.n_inputs
        res: list = []
        made: dict = {}
        write: list = []
        alias: list = []  # (position in write, donated input)
        taken: set = set()
        for j, s in enumerate(program.outputs):
            if s < n_in:
                x = inputs[s]
                res.append(CLArray(x.storage, broadcast_layout(x.layout, shape), x.dtype))
            elif s in made:
                res.append(made[s])
            else:
                k = self._donor(program, inputs, shape, j, donate, taken)
                if k is None:
                    made[s] = self._new(shape, program.slot_dtype(s))
                else:
                    made[s] = CLArray(inputs[k].storage, Layout.contiguous(shape), inputs[k].dtype)
                    alias.append((len(write), k))
                write.append(s)
                res.append(made[s])
        n = numel(shape)
        if not write or n == 0:
            return res
        # everything below but the buffers, offsets and constant values depends only on the
        # program's structure, the outputs written, the donations and the inputs' layouts:
        # worked out once into a launch plan (the host side of a launch is the critical path
        # of a step on PoCL, where the device runs on the same cores)
        pkey = (ckey, tuple(write), tuple(alias))
        # a plan found is a kernel lookup saved: counted as a compile-cache hit
        plan = memo(self._rt.fused_plans, pkey,
                    lambda: self._fused_plan(program, inputs, shape, write, alias), _PLAN_HIT)
        if plan is None:
            # more arguments than the device takes: run op by op (correct, unfused)
            return Backend.fused_elementwise(self, program, inputs, shape)
        kernel, used, stride_args, const_slots, tail, grid, local = plan
        outs = [made[s] for s in write]
        args: list = [o.buf for o in outs]
        for k, sa in zip(used, stride_args):
            x = inputs[k]
            args += [x.buf, np.int64(x.layout.offset)]
            if sa:
                args += sa
        consts = program.consts
        args += [rt.scalar_arg(consts[j], d) for j, d in const_slots]
        args += tail
        self._run(kernel, grid, local, *args)
        return res

    def _fused_plan(self, program, inputs, shape, write, alias):
        """(kernel, used inputs, per-input stride arguments, live constants, trailing size
        arguments, global size, local size) of a fused_elementwise launch, or None when the
        launch needs more arguments than the device takes."""
        n_in = program.n_inputs
        n = numel(shape)
        live = live_slots(program, write)
        used = [k for k in range(n_in) if k in live]
        # an output written over a donated input that the kernel reads: no `restrict` on them
        alias = tuple((j, k) for j, k in alias if k in live)
        lays = [broadcast_layout(inputs[k].layout, shape) for k in used]
        ostr = contiguous_strides(shape)
        dims = collapse(shape, [ostr] + [lay.strides for lay in lays])
        nd = len(dims)
        out_st = [sts[0] for _, sts in dims]
        pattern = tuple(_pattern([sts[j + 1] for _, sts in dims], out_st)
                        for j in range(len(used)))
        cdecl, cvals = self._const_args(program, live)
        n_args = len(write) + 2 * len(used) + len(cvals) + 1 + nd * (1 + pattern.count("s"))
        if not self._fits(n_args):
            return None
        const_slots = tuple((j, d) for j, d in enumerate(program.const_dtypes) if n_in + j in live)
        stride_args = [[np.int64(sts[j + 1]) for _, sts in dims[::-1]] if p == "s" else None
                       for j, p in enumerate(pattern)]
        if "s" not in pattern:
            vf = vector_dtype(program, live) if n >= VECTOR_MIN else None
            mode = "v" if vf is not None else "c"
            key = ("fused", program.key, tuple(write), mode, pattern, alias)
            k = self._fused_kernel(key, f"fused_{mode}", partial(
                self._fused_source, program, live, write, used, pattern, cdecl, mode, 0, vf,
                alias))
            if mode == "v":
                L = 64
                grid, local = (-(-n // (LANES * L)) * L,), (L,)
            else:
                L = 256
                grid, local = (-(-n // L) * L,), (L,)
            return k, used, stride_args, const_slots, [np.int64(n)], grid, local
        sizes = [s for s, _ in dims[::-1]]  # innermost first
        # rows read with unit or zero inner stride (a bias row, a per-row statistic): eight
        # elements of a row per work-item; 'r'/'b' mark strided inputs of each kind
        inner = dims[-1][1][1:]  # each input's stride along the innermost dim
        wide = [p if p != "s" else {1: "r", 0: "b"}.get(st, "s") for p, st in zip(pattern, inner)]
        vf = vector_dtype(program, live) if sizes[0] >= LANES and "s" not in wide else None
        if vf is not None:
            pattern = tuple(wide)
        mode = "w" if vf is not None else "s"
        key = ("fused", program.key, tuple(write), mode, nd, pattern, alias)
        k = self._fused_kernel(key, f"fused_{mode}", partial(
            self._fused_source, program, live, write, used, pattern, cdecl, mode, nd, vf, alias))
        grid, local = self._strided_grid([-(-sizes[0] // LANES)] + sizes[1:] if vf else sizes)
        return k, used, stride_args, const_slots, [np.int64(s) for s in sizes], grid, local

    def _fused_source(self, program, live, write, used, pattern, cdecl, mode, nd, vf,
                      alias) -> str:
        p = program
        n_in = p.n_inputs
        cg = Codegen(p, live, str(self))
        names = [f"x{k}" for k in range(n_in)] + [f"c{j}" for j in range(len(p.consts))]
        body = cg.body(names)
        shared_o = {j for j, _ in alias}
        shared_in = {k for _, k in alias}
        params = [f"__global {rt.CL_TYPE[p.slot_dtype(s)]}* "
                  f"{'' if j in shared_o else 'restrict '}o{j}" for j, s in enumerate(write)]
        loads = []
        index = []
        for k, pat in zip(used, pattern):
            ty = rt.CL_TYPE[p.input_dtypes[k]]
            params += [f"__global const {ty}* {'' if k in shared_in else 'restrict '}in{k}",
                       f"const long f{k}"]
            if pat in "srb":
                params += [f"const long s{k}_{d}" for d in range(nd)]
                idx = " + ".join([f"f{k}"] + [f"i{d} * s{k}_{d}" for d in range(nd)])
            else:
                idx = f"f{k} + i" if pat == "c" else f"f{k}"
            index.append(idx)
            loads.append(f"const {ty} x{k} = in{k}[{idx}];")
        params += cdecl
        stores = [f"o{j}[i] = {names[s]};" for j, s in enumerate(write)]
        parts = dict(LOADS="\n    ".join(loads), BODY="\n    ".join(body),
                     STORES="\n    ".join(stores), COORDS="", N1="1")
        tail = "\n            "  # the element-wise tail of the 8-wide kernel
        parts.update(TLOADS=tail.join(loads), TBODY=tail.join(body), TSTORES=tail.join(stores))
        if mode in "sw":
            params += [f"const long n{d}" for d in range(nd)]
            coords = []
            if nd > 2:
                coords.append("long q = g2;")
                for d in range(2, nd - 1):
                    coords.append(f"const long i{d} = q % n{d}; q /= n{d};")
                coords.append(f"const long i{nd - 1} = q;")
            parts["COORDS"] = "\n    ".join(coords)
            parts["N1"] = "n1" if nd > 1 else "1"
        if mode in "vw":
            parts.update(self._vector_parts(program, live, write, used, pattern, index, vf))
        else:
            parts.update(VCONSTS="", VLOADS="", VBODY="", VSTORES="")
        header = self._fused_header(p, cg, "FUSED_" + mode.upper())
        return _render("fused.cl", HEADER=header, PARAMS=", ".join(params), **parts)

    def _vector_parts(self, program, live, write, used, pattern, index, vf) -> dict:
        """Eight elements i.. i+7 at once: inputs read contiguously ('c', 'r': vload8 from
        the index of element i) or one value broadcast ('z', 'b': splat)."""
        p = program
        n_in = p.n_inputs
        M = mask_type(vf)
        V = rt.CL_TYPE[vf] + "8"
        cg = Codegen(p, live, str(self), vf)
        consts, loads, stores = [], [], []
        names = [f"x{k}" for k in range(n_in)]
        for j, d in enumerate(p.const_dtypes):
            names.append(f"c{j}v")
            if n_in + j in live:
                consts.append(f"const {M} c{j}v = ({M})(c{j} ? -1 : 0);" if d is dt.bool_
                              else f"const {V} c{j}v = ({V})(c{j});")
        for k, pat, idx in zip(used, pattern, index):
            boolean = p.input_dtypes[k] is dt.bool_
            if pat in "cr":
                v = f"vload8(0, in{k} + {idx})"
                loads.append(f"const {M} x{k} = convert_{M}({v}) != ({M})0;" if boolean
                             else f"const {V} x{k} = {v};")
            else:
                loads.append(f"const {M} x{k} = ({M})(in{k}[{idx}] ? -1 : 0);" if boolean
                             else f"const {V} x{k} = ({V})(in{k}[{idx}]);")
        body = cg.body(names)
        for j, s in enumerate(write):
            val = names[s]
            if p.slot_dtype(s) is dt.bool_:
                val = f"convert_uchar8(-{val})"
            stores.append(f"vstore8({val}, 0, o{j} + i);")
        sep = "\n        "
        return dict(VCONSTS=sep.join(consts), VLOADS=sep.join(loads), VBODY=sep.join(body),
                    VSTORES=sep.join(stores))

    # ---------------------------------------------------------------- reduction
    def fused_reduce(self, program, inputs, shape: tuple, op: str, axes: tuple,
                     keepdims: bool) -> CLArray:
        check_reduce(str(self), program, op)
        shape = tuple(shape)
        inputs = list(inputs)
        axes = tuple(axes)
        ckey = self._checked(program, inputs, shape, "fused_reduce")
        s = program.outputs[0]
        if not axes or s < program.n_inputs:
            # nothing to fuse: the value is a view of an input, or nothing is reduced
            (v,) = self.fused_elementwise(program, inputs, shape)
            return self._reduce(op, v, axes, keepdims)
        d = program.slot_dtype(s)
        out_shape = reduced_shape(shape, axes, keepdims)
        R = numel(shape[a] for a in axes)
        nout = numel(out_shape)
        if nout == 0:
            return self._new(out_shape, d)
        if R == 0:
            if op == "sum":
                return self.full(out_shape, 0, d)
            raise ShapeError(f"{op}: reducing over a dim of size 0 of a tensor of shape "
                             f"{shape} has no identity; give a non-empty dim")
        # as in _fused_map: everything but buffers, offsets and constant values is planned once
        pkey = ("reduce", ckey, op, axes)
        plan = memo(self._rt.fused_plans, pkey,
                    lambda: self._reduce_plan(program, inputs, shape, op, axes, R, nout),
                    _PLAN_HIT)
        if plan is None:
            return Backend.fused_reduce(self, program, inputs, shape, op, axes, keepdims)
        kernel, used, stride_args, const_slots, tail, nchunks = plan
        args: list = []
        for k, sa in zip(used, stride_args):
            x = inputs[k]
            args += [x.buf, np.int64(x.layout.offset)]
            args += sa
        consts = program.consts
        args += [rt.scalar_arg(consts[j], dd) for j, dd in const_slots]
        args += tail
        if nchunks == 0:
            out = self._new(out_shape, d)
            self._launch_1d(kernel, nout, out.buf, *args)
            return out
        target = self._new(out_shape if nchunks == 1 else (nout, nchunks), d)
        self._run(kernel, (nout * nchunks * WG,), (WG,), target.buf, *args)
        if nchunks == 1:
            return target
        part = self._reduce(op, target, (1,), False)
        return CLArray(part.storage, Layout.contiguous(out_shape, part.layout.offset), d)

    def _reduce_plan(self, program, inputs, shape, op, axes, R: int, nout: int):
        """(kernel, used inputs, per-input stride arguments, live constants, trailing size
        arguments, chunks: 0 for the one-work-item-per-row kernel) of a fused_reduce launch,
        or None when it needs more arguments than the device takes."""
        s = program.outputs[0]
        live = live_slots(program, [s])
        used = [k for k in range(program.n_inputs) if k in live]
        lays = [broadcast_layout(inputs[k].layout, shape) for k in used]
        kept = [i for i in range(len(shape)) if i not in axes]
        outer = collapse(tuple(shape[i] for i in kept),
                         [tuple(lay.strides[i] for i in kept) for lay in lays])
        inner = collapse(tuple(shape[i] for i in axes),
                         [tuple(lay.strides[i] for i in axes) for lay in lays])
        kd, rd = len(outer), len(inner)
        cdecl, cvals = self._const_args(program, live)
        if not self._fits(4 + len(used) * (2 + kd + rd) + len(cvals) + kd + rd):
            return None
        n_in = program.n_inputs
        const_slots = tuple((j, d) for j, d in enumerate(program.const_dtypes) if n_in + j in live)
        stride_args = [[np.int64(sts[j]) for _, sts in outer] + [np.int64(sts[j]) for _, sts in inner]
                       for j in range(len(used))]
        sizes = [np.int64(n) for n, _ in outer] + [np.int64(n) for n, _ in inner]
        key = ("fused_reduce", program.key, s, op, kd, rd)

        def build():
            return self._reduce_source(program, live, s, used, op, kd, rd, cdecl)
        if R <= ROW_LIMIT or (nout >= 4096 and R <= CHUNK_MIN):
            k = self._fused_kernel(key, "fused_row", build)
            return k, used, stride_args, const_slots, sizes + [np.int64(R), np.int64(nout)], 0
        # the chunking of ReduceIndexOps._reduce, so that partial sums match it bit for bit
        nchunks = 1
        units = self._rt.max_compute_units * 4
        if nout < units:
            nchunks = max(1, min(-(-R // CHUNK_MIN), -(-units // nout)))
        chunk = -(-R // nchunks)
        nchunks = -(-R // chunk)
        k = self._fused_kernel(key, "fused_wg", build)
        return (k, used, stride_args, const_slots,
                sizes + [np.int64(R), np.int64(nchunks), np.int64(chunk)], nchunks)

    def _reduce_source(self, program, live, s, used, op, kd, rd, cdecl) -> str:
        p = program
        d = p.slot_dtype(s)
        T = rt.CL_TYPE[d]
        cg = Codegen(p, live, str(self))
        names = [f"x{k}" for k in range(p.n_inputs)] + [f"c{j}" for j in range(len(p.consts))]
        body = cg.body(names)
        params, pro, index = [], [], []
        if kd:
            pro.append("long oq = o;")
            for j in range(kd - 1, 0, -1):
                pro.append(f"const long k{j} = oq % ks{j}; oq /= ks{j};")
            pro.append("const long k0 = oq;")
        if rd > 1:
            index.append("long rq = r;")
            for j in range(rd - 1, 0, -1):
                index.append(f"const long q{j} = rq % rs{j}; rq /= rs{j};")
            index.append("const long q0 = rq;")
        elif rd == 1:
            index.append("const long q0 = r;")
        for k in used:
            ty = rt.CL_TYPE[p.input_dtypes[k]]
            params += [f"__global const {ty}* restrict in{k}", f"const long f{k}"]
            params += [f"const long a{k}_{j}" for j in range(kd)]
            params += [f"const long r{k}_{j}" for j in range(rd)]
            pro.append(f"const long b{k} = " + " + ".join(
                [f"f{k}"] + [f"k{j} * a{k}_{j}" for j in range(kd)]) + ";")
            idx = " + ".join([f"b{k}"] + [f"q{j} * r{k}_{j}" for j in range(rd)])
            index.append(f"const {ty} x{k} = in{k}[{idx}];")
        params += cdecl + [f"const long ks{j}" for j in range(kd)]
        params += [f"const long rs{j}" for j in range(rd)]
        header = self._fused_header(p, cg, "FUSED_REDUCE") + f"#define WG {WG}\n"
        sep = "\n        "
        return _render("fused_reduce.cl", HEADER=header, ACC=T, PARAMS=", ".join(params),
                       PROLOGUE="\n    ".join(pro), INDEX=sep.join(index), BODY=sep.join(body),
                       VALUE=f"({T})({names[s]})", IDENT=_identity(op, d),
                       COMBINE=_combine(op, d, "acc", "v"), COMBINE_AV=_combine(op, d, "a", "v"))


def _identity(op: str, d) -> str:
    T = rt.CL_TYPE[d]
    if op == "sum":
        return f"({T})0"
    if d.kind == 2:
        return f"({T})({'-' if op == 'max' else ''}INFINITY)"
    if d.kind == 0:
        return f"({T})({0 if op == 'max' else 1})"
    info = np.iinfo(d.np)
    sfx = "L" if d.itemsize == 8 else ""
    # the minimum of a signed type is written as (min + 1) - 1: its literal would overflow
    v = (f"({info.min + 1}{sfx} - 1)" if info.min else "0") if op == "max" else f"{info.max}{sfx}"
    return f"({T})({v})"


def _combine(op: str, d, a: str, b: str) -> str:
    T = rt.CL_TYPE[d]
    if op == "sum":
        return f"({T})({a} | {b})" if d.kind == 0 else f"({T})({a} + {b})"
    cmp = ">" if op == "max" else "<"
    pick = f"({a} {cmp} {b} ? {a} : {b})"
    if d.kind == 2:
        return f"(({a} != {a} || {b} != {b}) ? {a} + {b} : {pick})"
    return pick
