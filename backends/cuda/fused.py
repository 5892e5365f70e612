"""Fused elementwise programs on CuPy: one generated CUDA kernel per program structure.

`fused_elementwise` runs a whole program (decorators/fusion/ir.py) as one
cupy.ElementwiseKernel: each thread reads its element of every input, evaluates the program
in registers (codegen.py) and writes each output once. CuPy broadcasts the inputs against the
outputs and follows their strides itself, so broadcast, transposed, sliced and flipped views
are read in place. `fused_reduce` is one cupy.ReductionKernel whose map expression evaluates
the program, so a chain feeding sum/max/min never writes its intermediate. `fused_update`
(optimizer steps) writes outputs into donated input buffers where it can.

Kernel objects are cached here by structure: the program's key (ops, dtypes, wiring and
outputs, not the constant values), plus the reduction op. CuPy compiles each kernel once per
parameter types and array ranks and keeps the binary (in memory and ~/.cupy/kernel_cache), so
other constants and other sizes reuse it.

The backend `B` is a backends.cupy.CuPy; cupy itself is reached through `B._cp`, so importing
this module never imports cupy.
"""
from __future__ import annotations

from ...core.backend import Backend
from ...core.errors import DTypeError, ShapeError
from ...core.shape import numel, reduced_shape
from ...decorators.fusion import stats
from ...decorators.fusion.ir import check_reduce
from . import kernels

_KERNELS: dict = {}   # ("map", program.key) or ("reduce", program.key, op) -> (kernel, spec)
_MAX_KERNELS = 4096
# CUDA's limit on a kernel's parameters (4 KiB; Hopper with CUDA 12.1+ allows 32 KiB)
_PARAM_BYTES = 4096


def _fits(n_arrays: int, n_scalars: int, ndim: int) -> bool:
    """Whether CuPy's kernel parameters fit: each array is a CArray (pointer, size, then
    shape and strides per dim), each scalar at most 8 bytes, plus the index's CIndexer."""
    return n_arrays * (16 + 16 * ndim) + 8 * n_scalars + 8 + 8 * ndim <= _PARAM_BYTES


def _cached(key: tuple, build):
    """The (CuPy kernel, spec) of a program structure; each lookup is a Fusion cache hit or
    miss. A program an op of the generator rejects raises DTypeError here and is not cached."""
    hit = _KERNELS.get(key)
    stats.record_cache(hit is not None)
    if hit is None:
        if len(_KERNELS) >= _MAX_KERNELS:
            _KERNELS.clear()
        hit = _KERNELS[key] = build()
    return hit


def _build_map(cp, program, who: str):
    spec = kernels.map_kernel(program, who)
    k = cp.ElementwiseKernel(spec.in_params, spec.out_params, spec.operation,
                             name="strata_fused_map", preamble=spec.preamble,
                             options=kernels.OPTIONS)
    return k, spec


def _build_reduce(cp, program, op: str, who: str):
    spec = kernels.reduce_kernel(program, op, who)
    k = cp.ReductionKernel(spec.in_params, spec.out_params, spec.map_expr, spec.reduce_expr,
                           spec.post_map_expr, spec.identity, name=f"strata_fused_{op}",
                           reduce_type=spec.reduce_type, preamble=spec.preamble,
                           options=kernels.OPTIONS)
    return k, spec


def _check(B, program, inputs: list, shape: tuple, who: str) -> None:
    if len(inputs) != program.n_inputs:
        raise ShapeError(f"{B}.{who}: the program takes {program.n_inputs} inputs, got "
                         f"{len(inputs)}")
    nd = len(shape)
    nd_array = B._cp.ndarray
    for k, (x, d) in enumerate(zip(inputs, program.input_dtypes)):
        if not isinstance(x, nd_array):
            raise DTypeError(f"{B}.{who}: input {k} is a {type(x).__name__}, not a CuPy "
                             f"primitive")
        if x.dtype != d.np:
            raise DTypeError(f"{B}.{who}: input {k} is {x.dtype} but the program expects "
                             f"{d.name}")
        s = x.shape
        if len(s) > nd or any(a != b and a != 1 for a, b in zip(s[::-1], shape[::-1])):
            raise ShapeError(f"{B}.{who}: input {k} of shape {s} does not broadcast to the "
                             f"program's shape {shape}")


