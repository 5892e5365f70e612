"""matmul, conv2d, pooling, softmax, layer norm and nll_loss of the OpenCL backend (matmul.cl, nn.cl,
nll.cl)."""
from __future__ import annotations

import numpy as np

from ...core import dtype as dt
from ...core.backend import Backend
from ...core.memo import memo
from ...core.backend_nn import _pool_out
from ...core.errors import DTypeError, ShapeError, UnsupportedError
from ...core.shape import broadcast_shapes, conv2d_output_hw, numel
from ..nll_dims import NLL_WG, REDUCTIONS, nll_dims
from ..strided import Layout
from . import runtime as rt
from .array import CLArray, broadcast_layout, collapse

WG = 64
_ACC = {"bool": "int", "uint8": "int", "int8": "int", "int16": "int", "int32": "int",
        "int64": "long", "float16": "float", "float32": "float", "float64": "double"}


def _vec16(values) -> np.ndarray:
    out = np.zeros(16, np.int64)
    out[:len(values)] = values
    return out


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _pair(v, name):
    if len(v) != 2:
        raise ShapeError(f"{name} must have two values (h, w), got {tuple(v)}")
    return int(v[0]), int(v[1])




class NNOps:
    """Mixin of OpenCL: linear algebra and the accelerated neural-network ops."""

    def matmul_tiles(self, d, nt: bool) -> dict:
        """Register-block sizes for this device and dtype: TM rows x VW columns per work-item
        (NN), or TM x TN outputs with vectors of VW along k (NT). Chosen by measurement with
        bench/opencl_ops.py on PoCL (AVX2: 6 x 16 float32, ~0.5x OpenBLAS per core); an
        AVX-512 CPU (preferred width 16) takes 8 x 16, as MEASUREMENTS.md found. NT: 4 x 2
        outputs of one native vector each (8 accumulators, 4 + 1 operand vectors: AVX2's 16
        registers), in 4 x 4 work-groups; 6 x 4 spilled and ran 1.3-1.8x slower than this
        (float32 and float64 swept on 64x784x128, 256x1024x512, 128^3)."""
        # worked out once: each device attribute read is a driver call (~µs on every matmul)
        return memo(self._rt.matmul_tiles, (d, nt), lambda: self._matmul_tiles(d, nt))

    def _matmul_tiles(self, d, nt: bool) -> dict:
        dev = self._rt.device
        if self._rt.is_cpu:
            pref = max(4, dev.preferred_vector_width_double if d.itemsize == 8
                       else dev.preferred_vector_width_float)
            if nt:
                return {"TM": 4, "TN": 2, "VW": min(16, pref), "local": (4, 4, 1)}
            if pref >= 16:
                return {"TM": 8, "VW": 16, "local": (4, 4, 1)}
            return {"TM": 6, "VW": min(16, 2 * pref), "local": (4, 4, 1)}
        return {"TM": 4, "TN": 4, "VW": 4, "local": (16, 4, 1)}

    def _matmul_kernel(self, d, nt: bool, gather: bool, tiles: dict, epi=None):
        defs = (f"#define ACC {_ACC[d.name]}\n#define TM {tiles['TM']}\n#define VW {tiles['VW']}\n"
                f"#define TN {tiles.get('TN', 1)}\n" + ("#define GATHER_B 1\n" if gather else ""))
        name = "matmul_nt" if nt else "matmul_nn"
        if epi is not None:
            return epi.kernel(self, d, defs, name)

        def source():
            return self._header(d) + defs + self._programs.source("matmul.cl")
        key = ("matmul", d.name, defs)
        return self._kernel(key, name, source)

    def matmul(self, a: CLArray, b: CLArray) -> CLArray:
        return self._matmul(a, b, None)

    def _matmul(self, a: CLArray, b: CLArray, epi) -> CLArray:
        """a @ b; with `epi` (fused_matmul.py) the kernel hands each result to the epilogue,
        which writes the program's outputs (epi.outputs), and nothing is returned.
        Everything but buffers and offsets is planned once per (dtypes, layouts, epilogue):
        the host side of a launch is the critical path of a step on PoCL."""
        la, lb = a.layout, b.layout
        pkey = (a.dtype, b.dtype, la.shape, la.strides, lb.shape, lb.strides,
                None if epi is None else epi.key)
        plan = memo(self._rt.matmul_plans, pkey, lambda: self._matmul_plan(a, b, epi))
        kind, out_shape = plan[0], plan[1]
        d = a.dtype
        if kind == "zeros":
            return self.full(out_shape, 0, d)
        out = self._new(out_shape, d) if epi is None else epi.outputs[0]
        if kind == "empty":
            return out
        k, g, loc, sc, mid = plan[2:]
        self._run(k, g, loc, out.buf, np.int64(out.layout.offset), *sc,
                  a.buf, np.int64(la.offset), mid[0], mid[1],
                  b.buf, np.int64(lb.offset), *mid[2:],
                  *(epi.args if epi is not None else ()))
        return out

    def _matmul_plan(self, a: CLArray, b: CLArray, epi) -> tuple:
        """('empty' | 'zeros', output shape) or ('run', output shape, kernel, global size,
        local size, output strides, the arguments after each operand's offset)."""
        d = a.dtype
        if b.dtype is not d:
            raise DTypeError(f"matmul: operands have dtypes {d.name} and {b.dtype.name}; cast first")
        la, lb = a.layout, b.layout
        if la.ndim < 2 or lb.ndim < 2:
            raise ShapeError(f"matmul: the backend needs operands with at least 2 dims, got "
                             f"{la.shape} and {lb.shape}")
        N, K = la.shape[-2:]
        K2, M = lb.shape[-2:]
        if K != K2:
            raise ShapeError(f"matmul: shapes {la.shape} and {lb.shape} do not match "
                             f"(inner sizes {K} and {K2})")
        batch = broadcast_shapes(la.shape[:-2], lb.shape[:-2], "matmul")
        out_shape = batch + (N, M)
        if numel(out_shape) == 0:
            return ("empty", out_shape)
        if K == 0 and epi is None:
            return ("zeros", out_shape)
        la = broadcast_layout(la, batch + (N, K))
        lb = broadcast_layout(lb, batch + (K, M))
        # the output is always a new dense array (the epilogue's outputs too)
        lc = Layout.contiguous(out_shape)
        nb = len(batch)
        bdims = collapse(batch, [la.strides[:nb], lb.strides[:nb], lc.strides[:nb]])[::-1]
        if len(bdims) > 16:
            raise UnsupportedError("matmul: more than 16 non-mergeable batch dims")
        sa_n, sa_k = la.strides[-2:]
        sb_k, sb_m = lb.strides[-2:]
        if M == 1:
            sb_m = 1
        if K == 1:  # only k = 0 is read
            sa_k = sb_k = 1
        nt = sb_m != 1 and sa_k == 1 and sb_k == 1
        gather = sb_m != 1 and not nt
        tiles = self.matmul_tiles(d, nt)
        k = self._matmul_kernel(d, nt, gather, tiles, epi)
        cols = _ceil(M, tiles["TN"] if nt else tiles["VW"])
        rows = _ceil(N, tiles["TM"])
        loc = tiles["local"]
        g = (_ceil(cols, loc[0]) * loc[0], _ceil(rows, loc[1]) * loc[1], numel(batch))
        sc = (np.int64(lc.strides[-2]), np.int64(lc.strides[-1]))
        mid = (np.int64(sa_n), np.int64(sa_k), np.int64(sb_k), np.int64(sb_m),
               np.int64(N), np.int64(K), np.int64(M),
               _vec16([s for s, _ in bdims]), _vec16([st[0] for _, st in bdims]),
               _vec16([st[1] for _, st in bdims]), _vec16([st[2] for _, st in bdims]),
               np.int32(len(bdims)))
        return ("run", out_shape, k, g, (loc[0], loc[1], 1), sc, mid)

    # ---------------------------------------------------------------- int8
    def int8_matmul(self, a: CLArray, b: CLArray) -> CLArray:
        sa, sb = a.layout.shape, b.layout.shape
        if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0]:
            return Backend.int8_matmul(self, a, b)   # its matmul names the shape problem
        (n, k), m = sa, sb[1]
        out = self._new((n, m), dt.int32)
        if n == 0 or m == 0:
            return out
        a8, ra = self._int8_rows(a)
        b8, rb = self._int8_rows(self.permute(b, (1, 0)))
        tm, tn = 4, 2
        loc = (4, 4, 1)
        g = (_ceil(_ceil(m, tn), loc[0]) * loc[0], _ceil(_ceil(n, tm), loc[1]) * loc[1], 1)
        at, bt = rt.CL_TYPE[a8.dtype], rt.CL_TYPE[b8.dtype]

        def source():
            return (f"#define TM {tm}\n#define TN {tn}\n#define AT {at}\n#define BT {bt}\n"
                    + self._programs.source("int8.cl"))
        kernel = self._kernel(("int8_matmul", tm, tn, at, bt), "int8_matmul_nt", source)
        self._run(kernel, g, loc, out.buf, a8.buf, np.int64(a8.layout.offset), np.int64(ra),
                  b8.buf, np.int64(b8.layout.offset), np.int64(rb),
                  np.int64(n), np.int64(k), np.int64(m))
        return out

    def _int8_rows(self, x: CLArray) -> tuple:
        """(x's codes as int8 or int32 with unit stride along dim 1, its row stride): x itself
        when it is laid out so (a quantized weight stored for this), else a dense copy
        (int32: PoCL casts to int32 ~3x faster than to int8)."""
        lay = x.layout
        if x.dtype in (dt.int8, dt.int32) and (lay.strides[1] == 1 or lay.shape[1] <= 1):
            return x, lay.strides[0]
        # a cast writes a new dense array
        y = self._contiguous(x) if x.dtype in (dt.int8, dt.int32) else self.cast(x, dt.int32)
        return y, y.layout.shape[1]

    # ---------------------------------------------------------------- conv and pooling
    def _nn_kernel(self, d, name: str):
        def source():
            return (self._header(d) + f"#define WG {WG}\n"
                    + self._programs.source("rows.cl", "nn.cl"))
        return self._kernel(("nn", d.name), name, source)

    def conv2d(self, x: CLArray, w: CLArray, stride: tuple, padding: tuple, dilation: tuple,
               groups: int) -> CLArray:
        if x.layout.ndim != 4 or w.layout.ndim != 4:
            raise ShapeError(f"conv2d: expected x (N, C, H, W) and w (O, C/groups, kh, kw), got "
                             f"{x.layout.shape} and {w.layout.shape}")
        if w.dtype is not x.dtype:
            raise DTypeError(f"conv2d: input is {x.dtype.name} but weight is {w.dtype.name}")
        N, C, H, W = x.layout.shape
        O, Cg, kh, kw = w.layout.shape
        (sh, sw), (ph, pw), (dh, dw) = (_pair(stride, "stride"), _pair(padding, "padding"),
                                        _pair(dilation, "dilation"))
        G = int(groups)
        Ho, Wo = conv2d_output_hw("conv2d", x.layout.shape, w.layout.shape, (sh, sw), (ph, pw),
                                  (dh, dw), G)
        if kh == kw == 1 and sh == sw == 1 and ph == pw == 0:
            col = self.reshape(x, (N, G, Cg, H * W))
        else:
            colbuf = self._new((N, C * kh * kw, Ho * Wo), x.dtype)
            if colbuf.layout.numel:
                sx = x.layout.strides
                L = 64
                self._run(self._nn_kernel(x.dtype, "im2col"),
                          (_ceil(Ho * Wo, L) * L, C * kh * kw, N), (L, 1, 1),
                          colbuf.buf, x.buf, np.int64(x.layout.offset), np.array(sx, np.int64),
                          *(np.int32(v) for v in (C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)))
            col = self.reshape(colbuf, (N, G, Cg * kh * kw, Ho * Wo))
        wm = self.reshape(w, (1, G, O // G, Cg * kh * kw))
        return self.reshape(self.matmul(wm, col), (N, O, Ho, Wo))

    def _pool_setup(self, x: CLArray, name: str):
        if x.layout.ndim != 4:
            raise ShapeError(f"{name}: expected an (N, C, H, W) input, got {x.layout.shape}")
        return x.layout.shape

    def max_pool2d(self, x: CLArray, kernel: tuple, stride: tuple, padding: tuple,
                   dilation: tuple, ceil_mode: bool):
        N, C, H, W = self._pool_setup(x, "max_pool2d")
        (kh, kw), (sh, sw) = _pair(kernel, "kernel_size"), _pair(stride, "stride")
        (ph, pw), (dh, dw) = _pair(padding, "padding"), _pair(dilation, "dilation")
        if ph * 2 > kh or pw * 2 > kw:
            raise ShapeError(f"max_pool2d: padding ({ph}, {pw}) must be at most half the kernel "
                             f"size ({kh}, {kw})")
        Ho = _pool_out(H, kh, sh, ph, dh, ceil_mode)
        Wo = _pool_out(W, kw, sw, pw, dw, ceil_mode)
        out = self._new((N, C, Ho, Wo), x.dtype)
        ind = self._new((N, C, Ho, Wo), dt.int64)
        if out.layout.numel:
            L = 64
            self._run(self._nn_kernel(x.dtype, "max_pool2d"), (_ceil(Ho * Wo, L) * L, N * C), (L, 1),
                      out.buf, ind.buf, x.buf, np.int64(x.layout.offset),
                      np.array(x.layout.strides, np.int64),
                      *(np.int32(v) for v in (C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo)))
        return out, ind

    def avg_pool2d(self, x: CLArray, kernel: tuple, stride: tuple, padding: tuple,
                   ceil_mode: bool, count_include_pad: bool, divisor_override=None):
        N, C, H, W = self._pool_setup(x, "avg_pool2d")
        if x.dtype.kind != 2:
            raise DTypeError(f"avg_pool2d needs a floating tensor, got {x.dtype.name}; cast first")
        (kh, kw), (sh, sw) = _pair(kernel, "kernel_size"), _pair(stride, "stride")
        ph, pw = _pair(padding, "padding")
        if ph * 2 > kh or pw * 2 > kw:
            raise ShapeError(f"avg_pool2d: padding ({ph}, {pw}) must be at most half the kernel "
                             f"size ({kh}, {kw})")
        Ho = _pool_out(H, kh, sh, ph, 1, ceil_mode)
        Wo = _pool_out(W, kw, sw, pw, 1, ceil_mode)
        out = self._new((N, C, Ho, Wo), x.dtype)
        if out.layout.numel:
            L = 64
            self._run(self._nn_kernel(x.dtype, "avg_pool2d"), (_ceil(Ho * Wo, L) * L, N * C), (L, 1),
                      out.buf, x.buf, np.int64(x.layout.offset), np.array(x.layout.strides, np.int64),
                      *(np.int32(v) for v in (C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo,
                                              int(bool(count_include_pad)),
                                              int(divisor_override or 0))))
        return out

    # ---------------------------------------------------------------- row ops
    @staticmethod
    def _row_args(axis: int, arrays: list) -> tuple:
        """(R, nrows, per array (buffer-or-None, offset, outer strides, stride along axis),
        outer sizes, outer ndim) of a row problem along axis over same-shaped arrays: the
        other dims are collapsed where every array walks them alike."""
        shape = arrays[0].layout.shape
        kept = [i for i in range(len(shape)) if i != axis]
        outer = collapse(tuple(shape[i] for i in kept),
                         [tuple(a.layout.strides[i] for i in kept) for a in arrays])[::-1]
        R = shape[axis]
        per = [(np.int64(a.layout.offset), _vec16([st[k] for _, st in outer]),
                np.int64(a.layout.strides[axis])) for k, a in enumerate(arrays)]
        return R, numel(shape) // R, per, _vec16([s for s, _ in outer]), np.int32(len(outer))

    @staticmethod
    def _item_per_row(R: int, nrows: int) -> bool:
        # one work-item per row pays for short rows or many of them; else a work-group each
        return R <= 256 or nrows >= 4096

    def _softmax(self, x: CLArray, axis: int, log: bool) -> CLArray:
        d = x.dtype
        if d.kind != 2:
            raise DTypeError(f"{'log_' if log else ''}softmax needs a floating tensor, got "
                             f"{d.name}; cast first")
        lay = x.layout
        out = self._new(lay.shape, d)
        if lay.numel == 0:
            return out
        if lay.ndim == 0:
            return self.full((), 0.0 if log else 1.0, d)
        R, nrows, ((xo, xst, xs), (_, ost, os)), osh, ond = self._row_args(axis, [x, out])
        args = (out.buf, ost, os, x.buf, xo, xst, xs, osh, ond, np.int64(R))
        if self._item_per_row(R, nrows):
            self._launch_1d(self._nn_kernel(d, "softmax_row"), nrows, *args, np.int64(nrows),
                            np.int32(log))
        else:
            self._run(self._nn_kernel(d, "softmax_wg"), (nrows * WG,), (WG,), *args, np.int32(log))
        return out

    def softmax(self, x, axis: int):
        return self._softmax(x, axis, False)

    def softmax_backward(self, g: CLArray, y: CLArray, axis: int, log: bool) -> CLArray:
        """One launch where the forward takes one work-item per row; the protocol's
        composition (4 launches) otherwise."""
        ly = y.layout
        d = y.dtype
        if (g.dtype is not d or d.kind != 2 or g.layout.shape != ly.shape or ly.ndim == 0
                or ly.numel == 0 or not self._item_per_row(ly.shape[axis],
                                                             ly.numel // ly.shape[axis])):
            return Backend.softmax_backward(self, g, y, axis, log)
        out = self._new(ly.shape, d)
        R, nrows, ((go, gst, gs), (yo, yst, ys), (_, ost, os)), osh, ond = \
            self._row_args(axis, [g, y, out])
        self._launch_1d(self._nn_kernel(d, "softmax_bw_row"), nrows, out.buf, ost, os,
                        g.buf, go, gst, gs, y.buf, yo, yst, ys, osh, ond, np.int64(R),
                        np.int64(nrows), np.int32(log))
        return out

    def log_softmax(self, x, axis: int):
        return self._softmax(x, axis, True)

    # ---------------------------------------------------------------- nll_loss
    def _nll_kernel(self, d, name: str):
        def source():
            return self._header(d) + f"#define WG {NLL_WG}\n" + self._programs.source("nll.cl")
        return self._kernel(("nll", d.name), name, source)

    def nll_loss(self, logp, target, weight, ignore_index: int, reduction: str):
        """One kernel (loss, weight sum and the targets' bounds in one work-group) where
        nll_dims allows; the protocol's composition otherwise."""
        cs = nll_dims(logp, target, weight, reduction)
        if cs is None:
            return Backend.nll_loss(self, logp, target, weight, ignore_index, reduction)
        C, S = cs
        d = logp.dtype
        n = target.layout.numel
        out = self._new(target.layout.shape if reduction == "none" else (), d)
        bounds = self._new((2,), dt.int64)
        w = weight if weight is not None else logp
        self._run(self._nll_kernel(d, "nll_loss_wg"), (NLL_WG,), (NLL_WG,), out.buf, bounds.buf,
                  logp.buf, np.int64(logp.layout.offset), target.buf,
                  np.int64(target.layout.offset), w.buf, np.int64(w.layout.offset),
                  np.int32(weight is not None), np.int64(n), np.int64(C), np.int64(S),
                  np.int64(ignore_index), np.int32(REDUCTIONS[reduction]))
        self._check_nll_bounds(bounds, C, ignore_index)
        return out

    def nll_loss_backward(self, g, logp, target, weight, ignore_index: int, reduction: str):
        """One kernel writing the whole gradient (plus one for the weight sum under 'mean')."""
        cs = nll_dims(logp, target, weight, reduction, g)
        if cs is None:
            return Backend.nll_loss_backward(self, g, logp, target, weight, ignore_index,
                                             reduction)
        C, S = cs
        d = logp.dtype
        n = target.layout.numel
        w = weight if weight is not None else logp
        wargs = (w.buf, np.int64(w.layout.offset), np.int32(weight is not None))
        tgt = (target.buf, np.int64(target.layout.offset))
        div = self._new((1,), d)
        if reduction == "mean":
            self._run(self._nll_kernel(d, "nll_weight_sum"), (NLL_WG,), (NLL_WG,), div.buf, *tgt,
                      *wargs, np.int64(n), np.int64(C), np.int64(ignore_index))
        grad = self._new(logp.layout.shape, d)
        total = logp.layout.numel
        self._launch_1d(self._nll_kernel(d, "nll_grad"), total, grad.buf, g.buf,
                        np.int64(g.layout.offset), *tgt, *wargs, div.buf, np.int64(C),
                        np.int64(S), np.int64(total), np.int64(ignore_index),
                        np.int32(REDUCTIONS[reduction]))
        return grad

    def layer_norm(self, x: CLArray, normalized_ndim: int, weight, bias, eps: float) -> CLArray:
        d = x.dtype
        if d.kind != 2:
            raise DTypeError(f"layer_norm needs a floating tensor, got {d.name}; cast first")
        lay = x.layout
        nd = lay.ndim
        k = int(normalized_ndim)
        if not 0 < k <= nd:
            raise ShapeError(f"layer_norm: cannot normalise the last {k} dims of a tensor of "
                             f"shape {lay.shape}")
        norm_shape = lay.shape[nd - k:]
        for name, p in (("weight", weight), ("bias", bias)):
            if p is not None and (p.layout.shape != norm_shape or p.dtype is not d):
                raise ShapeError(f"layer_norm: {name} must be {d.name} of shape {norm_shape}, got "
                                 f"{p.dtype.name} {p.layout.shape}")
        out = self._new(lay.shape, d)
        R = numel(norm_shape)
        nrows = numel(lay.shape[:nd - k])
        if lay.numel == 0:
            return out
        outer = collapse(lay.shape[:nd - k], [lay.strides[:nd - k]])[::-1]
        zero = (0,) * k
        wl = weight.layout if weight is not None else None
        bl = bias.layout if bias is not None else None
        inner = collapse(norm_shape, [lay.strides[nd - k:], wl.strides if wl else zero,
                                      bl.strides if bl else zero])[::-1]
        if len(outer) > 16 or len(inner) > 16:
            raise UnsupportedError("layer_norm: more than 16 non-mergeable dims")
        self._run(self._nn_kernel(d, "layer_norm_wg"), (nrows * WG,), (WG,),
                  out.buf, x.buf, np.int64(lay.offset), _vec16([st[0] for _, st in outer]),
                  _vec16([st[0] for _, st in inner]), _vec16([s for s, _ in outer]),
                  np.int32(len(outer)), _vec16([s for s, _ in inner]), np.int32(len(inner)),
                  np.int64(R),
                  weight.buf if weight is not None else x.buf,
                  np.int64(wl.offset if wl else 0), _vec16([st[1] for _, st in inner]),
                  np.int32(weight is not None),
                  bias.buf if bias is not None else x.buf,
                  np.int64(bl.offset if bl else 0), _vec16([st[2] for _, st in inner]),
                  np.int32(bias is not None), d.np.type(eps))
        return out
