"""matmul, conv2d, pooling, softmax, layer_norm, gather, scatter_add and nll_loss of the WGPU
backend."""
from __future__ import annotations

import struct

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.backend_nn import _pool_out
from ...core.errors import DTypeError, ShapeError, UnsupportedError
from ...core.shape import broadcast_shapes, conv2d_output_hw, numel
from ..nll_dims import NLL_WG, REDUCTIONS, nll_dims
from .dtypes import I32_MAX, I32_MIN
from .runtime import kernel_source
from .tensor import WTensor, coalesce, new_tensor, run_map

_MAXD = 8
# register block of the matmul kernel: TM rows x 4*NV columns per invocation, 8x8 invocations
_TM, _NV = 16, 2


def _words(*vals) -> list:
    return [int(v) & 0xFFFFFFFF for v in vals]


def _pack(words: list) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def _f16(*ts) -> str:
    return "enable f16;" if any(t == "f16" for t in ts) else ""


def _matmul_unrolled(acc: str, vec: bool, avec: bool) -> dict:
    """The register-blocked parts of matmul.wgsl written out per register (see its comment)."""
    ind = " " * 4
    bases = [f"{ind}let ar{i} = ao + i32(min(row0 + {i}u, n - 1u)) * sa_n;" for i in range(_TM)]
    bases += [f"{ind}let bc{v} = col_index(col0 + {4 * v}u, m, sb_m, bo);" for v in range(_NV)]
    decl = [f"{ind}var c{i}_{v} = vec4<{acc}>();" for i in range(_TM) for v in range(_NV)]
    steps = 4 if avec else 1
    fma = [f"{ind}for (var kk = 0u; kk < K; kk = kk + {steps}u) {{"]
    if avec:
        fma += [f"{ind * 2}let a{i} = vec4<{acc}>(A[(ar{i} + i32(kk)) / 4]);" for i in range(_TM)]
    for s_ in range(steps):
        fma.append(f"{ind * 2}let bk{s_} = i32(kk + {s_}u) * sb_k;")
        for v in range(_NV):
            if vec:
                fma.append(f"{ind * 2}let b{v}_{s_} = vec4<{acc}>(B[(bc{v}.x + bk{s_}) / 4]);")
            else:
                fma.append(f"{ind * 2}let o{v}_{s_} = bc{v} + bk{s_};")
                fma.append(f"{ind * 2}let b{v}_{s_} = vec4<{acc}>({acc}(B[o{v}_{s_}.x]), "
                           f"{acc}(B[o{v}_{s_}.y]), {acc}(B[o{v}_{s_}.z]), {acc}(B[o{v}_{s_}.w]));")
        for i in range(_TM):
            a_s = f"a{i}[{s_}]" if avec else f"{acc}(A[ar{i} + i32(kk) * sa_k])"
            if not avec:
                fma.append(f"{ind * 2}let a{i} = {a_s};")
                a_s = f"a{i}"
            fma += [f"{ind * 2}c{i}_{v} = c{i}_{v} + {a_s} * b{v}_{s_};" for v in range(_NV)]
    fma.append(f"{ind}}}")
    stores = []
    for i in range(_TM):
        stores.append(f"{ind}if (row0 + {i}u < n) {{")
        stores += [f"{ind * 2}store4(obase + (row0 + {i}u) * m, row0 + {i}u, col0 + {4 * v}u, m, "
                   f"c{i}_{v});"
                   for v in range(_NV)]
        stores.append(f"{ind}}}")
    return {"BASES": "\n".join(bases), "ACC_DECL": "\n".join(decl), "LOOP": "\n".join(fma),
            "STORES": "\n".join(stores)}


