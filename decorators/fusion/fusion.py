"""Fusion(inner): records elementwise ops lazily and runs each chain as one fused program.

Elementwise ops (unary, binary, comparisons, where, cast, scalar constants, broadcasts) build
pending Lazy nodes. A node is realised — its whole pending subgraph compiled into one program
and handed to `inner.fused_elementwise` — when its value is needed: read back to the host, fed
to a non-elementwise op, asked for gradients, or when the subgraph passes MAX_PENDING ops.
Elementwise work feeding sum/max/min goes to `inner.fused_reduce`. Intermediates inside a
program are never written to memory. A backend that cannot fuse inherits the protocol's
interpreter, so Fusion over it is a correct pass-through.
"""
from __future__ import annotations

import math
import weakref

from ...core import dtype as dt
from ...core import grad_mode
from ...core.backend import Backend
from ...core.shape import broadcast_shapes, matmul_shape
from . import stats
from .ir import BOOL_OUT
from .lazy import MAX_PENDING, Lazy, pending, pending_matmul, realize, realize_reduce

_state = grad_mode._state


def _has_autodiff(b: Backend) -> bool:
    while b is not None:
        if type(b).__name__ == "Autodiff":
            return True
        b = b.inner
    return False


class Fusion(Backend):
    """`Fusion(Autodiff(OpenCL()))` or `Autodiff(Fusion(OpenCL()))`: both fuse forward and backward."""

    def __init__(self, inner: Backend, eager_below: int | None = None):
        if not isinstance(inner, Backend):
            raise TypeError(f"Fusion wraps a backend, got {type(inner).__name__}; "
                            f"e.g. Fusion(OpenCL())")
        if eager_below is not None and (isinstance(eager_below, bool)
                                        or not isinstance(eager_below, int) or eager_below < 0):
            raise ValueError(f"Fusion(eager_below=...) takes a number of elements >= 0 (0: "
                             f"fuse everything), got {eager_below!r}")
        self.inner = inner
        # elementwise results smaller than this run at once (the base's hint by default:
        # NumPy's small ops cost less than recording them; devices always fuse)
        self._eager_below = (inner.base().fusion_eager_below if eager_below is None
                             else eager_below)
        self._eager_arg = eager_below
        self._ad = _has_autodiff(inner)
        # weak references to pending nodes, oldest first: sync() runs those still referenced
        # (timing, explicit waits)
        self._pending: list = []
        # a backend with its own fused reduction makes the layer_norm composition (a few fused
        # kernels) faster than forwarding to a hand-written kernel
        self._compose_norm = type(inner).fused_reduce is not Backend.fused_reduce
        # accelerated ops the inner backend only has as the protocol's default composition:
        # composed here instead, their elementwise pieces join the pending chains (linear's
        # bias add fuses with the activation after it, nll_loss's masking with its scaling)
        self._compose = frozenset(n for n in _COMPOSABLE if _uses_default(inner, n))
        # matmuls stay pending so that the elementwise chain reading them becomes their
        # epilogue, when every layer down to the base runs fused_matmul as one kernel
        self._epilogue = _fuses_matmul(inner)
        # with epilogues, linear is composed here even where Autodiff sits between (matmul +
        # bias pending, so the activation after it joins the epilogue)
        self._compose_linear = self._epilogue and _uses_default(self.base(), "linear")

    def __repr__(self) -> str:
        extra = "" if self._eager_arg is None else f", eager_below={self._eager_arg}"
        return f"Fusion({self.inner!r}{extra})"

    __str__ = __repr__

    # ------------------------------------------------------------------ plumbing
    def _wrap(self, v) -> Lazy:
        i = self.inner
        return Lazy(v, tuple(i.shape(v)), i.dtype(v))

    def _val(self, x):
        t = type(x)
        if t is Lazy:
            v = x.value
            return v if v is not None else realize(self, x)
        if t is tuple or t is list:
            return t([self._val(e) for e in x])
        if isinstance(x, (list, tuple)):
            return type(x)(self._val(e) for e in x)
        return x

    def _out(self, r):
        if isinstance(r, tuple):
            return tuple(self._out(e) for e in r)
        if isinstance(r, list):
            return [self._out(e) for e in r]
        if self.inner.is_primitive(r):
            return self._wrap(r)
        return r

    def _ew(self, op: str, args: tuple, cast_to=None) -> Lazy:
        # the host side of every recorded op: kept lean (PoCL's step is host-bound)
        shape = None
        rg = False
        size = 1
        grad_on = _state.enabled
        ad = self._ad
        for a in args:
            if type(a) is Lazy:
                if a.value is None:
                    if a.size >= MAX_PENDING or (ad and a.grad_on != grad_on):
                        realize(self, a)
                    else:
                        size += a.size
                s = a.shape
                if shape is None:
                    shape = s
                elif s != shape:
                    shape = broadcast_shapes(shape, s, op)
                if ad and grad_on and not rg:
                    rg = a.rg if a.value is None else self.inner.requires_grad(a.value)
        if shape is not None and self._eager_below and math.prod(shape) < self._eager_below:
            return self._eager(op, args, cast_to)
        if op in BOOL_OUT:
            d = dt.bool_
        elif op == "cast":
            d = cast_to
        else:
            # scalars take the dtype of the tensor operands; where's condition does not count
            d = None
            for a in (args[1:] if op == "where" else args):
                if type(a) is Lazy:
                    d = a.dtype
                    break
        n = pending(op, args, shape, d, cast_to, rg, size)
        self._pending.append(weakref.ref(n))
        if len(self._pending) > 4096:
            self._prune()
        return n

    def _eager(self, op: str, args: tuple, cast_to) -> Lazy:
        """Run one elementwise op on the inner backend now (see eager_below)."""
        i = self.inner
        vals = [self._val(a) for a in args]
        if op == "cast":
            r = i.cast(vals[0], cast_to)
        elif op in ("gelu", "gelu_tanh"):
            r = i.gelu(vals[0], "none" if op == "gelu" else "tanh")
        else:
            r = getattr(i, op)(*vals)
        stats.record_unfused(op)
        return self._wrap(r)

    def _prune(self) -> None:
        keep = []
        for r in self._pending:
            n = r()
            if n is not None and n.value is None:
                keep.append(r)
        self._pending = keep

    # ------------------------------------------------------------------ description & transfer
    def shape(self, x) -> tuple:
        return x.shape

    def dtype(self, x):
        return x.dtype

    def is_primitive(self, x) -> bool:
        return type(x) is Lazy

    def from_numpy(self, a, dtype):
        return self._wrap(self.inner.from_numpy(a, dtype))

    def to_numpy(self, x):
        return self.inner.to_numpy(self._val(x))

    def from_dlpack(self, obj):
        return self._wrap(self.inner.from_dlpack(obj))

    def to_dlpack(self, x, stream=None):
        return self.inner.to_dlpack(self._val(x), stream)

    def dlpack_device(self, x):
        return self.inner.dlpack_device(self._val(x))

    def realize(self, x) -> None:
        self.inner.realize(self._val(x))

    def sync(self) -> None:
        """Run every pending chain that is still referenced, then wait for the inner backend."""
        pend, self._pending = self._pending, []
        # newest first: a chain's last node runs the whole chain as one program, and the
        # nodes inside it that nothing else references die with its arguments. Oldest first
        # ran every intermediate node as its own program (a 5-op chain: 5 kernels).
        for r in reversed(pend):
            n = r()
            if n is not None and n.value is None:
                realize(self, n)
        self.inner.sync()

    def layer_norm(self, x, normalized_ndim, weight, bias, eps):
        if self._compose_norm:
            return Backend.layer_norm(self, x, normalized_ndim, weight, bias, eps)
        stats.record_unfused("layer_norm")
        return self._wrap(self.inner.layer_norm(*self._val((x, normalized_ndim, weight, bias, eps))))

    def reshape(self, x, shape: tuple):
        # a reshape to the same shape keeps a pending chain pending (others end it: a fused
        # program computes in one index space)
        if type(x) is Lazy and tuple(shape) == x.shape:
            return x
        return self._wrap(self.inner.reshape(self._val(x), shape))

    # ------------------------------------------------------------------ matmul (epilogue)
    def matmul(self, a, b):
        if not self._epilogue:
            stats.record_unfused("matmul")
            return self._wrap(self.inner.matmul(self._val(a), self._val(b)))
        shape = matmul_shape(a.shape, b.shape)
        if shape is None or a.dtype is not b.dtype:
            # the inner backend raises its own error for these, at this line
            return self._wrap(self.inner.matmul(self._val(a), self._val(b)))
        av, bv = self._val(a), self._val(b)
        i = self.inner
        rg = self._ad and _state.enabled and (i.requires_grad(av) or i.requires_grad(bv))
        n = pending_matmul(av, bv, shape, a.dtype, rg)
        self._pending.append(weakref.ref(n))
        return n

    def linear(self, x, w, b):
        # composed here (matmul + bias, pending) when the base has no linear of its own, so
        # the bias and the activation after it become the matmul's epilogue; a tracking
        # Autodiff layer below records x @ w.T with linear's gradients (Autodiff.matmul)
        if "linear" in self._compose or self._compose_linear:
            if self._epilogue and len(x.shape) >= 3:
                # one batched product of x's own shape: Backend.linear's reshape to rows and
                # back would end the pending chain before the activation could join it
                out = self.matmul(x, self.permute(w, (1, 0)))
                return self.add(out, b) if b is not None else out
            return Backend.linear(self, x, w, b)
        stats.record_unfused("linear")
        return self._out(self.inner.linear(*self._val((x, w, b))))

    # ------------------------------------------------------------------ elementwise (lazy)
    def cast(self, x, dtype):
        if x.dtype is dtype:
            return x
        return self._ew("cast", (x,), dtype)

    def where(self, cond, a, b):
        return self._ew("where", (cond, a, b))

    def gelu(self, x, approximate: str = "none"):
        return self._ew("gelu" if approximate == "none" else "gelu_tanh", (x,))

    def masked_fill(self, x, mask, value):
        return self._ew("where", (mask, value, x))

    # ------------------------------------------------------------------ reductions
    def _reduce(self, op, x, axes, keepdims):
        if x.value is None:
            v = realize_reduce(self, x, op, axes, keepdims)
        else:
            stats.record_unfused(op)
            v = getattr(self.inner, op)(x.value, axes, keepdims)
        return self._wrap(v)

    def sum(self, x, axes, keepdims):
        return self._reduce("sum", x, axes, keepdims)

    def max(self, x, axes, keepdims):
        return self._reduce("max", x, axes, keepdims)

    def min(self, x, axes, keepdims):
        return self._reduce("min", x, axes, keepdims)

    # ------------------------------------------------------------------ fused programs
    def fused_elementwise(self, program, inputs, shape):
        return [self._wrap(v) for v in self.inner.fused_elementwise(program, self._val(inputs), shape)]

    def fused_update(self, program, inputs, shape, donate):
        return [self._wrap(v) for v in self.inner.fused_update(program, self._val(inputs), shape,
                                                               donate)]

    def fused_reduce(self, program, inputs, shape, op, axes, keepdims):
        return self._wrap(self.inner.fused_reduce(program, self._val(inputs), shape, op, axes,
                                                  keepdims))

    # ------------------------------------------------------------------ autodiff hooks
    def requires_grad(self, x) -> bool:
        return x.rg if x.value is None else self.inner.requires_grad(x.value)

    def set_requires_grad(self, x, flag):
        v = self._val(x)
        x.value = self.inner.set_requires_grad(v, flag)
        x.rg = bool(flag)
        return x

    def grad(self, x):
        g = self.inner.grad(self._val(x))
        return None if g is None else self._wrap(g)

    def set_grad(self, x, g) -> None:
        self.inner.set_grad(self._val(x), None if g is None else self._val(g))

    def is_leaf(self, x) -> bool:
        return x.value is not None and self.inner.is_leaf(x.value)

    def grad_fn_name(self, x):
        if x.value is None:
            return "FusedBackward" if x.rg else None
        return self.inner.grad_fn_name(x.value)

    def backward(self, root, grad, retain_graph, create_graph) -> None:
        self.inner.backward(self._val(root), None if grad is None else self._val(grad),
                            retain_graph, create_graph)

    def autograd_grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph,
                      allow_unused):
        gs = self.inner.autograd_grad(self._val(list(outputs)), self._val(list(inputs)),
                                      [None if g is None else self._val(g) for g in grad_outputs],
                                      retain_graph, create_graph, allow_unused)
        return [None if g is None else self._wrap(g) for g in gs]

    def detach(self, x):
        return self._wrap(self.inner.detach(self._val(x)))

    def assign(self, dst, src):
        v = self._val(src)
        if dst.value is None:
            realize(self, dst)
        dst.value = self.inner.assign(dst.value, v)
        dst.rg = False
        return dst


