"""Autodiff(inner): reverse-mode automatic differentiation as a Backend decorator.

Every op is forwarded to the inner backend (so its accelerated kernels run) and, when an
input requires grad and grad mode is on, records a Node whose backward rule is written with
primitives of the inner backend (autodiff_rules*.py). Ops on untracked inputs only wrap the
inner result. Stacking `Autodiff(Autodiff(B))` gives higher-order gradients: the outer
level's rules run on inner primitives, which record when `create_graph=True`.
"""
from __future__ import annotations

from ..core import grad_mode
from ..core.backend import Backend
from ..core.errors import AutodiffError, DTypeError
from . import autodiff_rules as R
from . import autodiff_rules_nn as RN
from .autodiff_fused import fused_elementwise as _fused_elementwise
from .autodiff_fused import fused_matmul as _fused_matmul
from .autodiff_fused import fused_reduce as _fused_reduce
from .autodiff_fused import fused_update as _fused_update
from .autodiff_engine import Node, Tracked, edge, run, seed_grad

# grad mode is read as the plain attribute `_state.enabled` (a class default on the
# thread-local, see core/grad_mode.py): the cheapest check on the per-op path
_state = grad_mode._state


def _rec(v, rule, nx, saved) -> Tracked:
    return Tracked(v, Node(rule, nx, saved), True)


def _unary(name, rule, save):
    """Forwarding method for a differentiable unary op; save: 'x', 'out' or None."""
    def op(self, x):
        v = getattr(self.inner, name)(x.value)
        if x.requires_grad and _state.enabled:
            n = x.node
            saved = (x.value,) if save == "x" else ((v,) if save == "out" else ())
            return Tracked(v, Node(rule, (x if n is None else n,), saved), True)
        return Tracked(v)
    op.__name__ = name
    return op


def _binary(name, rule, saver):
    def op(self, a, b):
        ta = type(a) is Tracked
        tb = type(b) is Tracked
        av = a.value if ta else a
        bv = b.value if tb else b
        v = getattr(self.inner, name)(av, bv)
        if ((ta and a.requires_grad) or (tb and b.requires_grad)) and \
                _state.enabled:
            return _rec(v, rule, (edge(a), edge(b)), saver(self.inner, av, bv, v, ta, tb))
        return Tracked(v)
    op.__name__ = name
    return op


def _untracked(name):
    """Ops whose results never require grad (bool/int outputs, creation)."""
    def op(self, *args):
        return Tracked(getattr(self.inner, name)(*(a.value if type(a) is Tracked else a
                                                   for a in args)))
    op.__name__ = name
    return op


