"""Reductions (sum/max/min over any axes, argmax/argmin) and indexing (gather, scatter_add)
of the OpenCL backend; kernels in reduce.cl, rows.cl and index.cl."""
from __future__ import annotations

import numpy as np

from ...core import dtype as dt
from ...core.errors import DTypeError, ShapeError, UnsupportedError
from ...core.shape import numel, reduced_shape
from ..strided import Layout
from .array import CLArray, collapse

WG = 64
# rows up to this long are reduced by one work-item each; longer ones by a work-group tree
ROW_LIMIT = 256
# when there are few output rows, long rows are cut into chunks of at least this many
# elements so that every compute unit gets work; partial results are reduced again
CHUNK_MIN = 4096


def _vec16(values) -> np.ndarray:
    out = np.zeros(16, np.int64)
    out[:len(values)] = values
    return out


def _split(lay: Layout, axes: tuple):
    """(outer dims, inner dims) of a reduction, each collapsed and innermost first."""
    kept = [i for i in range(lay.ndim) if i not in axes]
    outer = collapse(tuple(lay.shape[i] for i in kept), [tuple(lay.strides[i] for i in kept)])
    inner = collapse(tuple(lay.shape[i] for i in axes), [tuple(lay.strides[i] for i in axes)])
    return outer[::-1], inner[::-1]


def _dims_args(dims):
    if len(dims) > 16:
        raise UnsupportedError(f"OpenCL(): a reduction over {len(dims)} non-mergeable dims; at "
                               f"most 16 are supported (reshape first)")
    return (_vec16([s for s, _ in dims]), _vec16([sts[0] for _, sts in dims]), np.int32(len(dims)))


