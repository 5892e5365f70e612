"""Self-test of the conformance harness: run every case through PyTorch instead of strata
(the op lambdas use PyTorch names, so they run on torch unchanged) and check that the
harness's NumPy references, expected result dtypes and finite-difference gradients agree
with PyTorch. A harness whose references were wrong would pass wrong backends."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

from strata.core import dtype as dt  # noqa: E402
from strata.testing import runner  # noqa: E402
from strata.testing.spec import compare, make_inputs, tolerance  # noqa: E402

# cases whose lambdas reach into strata internals (backend primitives, strata dtypes)
_STRATA_ONLY = {"random_uniform", "random_normal", "int8_matmul"}
# the dtypes PyTorch's CPU kernels lack for these ops (strata supports more, like NumPy)
_TORCH_GAPS = {"F.pad(reflect)", "F.pad(replicate)"}
# torch.all/any keep uint8 for uint8 input (a legacy quirk); strata returns bool like NumPy
_TORCH_DTYPE_QUIRKS = {("all(dim=1)", "uint8"), ("any", "uint8")}


def _cases():
    return [c for c in runner.all_cases() if c.group != "creation" and c.name not in _STRATA_ONLY]


def _torch_inputs(case, arrs, requires=()):
    leaves, views = [], []
    for i, a in enumerate(arrs):
        transposed = bool(case.args) and i < len(case.args) and case.args[i].transposed
        base = np.ascontiguousarray(np.swapaxes(a, -1, -2)) if transposed else a
        t = torch.tensor(base, requires_grad=i in requires)
        leaves.append(t)
        views.append(t.transpose(-1, -2) if transposed else t)
    return leaves, views


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.name)
def test_reference_matches_torch_forward(case):
    checked = 0
    for d in case.dtypes:
        arrs = make_inputs(case, d)
        _, views = _torch_inputs(case, arrs)
        try:
            out = case.run(torch, TF, *views)
        except (RuntimeError, NotImplementedError):
            if case.name in _TORCH_GAPS or d in (dt.float16, dt.uint8, dt.int8, dt.bool_):
                continue  # PyTorch CPU has no kernel for this dtype: nothing to compare
            raise
        got_d = str(out.dtype).split(".")[-1]
        if (case.name, d.name) not in _TORCH_DTYPE_QUIRKS:
            assert got_d == case.out_dtype(d).name, f"{case.name} [{d.name}]: torch gives {got_d}"
        want = runner._expected(case, d, arrs)
        o = case.out_dtype(d)
        rtol, atol = tolerance(d if d.is_floating_point and d.itemsize < o.itemsize else o,
                               case.tol)
        ok, err, msg = compare(out.detach().numpy(), want, rtol, atol)
        assert ok, f"{case.name} [{d.name}]: torch vs reference: {msg}"
        checked += 1
    assert checked


@pytest.mark.parametrize("case", [c for c in _cases() if c.grad], ids=lambda c: c.name)
def test_finite_differences_match_torch_autograd(case):
    d = dt.float64
    arrs = make_inputs(case, d)
    diff = runner._diff_inputs(case, d, arrs)
    if not diff:
        pytest.skip("no float inputs")
    leaves, views = _torch_inputs(case, arrs, set(diff))
    out = case.run(torch, TF, *views)
    g = np.random.default_rng(0).uniform(-1, 1, tuple(out.shape))
    (out * torch.tensor(g)).sum().backward()
    ref_in = [runner._ref_array(a) for a in arrs]
    fd = runner._finite_differences(case, ref_in, diff, g)
    analytic = case.dref(g, *ref_in) if case.dref else None
    rtol, atol = tolerance(d, case.tol, backward=True)
    for k, i in enumerate(diff):
        tg = leaves[i].grad.numpy()
        if bool(case.args) and i < len(case.args) and case.args[i].transposed:
            tg = np.swapaxes(tg, -1, -2)
        ok, err, msg = compare(tg, fd[k], rtol, atol)
        assert ok, f"{case.name}: torch grad of input {i} vs finite differences: {msg}"
        if analytic is not None:
            want = np.broadcast_to(analytic[k], tg.shape)
            ok, err, msg = compare(tg, want, rtol, atol)
            assert ok, f"{case.name}: torch grad of input {i} vs analytic rule: {msg}"


def test_case_names_unique_and_groups_known():
    cases = runner.all_cases()
    assert len({c.name for c in cases}) == len(cases)
    assert {c.group for c in cases} <= {"unary", "binary", "reduce", "movement", "indexing",
                                        "linalg", "nn", "creation"}