def _lazy_unary(name):
    def op(self, x):
        return self._ew(name, (x,))
    op.__name__ = name
    return op


def _lazy_binary(name):
    def op(self, a, b):
        return self._ew(name, (a, b))
    op.__name__ = name
    return op


_VIEWS = frozenset(("permute", "expand", "slice", "flip"))  # reshape: Fusion.reshape


_COMPOSABLE = ("prod", "cumsum", "cumprod", "index_select", "scatter", "softmax", "log_softmax",
               "nll_loss", "nll_loss_backward", "linear", "conv2d", "conv2d_weight_backward",
               "conv_transpose2d", "max_pool2d", "avg_pool2d")


# Ops composed here even under an Autodiff layer (Fusion(Autodiff(X))) when the base lacks
# them: Autodiff then differentiates their primitives one by one, which gives the same
# gradient as its nll_loss rule, and the masking and scaling fuse (measured on OpenCL: the MLP
# step 0.88-0.90x of the unfused one, against 1.00-1.02x with the loss as one Autodiff op).
# Not linear: that one is composed under Autodiff only where the matmul takes an epilogue
# (Fusion.linear).
LOOK_THROUGH_AUTODIFF = frozenset(("nll_loss", "nll_loss_backward"))


def _uses_default(inner: Backend, name: str) -> bool:
    """Whether inner.<name> ends in the protocol's default composition (also through
    decorators such as PoolAllocator that bind the base backend's methods on the instance,
    and through Autodiff for LOOK_THROUGH_AUTODIFF)."""
    while True:
        if getattr(getattr(inner, name), "__func__", None) is getattr(Backend, name):
            return True
        if type(inner).__name__ != "Autodiff" or name not in LOOK_THROUGH_AUTODIFF:
            return False
        inner = inner.inner


