"""python -m strata.testing "Autodiff(NumPy())" [--all] [--json] [--ops PATTERN ...]"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m strata.testing",
        description="Conformance table of every op x dtype on a backend stack: pass, fail "
                    "(with max error) or unsupported, against a float64 NumPy reference.")
    ap.add_argument("stack", nargs="*", help='stack strings, e.g. "Autodiff(NumPy())"')
    ap.add_argument("--all", action="store_true",
                    help="every stack available on this machine (strata.testing.available_stacks)")
    ap.add_argument("--json", action="store_true", help="print results as JSON instead")
    ap.add_argument("--ops", nargs="+", metavar="PATTERN",
                    help='case names, fnmatch patterns ("F.*") or groups (unary, binary, '
                         'reduce, movement, indexing, linalg, nn, creation)')
    ap.add_argument("--dtypes", nargs="+", metavar="DTYPE", help="e.g. float32 int64")
    ap.add_argument("--forward-only", action="store_true", help="skip gradient checks")
    args = ap.parse_args(argv)

    import strata
    from strata.core.errors import BackendParseError, StrataError
    from . import check, format_table, stack_candidates, summary, to_json

    specs = list(args.stack)
    if args.all:
        for info in stack_candidates():
            if info.available:
                specs.append(info.spec)
            elif not args.json:
                print(f"skipping {info.spec}: {info.reason}", file=sys.stderr)
    if not specs:
        ap.error('name a stack such as "Autodiff(NumPy())", or pass --all')

    by_stack = {}
    for spec in specs:
        try:
            B = strata.backend(spec)
        except (BackendParseError, StrataError, ImportError) as e:
            print(f"cannot build {spec!r}: {e}", file=sys.stderr)
            return 2
        try:
            res = check(B, ops=args.ops, dtypes=args.dtypes,
                        backward=False if args.forward_only else None)
        except (ValueError, TypeError) as e:
            print(str(e), file=sys.stderr)
            return 2
        by_stack[str(B)] = res
        if not args.json:
            print(format_table(res, str(B)))
            print()
    if args.json:
        print(to_json(by_stack))
    elif len(by_stack) > 1:
        for s, res in by_stack.items():
            print(f"{s}: {summary(res)}")
    failed = any(r.status == "fail" for res in by_stack.values() for r in res)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