class NNOps:
    # ---------------------------------------------------------------- matmul
    def matmul(self, a: WTensor, b: WTensor) -> WTensor:
        return self._matmul(a, b, None)

    def _matmul(self, a: WTensor, b: WTensor, epi) -> WTensor:
        """a @ b; with `epi` (fused_matmul.py) each result goes through the epilogue, which
        writes the program's outputs (epi.outputs, the first one bound as `out`)."""
        if a.dtype is not b.dtype:
            raise DTypeError(f"WGPU().matmul: dtypes {a.dtype.name} and {b.dtype.name} differ")
        if a.layout.ndim < 2 or b.layout.ndim < 2:
            raise ShapeError("WGPU().matmul: operands must be at least 2-D")
        (n, k), (k2, m) = a.shape[-2:], b.shape[-2:]
        if k != k2:
            raise ShapeError(f"WGPU().matmul: shapes {a.shape} and {b.shape} do not match "
                             f"(inner sizes {k} and {k2})")
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "matmul")
        out = new_tensor(self.rt, batch + (n, m), a.dtype) if epi is None else epi.outputs[0]
        nb = numel(batch)
        if out.layout.numel == 0:
            return out
        if k == 0 and epi is None:
            return self.full(batch + (n, m), 0, a.dtype)
        al = self._expand_to(a, batch + (n, k)).layout
        bl = self._expand_to(b, batch + (k, m)).layout
        bd = len(batch)
        bshp, (ast, bst) = coalesce(batch, [list(al.strides[:bd]), list(bl.strides[:bd])])
        if len(bshp) > _MAXD:
            return self.matmul(self.contiguous(a), self.contiguous(b))
        w = a.w
        rt = self.rt
        vec = (bl.strides[-1] == 1 and m % 4 == 0 and bl.offset % 4 == 0
               and bl.strides[-2] % 4 == 0 and all(s % 4 == 0 for s in bst))
        avec = (al.strides[-1] == 1 and k % 4 == 0 and al.offset % 4 == 0
                and al.strides[-2] % 4 == 0 and all(s % 4 == 0 for s in ast))
        key = ("matmul", a.dtype, vec, avec) + (epi.key if epi is not None else ())
        pipe = rt._pipelines.get(key)
        if pipe is None:
            parts = {"ENABLE": _f16(w.store), "TO": w.store,
                     "STORE_STMT": f"out[base + col + c] = {w.wrap('x')};", "EXTRA_BINDINGS": ""}
            if epi is not None:
                parts.update(epi.parts(w))
            pipe = rt.pipeline(key, lambda: rt.render(
                "matmul", TI=w.store, ACC=w.comp, TM=_TM, NV=_NV, TN=4 * _NV,
                TB=f"vec4<{w.store}>" if vec else w.store,
                TA=f"vec4<{w.store}>" if avec else w.store,
                **parts, **_matmul_unrolled(w.comp, vec, avec)),
                "rwrr" + (epi.kinds if epi is not None else ""))
        rows, cols = 8 * _TM, 8 * 4 * _NV
        lim = rt.max_groups
        for b0 in range(0, nb, lim):
            for r0 in range(0, n, rows * lim):
                for c0 in range(0, m, cols * lim):
                    words = _words(n, m, k, len(bshp), al.offset, bl.offset, r0, b0,
                                   al.strides[-2], al.strides[-1], bl.strides[-2],
                                   bl.strides[-1], c0, 0, 0, 0)
                    for arr in (bshp, ast, bst):
                        words += _words(*arr) + [1] * (_MAXD - len(arr))
                    bufs, keep = [out.st.buf, a.st.buf, b.st.buf], [out.st, a.st, b.st]
                    if epi is not None:
                        words += epi.words
                        bufs += epi.bufs
                        keep += epi.keep
                    grid = (min(-(-(m - c0) // cols), lim), min(-(-(n - r0) // rows), lim),
                            min(nb - b0, lim))
                    rt.dispatch(pipe, _pack(words), bufs, grid, keep=keep)
        return out

    # ---------------------------------------------------------------- convolution
    def conv2d(self, x, w, stride, padding, dilation, groups):
        if x.dtype is not w.dtype:
            raise DTypeError(f"WGPU().conv2d: dtypes {x.dtype.name} and {w.dtype.name} differ")
        N, C, H, W = x.shape
        O, Cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        Ho, Wo = conv2d_output_hw("WGPU().conv2d", x.shape, w.shape, stride, padding, dilation,
                                  groups)
        G, K, L = groups, Cg * kh * kw, Ho * Wo
        col = new_tensor(self.rt, (N, G, K, L), x.dtype)
        total = col.layout.numel
        if total:
            t = x.w.store
            key = ("im2col", x.dtype)
            pipe = self.rt._pipelines.get(key) or self.rt.pipeline(
                key, lambda: self.rt.render("im2col", ENABLE=_f16(t), T=t), "rwr")
            xl = x.layout
            meta = _pack(_words(total, G, Cg, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw, H, W,
                                xl.offset, *xl.strides))
            self.rt.dispatch(pipe, meta, [col.st.buf, x.st.buf],
                             self.rt.grid(-(-total // 256)), keep=[col.st, x.st])
        wm = self.reshape(w, (1, G, O // G, K))
        return self.reshape(self.matmul(wm, col), (N, O, Ho, Wo))

    # ---------------------------------------------------------------- pooling
    def _pool(self, entry, x, kernel, stride, padding, dilation, ceil_mode, extra=(0, 0)):
        N, C, H, W = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        if ph * 2 > kh or pw * 2 > kw:
            raise ShapeError(f"WGPU(): pool padding {padding} must be at most half the "
                             f"kernel {kernel}")
        Ho = _pool_out(H, kh, sh, ph, dh, ceil_mode)
        Wo = _pool_out(W, kw, sw, pw, dw, ceil_mode)
        out = new_tensor(self.rt, (N, C, Ho, Wo), x.dtype)
        idx = new_tensor(self.rt, (N, C, Ho, Wo), dt.int64) if entry == "max_pool" else None
        total = out.layout.numel
        if total == 0:
            return out, idx
        wt = x.w
        key = ("pool", entry, x.dtype)
        better = "(f_isnan(v) && !f_isnan(best)) || v > best" if wt.cls == "f" else "v > best"
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "pool", ENABLE=_f16(wt.store), COMMON=kernel_source("common"), T=wt.store,
            C=wt.comp, BETTER=better), "rwwr", entry)
        xl = x.layout
        meta = _pack(_words(total, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, dh, dw, *extra,
                            xl.offset, *xl.strides))
        self.rt.dispatch(pipe, meta, [out.st.buf, idx.st.buf if idx else None, x.st.buf],
                         self.rt.grid(-(-total // 256)), keep=[out.st, x.st] + ([idx.st] if idx else []))
        return out, idx

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        return self._pool("max_pool", x, kernel, stride, padding, dilation, ceil_mode)

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override=None):
        if not x.dtype.is_floating_point:
            raise DTypeError(f"WGPU().avg_pool2d: needs a floating tensor, got {x.dtype.name}")
        return self._pool("avg_pool", x, kernel, stride, padding, (1, 1), ceil_mode,
                          (1 if count_include_pad else 0, int(divisor_override or 0)))[0]

    # ---------------------------------------------------------------- row kernels
    def _rows(self, mode, x, axis, body, weight=None, bias=None, eps=0.0):
        if not x.dtype.is_floating_point:
            raise DTypeError(f"WGPU().{mode}: needs a floating tensor, got {x.dtype.name}")
        if not x.layout.is_contiguous():
            x = self.contiguous(x)
        shape = x.shape
        L = shape[axis] if shape else 1
        outer = numel(shape[:axis])
        inner = numel(shape[axis + 1:])
        out = new_tensor(self.rt, shape, x.dtype)
        if out.layout.numel == 0:
            return out
        wt = x.w
        key = ("rows", mode, x.dtype)
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "rows", ENABLE=_f16(wt.store), COMMON=kernel_source("common"), T=wt.store,
            BODY=body.replace("STORE(", "out[base + j * inner] = " + wt.store + "(")), "rwrrr")
        parts = []
        for p in (weight, bias):
            if p is not None and p.dtype is not x.dtype:
                raise DTypeError(f"WGPU().{mode}: parameter dtype {p.dtype.name} differs from "
                                 f"the input's {x.dtype.name}")
            parts.append(None if p is None else (p if p.layout.is_contiguous() and p.layout.offset == 0
                                                 else self.contiguous(p)))
        eps_bits = struct.unpack("<I", struct.pack("<f", float(eps)))[0]
        meta = _pack(_words(outer, L, inner, weight is not None, bias is not None, eps_bits,
                            x.layout.offset))
        bufs = [out.st.buf, x.st.buf] + [p.st.buf if p is not None else None for p in parts]
        self.rt.dispatch(pipe, meta, bufs, self.rt.grid(-(-(outer * inner) // 64)),
                         keep=[out.st, x.st] + [p.st for p in parts if p is not None])
        return out

    def softmax(self, x, axis):
        return self._rows("softmax", x, axis, _SOFTMAX.replace("RESULT", "exp(v - mx) / s"))

    def log_softmax(self, x, axis):
        return self._rows("log_softmax", x, axis, _SOFTMAX.replace("RESULT", "v - mx - log(s)"))

    def softmax_backward(self, g, y, axis, log):
        # one dispatch instead of the composition's four; y rides in the weight binding
        if g.shape != y.shape or g.dtype is not y.dtype or not g.shape:
            return Backend.softmax_backward(self, g, y, axis, log)
        body = _SOFTMAX_BW_LOG if log else _SOFTMAX_BW
        return self._rows("log_softmax_bw" if log else "softmax_bw", g, axis, body, weight=y)

    def layer_norm(self, x, normalized_ndim, weight, bias, eps):
        shape = x.shape
        nd = len(shape)
        lead = shape[:nd - normalized_ndim]
        y = self.reshape(x, lead + (numel(shape[nd - normalized_ndim:]),))
        y = self._rows("layer_norm", y, len(lead), _LAYER_NORM,
                       None if weight is None else self.reshape(weight, (numel(weight.shape),)),
                       None if bias is None else self.reshape(bias, (numel(bias.shape),)), eps)
        return self.reshape(y, shape)

    # ---------------------------------------------------------------- indexing
    def _index_meta(self, n, idx, axis, t_lay, src_off=0, src_strides=()):
        il = idx.layout
        nd = il.ndim
        if nd > _MAXD:
            raise UnsupportedError(f"WGPU(): gather/scatter support up to {_MAXD} dims, got {nd}")
        pad = [1] * (_MAXD - nd)
        words = _words(n, nd, axis, t_lay.offset, il.offset, src_off, 0, 0)
        words += _words(*il.shape) + pad + _words(*t_lay.strides) + pad
        words += _words(*il.strides) + pad + _words(*src_strides) + [1] * (_MAXD - len(src_strides))
        return _pack(words)

    def gather(self, x, axis, index):
        if index.dtype not in (dt.int64, dt.int32):
            raise DTypeError(f"WGPU().gather: index must be int64, got {index.dtype.name}")
        out = new_tensor(self.rt, index.shape, x.dtype)
        n = out.layout.numel
        if n == 0:
            return out
        if x.layout.ndim == 0:
            return self.reshape(x, index.shape)
        t = x.w.store
        key = ("gather", x.dtype)
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "index", ENABLE=_f16(t), TO=t, TS=t, BODY="out[i] = src[o.tgt];"), "rwrr")
        meta = self._index_meta(n, index, axis, x.layout)
        self.rt.dispatch(pipe, meta, [out.st.buf, index.st.buf, x.st.buf],
                         self.rt.grid(-(-n // 256)), keep=[out.st, index.st, x.st])
        return out

    def scatter_add(self, x, axis, index, src):
        if x.dtype is not src.dtype:
            raise DTypeError(f"WGPU().scatter_add: x is {x.dtype.name}, src {src.dtype.name}")
        if x.dtype is dt.float16:
            # atomics are 32-bit: accumulate in float32
            f = dt.float32
            return self.cast(self.scatter_add(self.cast(x, f), axis, index, self.cast(src, f)),
                             dt.float16)
        out = self.contiguous(x)
        n = index.layout.numel
        if n == 0 or x.layout.ndim == 0:
            return out if n == 0 else self.add(x, self.sum(src, tuple(range(src.layout.ndim)), False))
        w = x.w
        key = ("scatter_add", x.dtype)
        if w.cls == "f":
            body = ("let v = src[o.sx];\n    var old = atomicLoad(&out[o.tgt]);\n    loop {\n"
                    "        let r = atomicCompareExchangeWeak(&out[o.tgt], old, "
                    "bitcast<u32>(bitcast<f32>(old) + v));\n"
                    "        if (r.exchanged) { break; }\n        old = r.old_value;\n    }")
            to = "atomic<u32>"
        else:
            body = "atomicAdd(&out[o.tgt], src[o.sx]);"
            to = f"atomic<{w.comp}>"
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "index", ENABLE="", TO=to, TS=w.store, BODY=body), "rwrr")
        sl = src.layout
        meta = self._index_meta(n, index, axis, out.layout, sl.offset, sl.strides)
        self.rt.dispatch(pipe, meta, [out.st.buf, index.st.buf, src.st.buf],
                         self.rt.grid(-(-n // 256)), keep=[out.st, index.st, src.st])
        if x.dtype in (dt.int8, dt.int16, dt.uint8, dt.bool_):
            # the 32-bit sums wrap to the narrow type on this copy
            wrapped = new_tensor(self.rt, out.shape, x.dtype)
            run_map(self.rt, self._f16, "v0", wrapped, [out])
            return wrapped
        return out

    # ---------------------------------------------------------------- nll_loss
    def _nll_run(self, entry: str, logp, target, weight, ignore_index: int, reduction: str,
                 C: int, S: int, bufs: list, keep: list, grid: tuple, g=None, total: int = 0):
        """Dispatch entry point `entry` of nll.wgsl (one pipeline per entry and dtype, all with
        the bindings out, bounds, logp, target, weight, g; unused ones are None)."""
        t = logp.w.store
        key = ("nll", entry, logp.dtype)
        pipe = self.rt._pipelines.get(key) or self.rt.pipeline(key, lambda: self.rt.render(
            "nll", ENABLE=_f16(t), COMMON=kernel_source("common"), T=t), "rwwrrrr", entry)
        # targets are i32 on WGPU: an ignore_index outside i32 equals no target
        fits = I32_MIN <= ignore_index <= I32_MAX
        meta = _pack(_words(target.layout.numel, C, S, logp.layout.offset, target.layout.offset,
                            weight.layout.offset if weight is not None else 0,
                            weight is not None, ignore_index if fits else 0, fits,
                            REDUCTIONS[reduction], g.layout.offset if g is not None else 0,
                            total))
        self.rt.dispatch(pipe, meta, bufs, grid, keep=keep)

    def nll_loss(self, logp, target, weight, ignore_index: int, reduction: str):
        """One dispatch (loss, weight sum and the targets' bounds in one work-group) where
        nll_dims allows; the protocol's composition otherwise."""
        cs = nll_dims(logp, target, weight, reduction)
        if cs is None:
            return Backend.nll_loss(self, logp, target, weight, ignore_index, reduction)
        C, S = cs
        out = new_tensor(self.rt, target.shape if reduction == "none" else (), logp.dtype)
        bounds = new_tensor(self.rt, (2,), dt.int64)
        wb = [weight.st.buf if weight is not None else None]
        keep = [out.st, bounds.st, logp.st, target.st]
        keep += [weight.st] if weight is not None else []
        self._nll_run("nll_loss", logp, target, weight, int(ignore_index), reduction, C, S,
                      [out.st.buf, bounds.st.buf, logp.st.buf, target.st.buf] + wb + [None],
                      keep, (1, 1, 1))
        self._check_nll_bounds(bounds, C, ignore_index)
        return out

    def nll_loss_backward(self, g, logp, target, weight, ignore_index: int, reduction: str):
        """One dispatch writing the whole gradient; under 'mean' each work-group sums the
        weights itself (nll.wgsl), on a grid of at most max(C, 64) work-groups."""
        cs = nll_dims(logp, target, weight, reduction, g)
        if cs is None:
            return Backend.nll_loss_backward(self, g, logp, target, weight, ignore_index,
                                             reduction)
        C, S = cs
        grad = new_tensor(self.rt, logp.shape, logp.dtype)
        total = grad.layout.numel
        nwg = min(-(-total // NLL_WG), self.rt.max_groups)
        if reduction == "mean":
            nwg = min(nwg, max(C, 64))
        wb = [weight.st.buf if weight is not None else None]
        keep = [grad.st, target.st, g.st] + ([weight.st] if weight is not None else [])
        self._nll_run("nll_grad", logp, target, weight, int(ignore_index), reduction, C, S,
                      [grad.st.buf, None, None, target.st.buf] + wb + [g.st.buf], keep,
                      (nwg, 1, 1), g, total)
        return grad


_SOFTMAX = """var mx = -f_inf();
    for (var j = 0u; j < L; j = j + 1u) { mx = f_max(mx, f32(x[xo + base + j * inner])); }
    var s = 0.0;
    for (var j = 0u; j < L; j = j + 1u) { s = s + exp(f32(x[xo + base + j * inner]) - mx); }
    for (var j = 0u; j < L; j = j + 1u) {
        let v = f32(x[xo + base + j * inner]);
        STORE(RESULT);
    }"""

# gradients of softmax / log_softmax rows: x holds the incoming gradient g, wt the forward's
# output y (same dense layout): y * (g - sum(g * y)), or g - exp(y) * sum(g)
_SOFTMAX_BW = """var s = 0.0;
    for (var j = 0u; j < L; j = j + 1u) {
        s = s + f32(x[xo + base + j * inner]) * f32(wt[base + j * inner]);
    }
    for (var j = 0u; j < L; j = j + 1u) {
        let yv = f32(wt[base + j * inner]);
        STORE(yv * (f32(x[xo + base + j * inner]) - s));
    }"""

_SOFTMAX_BW_LOG = """var s = 0.0;
    for (var j = 0u; j < L; j = j + 1u) { s = s + f32(x[xo + base + j * inner]); }
    for (var j = 0u; j < L; j = j + 1u) {
        STORE(f32(x[xo + base + j * inner]) - exp(f32(wt[base + j * inner])) * s);
    }"""

_LAYER_NORM = """var mean = 0.0;
    for (var j = 0u; j < L; j = j + 1u) { mean = mean + f32(x[xo + base + j * inner]); }
    mean = mean / f32(L);
    var var_ = 0.0;
    for (var j = 0u; j < L; j = j + 1u) {
        let d = f32(x[xo + base + j * inner]) - mean;
        var_ = var_ + d * d;
    }
    let rstd = 1.0 / sqrt(var_ / f32(L) + bitcast<f32>(M(5)));
    for (var j = 0u; j < L; j = j + 1u) {
        var y = (f32(x[xo + base + j * inner]) - mean) * rstd;
        if (M(3) != 0u) { y = y * f32(wt[j]); }
        if (M(4) != 0u) { y = y + f32(bs[j]); }
        STORE(y);
    }"""
