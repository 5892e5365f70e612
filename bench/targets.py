"""What a benchmark runs on: a strata stack, raw NumPy, or PyTorch, behind one small interface.

Benchmarks write their work with the operators all three share (`a + b`, `a * b`, `a @ b`) and
the few helpers below where the spellings differ (np.exp vs Tensor.exp, axis= vs dim=).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from .registry import NotApplicable

# Stacks tried when --backend is not given; those that cannot be built here are reported as
# unavailable. Later issues append the Fusion / Quantization / PoolAllocator stacks.
DEFAULT_STACKS = ("NumPy()", "Autodiff(NumPy())", "OpenCL()", "Autodiff(OpenCL())",
                  "WGPU()", "Autodiff(WGPU())", "CuPy()", "Autodiff(CuPy())") + tuple(
    # Fusion in both orders with Autodiff (issue 7; `python -m bench --only fusion`)
    s.format(x) for x in ("NumPy()", "OpenCL()", "WGPU()")
    for s in ("Fusion({})", "Fusion(Autodiff({}))", "Autodiff(Fusion({}))"))


class Target(ABC):
    """Base: `kind` is 'strata', 'numpy' or 'torch'; `name` labels the table rows."""

    kind = ""
    name = ""
    #: whether requires_grad operands are meaningful here
    has_autograd = False
    #: whether results are computed only when read (realize() is then called on every output)
    lazy = False

    def realize(self, out: Any) -> None:
        """Start computing out (a tensor, or a tuple/list of them) without waiting for it."""

    @abstractmethod
    def array(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        """The data of `a` as this target's array/tensor."""

    def sync(self) -> None:
        """Block until every queued operation has finished (device backends run asynchronously)."""

    @abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """The value of x as a NumPy array."""

    def exp(self, x: Any) -> Any:
        return x.exp()

    def sum(self, x: Any, dim: int) -> Any:
        return x.sum(dim=dim)

    def transpose_copy(self, x: Any) -> Any:
        """x (2-D) transposed and materialised in the new layout, flattened.

        reshape is the spelling that copies everywhere: strata's contiguous() returns the view
        itself (its kernels read strided views), so it would time nothing.
        """
        return x.transpose(0, 1).reshape(-1)

    @abstractmethod
    def cat(self, xs: Sequence[Any], dim: int) -> Any:
        """xs concatenated along dim."""

    def cpu_device(self) -> bool:
        """Whether the work runs on the host CPU (so the CPU's peaks apply)."""
        return True

    def advertised_peaks(self) -> dict:
        """Peaks a device backend states about itself ({'peak_gflops': .., 'peak_gbps': ..})."""
        return {}

    def _need_grad(self, requires_grad: bool) -> None:
        if requires_grad and not self.has_autograd:
            raise NotApplicable("needs autograd (a stack with Autodiff)")


class NumPyTarget(Target):
    kind = "numpy"
    name = "raw NumPy"

    def __init__(self) -> None:
        self.version = np.__version__

    def array(self, a: np.ndarray, requires_grad: bool = False) -> np.ndarray:
        self._need_grad(requires_grad)
        return np.array(a, copy=True)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return x

    def exp(self, x: np.ndarray) -> np.ndarray:
        return np.exp(x)

    def sum(self, x: np.ndarray, dim: int) -> np.ndarray:
        return x.sum(axis=dim)

    def transpose_copy(self, x: np.ndarray) -> np.ndarray:
        return x.T.reshape(-1)

    def cat(self, xs: Sequence[np.ndarray], dim: int) -> np.ndarray:
        return np.concatenate(xs, axis=dim)


class TorchTarget(Target):
    kind = "torch"
    name = "PyTorch"
    has_autograd = True

    def __init__(self, torch_module: Any) -> None:
        import os
        self.torch = torch_module
        self.version = torch_module.__version__
        # the same thread budget as NumPy's BLAS: on a 2-core machine torch's intra-op pool
        # otherwise fights the benchmark process for cores and its timings swing 2x or more
        n = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        if n and n.isdigit():
            torch_module.set_num_threads(int(n))

    def array(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        t = self.torch.from_numpy(np.array(a, copy=True))
        return t.requires_grad_(True) if requires_grad else t

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def cat(self, xs: Sequence[Any], dim: int) -> Any:
        return self.torch.cat(list(xs), dim=dim)


class StrataTarget(Target):
    kind = "strata"

    def __init__(self, st: Any, backend: Any) -> None:
        self.st = st
        self.backend = backend
        self.name = str(backend)
        self.has_autograd = "Autodiff(" in self.name
        self.lazy = "Fusion(" in self.name

    def realize(self, out: Any) -> None:
        if isinstance(out, (tuple, list)):
            for o in out:
                self.realize(o)
        elif isinstance(out, self.st.Tensor):
            out.realize()

    def array(self, a: np.ndarray, requires_grad: bool = False) -> Any:
        if requires_grad:
            self._need_grad(True)
            return self.st.tensor(a, backend=self.backend, requires_grad=True)
        return self.st.from_numpy(np.array(a, copy=True), backend=self.backend)

    def sync(self) -> None:
        self.backend.sync()

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().numpy()

    def cat(self, xs: Sequence[Any], dim: int) -> Any:
        return self.st.cat(list(xs), dim=dim)

    def cpu_device(self) -> bool:
        # PoCL and lavapipe run on the host CPU; CUDA does not.
        return type(self.backend.base()).__name__ != "CuPy"

    def advertised_peaks(self) -> dict:
        lim = self.backend.limits() or {}
        return {k: float(lim[k]) for k in ("peak_gflops", "peak_gbps") if k in lim}


def baseline_targets() -> tuple[list[Target], list[str]]:
    """Raw NumPy and (if importable) PyTorch, plus notes about what is missing."""
    targets: list[Target] = [NumPyTarget()]
    notes: list[str] = []
    try:
        import torch
    except ImportError as e:
        notes.append(f"PyTorch rows skipped: torch is not importable ({e}); "
                     f"install it with `pip install torch` to compare")
    else:
        targets.append(TorchTarget(torch))
    return targets, notes


def strata_targets(stacks: Sequence[str] | None) -> tuple[list[Target], list[str]]:
    """Targets for the requested stacks (all available ones if None), plus notes.

    A stack asked for by name that cannot be built stops the run with the reason; a default
    candidate that cannot be built here is only noted.
    """
    notes: list[str] = []
    try:
        import strata as st
        parse = st.backend
    except (ImportError, AttributeError) as e:
        msg = (f"strata stacks skipped: `strata.backend(str)` is not available ({e}); "
               f"is strata installed (`make test` installs it into .venv)?")
        if stacks:
            raise SystemExit(msg)
        return [], [msg]
    targets: list[Target] = []
    for s in (stacks or DEFAULT_STACKS):
        try:
            b = parse(s)
            # a round trip proves the stack can actually run on this machine
            probe = st.from_numpy(np.arange(4, dtype=np.float32), backend=b)
            if not np.array_equal(probe.numpy(), np.arange(4, dtype=np.float32)):
                raise RuntimeError("a from_numpy/numpy round trip returned different values")
        except Exception as e:  # any failure means: not usable here; say why
            msg = f"{s}: unavailable ({type(e).__name__}: {_first_line(e)})"
            if stacks:
                raise SystemExit(f"--backend {msg}")
            notes.append(msg)
            continue
        if any(t.name == str(b) for t in targets):
            continue
        targets.append(StrataTarget(st, b))
    return targets, notes


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else ""