def _fuses_matmul(inner: Backend) -> bool:
    """Whether every layer from inner down to the base has its own fused_matmul (Autodiff
    and PoolAllocator forward it; a base with the protocol's default has no epilogue)."""
    b = inner
    while b is not None:
        if getattr(getattr(b, "fused_matmul"), "__func__", None) is Backend.fused_matmul:
            return False
        b = b.inner
    return True


def _forward(name):
    """A non-fusable op: realise inputs, run it on the inner backend, wrap the result.
    Views (permute, expand, slice, flip) launch nothing, so they are not counted.
    An accelerated op the inner backend lacks is composed on this layer instead."""
    view = name in _VIEWS
    default = getattr(Backend, name) if name in _COMPOSABLE else None

    def op(self, *args, **kwargs):
        if default is not None and name in self._compose:
            return default(self, *args, **kwargs)
        if not view:
            stats.record_unfused(name)
        return self._out(getattr(self.inner, name)(*self._val(args), **kwargs))
    op.__name__ = name
    return op


for _n in ("neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "erf", "abs", "sign", "reciprocal",
           "floor", "ceil", "round", "trunc", "logical_not", "bitwise_not", "sigmoid", "relu",
           "log1p", "expm1", "tan", "rsqrt", "silu", "isnan", "isinf"):
    setattr(Fusion, _n, _lazy_unary(_n))
for _n in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "floor_divide",
           "bitwise_and", "bitwise_or", "bitwise_xor", "eq", "ne", "lt", "le", "gt", "ge",
           "logical_and", "logical_or", "logical_xor"):
    setattr(Fusion, _n, _lazy_binary(_n))
for _n in ("full", "arange", "random_uniform", "random_normal", "argmax", "argmin", "int8_matmul",
           "permute", "expand", "slice", "pad", "cat", "flip", "gather", "scatter_add",
           "prod", "cumsum", "cumprod", "index_select", "scatter", "softmax", "log_softmax",
           "nll_loss", "nll_loss_backward", "conv2d", "conv2d_weight_backward",
           "conv_transpose2d", "max_pool2d", "avg_pool2d"):
    setattr(Fusion, _n, _forward(_n))