class ReduceIndexOps:
    """Mixin of OpenCL: reductions and indexing."""

    # ---------------------------------------------------------------- reductions
    def _reduce_kernel(self, d, name: str):
        """Kernel `name` of the one reduction program of dtype d (every reduction op in it)."""
        def source():
            return (self._header(d) + f"#define WG {WG}\n"
                    + self._programs.source("ops.cl", "rows.cl", "reduce.cl"))
        return self._kernel(("reduce", d.name), name, source)

    def _reduce(self, op: str, x: CLArray, axes: tuple, keepdims: bool) -> CLArray:
        lay, d = x.layout, x.dtype
        axes = tuple(axes)
        if not axes:
            return CLArray(x.storage, lay, d)
        out_shape = reduced_shape(lay.shape, axes, keepdims)
        R = numel(lay.shape[a] for a in axes)
        nout = numel(out_shape)
        if nout == 0:
            return self._new(out_shape, d)
        if R == 0:
            if op == "sum":
                return self.full(out_shape, 0, d)
            raise ShapeError(f"{op}: reducing over a dim of size 0 of a tensor of shape "
                             f"{lay.shape} has no identity; give a non-empty dim")
        outer, inner = _split(lay, axes)
        osh, ost, ond = _dims_args(outer)
        ish, ist, ind = _dims_args(inner)
        if R <= ROW_LIMIT or (nout >= 4096 and R <= CHUNK_MIN):
            out = self._new(out_shape, d)
            k = self._reduce_kernel(d, op + "_row")
            self._launch_1d(k, nout, out.buf, x.buf, np.int64(lay.offset), osh, ost, ond,
                            ish, ist, ind, np.int64(R), np.int64(nout))
            return out
        nchunks = 1
        units = self._rt.max_compute_units * 4
        if nout < units:
            nchunks = max(1, min(-(-R // CHUNK_MIN), -(-units // nout)))
        chunk = -(-R // nchunks)
        nchunks = -(-R // chunk)
        target = self._new(out_shape if nchunks == 1 else (nout, nchunks), d)
        k = self._reduce_kernel(d, op + "_wg")
        self._run(k, (nout * nchunks * WG,), (WG,), target.buf, x.buf, np.int64(lay.offset),
                  osh, ost, ond, ish, ist, ind, np.int64(R), np.int64(nchunks), np.int64(chunk))
        if nchunks == 1:
            return target
        part = self._reduce(op, target, (1,), False)
        return CLArray(part.storage, Layout.contiguous(out_shape, part.layout.offset), d)

    def sum(self, x, axes: tuple, keepdims: bool):
        return self._reduce("sum", x, axes, keepdims)

    def max(self, x, axes: tuple, keepdims: bool):
        return self._reduce("max", x, axes, keepdims)

    def min(self, x, axes: tuple, keepdims: bool):
        return self._reduce("min", x, axes, keepdims)

    def _argreduce(self, op: str, x: CLArray, axis: int, keepdims: bool) -> CLArray:
        lay, d = x.layout, x.dtype
        if lay.ndim == 0:
            return self.full((), 0, dt.int64)
        out_shape = reduced_shape(lay.shape, (axis,), keepdims)
        R = lay.shape[axis]
        nout = numel(out_shape)
        if nout == 0:
            return self._new(out_shape, dt.int64)
        if R == 0:
            raise ShapeError(f"{op}: dim {axis} of a tensor of shape {lay.shape} is empty; "
                             f"there is no index to return")
        outer, inner = _split(lay, (axis,))
        osh, ost, ond = _dims_args(outer)
        ish, ist, ind = _dims_args(inner)
        out = self._new(out_shape, dt.int64)
        args = (out.buf, x.buf, np.int64(lay.offset), osh, ost, ond, ish, ist, ind, np.int64(R))
        if R <= ROW_LIMIT or nout >= 4096:
            self._launch_1d(self._reduce_kernel(d, op + "_row"), nout, *args, np.int64(nout))
        else:
            self._run(self._reduce_kernel(d, op + "_wg"), (nout * WG,), (WG,), *args)
        return out

    def argmax(self, x, axis: int, keepdims: bool):
        return self._argreduce("argmax", x, axis, keepdims)

    def argmin(self, x, axis: int, keepdims: bool):
        return self._argreduce("argmin", x, axis, keepdims)

    # ---------------------------------------------------------------- indexing
    def _index_kernel(self, d, name: str):
        def source():
            return self._header(d) + self._programs.source("ops.cl", "index.cl")
        return self._kernel(("index", d.name), name, source)

    def _index_launch(self, kernel, dims, operand_count: int, head, tail) -> None:
        """Launch over collapsed dims; head(v)/tail(v) give the arguments before and after the
        shape, v being the stride vectors of the operands."""
        if not dims:
            dims = [(1, [0] * operand_count)]
        if len(dims) > 16:
            raise UnsupportedError("OpenCL(): indexing over more than 16 non-mergeable dims")
        rev = dims[::-1]
        sizes = [s for s, _ in rev]
        vecs = [_vec16([sts[j] for _, sts in rev]) for j in range(operand_count)]
        args = head(vecs) + [_vec16(sizes), np.int32(len(sizes))] + list(tail(vecs))
        g, l = self._strided_grid(sizes)
        self._run(kernel, g, l, *args)

    def _check_index(self, op: str, x: CLArray, axis: int, index: CLArray):
        if index.dtype is not dt.int64:
            raise DTypeError(f"{op}: the index must be int64, got {index.dtype.name}")
        if index.layout.ndim != x.layout.ndim:
            raise ShapeError(f"{op}: index has {index.layout.ndim} dims but the tensor has "
                             f"{x.layout.ndim}")

    def gather(self, x: CLArray, axis: int, index: CLArray) -> CLArray:
        self._check_index("gather", x, axis, index)
        shape = index.layout.shape
        out = self._new(shape, x.dtype)
        if numel(shape) == 0:
            return out
        if x.layout.ndim == 0:
            return self._unary("copy", x)
        xs = list(x.layout.strides)
        ax_stride = xs[axis]
        xs[axis] = 0
        dims = collapse(shape, [out.layout.strides, tuple(xs), index.layout.strides])
        k = self._index_kernel(x.dtype, "gather_s")
        self._index_launch(
            k, dims, 3,
            lambda v: [out.buf, x.buf, np.int64(x.layout.offset), v[1], np.int64(ax_stride),
                       index.buf, np.int64(index.layout.offset), v[2]],
            lambda v: [v[0]])
        return out

    def scatter_add(self, x: CLArray, axis: int, index: CLArray, src: CLArray) -> CLArray:
        self._check_index("scatter_add", x, axis, index)
        if src.dtype is not x.dtype:
            raise DTypeError(f"scatter_add: src is {src.dtype.name} but the tensor is "
                             f"{x.dtype.name}; cast first")
        out = self._new(x.layout.shape, x.dtype)
        self._copy_into(out, out.layout, x)
        shape = index.layout.shape
        if numel(shape) == 0:
            return out
        if x.layout.ndim == 0:  # a 0-d index can only point at the one element
            return self.add(out, src)
        os_ = list(out.layout.strides)
        ax_stride = os_[axis]
        os_[axis] = 0
        sr = src.layout.strides
        dims = collapse(shape, [tuple(os_), index.layout.strides, sr])
        k = self._index_kernel(x.dtype, "scatter_add_s")
        self._index_launch(
            k, dims, 3,
            lambda v: [out.buf, v[0], np.int64(ax_stride), index.buf,
                       np.int64(index.layout.offset), v[1], src.buf, np.int64(src.layout.offset),
                       v[2]],
            lambda v: [])
        return out
