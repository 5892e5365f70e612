"""Runs conformance cases on a backend stack through the public Tensor API."""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from ..core import dtype as dt
from ..core.dtype import DType
from ..core.errors import AutodiffError, UnsupportedError
from . import ops_elementwise, ops_linalg_nn, ops_movement, ops_reduce
from .spec import REPORTED, Case, compare, make_inputs, rng_for, tolerance


@dataclass
class Result:
    """One op x dtype x kind outcome. status: 'pass', 'fail' or 'unsupported'."""
    op: str
    dtype: str
    kind: str          # 'forward' or 'backward'
    status: str
    max_error: float | None = None
    message: str = ""
    group: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def all_cases() -> list[Case]:
    cases = (ops_elementwise.CASES + ops_reduce.CASES + ops_movement.CASES
             + ops_linalg_nn.CASES)
    seen = set()
    for c in cases:
        if c.name in seen:
            raise AssertionError(f"duplicate conformance case name {c.name!r}")
        seen.add(c.name)
    return cases


def _select(cases: list[Case], ops) -> list[Case]:
    if not ops:
        return cases
    pats = [ops] if isinstance(ops, str) else list(ops)
    out = [c for c in cases if any(c.name == p or c.group == p or fnmatch.fnmatchcase(c.name, p)
                                   for p in pats)]
    if not out:
        raise ValueError(f"no conformance case matches {pats}; names look like "
                         f"{', '.join(c.name for c in cases[:6])}, ... and groups are "
                         f"{', '.join(sorted({c.group for c in cases}))}")
    return out


def _resolve(backend):
    import strata
    return strata.backend(backend) if isinstance(backend, str) else backend


def has_autodiff(backend) -> bool:
    """Whether the stack records gradients (it has an Autodiff layer)."""
    import strata
    try:
        strata.tensor([1.0], backend=_resolve(backend), requires_grad=True)
        return True
    except AutodiffError:
        return False


def check(backend, ops: Iterable[str] | str | None = None,
          dtypes: Sequence[DType | str] | None = None, backward: bool | None = None) -> list[Result]:
    """Check every op x dtype on `backend` (a Backend or a stack string such as
    "Autodiff(NumPy())") against float64 NumPy references: forward values and result dtypes,
    and, on stacks with Autodiff, gradients against finite differences and analytic rules.

    ops: case names, fnmatch patterns ("F.*", "sum*") or groups ("unary", "reduce", "nn" ...).
    dtypes: restrict to these dtypes. backward: None checks gradients when the stack can.
    """
    import strata
    import strata.functional as F
    B = _resolve(backend)
    wanted = None if dtypes is None else {dt.as_dtype(d) for d in dtypes}
    grads = has_autodiff(B) if backward is None else backward
    results: list[Result] = []
    for case in _select(all_cases(), ops):
        for d in REPORTED:
            if d not in case.dtypes or (wanted is not None and d not in wanted):
                continue
            do_bwd = grads and case.grad and d.is_floating_point
            if not B.supports(d):
                msg = f"{B} does not support {d.name}"
                results.append(Result(case.name, d.name, "forward", "unsupported", None, msg,
                                      case.group))
                if do_bwd:
                    results.append(Result(case.name, d.name, "backward", "unsupported", None,
                                          msg, case.group))
                continue
            results.append(_guard(_forward, strata, F, B, case, d, "forward"))
            if do_bwd:
                r = _guard(_backward, strata, F, B, case, d, "backward")
                if r is not None:
                    results.append(r)
    return results


def _guard(fn, st, F, B, case, d, kind):
    try:
        with np.errstate(all="ignore"):
            return fn(st, F, B, case, d)
    except UnsupportedError as e:
        return Result(case.name, d.name, kind, "unsupported", None, str(e), case.group)
    except Exception as e:  # anything else is the backend's (or frontend's) failure
        msg = f"{type(e).__name__}: {e}"
        return Result(case.name, d.name, kind, "fail", None, msg[:400], case.group)


