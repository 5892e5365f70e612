"""strata.autograd: functional gradients over Tensors, like torch.autograd.

    g, = strata.autograd.grad(loss, [w])                         # d loss / d w
    g, = strata.autograd.grad(loss, [w], create_graph=True)      # needs Autodiff(Autodiff(B))
    strata.autograd.backward([y1, y2], [g1, g2])

The work is done by the stack's Autodiff layer (`Backend.autograd_grad` / `Backend.backward`);
a stack without one raises an error that says how to add it.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from .core.errors import BackendError
from .core.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["grad", "backward", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]


def _tensor_cls():
    # imported lazily: the frontend imports this package's core first
    from .core.tensor import Tensor
    return Tensor


def _as_list(x, what: str) -> list:
    Tensor = _tensor_cls()
    if isinstance(x, Tensor):
        return [x]
    try:
        xs = list(x)
    except TypeError:
        raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, "
                        f"got {type(x).__name__}") from None
    for k, t in enumerate(xs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}[{k}] must be a Tensor, got {type(t).__name__}")
    return xs


def _grad_list(gs, n: int, what: str, Tensor) -> list:
    if gs is None:
        return [None] * n
    gs = [gs] if isinstance(gs, Tensor) else list(gs)
    if len(gs) != n:
        raise ValueError(f"{what} has {len(gs)} entries but there are {n} outputs")
    for k, g in enumerate(gs):
        if g is not None and not isinstance(g, Tensor):
            raise TypeError(f"{what}[{k}] must be a Tensor or None, got {type(g).__name__}")
    return gs


def _one_backend(tensors):
    b = tensors[0]._b
    for t in tensors[1:]:
        if t._b is not b and t._b != b:
            raise BackendError(f"autograd: tensors live on different stacks, {b} and {t._b}; "
                               f"move them with .to(...) first")
    return b


def grad(outputs, inputs, grad_outputs=None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Gradients of `outputs` with respect to `inputs` (a tuple, one entry per input), without
    touching `.grad`. Non-scalar outputs need `grad_outputs` (the vector of the
    vector-Jacobian product). `create_graph=True` records the backward pass so the result can
    be differentiated again; that needs a stack with two Autodiff layers, e.g.
    `Autodiff(Autodiff(NumPy()))`. Unused inputs are an error unless `allow_unused=True`,
    which gives None for them."""
    Tensor = _tensor_cls()
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    if not outs or not ins:
        raise ValueError("grad needs at least one output and one input")
    gos = _grad_list(grad_outputs, len(outs), "grad_outputs", Tensor)
    b = _one_backend(outs + ins + [g for g in gos if g is not None])
    if retain_graph is None:
        retain_graph = create_graph
    res = b.autograd_grad([t._p for t in outs], [t._p for t in ins],
                          [None if g is None else g._p for g in gos],
                          retain_graph, create_graph, allow_unused)
    return tuple(None if p is None else Tensor._make(p, b) for p in res)


def backward(tensors: Union["Tensor", Sequence], grad_tensors=None,
             retain_graph: Optional[bool] = None, create_graph: bool = False) -> None:
    """Accumulate into `.grad` of the leaves the gradients of every tensor in `tensors`
    (each with its entry of `grad_tensors`; scalars may use None)."""
    Tensor = _tensor_cls()
    ts = _as_list(tensors, "tensors")
    gs = _grad_list(grad_tensors, len(ts), "grad_tensors", Tensor)
    if retain_graph is None:
        retain_graph = create_graph
    for k, (t, g) in enumerate(zip(ts, gs)):
        # earlier passes keep the graph: later tensors may share it
        last = k == len(ts) - 1
        t.backward(g, retain_graph=retain_graph or not last, create_graph=create_graph)