class Autodiff(Backend):
    """Reverse-mode autodiff over any backend: `Autodiff(NumPy())`, `Autodiff(Autodiff(B))`."""

    def __init__(self, inner: Backend):
        if not isinstance(inner, Backend):
            raise TypeError(f"Autodiff wraps a backend, got {type(inner).__name__}; "
                            f"e.g. Autodiff(NumPy())")
        self.inner = inner
        self._nested = isinstance(inner, Autodiff)

    def __repr__(self) -> str:
        return f"Autodiff({self.inner!r})"

    __str__ = __repr__

    # ---------------------------------------------------------------- description, transfer
    def shape(self, x) -> tuple:
        return self.inner.shape(x.value)

    def dtype(self, x):
        return self.inner.dtype(x.value)

    def is_primitive(self, x) -> bool:
        return type(x) is Tracked and self.inner.is_primitive(x.value)

    def from_numpy(self, a, dtype):
        return Tracked(self.inner.from_numpy(a, dtype))

    def to_numpy(self, x):
        return self.inner.to_numpy(x.value)

    def realize(self, x) -> None:
        self.inner.realize(x.value)

    # DLPack goes to the inner backend so device memory is shared, not copied through host
    def from_dlpack(self, obj):
        return Tracked(self.inner.from_dlpack(obj))

    def to_dlpack(self, x, stream=None):
        return self.inner.to_dlpack(x.value, stream)

    def dlpack_device(self, x):
        return self.inner.dlpack_device(x.value)

    full = _untracked("full")
    arange = _untracked("arange")
    random_uniform = _untracked("random_uniform")
    random_normal = _untracked("random_normal")

    def cast(self, x, dtype):
        v = self.inner.cast(x.value, dtype)
        if (x.requires_grad and dtype.is_floating_point and _state.enabled):
            return _rec(v, R.cast_bw, (edge(x),), (self.inner.dtype(x.value),))
        return Tracked(v)

    # ---------------------------------------------------------------- elementwise
    neg = _unary("neg", R.neg_bw, None)
    exp = _unary("exp", R.exp_bw, "out")
    log = _unary("log", R.log_bw, "x")
    sqrt = _unary("sqrt", R.sqrt_bw, "out")
    sin = _unary("sin", R.sin_bw, "x")
    cos = _unary("cos", R.cos_bw, "x")
    tanh = _unary("tanh", R.tanh_bw, "out")
    erf = _unary("erf", R.erf_bw, "x")
    abs = _unary("abs", R.abs_bw, "x")
    sign = _unary("sign", R.sign_bw, None)
    reciprocal = _unary("reciprocal", R.reciprocal_bw, "out")
    floor = _unary("floor", R.floor_bw, None)
    ceil = _unary("ceil", R.ceil_bw, None)
    round = _unary("round", R.round_bw, None)
    trunc = _unary("trunc", R.trunc_bw, None)
    sigmoid = _unary("sigmoid", R.sigmoid_bw, "out")
    relu = _unary("relu", R.relu_bw, "out")
    log1p = _unary("log1p", R.log1p_bw, "x")
    expm1 = _unary("expm1", R.expm1_bw, "out")
    tan = _unary("tan", R.tan_bw, "out")
    rsqrt = _unary("rsqrt", R.rsqrt_bw, "out")
    silu = _unary("silu", R.silu_bw, "x")
    logical_not = _untracked("logical_not")
    bitwise_not = _untracked("bitwise_not")
    isnan = _untracked("isnan")
    isinf = _untracked("isinf")

    def gelu(self, x, approximate: str = "none"):
        v = self.inner.gelu(x.value, approximate)
        if x.requires_grad and _state.enabled:
            return _rec(v, R.gelu_bw, (edge(x),), (x.value, approximate))
        return Tracked(v)

    def add(self, a, b):
        # the hottest op: spelled out to keep the untracked path to two type checks
        if type(a) is Tracked and type(b) is Tracked:
            v = self.inner.add(a.value, b.value)
            if (a.requires_grad or b.requires_grad) and _state.enabled:
                # edges inlined (a Node is always truthy): this is the per-op hot path
                i = self.inner
                nx = ((a.node or a) if a.requires_grad else None,
                      (b.node or b) if b.requires_grad else None)
                return Tracked(v, Node(R.add_bw, nx, (i.shape(a.value), i.shape(b.value))), True)
            return Tracked(v)
        return self._add(a, b)

    def mul(self, a, b):
        if type(a) is Tracked and type(b) is Tracked:
            av = a.value
            bv = b.value
            v = self.inner.mul(av, bv)
            if (a.requires_grad or b.requires_grad) and _state.enabled:
                i = self.inner
                nx = ((a.node or a) if a.requires_grad else None,
                      (b.node or b) if b.requires_grad else None)
                return Tracked(v, Node(R.mul_bw, nx, (av, bv, i.shape(av), i.shape(bv))), True)
            return Tracked(v)
        return self._mul(a, b)

    _add = _binary("add", R.add_bw, R.save_shapes)
    _mul = _binary("mul", R.mul_bw, R.save_ab)
    sub = _binary("sub", R.sub_bw, R.save_shapes)
    div = _binary("div", R.div_bw, R.save_ab)
    pow = _binary("pow", R.pow_bw, R.save_abo)
    maximum = _binary("maximum", R.maximum_bw, R.save_ab)
    minimum = _binary("minimum", R.minimum_bw, R.save_ab)
    remainder = _binary("remainder", R.remainder_bw, R.save_ab)
    floor_divide = _binary("floor_divide", R.floor_divide_bw, R.save_shapes)
    bitwise_and = _untracked("bitwise_and")
    bitwise_or = _untracked("bitwise_or")
    bitwise_xor = _untracked("bitwise_xor")
    eq = _untracked("eq")
    ne = _untracked("ne")
    lt = _untracked("lt")
    le = _untracked("le")
    gt = _untracked("gt")
    ge = _untracked("ge")
    logical_and = _untracked("logical_and")
    logical_or = _untracked("logical_or")
    logical_xor = _untracked("logical_xor")

    def where(self, cond, a, b):
        ta = type(a) is Tracked
        tb = type(b) is Tracked
        av = a.value if ta else a
        bv = b.value if tb else b
        v = self.inner.where(cond.value, av, bv)
        if ((ta and a.requires_grad) or (tb and b.requires_grad)) and \
                _state.enabled:
            i = self.inner
            return _rec(v, R.where_bw, (edge(a), edge(b)),
                        (cond.value, i.shape(av) if ta else None, i.shape(bv) if tb else None))
        return Tracked(v)

    def masked_fill(self, x, mask, value):
        v = self.inner.masked_fill(x.value, mask.value, value)
        if x.requires_grad and _state.enabled:
            return _rec(v, R.masked_fill_bw, (edge(x),), (mask.value,))
        return Tracked(v)

    # ---------------------------------------------------------------- recording helper
    def _one(self, x, v, rule, saved):
        """Wrap v (the result of an op on x and constants) and record it if x is tracked."""
        if x.requires_grad and _state.enabled:
            return _rec(v, rule, (edge(x),), saved)
        return Tracked(v)

    # ---------------------------------------------------------------- reductions
    def sum(self, x, axes: tuple, keepdims: bool):
        i = self.inner
        return self._one(x, i.sum(x.value, axes, keepdims), R.sum_bw,
                         (i.shape(x.value), axes, keepdims))

    def max(self, x, axes: tuple, keepdims: bool):
        v = self.inner.max(x.value, axes, keepdims)
        return self._one(x, v, R.max_bw, (x.value, v, axes, keepdims))

    def min(self, x, axes: tuple, keepdims: bool):
        v = self.inner.min(x.value, axes, keepdims)
        return self._one(x, v, R.min_bw, (x.value, v, axes, keepdims))

    argmax = _untracked("argmax")
    argmin = _untracked("argmin")

    def prod(self, x, axes: tuple, keepdims: bool):
        return self._one(x, self.inner.prod(x.value, axes, keepdims), R.prod_bw,
                         (x.value, axes, keepdims))

    def cumsum(self, x, axis: int):
        return self._one(x, self.inner.cumsum(x.value, axis), R.cumsum_bw, (axis,))

    def cumprod(self, x, axis: int):
        v = self.inner.cumprod(x.value, axis)
        return self._one(x, v, R.cumprod_bw, (x.value, v, axis))

    # ---------------------------------------------------------------- movement
    def reshape(self, x, shape: tuple):
        i = self.inner
        return self._one(x, i.reshape(x.value, shape), R.reshape_bw, (i.shape(x.value),))

    def permute(self, x, dims: tuple):
        inv = [0] * len(dims)
        for k, d in enumerate(dims):
            inv[d] = k
        return self._one(x, self.inner.permute(x.value, dims), R.permute_bw, (tuple(inv),))

    def expand(self, x, shape: tuple):
        i = self.inner
        return self._one(x, i.expand(x.value, shape), R.expand_bw, (i.shape(x.value),))

    def slice(self, x, starts: tuple, stops: tuple, steps: tuple):
        i = self.inner
        return self._one(x, i.slice(x.value, starts, stops, steps), R.slice_bw,
                         (i.shape(x.value), starts, stops, steps))

    def pad(self, x, pads: tuple, value):
        i = self.inner
        return self._one(x, i.pad(x.value, pads, value), R.pad_bw, (i.shape(x.value), pads))

    def flip(self, x, axes: tuple):
        return self._one(x, self.inner.flip(x.value, axes), R.flip_bw, (axes,))

    def cat(self, xs, axis: int):
        i = self.inner
        vals = [t.value for t in xs]
        v = i.cat(vals, axis)
        if _state.enabled and any(t.requires_grad for t in xs):
            return _rec(v, R.cat_bw, tuple(edge(t) for t in xs),
                        (tuple(i.shape(t)[axis] for t in vals), axis))
        return Tracked(v)

    # ---------------------------------------------------------------- indexing
    def gather(self, x, axis: int, index):
        i = self.inner
        return self._one(x, i.gather(x.value, axis, index.value), R.gather_bw,
                         (i.shape(x.value), axis, index.value))

    def index_select(self, x, axis: int, index):
        i = self.inner
        return self._one(x, i.index_select(x.value, axis, index.value), R.index_select_bw,
                         (i.shape(x.value), axis, index.value))

    def _scatter(self, name, rule, x, axis, index, src):
        i = self.inner
        v = getattr(i, name)(x.value, axis, index.value, src.value)
        if (x.requires_grad or src.requires_grad) and _state.enabled:
            return _rec(v, rule, (edge(x), edge(src)),
                        (axis, index.value, i.shape(src.value)))
        return Tracked(v)

    def scatter_add(self, x, axis: int, index, src):
        return self._scatter("scatter_add", R.scatter_add_bw, x, axis, index, src)

    def scatter(self, x, axis: int, index, src):
        return self._scatter("scatter", R.scatter_bw, x, axis, index, src)

    # ---------------------------------------------------------------- linear algebra, nn
    def matmul(self, a, b):
        v = self.inner.matmul(a.value, b.value)
        if (a.requires_grad or b.requires_grad) and _state.enabled:
            return self._record_matmul(a, b, v)
        return Tracked(v)

    def int8_matmul(self, a, b):
        # integer products (quantized inference): nothing to differentiate
        return Tracked(self.inner.int8_matmul(a.value, b.value))

    def _record_matmul(self, a, b, v) -> Tracked:
        """The tracked product v = a @ b. For x @ w.T with w 2-D (a composed linear, or a
        user's; x of any rank) the recorded edge goes to w itself and the gradient is
        linear's, g.T @ x: contiguous like w; the transposed view of x.T @ g that the matmul
        rule would give makes every optimizer pass over it slower."""
        n = b.node
        if (n is not None and n.rule is R.permute_bw and n.saved == ((1, 0),)
                and len(self.inner.shape(a.value)) >= 2):
            w = self.inner.permute(b.value, (1, 0))
            return _rec(v, RN.mm_by_transposed_bw, (edge(a), n.next[0]), (a.value, w))
        return _rec(v, RN.matmul_bw, (edge(a), edge(b)), (a.value, b.value))

    def linear(self, x, w, b):
        v = self.inner.linear(x.value, w.value, None if b is None else b.value)
        if _state.enabled and (x.requires_grad or w.requires_grad or
                               (b is not None and b.requires_grad)):
            return _rec(v, RN.linear_bw, (edge(x), edge(w), None if b is None else edge(b)),
                        (x.value, w.value, b is not None))
        return Tracked(v)

    def softmax(self, x, axis: int):
        v = self.inner.softmax(x.value, axis)
        return self._one(x, v, RN.softmax_bw, (v, axis))

    def log_softmax(self, x, axis: int):
        v = self.inner.log_softmax(x.value, axis)
        return self._one(x, v, RN.log_softmax_bw, (v, axis))

    def nll_loss(self, logp, target, weight, ignore_index: int, reduction: str):
        # no gradient flows to the target or the class weights (torch gives none either)
        wv = weight.value if weight is not None else None
        v = self.inner.nll_loss(logp.value, target.value, wv, ignore_index, reduction)
        return self._one(logp, v, RN.nll_loss_bw,
                         (logp.value, target.value, wv, ignore_index, reduction))

    def layer_norm(self, x, normalized_ndim: int, weight, bias, eps: float):
        i = self.inner
        wv = weight.value if weight is not None else None
        bv = bias.value if bias is not None else None
        v = i.layer_norm(x.value, normalized_ndim, wv, bv, eps)
        ins = (x, weight, bias)
        if _state.enabled and \
                any(t is not None and t.requires_grad for t in ins):
            return _rec(v, RN.layer_norm_bw, tuple(edge(t) for t in ins),
                        (x.value, wv, normalized_ndim, eps,
                         i.shape(wv) if wv is not None else None,
                         i.shape(bv) if bv is not None else None))
        return Tracked(v)

    def conv2d(self, x, w, stride: tuple, padding: tuple, dilation: tuple, groups: int):
        v = self.inner.conv2d(x.value, w.value, stride, padding, dilation, groups)
        if (x.requires_grad or w.requires_grad) and _state.enabled:
            return _rec(v, RN.conv2d_bw, (edge(x), edge(w)),
                        (x.value, w.value, stride, padding, dilation, groups))
        return Tracked(v)

    def conv_transpose2d(self, x, w, stride: tuple, padding: tuple, output_padding: tuple,
                         dilation: tuple, groups: int):
        v = self.inner.conv_transpose2d(x.value, w.value, stride, padding, output_padding,
                                        dilation, groups)
        if (x.requires_grad or w.requires_grad) and _state.enabled:
            return _rec(v, RN.conv_transpose2d_bw, (edge(x), edge(w)),
                        (x.value, w.value, stride, padding, dilation, groups))
        return Tracked(v)

    def max_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple,
                   ceil_mode: bool):
        i = self.inner
        v, ind = i.max_pool2d(x.value, kernel, stride, padding, dilation, ceil_mode)
        return (self._one(x, v, RN.max_pool2d_bw, (i.shape(x.value), ind)), Tracked(ind))

    def avg_pool2d(self, x, kernel: tuple, stride: tuple, padding: tuple, ceil_mode: bool,
                   count_include_pad: bool, divisor_override=None):
        i = self.inner
        v = i.avg_pool2d(x.value, kernel, stride, padding, ceil_mode, count_include_pad,
                         divisor_override)
        return self._one(x, v, RN.avg_pool2d_bw, (i.shape(x.value), kernel, stride, padding,
                                                 count_include_pad, divisor_override))

    # fused programs (from an outer Fusion): forward as one inner kernel, backward derived
    # symbolically into another fused program (autodiff_fused.py)
    fused_elementwise = _fused_elementwise
    fused_reduce = _fused_reduce
    fused_update = _fused_update
    fused_matmul = _fused_matmul

    # ================================================================ autodiff hooks
    def requires_grad(self, x) -> bool:
        return x.requires_grad or (self._nested and self.inner.requires_grad(x.value))

    def set_requires_grad(self, x, flag: bool):
        flag = bool(flag)
        if flag:
            d = self.inner.dtype(x.value)
            if not d.is_floating_point:
                raise DTypeError(f"only floating point tensors can require gradients, got a "
                                 f"{d.name} tensor; cast it first, e.g. x.float()")
        elif not self.is_leaf(x):
            raise AutodiffError("you can only change requires_grad flags of leaf variables. If "
                                "you want to use a computed variable in a subgraph that doesn't "
                                "require differentiation use var_no_grad = var.detach()")
        if x.node is None:
            x.requires_grad = flag
            if self._nested and self.inner.is_leaf(x.value):
                self.inner.set_requires_grad(x.value, flag)
        return x

    def grad(self, x):
        g = x.grad
        if self._nested and self.inner.is_leaf(x.value):
            # gradients recorded at the inner level (a backward of a create_graph result)
            # add to this level's, as they would in one torch .grad
            ig = self.inner.grad(x.value)
            if ig is not None:
                return Tracked(ig) if g is None else Tracked(self.inner.add(g.value, ig))
        return g

    def set_grad(self, x, g) -> None:
        if g is not None:
            if type(g) is not Tracked:
                raise AutodiffError(f"a gradient of a {self} tensor must be a tensor of the "
                                    f"same stack")
            gs, xs = self.inner.shape(g.value), self.inner.shape(x.value)
            if gs != xs:
                raise AutodiffError(f"assigned grad has shape {gs} but the tensor has shape {xs}")
            gd, xd = self.inner.dtype(g.value), self.inner.dtype(x.value)
            if gd is not xd:
                raise AutodiffError(f"assigned grad has dtype {gd.name} but the tensor has "
                                    f"dtype {xd.name}")
        x.grad = g
        if self._nested and self.inner.is_leaf(x.value):
            self.inner.set_grad(x.value, None)

    def is_leaf(self, x) -> bool:
        if x.node is not None:
            return False
        return self.inner.is_leaf(x.value) if self._nested else True

    def grad_fn_name(self, x):
        if x.node is not None:
            return x.node.rule.grad_fn_name
        return self.inner.grad_fn_name(x.value) if self._nested else None

    def _check_create_graph(self, create_graph):
        if create_graph and not self._nested:
            raise AutodiffError(f"create_graph=True (higher-order gradients) needs a second "
                                f"Autodiff layer: build the stack as Autodiff({self}) so the "
                                f"backward pass itself is recorded")

    def backward(self, root, grad, retain_graph: bool, create_graph: bool) -> None:
        if retain_graph is None:
            retain_graph = create_graph
        if not root.requires_grad:
            if self._nested and self.inner.requires_grad(root.value):
                return self.inner.backward(root.value, None if grad is None else grad.value,
                                           retain_graph, create_graph)
            raise AutodiffError("element 0 of tensors does not require grad and does not have "
                                "a grad_fn: nothing it depends on has requires_grad=True (or it "
                                "was computed under no_grad)")
        self._check_create_graph(create_graph)
        run(self, [root], [seed_grad(self, root, grad)], retain_graph, create_graph)

    def autograd_grad(self, outputs, inputs, grad_outputs, retain_graph, create_graph,
                      allow_unused):
        outputs, inputs = list(outputs), list(inputs)
        if grad_outputs is None:
            grad_outputs = [None] * len(outputs)
        grad_outputs = list(grad_outputs)
        if len(grad_outputs) != len(outputs):
            raise AutodiffError(f"grad_outputs has {len(grad_outputs)} entries for "
                                f"{len(outputs)} outputs")
        if retain_graph is None:
            retain_graph = create_graph
        if not any(o.requires_grad for o in outputs) and self._nested and \
                all(self.inner.requires_grad(o.value) for o in outputs):
            res = self.inner.autograd_grad(
                [o.value for o in outputs], [t.value for t in inputs],
                [None if g is None else g.value for g in grad_outputs],
                retain_graph, create_graph, allow_unused)
            return [None if r is None else Tracked(r) for r in res]
        for k, o in enumerate(outputs):
            if not o.requires_grad:
                raise AutodiffError(f"element {k} of tensors does not require grad and does "
                                    f"not have a grad_fn")
        for k, t in enumerate(inputs):
            if not t.requires_grad:
                raise AutodiffError(f"One of the differentiated tensors (input {k}) does not "
                                    f"require grad")
        self._check_create_graph(create_graph)
        seeds = [seed_grad(self, o, g, k) for k, (o, g) in enumerate(zip(outputs, grad_outputs))]
        res = run(self, outputs, seeds, retain_graph, create_graph, inputs, allow_unused)
        return [None if g is None else Tracked(g) for g in res]

    def detach(self, x):
        return Tracked(self.inner.detach(x.value) if self._nested else x.value)

    def assign(self, dst, src):
        if type(src) is not Tracked:
            raise AutodiffError(f"assign: the new value is not a tensor of the stack {self}")
        enabled = _state.enabled
        if enabled and dst.requires_grad and dst.node is None:
            raise AutodiffError("a leaf Variable that requires grad is being used in an in-place "
                                "operation: wrap the update in `with strata.no_grad():` (as "
                                "optimizers do) or update a clone")
        if enabled and src.requires_grad:
            # the tensor takes the history of its new value, as an in-place op does in torch
            dst.value = src.value
            dst.node = src.node if src.node is not None else Node(R.identity_bw, (src,), ())
            dst.requires_grad = True
            return dst
        # always through the inner layer: a Fusion below realises the value there (otherwise
        # optimizer state would stay a growing lazy graph), an Autodiff keeps its leaf
        dst.value = self.inner.assign(dst.value, src.value)
        if enabled and dst.node is not None:
            dst.node = None
            dst.requires_grad = False
        return dst
