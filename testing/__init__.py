"""strata.testing: the public conformance harness.

    from strata import testing
    results = testing.check("Autodiff(NumPy())")          # list[Result]
    print(testing.format_table(results, "Autodiff(NumPy())"))

or from a shell: `python -m strata.testing "Autodiff(OpenCL())"` (`--all`, `--json`, `--ops`).
Every op of the Backend protocol and of the Tensor API runs through the public frontend on
every dtype it applies to and is compared with a float64 NumPy reference; on stacks with
Autodiff, gradients are compared with central finite differences of the reference (and with
analytic rules where written down).
"""
from .report import format_table, summary, to_json
from .runner import Result, all_cases, check, has_autodiff
from .spec import Arg, Case
from .stacks import STACKS, StackInfo, available_stacks, stack_candidates

__all__ = ["check", "Result", "available_stacks", "stack_candidates", "StackInfo", "STACKS",
           "format_table", "summary", "to_json", "all_cases", "has_autodiff", "Case", "Arg"]
