"""The backend stacks the harness (and the project's tests) run on, and which of them this
machine can build. To cover a new backend or decorator, add its stack strings to STACKS."""
from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass

# (stack string, names that must exist in strata.backends / strata.decorators for it to be
# part of this build). A stack whose names exist but cannot be built here (no GPU, pyopencl
# missing, no device) is listed as unavailable with the reason.
STACKS: list[tuple[str, tuple[str, ...]]] = [
    ("NumPy()", ("NumPy",)),
    ("Autodiff(NumPy())", ("NumPy", "Autodiff")),
    ("Autodiff(Autodiff(NumPy()))", ("NumPy", "Autodiff")),
    ("OpenCL()", ("OpenCL",)),
    ("Autodiff(OpenCL())", ("OpenCL", "Autodiff")),
    ("WGPU()", ("WGPU",)),
    ("Autodiff(WGPU())", ("WGPU", "Autodiff")),
    ("CuPy()", ("CuPy",)),
    ("Autodiff(CuPy())", ("CuPy", "Autodiff")),
    # host_min_bytes=0: the harness's small tensors would otherwise bypass the pool
    ("PoolAllocator(NumPy(), host_min_bytes=0)", ("NumPy", "PoolAllocator")),
    ("Autodiff(PoolAllocator(NumPy(), host_min_bytes=0))", ("NumPy", "PoolAllocator", "Autodiff")),
    ("Fusion(NumPy())", ("NumPy", "Fusion")),
    ("Fusion(Autodiff(NumPy()))", ("NumPy", "Fusion", "Autodiff")),
    ("Autodiff(Fusion(NumPy()))", ("NumPy", "Fusion", "Autodiff")),
    # eager_below=0: on NumPy the harness's small tensors would otherwise run op by op
    ("Fusion(NumPy(), eager_below=0)", ("NumPy", "Fusion")),
    ("Fusion(Autodiff(NumPy()), eager_below=0)", ("NumPy", "Fusion", "Autodiff")),
    ("Autodiff(Fusion(NumPy(), eager_below=0))", ("NumPy", "Fusion", "Autodiff")),
    ("Fusion(OpenCL())", ("OpenCL", "Fusion")),
    ("Fusion(Autodiff(OpenCL()))", ("OpenCL", "Fusion", "Autodiff")),
    ("Autodiff(Fusion(OpenCL()))", ("OpenCL", "Fusion", "Autodiff")),
    ("Fusion(WGPU())", ("WGPU", "Fusion")),
    ("Fusion(Autodiff(WGPU()))", ("WGPU", "Fusion", "Autodiff")),
    ("Autodiff(Fusion(WGPU()))", ("WGPU", "Fusion", "Autodiff")),
    ("Fusion(Autodiff(CuPy()))", ("CuPy", "Fusion", "Autodiff")),
    ("Autodiff(PoolAllocator(OpenCL()))", ("OpenCL", "PoolAllocator", "Autodiff")),
    ("Autodiff(PoolAllocator(WGPU()))", ("WGPU", "PoolAllocator", "Autodiff")),
    ("Quantization(NumPy())", ("NumPy", "Quantization")),
    ("Autodiff(Quantization(NumPy()))", ("NumPy", "Quantization", "Autodiff")),
]


@dataclass(frozen=True)
class StackInfo:
    spec: str
    backend: object | None   # the constructed Backend, or None when unavailable
    reason: str = ""         # why it is unavailable

    @property
    def available(self) -> bool:
        return self.backend is not None

    @property
    def has_autodiff(self) -> bool:
        return "Autodiff(" in self.spec

    @property
    def autodiff_depth(self) -> int:
        return self.spec.count("Autodiff(")

    @property
    def only_autodiff(self) -> bool:
        """A base backend under Autodiff layers only (no Fusion, pool, quantization ...)."""
        inner = self.spec
        while inner.startswith("Autodiff(") and inner.endswith(")"):
            inner = inner[len("Autodiff("):-1]
        return re.fullmatch(r"\w+\([^()]*\)", inner) is not None


def _exists(name: str) -> bool:
    """Whether strata.backends or strata.decorators offers `name` (lazy attributes count)."""
    import strata.backends as bk
    import strata.decorators as dc
    for mod in (bk, dc):
        try:
            getattr(mod, name)
            return True
        except AttributeError:
            continue
        except Exception:  # present but failing to import: strata.backend() gives the reason
            return True
    return False


@functools.lru_cache(maxsize=1)
def stack_candidates() -> tuple[StackInfo, ...]:
    """Every stack of this build, each with its Backend or the reason it cannot run here."""
    import strata
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # Mesa's lavapipe (WGPU in CI) prints an error on every adapter request without it
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="strata-xdg-")
    out = []
    for spec, needs in STACKS:
        if not all(_exists(n) for n in needs):
            continue
        try:
            out.append(StackInfo(spec, strata.backend(spec)))
        except Exception as e:  # no device, package missing ...: the reason is the message
            out.append(StackInfo(spec, None, f"{type(e).__name__}: {e}"))
    return tuple(out)


def available_stacks() -> list:
    """The Backend objects of every stack that can run on this machine."""
    return [s.backend for s in stack_candidates() if s.available]