# ---------------------------------------------------------------- helpers
def _ref_array(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    return a


def _tensors(st, B, case: Case, arrs, requires):
    """(leaves, views): views are what the op sees (non-contiguous for transposed args)."""
    leaves, views = [], []
    for i, a in enumerate(arrs):
        d = dt.from_numpy(a.dtype)
        transposed = bool(case.args) and i < len(case.args) and case.args[i].transposed
        base = np.ascontiguousarray(np.swapaxes(a, -1, -2)) if transposed else a
        t = st.tensor(base, dtype=d, backend=B, requires_grad=i in requires)
        leaves.append(t)
        views.append(t.transpose(-1, -2) if transposed else t)
    return leaves, views


def _output(st, out):
    if isinstance(out, st.Tensor):
        return out.detach().numpy(), out.dtype
    if isinstance(out, np.ndarray):
        return out, dt.from_numpy(out.dtype)
    raise TypeError(f"the op returned {type(out).__name__}, expected a Tensor")


def _expected(case: Case, d: DType, arrs) -> np.ndarray:
    r = np.asarray(case.ref(*[_ref_array(a) for a in arrs]))
    o = case.out_dtype(d)
    if o is dt.bool_:
        return r.astype(bool)
    if not o.is_floating_point:
        # integer results wrap like the dtype does (uint8 0 - 1 == 255, as in torch)
        return np.trunc(r).astype(np.int64).astype(o.np) if r.dtype.kind == "f" else r.astype(o.np)
    return r.astype(np.float64)


def _forward(st, F, B, case: Case, d: DType) -> Result:
    arrs = make_inputs(case, d)
    _, views = _tensors(st, B, case, arrs, ())
    got, got_d = _output(st, case.run(st, F, *views))
    want_d = case.out_dtype(d)
    if got_d is not want_d:
        return Result(case.name, d.name, "forward", "fail", None,
                      f"result dtype {got_d.name}, expected {want_d.name}", case.group)
    ref = _expected(case, d, arrs)
    # float results are held to the less precise of the input and result dtypes
    tol_d = d if d.is_floating_point and d.itemsize < want_d.itemsize else want_d
    rtol, atol = tolerance(tol_d, case.tol)
    ok, err, msg = compare(got, ref, rtol, atol)
    return Result(case.name, d.name, "forward", "pass" if ok else "fail", err, msg, case.group)


def _diff_inputs(case: Case, d: DType, arrs) -> list[int]:
    out = []
    for i, a in enumerate(arrs):
        if a.dtype != d.np:
            continue
        if case.args and i < len(case.args) and not case.args[i].grad:
            continue
        out.append(i)
    return out


def _backward(st, F, B, case: Case, d: DType) -> Result | None:
    arrs = make_inputs(case, d)
    diff = _diff_inputs(case, d, arrs)
    if not diff:
        return None
    leaves, views = _tensors(st, B, case, arrs, set(diff))
    out = case.run(st, F, *views)
    if not isinstance(out, st.Tensor) or not out.dtype.is_floating_point:
        raise TypeError("a differentiable case must return a floating-point Tensor")
    rng = rng_for(case.name + "/cotangent", d)
    g = rng.uniform(-1.0, 1.0, tuple(out.shape)).astype(out.dtype.np)
    loss = (out * st.tensor(g, dtype=out.dtype, backend=B)).sum()
    loss.backward()
    got = []
    for i in diff:
        gr = leaves[i].grad
        if gr is None:
            return Result(case.name, d.name, "backward", "fail", None,
                          f"input {i} has .grad None after backward(); it takes part in the "
                          f"output, so it needs a gradient (zeros where the op is flat, as in "
                          f"PyTorch)", case.group)
        a = gr.numpy()
        if case.args and i < len(case.args) and case.args[i].transposed:
            a = np.swapaxes(a, -1, -2)
        got.append(a)
    ref_in = [_ref_array(a) for a in arrs]
    g64 = g.astype(np.float64)
    expect = _finite_differences(case, ref_in, diff, g64)
    analytic = case.dref(g64, *ref_in) if case.dref is not None else None
    rtol, atol = tolerance(d, case.tol, backward=True)
    worst = 0.0
    for k, i in enumerate(diff):
        for label, want in (("finite differences", expect[k]),
                            ("the analytic gradient", None if analytic is None else analytic[k])):
            if want is None:
                continue
            want = np.broadcast_to(np.asarray(want, dtype=np.float64), arrs[i].shape)
            ok, err, msg = compare(got[k], want, rtol, atol)
            worst = max(worst, err if err == err else float("inf"))
            if not ok:
                return Result(case.name, d.name, "backward", "fail", err,
                              f"grad of input {i} vs {label}: {msg}", case.group)
    return Result(case.name, d.name, "backward", "pass", worst, "", case.group)


def _finite_differences(case: Case, ref_in, diff, g) -> list[np.ndarray]:
    """Central differences of sum(ref(inputs) * g) in float64, element by element."""
    def loss(args):
        return float(np.sum(np.asarray(case.ref(*args), dtype=np.float64) * g))

    grads = []
    for i in diff:
        x = ref_in[i]
        gi = np.zeros_like(x)
        for pos in np.ndindex(*x.shape):
            h = 1e-6 * max(1.0, abs(float(x[pos])))
            args = list(ref_in)
            xp = x.copy()
            xp[pos] += h
            args[i] = xp
            up = loss(args)
            xp[pos] -= 2 * h
            down = loss(args)
            gi[pos] = (up - down) / (2 * h)
        grads.append(gi)
    return grads
