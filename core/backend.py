"""The Backend protocol: primitive ops on opaque primitives, plus accelerated ops with defaults.

Contract shared by every backend and decorator (the frontend in core/tensor.py relies on it):

* A primitive is opaque. `shape(x)` and `dtype(x)` describe it.
* Binary elementwise ops take two primitives of the SAME dtype whose shapes broadcast, or one
  primitive and one Python scalar (int/float/bool) that is taken as a value of the primitive's
  dtype. The frontend promotes and casts beforehand, so backends never see mixed dtypes.
  Comparisons and logical ops return bool; the others return the operand dtype.
* Axes arguments are already normalised (non-negative, sorted, unique tuples). Shapes are
  tuples of ints. Index primitives are int64.
* Ops never modify their inputs; every op returns a new primitive (which may be a view).
* Required primitives raise UnsupportedError here; accelerated ops have default compositions
  written only with primitives of `self`, so a decorator that does not override one (Autodiff,
  say) gets the composition through its own primitives.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import dtype as dt
from .dtype import DType
from .backend_nn import NNDefaults
from .errors import AutodiffError, UnsupportedError
from .shape import contiguous_strides

Prim = Any  # opaque primitive of a particular backend

# deferred input checks (Backend.defer_check) a queued device holds before it runs them
MAX_DEFERRED_CHECKS = 8

UNARY = ("neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "abs", "sign",
         "reciprocal", "floor", "ceil", "round", "logical_not", "bitwise_not")
BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "floor_divide",
          "bitwise_and", "bitwise_or", "bitwise_xor")
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")
REDUCE = ("sum", "max", "min")
ARGREDUCE = ("argmax", "argmin")
# Unary ops with a default composition that backends may override for speed or accuracy.
UNARY_DEFAULTS = ("sigmoid", "relu", "log1p", "expm1", "tan", "trunc", "rsqrt", "silu",
                  "isnan", "isinf")


class Backend(NNDefaults):
    """Base class of base backends and decorators. See the module docstring for the contract."""

    #: the decorated backend for decorators, None for base backends
    inner: "Backend | None" = None

    # ---------------------------------------------------------------- identity
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Backend) and str(self) == str(other))

    def __hash__(self) -> int:
        return hash(str(self))

    def base(self) -> "Backend":
        """The base backend at the bottom of the stack."""
        b = self
        while b.inner is not None:
            b = b.inner
        return b

    def device_name(self) -> str:
        return self.base().device_name() if self.inner is not None else "cpu"

    def supports(self, dtype: DType) -> bool:
        """Whether tensors of `dtype` can live on this backend."""
        return self.inner.supports(dtype) if self.inner is not None else True

    def limits(self) -> dict:
        """Device limits worth knowing (max buffer size, workgroup sizes ...)."""
        return self.inner.limits() if self.inner is not None else {}

    def _unsupported(self, op: str):
        raise UnsupportedError(f"{self} does not implement the required primitive '{op}'; "
                               f"run `python -m strata.testing \"{self}\"` to see what is missing")

    # ---------------------------------------------------------------- description
    def shape(self, x: Prim) -> tuple:
        self._unsupported("shape")

    def dtype(self, x: Prim) -> DType:
        self._unsupported("dtype")

    def is_primitive(self, x: Any) -> bool:
        """Whether x is a primitive of this backend (used to catch mixed stacks)."""
        self._unsupported("is_primitive")

    # ---------------------------------------------------------------- transfer and creation
    def from_numpy(self, a: np.ndarray, dtype: DType) -> Prim:
        """A primitive holding `a` (whose dtype is already `dtype.np`)."""
        self._unsupported("from_numpy")

    def to_numpy(self, x: Prim) -> np.ndarray:
        self._unsupported("to_numpy")

    def full(self, shape: tuple, value, dtype: DType) -> Prim:
        self._unsupported("full")

    def arange(self, start, step, n: int, dtype: DType) -> Prim:
        """n values start + i * step (computed in float64/int64, then stored as dtype)."""
        self._unsupported("arange")

    def random_uniform(self, shape: tuple, seed: int, offset: int, dtype: DType) -> Prim:
        """Uniform [0, 1) floats from Philox4x32-10 as specified in core/philox.py."""
        self._unsupported("random_uniform")

    def random_normal(self, shape: tuple, seed: int, offset: int, dtype: DType) -> Prim:
        """Standard normals from Philox4x32-10 + Box-Muller as specified in core/philox.py."""
        self._unsupported("random_normal")

    def cast(self, x: Prim, dtype: DType) -> Prim:
        """Float -> int truncates toward zero; anything -> bool is (x != 0); bool -> 0/1."""
        self._unsupported("cast")

    def from_dlpack(self, obj) -> Prim:
        """A primitive from any DLPack producer (zero-copy where the backend can)."""
        a = np.from_dlpack(obj)
        from .dtype import from_numpy as _dt
        return self.from_numpy(a, _dt(a.dtype))

    def to_dlpack(self, x: Prim, stream=None):
        return self.to_numpy(x).__dlpack__()

    def dlpack_device(self, x: Prim):
        return (1, 0)  # kDLCPU: device backends that share memory override this

    def sync(self) -> None:
        """Wait until all queued work has finished."""
        if self.inner is not None:
            self.inner.sync()

    def realize(self, x) -> None:
        """Compute x now (queue its kernels) without waiting for them, as tinygrad's
        Tensor.realize: a lazy layer (Fusion) otherwise computes a result only when something
        reads it, and never one that is dropped unread. Eager backends have nothing to do."""
        if self.inner is not None:
            self.inner.realize(x)

    #: True on backends whose ops only queue work on a device (OpenCL, WGPU): a check that
    #: needs a value from the device is then deferred to the next read-back (defer_check)
    #: instead of stalling the queue mid-step, as CUDA's device-side asserts are in PyTorch
    asynchronous = False

    #: Under Fusion, elementwise results with fewer elements than this run at once on this
    #: backend instead of joining a fused program (0: always fuse). A host backend whose op
    #: costs a few µs gains nothing from fusing small ops and pays for recording them.
    fusion_eager_below = 0

    def defer_check(self, check) -> None:
        """Run check() — which reads values back and raises on bad input — before the next
        value leaves the base backend (its next to_numpy or sync). Synchronous backends run
        it now."""
        base = self.base()
        if not base.asynchronous:
            check()
            return
        pending = base.__dict__.setdefault("_deferred_checks", [])
        pending.append(check)
        if len(pending) >= MAX_DEFERRED_CHECKS:
            # a loop that never reads a value back would queue checks (and the small buffers
            # they read) without end: every few steps they run, one read-back for all
            base.run_deferred_checks()

    def run_deferred_checks(self) -> None:
        """Base backends that queue work call this first in to_numpy and sync."""
        pending = self.__dict__.get("_deferred_checks")
        if pending:
            self._deferred_checks = []
            for check in pending:
                check()

    def memory_stats(self) -> dict:
        """Allocator statistics of the PoolAllocator in this stack (decorators forward)."""
        if self.inner is not None:
            return self.inner.memory_stats()
        raise UnsupportedError(f"memory_stats() needs a PoolAllocator in the stack; {self} has "
                               f"none: build it as PoolAllocator({self}), e.g. "
                               f"strata.backend(\"Autodiff(PoolAllocator({self}))\")")

    def empty_cache(self) -> int:
        """Release the cached buffers of the PoolAllocator in this stack; returns the bytes."""
        if self.inner is not None:
            return self.inner.empty_cache()
        raise UnsupportedError(f"empty_cache() needs a PoolAllocator in the stack; {self} has "
                               f"none: build it as PoolAllocator({self})")

    # ---------------------------------------------------------------- elementwise
    # Unary (same dtype out; logical_not -> bool). round is half-to-even like torch.round.
    def neg(self, x): self._unsupported("neg")
    def exp(self, x): self._unsupported("exp")
    def log(self, x): self._unsupported("log")
    def sqrt(self, x): self._unsupported("sqrt")
    def sin(self, x): self._unsupported("sin")
    def cos(self, x): self._unsupported("cos")
    def tanh(self, x): self._unsupported("tanh")
    def erf(self, x): self._unsupported("erf")
    def abs(self, x): self._unsupported("abs")
    def sign(self, x): self._unsupported("sign")
    def reciprocal(self, x): self._unsupported("reciprocal")
    def floor(self, x): self._unsupported("floor")
    def ceil(self, x): self._unsupported("ceil")
    def round(self, x): self._unsupported("round")
    def logical_not(self, x): self._unsupported("logical_not")
    def bitwise_not(self, x): self._unsupported("bitwise_not")

    # Binary. div is true division on floats; remainder and floor_divide follow Python's
    # floor semantics (sign of the divisor) like torch; maximum/minimum propagate NaN.
    def add(self, a, b): self._unsupported("add")
    def sub(self, a, b): self._unsupported("sub")
    def mul(self, a, b): self._unsupported("mul")
    def div(self, a, b): self._unsupported("div")
    def pow(self, a, b): self._unsupported("pow")
    def maximum(self, a, b): self._unsupported("maximum")
    def minimum(self, a, b): self._unsupported("minimum")
    def remainder(self, a, b): self._unsupported("remainder")
    def floor_divide(self, a, b): self._unsupported("floor_divide")
    def bitwise_and(self, a, b): self._unsupported("bitwise_and")
    def bitwise_or(self, a, b): self._unsupported("bitwise_or")
    def bitwise_xor(self, a, b): self._unsupported("bitwise_xor")
    # -> bool
    def eq(self, a, b): self._unsupported("eq")
    def ne(self, a, b): self._unsupported("ne")
    def lt(self, a, b): self._unsupported("lt")
    def le(self, a, b): self._unsupported("le")
    def gt(self, a, b): self._unsupported("gt")
    def ge(self, a, b): self._unsupported("ge")
    def logical_and(self, a, b): self._unsupported("logical_and")
    def logical_or(self, a, b): self._unsupported("logical_or")
    def logical_xor(self, a, b): self._unsupported("logical_xor")

    def where(self, cond, a, b):
        """cond: bool primitive; a, b: primitives of one dtype or scalars; all broadcast."""
        self._unsupported("where")

    # ---------------------------------------------------------------- reductions
    # axes: normalised tuple (may be empty: then the op returns x unchanged in value).
    # sum keeps the dtype (the frontend casts ints/bools to int64 first, like torch).
    def sum(self, x, axes: tuple, keepdims: bool): self._unsupported("sum")
    def max(self, x, axes: tuple, keepdims: bool): self._unsupported("max")
    def min(self, x, axes: tuple, keepdims: bool): self._unsupported("min")

    # One axis; int64 result; ties give the first index; NaN counts as the extreme (torch).
    def argmax(self, x, axis: int, keepdims: bool): self._unsupported("argmax")
    def argmin(self, x, axis: int, keepdims: bool): self._unsupported("argmin")

    # ---------------------------------------------------------------- movement
    def reshape(self, x, shape: tuple):
        """Same numel; a view where the layout allows."""
        self._unsupported("reshape")

    def permute(self, x, dims: tuple): self._unsupported("permute")

    def expand(self, x, shape: tuple):
        """Broadcast view: same ndim as x; only size-1 dims grow."""
        self._unsupported("expand")

    def slice(self, x, starts: tuple, stops: tuple, steps: tuple):
        """Per-dim strided slice, already clamped: 0 <= start, stop <= size, step >= 1."""
        self._unsupported("slice")

    def pad(self, x, pads: tuple, value):
        """Constant pad; pads is one (before, after) pair of non-negative ints per dim."""
        self._unsupported("pad")

    def cat(self, xs: Sequence, axis: int): self._unsupported("cat")
    def flip(self, x, axes: tuple): self._unsupported("flip")

    # ---------------------------------------------------------------- indexing
    def gather(self, x, axis: int, index):
        """torch.gather: index (int64) has x's ndim; out[i][j] = x[i][index[i][j]] along axis.
        Indices are in range (the frontend checks user-given indices)."""
        self._unsupported("gather")

    def scatter_add(self, x, axis: int, index, src):
        """x with src added at index along axis (torch.scatter_add, out of place)."""
        self._unsupported("scatter_add")

    # ---------------------------------------------------------------- linear algebra
    def matmul(self, a, b):
        """a (..., n, k) @ b (..., k, m); both at least 2-D, batch dims broadcast."""
        self._unsupported("matmul")

    def int8_matmul(self, a, b):
        """Exact int32 products of int8 codes: a (n, k) @ b (k, m), both holding integers in
        -128..127 (as int8, int32 or integer-valued float32). Quantized GEMMs call it; the
        default casts to int32 and runs matmul; a backend with a packed int8 dot product
        (WGPU's dot4I8Packed) overrides it."""
        return self.matmul(self.cast(a, dt.int32), self.cast(b, dt.int32))

    # ================================================================ accelerated ops (defaults)
    def sigmoid(self, x):
        # 1 / (1 + exp(-x)) overflows to inf for very negative x, which still gives 0 correctly
        return self.reciprocal(self.add(self.exp(self.neg(x)), 1.0))

    def relu(self, x):
        return self.maximum(x, 0)

    def log1p(self, x):
        return self.log(self.add(x, 1.0))

    def expm1(self, x):
        return self.sub(self.exp(x), 1.0)

    def tan(self, x):
        return self.div(self.sin(x), self.cos(x))

    def trunc(self, x):
        return self.where(self.lt(x, 0.0), self.ceil(x), self.floor(x))

    def rsqrt(self, x):
        return self.reciprocal(self.sqrt(x))

    def silu(self, x):
        return self.mul(x, self.sigmoid(x))

    def isnan(self, x):
        return self.ne(x, x)

    def isinf(self, x):
        return self.eq(self.abs(x), math.inf)

    def gelu(self, x, approximate: str = "none"):
        if approximate == "tanh":
            inner = self.mul(self.add(x, self.mul(self.mul(self.mul(x, x), x), 0.044715)),
                             math.sqrt(2.0 / math.pi))
            return self.mul(self.mul(x, 0.5), self.add(self.tanh(inner), 1.0))
        return self.mul(self.mul(x, 0.5), self.add(self.erf(self.mul(x, 1.0 / math.sqrt(2.0))), 1.0))

    def masked_fill(self, x, mask, value):
        """mask: bool primitive broadcastable to x; value: a scalar."""
        return self.where(mask, value, x)

    def prod(self, x, axes: tuple, keepdims: bool):
        for ax in reversed(axes):
            x = self._prod_axis(x, ax)
        if not keepdims:
            shp = self.shape(x)
            x = self.reshape(x, tuple(s for i, s in enumerate(shp) if i not in axes))
        return x

    def _prod_axis(self, x, axis):
        # pairwise tree: multiply the two halves until one element is left (log n primitive ops)
        shp = list(self.shape(x))
        while shp[axis] > 1:
            n = shp[axis]
            if n % 2:
                pads = tuple((0, 1) if i == axis else (0, 0) for i in range(len(shp)))
                x = self.pad(x, pads, 1)
                n += 1
                shp[axis] = n
            starts = [0] * len(shp)
            stops = list(shp)
            steps = [1] * len(shp)
            stops[axis] = n // 2
            lo = self.slice(x, tuple(starts), tuple(stops), tuple(steps))
            starts[axis], stops[axis] = n // 2, n
            hi = self.slice(x, tuple(starts), tuple(stops), tuple(steps))
            x = self.mul(lo, hi)
            shp[axis] = n // 2
        if shp[axis] == 0:
            shp[axis] = 1
            x = self.full(tuple(shp), 1, self.dtype(x))
        return x

    def cumsum(self, x, axis: int):
        return self._scan(x, axis, self.add, 0)

    def cumprod(self, x, axis: int):
        return self._scan(x, axis, self.mul, 1)

    def _scan(self, x, axis, op, identity):
        # Hillis-Steele scan: log2(n) shifted combines
        shp = self.shape(x)
        n = shp[axis]
        shift = 1
        nd = len(shp)
        while shift < n:
            pads = tuple((shift, 0) if i == axis else (0, 0) for i in range(nd))
            shifted = self.pad(x, pads, identity)
            stops = tuple(n if i == axis else s for i, s in enumerate(shp))
            shifted = self.slice(shifted, (0,) * nd, stops, (1,) * nd)
            x = op(x, shifted)
            shift *= 2
        return x

    def index_select(self, x, axis: int, index):
        """x indexed along axis by a 1-D int64 index."""
        shp = self.shape(x)
        n = self.shape(index)[0]
        ishape = tuple(n if i == axis else 1 for i in range(len(shp)))
        idx = self.reshape(index, ishape)
        idx = self.expand(idx, tuple(n if i == axis else s for i, s in enumerate(shp)))
        return self.gather(x, axis, idx)

    def scatter(self, x, axis: int, index, src):
        """torch.scatter (out of place); with duplicate indices which value wins is unspecified."""
        zeros = self.full(self.shape(x), 0, self.dtype(x))
        ones = self.full(self.shape(src), 1, dt.int32 if self.supports(dt.int32) else self.dtype(x))
        hit = self.gt(self.scatter_add(self.full(self.shape(x), 0, self.dtype(ones)), axis, index, ones), 0)
        return self.where(hit, self.scatter_add(zeros, axis, index, src), x)

    # -- fusion: programs from decorators/fusion/ir.py; outputs have the full `shape`
    def fused_elementwise(self, program, inputs: Sequence, shape: tuple) -> list:
        """Run a fused elementwise program; returns one primitive per program output.

        This default interprets the program one primitive op at a time (correct on every
        backend); device backends override it with one generated kernel per program."""
        slots = list(inputs) + list(program.consts)
        n_in = len(inputs)
        first = program.first_instr_slot
        is_const = lambda s: n_in <= s < first  # noqa: E731
        for op, args, d in program.instrs:
            vals = [slots[a] for a in args]
            if op == "cast":
                v = vals[0]
                slots.append(self.cast(v, d) if not is_const(args[0]) else _py_cast(v, d))
                continue
            if all(is_const(a) for a in args):
                vals[0] = self.full((), vals[0], program.slot_dtype(args[0]))
            if op == "where" and is_const(args[0]):
                vals[0] = self.full((), vals[0], program.slot_dtype(args[0]))
            if op == "gelu":
                slots.append(self.gelu(vals[0], "none"))
            elif op == "gelu_tanh":
                slots.append(self.gelu(vals[0], "tanh"))
            else:
                slots.append(getattr(self, op)(*vals))
        outs = []
        for s in program.outputs:
            v = slots[s]
            if is_const(s):
                v = self.full(shape, v, program.slot_dtype(s))
            elif tuple(self.shape(v)) != tuple(shape):
                vs = self.shape(v)
                v = self.expand(self.reshape(v, (1,) * (len(shape) - len(vs)) + tuple(vs)), shape)
            outs.append(v)
        return outs

    def fused_update(self, program, inputs: Sequence, shape: tuple, donate: dict) -> list:
        """fused_elementwise for in-place updates (optimizer steps): `donate` maps an output
        index to an input index whose old value the caller will never read again, so the
        backend MAY write that output into the input's buffer instead of allocating. Default:
        ignore the offer (always correct)."""
        return self.fused_elementwise(program, inputs, shape)

    def fused_reduce(self, program, inputs: Sequence, shape: tuple, op: str, axes: tuple,
                     keepdims: bool):
        """Reduce (sum/max/min) the single output of an elementwise program over axes.
        Default: run the program, then reduce; backends may fuse both into one kernel."""
        (v,) = self.fused_elementwise(program, inputs, shape)
        return getattr(self, op)(v, axes, keepdims)

    def fused_matmul(self, program, a, b, inputs: Sequence, shape: tuple) -> list:
        """A matmul with an elementwise epilogue: the program's input 0 is `a @ b`, its inputs
        1.. are `inputs` (broadcast to `shape`, the matmul's output shape). Backends whose
        matmul kernel can evaluate the program where it stores its result (bias + activation)
        override this; the default runs the matmul, then the program."""
        c = self.matmul(a, b)
        return self.fused_elementwise(program, [c] + list(inputs), shape)

    # ================================================================ autodiff hooks
    # Base backends record no graph. Autodiff overrides all of these.
    def requires_grad(self, x) -> bool:
        return False

    def set_requires_grad(self, x, flag: bool):
        if flag:
            raise AutodiffError(_NO_AUTODIFF.format(stack=self, op="requires_grad"))
        return x

    def grad(self, x):
        return None

    def set_grad(self, x, g) -> None:
        raise AutodiffError(_NO_AUTODIFF.format(stack=self, op="setting .grad"))

    def is_leaf(self, x) -> bool:
        return True

    def grad_fn_name(self, x):
        return None

    def backward(self, root, grad, retain_graph: bool, create_graph: bool) -> None:
        raise AutodiffError(_NO_AUTODIFF.format(stack=self, op="backward()"))

    def autograd_grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph,
                      allow_unused):
        raise AutodiffError(_NO_AUTODIFF.format(stack=self, op="strata.autograd.grad"))

    def detach(self, x):
        return x

    def assign(self, dst, src):
        """In-place update of a tensor's value: returns the primitive the tensor keeps.
        Base backends rebind (functional); Autodiff keeps the leaf's identity and grad."""
        return src


_NO_AUTODIFF = ("{op} needs gradients, but the stack {stack} has no Autodiff layer: "
                "build the backend as Autodiff({stack}) (or put Autodiff inside Fusion), "
                "e.g. strata.backend(\"Autodiff({stack})\")")


def _py_cast(v, d: DType):
    return float(v) if d.kind == 2 else (bool(v) if d.kind == 0 else int(v))


__all__ = ["Backend", "Prim", "UNARY", "BINARY", "COMPARE", "REDUCE", "ARGREDUCE",
           "UNARY_DEFAULTS", "contiguous_strides"]
