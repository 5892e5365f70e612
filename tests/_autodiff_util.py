"""Shared checks for the Autodiff tests: gradients against PyTorch autograd and against
central finite differences, all in float64 over Autodiff(NumPy())."""
from __future__ import annotations

import numpy as np
import torch

from strata.backends.numpy import NumPy
from strata.core import dtype as dt
from strata.decorators.autodiff import Autodiff

F64 = dt.float64


def stack(levels: int = 1):
    b = NumPy()
    for _ in range(levels):
        b = Autodiff(b)
    return b


def prim(B, a, requires_grad=False):
    a = np.asarray(a)
    p = B.from_numpy(a, dt.from_numpy(a.dtype))
    return B.set_requires_grad(p, True) if requires_grad else p


def value(B, p):
    return np.asarray(B.to_numpy(p))


def grads_of(fn, arrays, diff, upstream, levels=1):
    """Run fn on Autodiff(NumPy()), backward with `upstream`; return the input gradients."""
    B = stack(levels)
    ps = [prim(B, a, d) for a, d in zip(arrays, diff)]
    out = fn(B, *ps)
    B.backward(out, prim(B, upstream), False, False)
    return [value(B, B.grad(p)) if d else None for p, d in zip(ps, diff)], value(B, out)


def torch_grads(tfn, arrays, diff, upstream):
    ts = [torch.tensor(a, requires_grad=bool(d)) for a, d in zip(arrays, diff)]
    out = tfn(*ts)
    out.backward(torch.tensor(upstream))
    return [t.grad.numpy() if d else None for t, d in zip(ts, diff)], out.detach().numpy()


def fd_grads(fn, arrays, diff, upstream, eps=1e-6):
    """Central differences of L = sum(fn(x) * upstream) on the base backend (no graph)."""
    base = NumPy()

    def loss(arrs):
        return float(np.sum(value(base, fn(base, *[prim(base, a) for a in arrs])) * upstream))

    out = []
    for k, (a, d) in enumerate(zip(arrays, diff)):
        if not d:
            out.append(None)
            continue
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            arrs = [x.copy() for x in arrays]
            arrs[k][idx] += eps
            hi = loss(arrs)
            arrs[k][idx] -= 2 * eps
            lo = loss(arrs)
            g[idx] = (hi - lo) / (2 * eps)
        out.append(g)
    return out


def check(fn, tfn, arrays, diff=None, fd=True, seed=0, rtol=1e-7, atol=1e-9):
    """Gradients of fn through Autodiff match torch (tight) and finite differences (loose)."""
    arrays = [np.asarray(a) for a in arrays]
    diff = diff if diff is not None else [a.dtype.kind == "f" for a in arrays]
    rng = np.random.default_rng(seed)
    probe_shape = value(NumPy(), fn(NumPy(), *[prim(NumPy(), a) for a in arrays])).shape
    upstream = rng.standard_normal(probe_shape)
    ours, out = grads_of(fn, arrays, diff, upstream)
    if tfn is not None:  # None where torch cannot run the case (finite differences only)
        ref, tout = torch_grads(tfn, arrays, diff, upstream)
        np.testing.assert_allclose(out, tout, rtol=1e-10, atol=1e-12, err_msg="forward differs")
        for k, (g, r) in enumerate(zip(ours, ref)):
            if g is None:
                continue
            assert g.shape == r.shape, f"grad {k}: shape {g.shape} vs torch {r.shape}"
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=f"grad {k} vs torch")
    if fd:
        for k, (g, f) in enumerate(zip(ours, fd_grads(fn, arrays, diff, upstream))):
            if g is not None:
                np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-6,
                                           err_msg=f"grad {k} vs finite differences")
    return ours
