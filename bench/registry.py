"""The benchmark registry: `@benchmark(name, group)` functions, discovered by module import."""
from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

# Modules of this package that hold machinery, not benchmarks.
INFRASTRUCTURE = frozenset({"__init__", "__main__", "registry", "runner", "report", "targets",
                            "machine"})


class NotApplicable(Exception):
    """Raised by a benchmark for a target it does not apply to (the row is reported as skipped)."""


@dataclass
class Work:
    """One timed unit of work.

    run: called repeatedly; its return value is kept alive until the target's sync() so that
        lazy stacks (Fusion) cannot drop the work unexecuted.
    bytes: bytes read + written by one call (for GB/s), 0 if not meaningful.
    flops: floating-point operations of one call (for GFLOP/s), 0 if not meaningful.
    note: shown next to the row (e.g. the problem size).
    expected: if given, the first call's result is compared with it (float64 NumPy reference)
        so that a fast wrong answer is reported as an error, not as a speed.
    rtol: relative tolerance of that check, scaled by the largest reference magnitude.
    """

    run: Callable[[], Any]
    bytes: float = 0.0
    flops: float = 0.0
    note: str = ""
    expected: Any = None
    rtol: float = 1e-4


@dataclass(frozen=True)
class Benchmark:
    name: str
    group: str
    fn: Callable[[Any], Work]
    doc: str


_REGISTRY: dict[str, Benchmark] = {}


def benchmark(name: str, group: str) -> Callable[[Callable[[Any], Work]], Callable[[Any], Work]]:
    """Register `fn(target) -> Work` under a unique name, in a group used for selection and plots."""
    if not name or not group:
        raise ValueError("benchmark(name, group): both must be non-empty strings")

    def register(fn: Callable[[Any], Work]) -> Callable[[Any], Work]:
        old = _REGISTRY.get(name)
        if old is not None and old.fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"benchmark name {name!r} is registered twice "
                             f"({old.fn.__module__}.{old.fn.__qualname__} and "
                             f"{fn.__module__}.{fn.__qualname__}); pick another name")
        _REGISTRY[name] = Benchmark(name, group, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register


def load_all() -> None:
    """Import every benchmark module of this package so that their decorators register."""
    here = Path(__file__).parent
    for mod in pkgutil.iter_modules([str(here)]):
        if mod.name not in INFRASTRUCTURE:
            importlib.import_module(f"{__package__}.{mod.name}")


def registered() -> list[Benchmark]:
    return list(_REGISTRY.values())


def select(benchmarks: Iterable[Benchmark], patterns: list[str] | None) -> list[Benchmark]:
    """Benchmarks whose name or group matches any pattern (glob, or plain substring)."""
    benchmarks = list(benchmarks)
    if not patterns:
        return benchmarks

    def hit(b: Benchmark, p: str) -> bool:
        if any(ch in p for ch in "*?["):
            return fnmatch.fnmatchcase(b.name, p) or fnmatch.fnmatchcase(b.group, p)
        return p in b.name or p == b.group

    out = [b for b in benchmarks if any(hit(b, p) for p in patterns)]
    if not out:
        known = ", ".join(sorted({b.group for b in benchmarks}))
        raise SystemExit(f"--only {' '.join(patterns)} matches no benchmark; groups: {known}; "
                         f"see `python -m bench --list` for names")
    return out
