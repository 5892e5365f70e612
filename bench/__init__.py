"""strata's benchmark runner: `python -m bench` from the repository root.

Every benchmark runs on each requested strata stack and, in the same process and time
window, the same work in raw NumPy and in PyTorch, so ratios between rows are meaningful
even though the host's speed drifts between runs.

Adding benchmarks: put a module in this folder (any name not in `registry.INFRASTRUCTURE`)
that defines functions decorated with `@benchmark(name, group)`. Each takes a `Target`
(a strata stack, raw NumPy or PyTorch), prepares its inputs and returns a `Work`: the
callable to time plus the work size (bytes moved, FLOPs) that turns time into throughput.
A benchmark that does not apply to a target raises `NotApplicable(reason)`.
"""
from .registry import NotApplicable, Work, benchmark, load_all, registered

__all__ = ["NotApplicable", "Work", "benchmark", "load_all", "registered"]
