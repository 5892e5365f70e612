"""The conformance harness over every stack available on this machine: every op x dtype must
pass, and 'unsupported' is accepted only where the backend says it does not support the dtype."""
from __future__ import annotations

import numpy as np
import pytest

from strata.core import dtype as dt
from strata.testing import check, format_table

GROUPS = ["unary", "binary", "reduce", "movement", "indexing", "linalg", "nn", "creation"]


def _problems(B, results):
    bad = []
    for r in results:
        if r.status == "fail":
            bad.append(r)
        elif r.status == "unsupported" and B.supports(dt.as_dtype(r.dtype)):
            bad.append(r)  # an op missing on a dtype the backend claims to support
    return bad


@pytest.mark.parametrize("group", GROUPS)
def test_conformance(stack, group):
    results = check(stack, ops=group)
    assert results, "no checks ran"
    bad = _problems(stack, results)
    assert not bad, (f"{len(bad)} problems on {stack}:\n"
                     + "\n".join(f"  {r.op} [{r.dtype}, {r.kind}] {r.status}: {r.message}"
                                 for r in bad)
                     + "\n\n" + format_table(bad, str(stack)))


def test_backward_rows_exactly_on_autodiff_stacks(stack):
    results = check(stack, ops=["exp", "sum"], dtypes=["float32"])
    kinds = {r.kind for r in results}
    has_ad = "Autodiff(" in str(stack)
    assert ("backward" in kinds) == has_ad, kinds


def _numpy_subclass(**methods):
    from strata.backends import NumPy
    methods.setdefault("__repr__", lambda self: "Tweaked()")
    return type("Tweaked", (NumPy,), methods)()


def test_harness_detects_a_wrong_backend():
    """A backend whose exp is 0.1% off must fail the harness (the harness can fail)."""
    def bad_exp(self, x):
        a = self.to_numpy(x)
        return self.from_numpy((np.exp(a) * 1.001).astype(a.dtype), self.dtype(x))

    B = _numpy_subclass(exp=bad_exp)
    res = {(r.op, r.dtype): r for r in check(B, ops=["exp", "log"], dtypes=["float32"])}
    assert res[("exp", "float32")].status == "fail"
    assert res[("exp", "float32")].max_error > 1e-4
    assert res[("log", "float32")].status == "pass"


def test_harness_detects_wrong_gradients(monkeypatch):
    """An op whose value is right but whose gradient is not fails only the backward check."""
    from strata.testing import runner
    from strata.testing.spec import Arg, Case

    def run(st, F, x):  # value exp(x); gradient exp(x) + 0.5 cos(x)
        return x.exp() + (x.sin() - x.sin().detach()) * 0.5

    case = Case("exp-with-wrong-grad", run, np.exp, (Arg((3, 4)),), dtypes=(dt.float64,))
    monkeypatch.setattr(runner, "all_cases", lambda: [case])
    res = {r.kind: r for r in check("Autodiff(NumPy())")}
    assert res["forward"].status == "pass"
    assert res["backward"].status == "fail" and "finite differences" in res["backward"].message


def test_harness_reports_unsupported_dtype():
    B = _numpy_subclass(supports=lambda self, d: d is not dt.float64)
    res = check(B, ops=["exp"])
    by = {r.dtype: r for r in res}
    assert by["float64"].status == "unsupported" and "float64" in by["float64"].message
    assert by["float32"].status == "pass"


def test_cli_table_and_exit_code(capsys):
    from strata.testing.__main__ import main
    assert main(["NumPy()", "--ops", "add", "exp"]) == 0
    out = capsys.readouterr().out
    assert "conformance of NumPy()" in out and "float16" in out and "exp" in out
    assert main(["NumPy()", "--ops", "add", "--json"]) == 0
    import json
    data = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in data["NumPy()"]} == {"pass"}
    assert main(["Nope()"]) == 2


def test_available_stacks_include_numpy_stacks():
    from strata.testing import available_stacks
    names = [str(b) for b in available_stacks()]
    for s in ("NumPy()", "Autodiff(NumPy())", "Autodiff(Autodiff(NumPy()))"):
        assert s in names
