"""Formatting conformance results: the op x dtype table, failure details, JSON."""
from __future__ import annotations

import json

from .spec import REPORTED


def _cell(fwd, bwd) -> str:
    def one(r):
        if r is None:
            return ""
        if r.status == "pass":
            return "ok"
        if r.status == "unsupported":
            return "unsup"
        return "FAIL" if r.max_error is None else f"FAIL {r.max_error:.1e}"
    if fwd is None and bwd is None:
        return "."
    a, b = one(fwd), one(bwd)
    return a if bwd is None else f"{a}/{b}"


def format_table(results, stack: str = "") -> str:
    """Rows are ops, columns dtypes; a cell is forward[/backward]: ok, FAIL <max error>, unsup,
    or '.' where the op does not apply to the dtype."""
    dtypes = [d.name for d in REPORTED if any(r.dtype == d.name for r in results)]
    cells: dict = {}
    order: list = []
    for r in results:
        if r.op not in cells:
            cells[r.op] = {}
            order.append(r.op)
        cells[r.op].setdefault(r.dtype, [None, None])[0 if r.kind == "forward" else 1] = r
    rows = [[op] + [_cell(*cells[op].get(d, (None, None))) for d in dtypes] for op in order]
    head = ["op"] + dtypes
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else []
    lines = []
    if stack:
        has_bwd = any(r.kind == "backward" for r in results)
        lines.append(f"conformance of {stack}" + ("  (cells: forward/backward)" if has_bwd
                                                    else "  (forward only: no Autodiff)"))
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)
    lines.append(summary(results))
    fails = [r for r in results if r.status == "fail"]
    if fails:
        lines.append("failures:")
        lines.extend(f"  {r.op} [{r.dtype}, {r.kind}]: {r.message}" for r in fails)
    return "\n".join(lines)


def summary(results) -> str:
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "unsupported")}
    return (f"{len(results)} checks: {n['pass']} pass, {n['fail']} fail, "
            f"{n['unsupported']} unsupported")


def to_json(by_stack: dict) -> str:
    """{stack: [result dicts]} as JSON (NaN/inf errors become strings)."""
    def clean(d):
        e = d.get("max_error")
        if e is not None and (e != e or e in (float("inf"), float("-inf"))):
            d["max_error"] = str(e)
        return d
    return json.dumps({s: [clean(r.to_dict()) for r in rs] for s, rs in by_stack.items()},
                      indent=1)
