"""Run one op on strata and on PyTorch 2.13 CPU and compare values, dtypes, shapes and gradients.

Op functions take a namespace `m` with `m.m` (strata or torch) and `m.F` (strata.functional or
torch.nn.functional) plus tensors, so one lambda written with PyTorch names runs on both.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import strata  # noqa: E402
import strata.functional as SF  # noqa: E402


class NS:
    def __init__(self, m, F, name):
        self.m, self.F, self.name = m, F, name

    def __repr__(self):
        return self.name


ST = NS(strata, SF, "strata")
TO = NS(torch, torch.nn.functional, "torch")

TOL = {"float64": (1e-10, 1e-12), "float32": (2e-5, 2e-6), "float16": (1e-2, 2e-3)}
GRAD_TOL = {"float64": (1e-9, 1e-11), "float32": (1e-4, 1e-5), "float16": (3e-2, 1e-2)}


def dname(d) -> str:
    """dtype name of a strata or torch dtype ('float32', 'bool' ...)."""
    return str(d).split(".")[-1]


def rand(rng, shape, dtype="float64", domain="any"):
    """Seeded values of a NumPy dtype name in a domain: any, pos, nonzero, unit, int, bool."""
    shape = tuple(shape)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if np.dtype(dtype).kind in "iu":
        lo = 0 if np.dtype(dtype).kind == "u" or domain == "pos" else -6
        a = rng.integers(lo, 7, shape)
        if domain in ("pos", "nonzero"):
            a = np.where(a == 0, 1, a)
        return np.asarray(a).astype(dtype)
    if domain == "pos":
        a = rng.uniform(0.2, 3.0, shape)
    elif domain == "nonzero":
        a = np.where(rng.random(shape) < 0.5, -1, 1) * rng.uniform(0.2, 2.0, shape)
    elif domain == "unit":
        a = rng.uniform(-0.9, 0.9, shape)
    else:
        a = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(a).astype(dtype)  # 0-d stays an ndarray (NumPy ops make scalars of it)


def _layout(mod, a, layout, requires_grad, backend):
    """(leaf, view): the view holds `a`'s values with a non-contiguous layout when asked."""
    def make(x):
        if mod is strata:
            return strata.tensor(x, backend=backend, requires_grad=requires_grad)
        return torch.tensor(x, requires_grad=requires_grad)
    if layout == "T":
        leaf = make(np.ascontiguousarray(np.swapaxes(a, -1, -2)))
        return leaf, leaf.transpose(-1, -2)
    if layout == "step":  # every other element of a twice-as-wide leaf
        wide = np.repeat(a, 2, axis=-1)
        leaf = make(wide)
        return leaf, leaf[..., ::2]
    leaf = make(a)
    return leaf, leaf


def _as_list(out):
    if isinstance(out, (tuple, list)):
        return list(out), True
    return [out], False


def _to_np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, strata.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def assert_close(got, want, dtype: str, what: str, grad=False):
    rtol, atol = (GRAD_TOL if grad else TOL).get(dtype, (0.0, 0.0))
    got = np.asarray(got, dtype=np.float64) if np.asarray(got).dtype != bool else np.asarray(got)
    want = np.asarray(want, dtype=np.float64) if np.asarray(want).dtype != bool else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    finite = np.abs(want[np.isfinite(want)]) if want.dtype != bool else np.zeros(0)
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True,
                               err_msg=what)


def supported(backend, dtype_name: str) -> bool:
    """Whether the stack supports the dtype named like 'float64' (strata or torch naming)."""
    from strata.core.dtype import as_dtype
    return backend.supports(as_dtype(dname(dtype_name)))


_NARROWER = {"float64": "float32", "int64": "int32", "float16": "float32"}


def fit_backend(a, backend):
    """`a` in a dtype the backend supports: float64 becomes float32 (and int64 int32) on
    devices without them, for strata and torch alike, so the comparison stays like for like."""
    if not isinstance(a, np.ndarray) or backend is None:
        return a
    from strata.core.dtype import from_numpy
    d = a.dtype.name
    while not backend.supports(from_numpy(np.dtype(d))):
        if d not in _NARROWER:
            pytest.skip(f"{backend} supports neither {a.dtype.name} nor a narrower stand-in")
        d = _NARROWER[d]
    return a.astype(d) if d != a.dtype.name else a


def run_both(fn, inputs, backend, grad=True, layouts=None, check_dtype=True, seed=0,
             tol_dtype=None):
    """Run fn on strata (on `backend`) and torch with the same inputs and compare.

    inputs: NumPy arrays (become tensors; float ones require grad when grad=True) or Python
    scalars (passed as they are). Returns the strata output for further checks."""
    inputs = [fit_backend(a, backend) for a in inputs]
    if tol_dtype == "float64" and any(isinstance(a, np.ndarray) and a.dtype == np.float32
                                      for a in inputs):
        tol_dtype = "float32"
    layouts = layouts or [None] * len(inputs)
    outs, leaves = {}, {}
    for mod, ns in ((strata, ST), (torch, TO)):
        args, ls = [], []
        for a, lay in zip(inputs, layouts):
            if isinstance(a, np.ndarray):
                rg = grad and a.dtype.kind == "f"
                leaf, view = _layout(mod, a, lay, rg, backend)
                ls.append(leaf if rg else None)
                args.append(view)
            else:
                ls.append(None)
                args.append(a)
        outs[mod.__name__] = fn(ns, *args)
        leaves[mod.__name__] = ls
    s_outs, multi = _as_list(outs["strata"])
    t_outs, _ = _as_list(outs["torch"])
    assert len(s_outs) == len(t_outs), f"{len(s_outs)} outputs, torch {len(t_outs)}"
    for k, (s, t) in enumerate(zip(s_outs, t_outs)):
        what = f"output {k}" if multi else "output"
        if isinstance(t, torch.Tensor):
            assert isinstance(s, strata.Tensor), f"{what}: got {type(s).__name__}, torch a Tensor"
            if check_dtype:
                assert dname(s.dtype) == dname(t.dtype), \
                    f"{what}: dtype {dname(s.dtype)}, torch {dname(t.dtype)}"
            assert tuple(s.shape) == tuple(t.shape), f"{what}: shape {tuple(s.shape)}, torch {tuple(t.shape)}"
            assert_close(_to_np(s), _to_np(t), tol_dtype or dname(t.dtype), what)
        else:
            assert not isinstance(s, strata.Tensor) or s.numel() == 1, f"{what}: {s!r} vs {t!r}"
            assert_close(_to_np(s), np.asarray(t), tol_dtype or "float64", what)
    if not grad:
        return outs["strata"]
    rng = np.random.default_rng(seed + 1)
    loss_s, loss_t = 0, 0
    used = False
    for s, t in zip(s_outs, t_outs):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            g = rng.uniform(-1, 1, tuple(t.shape)).astype(dname(t.dtype))
            loss_s = loss_s + (s * strata.tensor(g, backend=backend)).sum()
            loss_t = loss_t + (t * torch.tensor(g)).sum()
            used = True
    if not used:
        return outs["strata"]
    loss_s.backward()
    loss_t.backward()
    for i, (ls, lt) in enumerate(zip(leaves["strata"], leaves["torch"])):
        if lt is None:
            continue
        if lt.grad is None:
            assert ls.grad is None or not np.any(_to_np(ls.grad)), f"input {i}: torch has no grad"
            continue
        assert ls.grad is not None, f"input {i}: no gradient (torch has one)"
        assert_close(_to_np(ls.grad), _to_np(lt.grad), tol_dtype or dname(lt.dtype),
                     f"grad of input {i}", grad=True)
    return outs["strata"]