def _donor(cp, program, inputs: list, shape: tuple, j: int, donate, taken: set):
    """The input whose buffer output j may be written into, or None: a dense input of the
    output's shape and dtype that no other input overlaps (each thread reads its element
    of the input before writing the same element of the output, so the input itself is
    safe; another view of the buffer would be read after some thread overwrote it)."""
    k = donate.get(j) if donate else None
    if k is None or not 0 <= k < len(inputs) or k in taken or k in program.outputs:
        return None   # (an output that is the input itself would show the new values)
    x = inputs[k]
    if (x.dtype != program.slot_dtype(program.outputs[j]).np or x.shape != shape
            or not x.flags.c_contiguous):
        return None
    # (memory bounds only: views of one buffer that interleave count as overlapping)
    if any(cp.may_share_memory(x, y) for i, y in enumerate(inputs) if i != k):
        return None
    taken.add(k)
    return k


def fused_elementwise(B, program, inputs, shape: tuple, donate: dict | None = None) -> list:
    """Backend.fused_elementwise (and fused_update, with `donate`) of the CuPy backend B."""
    shape = tuple(shape)
    inputs = list(inputs)
    who = "fused_elementwise" if donate is None else "fused_update"
    _check(B, program, inputs, shape, who)
    cp = B._cp
    n_in = program.n_inputs
    new = cp.empty if B.allocator is None else B.allocator.empty
    res: list = []
    made: dict = {}
    taken: set = set()
    for j, s in enumerate(program.outputs):
        if s < n_in:
            x = inputs[s]
            res.append(x if x.shape == shape else cp.broadcast_to(x, shape))
            continue
        if s not in made:
            k = _donor(cp, program, inputs, shape, j, donate, taken)
            made[s] = inputs[k] if k is not None else new(shape, program.slot_dtype(s).np)
        res.append(made[s])
    if not made or numel(shape) == 0:
        return res
    kernel, spec = _cached(("map", program.key), lambda: _build_map(cp, program, str(B)))
    if not _fits(len(spec.used) + len(spec.write), len(spec.consts), len(shape)):
        # more inputs than a kernel takes: op by op (correct, unfused)
        return Backend.fused_elementwise(B, program, inputs, shape)
    kernel(*[inputs[k] for k in spec.used], *kernels.const_args(program, spec.consts),
           *[made[s] for s in spec.write])
    return res


def fused_reduce(B, program, inputs, shape: tuple, op: str, axes: tuple, keepdims: bool):
    """Backend.fused_reduce of the CuPy backend B: sum/max/min of the program's one output."""
    check_reduce(str(B), program, op)
    shape = tuple(shape)
    inputs = list(inputs)
    axes = tuple(axes)
    _check(B, program, inputs, shape, "fused_reduce")
    s = program.outputs[0]
    if not axes or s < program.n_inputs:
        # nothing to fuse: the value is a view of an input, or nothing is reduced
        (v,) = fused_elementwise(B, program, inputs, shape)
        return getattr(B, op)(v, axes, keepdims)
    cp = B._cp
    d = program.slot_dtype(s)
    out_shape = reduced_shape(shape, axes, keepdims)
    if numel(out_shape) == 0:
        return cp.empty(out_shape, d.np)
    if numel(shape[a] for a in axes) == 0:
        if op == "sum":
            return B.full(out_shape, 0, d)
        raise ShapeError(f"{op}: reducing over a dim of size 0 of a tensor of shape {shape} "
                         f"has no identity; give a non-empty dim")
    kernel, spec = _cached(("reduce", program.key, op),
                           lambda: _build_reduce(cp, program, op, str(B)))
    if not spec.used or not _fits(len(spec.used) + 1, len(spec.consts), len(shape)):
        # constants only (no input array gives the reduction its shape), or more inputs
        # than a kernel takes: the program, then the unfused reduction
        return Backend.fused_reduce(B, program, inputs, shape, op, axes, keepdims)
    # inputs broadcast to the full shape (views): the program's shape, not the inputs'
    # broadcast shape, is what is reduced
    args = [inputs[k] if inputs[k].shape == shape else cp.broadcast_to(inputs[k], shape)
            for k in spec.used]
    args += kernels.const_args(program, spec.consts)
    if B.allocator is None:
        return kernel(*args, axis=axes, keepdims=keepdims)
    return kernel(*args, axis=axes, keepdims=keepdims, out=B.allocator.empty(out_shape, d.np))
