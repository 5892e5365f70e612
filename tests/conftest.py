"""Shared fixtures: backend stacks (every stack this machine can build) and MNIST data.

Fixtures parametrized over stacks:
  stack      every stack of strata.testing.STACKS in this build (the conformance harness)
  ad_stack   Autodiff over each base backend (Autodiff(NumPy()), Autodiff(OpenCL()), ...):
             the PyTorch comparisons of the frontend. Decorator permutations (Fusion, pools,
             quantization) are covered by the conformance harness on `stack`; set
             STRATA_TEST_ALL_STACKS=1 to run the PyTorch comparisons on them too.
  ad2_stack  stacks with two Autodiff layers (second derivatives)
A stack that cannot be built here (no device, package missing) is a skipped test whose
reason says why, so new backends join every parametrized test by being added to STACKS.

STRATA_TEST_STACKS (comma-separated stack strings or fnmatch patterns, e.g.
"*NumPy()*" or "Autodiff(OpenCL()),OpenCL()") restricts the stacks, to iterate on one backend.
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest


def _selected(spec: str) -> bool:
    pats = [p.strip() for p in os.environ.get("STRATA_TEST_STACKS", "").split(",") if p.strip()]
    return not pats or any(spec == p or fnmatch.fnmatchcase(spec, p) for p in pats)


def _params(pred):
    from strata.testing import stack_candidates
    out = []
    for info in stack_candidates():
        if not pred(info) or not _selected(info.spec):
            continue
        marks = () if info.available else (pytest.mark.skip(reason=f"{info.spec} unavailable "
                                                                   f"here: {info.reason}"),)
        out.append(pytest.param(info, id=info.spec, marks=marks))
    return out


def _all_stacks() -> bool:
    return os.environ.get("STRATA_TEST_ALL_STACKS", "") not in ("", "0")


_FIXTURES = {
    "stack": lambda i: True,
    "ad_stack": lambda i: i.has_autodiff and (i.only_autodiff or _all_stacks()),
    "ad2_stack": lambda i: i.autodiff_depth >= 2 and (i.only_autodiff or _all_stacks()),
}


def pytest_generate_tests(metafunc):
    for name, pred in _FIXTURES.items():
        if name in metafunc.fixturenames:
            params = _params(pred)
            if not params:
                params = [pytest.param(None, id="none",
                                       marks=pytest.mark.skip(reason=f"no {name} in this build"))]
            metafunc.parametrize(name, params, indirect=True)


@pytest.fixture
def stack(request):
    """A Backend stack (every stack of this build)."""
    return request.param.backend


@pytest.fixture
def ad_stack(request):
    """A Backend stack with Autodiff."""
    return request.param.backend


@pytest.fixture
def ad2_stack(request):
    """A Backend stack with Autodiff twice (higher-order derivatives)."""
    return request.param.backend


def find_mnist() -> Path | None:
    """The MNIST IDX directory: $STRATA_DATA/mnist (or $STRATA_DATA itself), else the
    shared data folder beside the repository."""
    cands = []
    env = os.environ.get("STRATA_DATA")
    if env:
        cands += [Path(env) / "mnist", Path(env)]
    repo = Path(__file__).resolve().parent.parent
    cands += [repo.parent / "shared" / "data" / "mnist"]
    for c in cands:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            return c
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = find_mnist()
    if d is None:
        pytest.skip("MNIST not found: set STRATA_DATA to a folder holding mnist/ "
                    "(train-images-idx3-ubyte.gz ...)")
    return d


@pytest.fixture
def report(request):
    """report("...") adds a line to the run's summary (`make validate` prints accuracies this
    way; the lines travel with the test report, so they survive pytest-xdist workers)."""
    def add(line: str) -> None:
        request.node.user_properties.append(("report", str(line)))
    return add


def pytest_terminal_summary(terminalreporter):
    lines = []
    for kind in ("passed", "failed"):
        for rep in terminalreporter.stats.get(kind, []):
            if getattr(rep, "when", "call") != "call":
                continue
            lines += [v for k, v in getattr(rep, "user_properties", ()) if k == "report"]
    if lines:
        terminalreporter.write_sep("=", "reported figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)
