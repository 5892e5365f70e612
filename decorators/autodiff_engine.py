"""The tape of the Autodiff decorator: tracked primitives, graph nodes and the reverse pass.

A `Tracked` wraps one primitive of the inner backend. A tracked result of a differentiable op
carries a `Node`: the backward rule, the edges to its inputs (their Nodes, or the leaf
`Tracked` itself for leaves that require grad, or None) captured when the op ran, and the
values the rule needs. Edges point at nodes captured at record time, never at the input
wrappers, so a later in-place `assign` on an input cannot rewire an existing graph; saved
values are inner primitives, which ops never modify, so the recorded computation is what gets
differentiated even if a tensor is updated in place afterwards.

The reverse pass is iterative (no recursion limit for deep graphs): a depth-first post-order
over Nodes gives a topological order, gradients are summed per Node in a dict and each rule
runs once with the total gradient of its output.
"""
from __future__ import annotations

from ..core import grad_mode
from ..core.errors import AutodiffError, ShapeError


class Tracked:
    """Primitive of an Autodiff backend: the inner primitive plus its place in the graph."""

    __slots__ = ("value", "node", "requires_grad", "grad")

    def __init__(self, value, node=None, requires_grad=False):
        self.value = value
        self.node = node
        self.requires_grad = requires_grad
        # accumulated gradient of a leaf: an untracked Tracked of the same backend, kept as one
        # object so in-place ops on `x.grad` (zero_, mul_) change the stored gradient
        self.grad = None

    def __repr__(self) -> str:
        what = (self.node.rule.grad_fn_name if self.node is not None
                else ("leaf" if self.requires_grad else "untracked"))
        return f"Tracked({what}, {self.value!r})"


class Node:
    """One recorded op: rule(B, saved, grad_out, next) -> one gradient (or None) per edge."""

    __slots__ = ("rule", "next", "saved")

    def __init__(self, rule, next, saved):
        self.rule = rule
        self.next = next
        self.saved = saved


def edge(t):
    """Where a gradient for input t goes: its Node, itself if a leaf that requires grad, or None."""
    if type(t) is not Tracked or not t.requires_grad:
        return None
    n = t.node
    return t if n is None else n


_FREED = ("Trying to backward through the graph a second time (or directly access saved "
          "tensors after they have already been freed). Saved intermediate values of the graph "
          "are freed when you call .backward() or strata.autograd.grad(). Specify "
          "retain_graph=True if you need to backward through the graph a second time.")


def _topo(starts) -> list:
    """Nodes reachable from `starts`, consumers before producers."""
    order = []
    seen = set()
    for s in starts:
        if type(s) is not Node or s in seen:
            continue
        seen.add(s)
        stack = [(s, iter(s.next))]
        while stack:
            n, it = stack[-1]
            for e in it:
                if type(e) is Node and e not in seen:
                    seen.add(e)
                    stack.append((e, iter(e.next)))
                    break
            else:
                stack.pop()
                order.append(n)
    order.reverse()
    return order


def _needed(order, targets) -> set:
    """Nodes from which some target (Node or leaf) is reachable: the only ones worth running."""
    need = set()
    for n in reversed(order):  # producers first
        if n in targets or any(e is not None and (e in need or e in targets) for e in n.next):
            need.add(n)
    return need


def seed_grad(B, root: Tracked, grad, index: int = 0):
    """The gradient that starts the pass at `root`, as an inner primitive."""
    inner = B.inner
    shp = inner.shape(root.value)
    dtype = inner.dtype(root.value)
    if grad is None:
        n = 1
        for s in shp:
            n *= s
        if n != 1:
            raise AutodiffError(f"grad can be implicitly created only for scalar outputs: output "
                                f"{index} has shape {shp}; pass a gradient of that shape "
                                f"(e.g. y.backward(strata.ones_like(y))) or reduce it first "
                                f"(y.sum().backward())")
        return inner.full(shp, 1, dtype)
    if type(grad) is not Tracked:
        raise AutodiffError(f"the gradient for output {index} is not a tensor of the stack {B}")
    g = grad.value
    gshp = inner.shape(g)
    if gshp != shp:
        raise ShapeError(f"Mismatch in shape: grad_output[{index}] has a shape of {gshp} and "
                         f"output[{index}] has a shape of {shp}")
    if inner.dtype(g) is not dtype:
        g = inner.cast(g, dtype)
    return g


def run(B, roots, seeds, retain_graph: bool, create_graph: bool, inputs=None,
        allow_unused: bool = False):
    """Reverse pass of backend B (an Autodiff) from `roots` (Tracked that require grad) with
    `seeds` (inner primitives). With inputs=None, leaf gradients accumulate into `.grad`;
    otherwise the gradients of `inputs` are returned (a list, None for unused ones)."""
    inner = B.inner
    grads = {}
    for r, g in zip(roots, seeds):
        k = r.node if r.node is not None else r
        prev = grads.get(k)
        grads[k] = g if prev is None else inner.add(prev, g)
    order = _topo(grads.keys())
    targets = None
    if inputs is not None:
        targets = {}
        for i, t in enumerate(inputs):
            targets.setdefault(edge(t), []).append(i)
        need = _needed(order, targets)
        order = [n for n in order if n in need]
        captured = {}
    mode = grad_mode.enable_grad() if create_graph else grad_mode.no_grad()
    with mode:
        for n in order:
            g = grads.pop(n, None)
            if g is None:
                continue
            if targets is not None and n in targets:
                captured[n] = g
            saved = n.saved
            if saved is None:
                raise AutodiffError(_FREED)
            outs = n.rule(inner, saved, g, n.next)
            if not retain_graph and n.rule.frees:
                n.saved = None
            for e, gi in zip(n.next, outs):
                if e is None or gi is None:
                    continue
                if targets is not None and type(e) is Node and e not in need:
                    continue
                prev = grads.get(e)
                grads[e] = gi if prev is None else inner.add(prev, gi)
        if targets is None:
            for leaf, g in grads.items():
                if type(leaf) is Tracked:
                    cur = leaf.grad
                    if cur is None:
                        leaf.grad = Tracked(g)
                    elif cur.requires_grad:
                        leaf.grad = Tracked(inner.add(cur.value, g))
                    else:
                        # in place, like torch: a tensor holding x.grad sees the new sum
                        cur.value = inner.add(cur.value, g)
            return None
    out = [None] * len(inputs)
    for k, idxs in targets.items():
        g = captured.get(k) if type(k) is Node else grads.get(k)
        for i in idxs:
            out[i] = g
    if not allow_unused:
        for i, g in enumerate(out):
            if g is None:
                raise AutodiffError(f"One of the differentiated tensors (input {i}) appears to "
                                    f"not have been used in the graph. Set allow_unused=True if "
                                    f"this is the desired behavior.")
    return out
