"""Results as a text table, a Markdown table, JSON, and a PNG bar chart."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Iterable

from .runner import Result

COLUMNS = ("benchmark", "stack", "median", "spread", "throughput", "% peak", "time/torch", "note")


def fmt_time(s: float) -> str:
    if s is None or math.isnan(s):
        return "-"
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= k:
            return f"{s / k:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _throughput(r: Result) -> str:
    if r.gflops is not None:
        return f"{r.gflops:.3g} GFLOP/s"
    if r.gbps is not None:
        return f"{r.gbps:.3g} GB/s"
    return "-"


def _torch_medians(results: Iterable[Result]) -> dict[str, float]:
    return {r.bench: r.median for r in results if r.kind == "torch" and r.status == "ok"}


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    """Table rows of measured and failed results; skipped ones are listed by `skipped_lines`."""
    torch_t = _torch_medians(results)
    out = []
    for r in results:
        if r.status == "skipped":
            continue
        if r.status != "ok":
            out.append((r.bench, r.target, r.status, "", "", "", "", r.note))
            continue
        spread = f"IQR {100 * (r.q3 - r.q1) / r.median:.1f}%" if r.median else "-"
        ratio = f"{r.median / torch_t[r.bench]:.2f}x" if r.bench in torch_t else "-"
        pct = f"{r.pct_peak:.1f}%" if r.pct_peak is not None else "-"
        out.append((r.bench, r.target, fmt_time(r.median), spread, _throughput(r), pct, ratio,
                    r.note))
    return out


def skipped_lines(results: list[Result]) -> list[str]:
    """One line per (benchmark, reason): which targets it did not apply to."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.status == "skipped":
            groups.setdefault((r.bench, r.note), []).append(r.target)
    return [f"{b}: skipped on {', '.join(ts)} ({why})" for (b, why), ts in groups.items()]


def text_table(results: list[Result]) -> str:
    body = rows(results)
    widths = [max(len(c), *(len(row[i]) for row in body)) if body else len(c)
              for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    prev = None
    for row in body:
        if prev is not None and row[0] != prev:
            lines.append("")
        prev = row[0]
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    skipped = skipped_lines(results)
    if skipped:
        lines += [""] + skipped
    return "\n".join(lines)


def markdown_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows(results):
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    skipped = skipped_lines(results)
    if skipped:
        lines += [""] + [f"- {x}" for x in skipped]
    return "\n".join(lines)


def header(machine: dict, peaks: dict, notes: list[str]) -> str:
    m = machine
    lines = [f"machine: {m.get('cpu')} ({m.get('vendor')}), {m.get('cores')} cores @ "
             f"{(m.get('mhz') or 0) / 1000:.2f} GHz, {m.get('isa')}, "
             f"{m.get('memory_gib', '?')} GiB; {m.get('os')}; load average "
             f"{m.get('load_avg_1min', '?')} at start",
             f"python {m.get('python')}, numpy {m.get('numpy')}"
             + (f", torch {m['torch']} ({m.get('torch_threads')} threads)" if "torch" in m else ""),
             f"peak FLOP/s: {_num(peaks.get('gflops'))} GFLOP/s ({peaks.get('gflops_source')})",
             f"peak DRAM traffic: {_num(peaks.get('gbps'))} GB/s ({peaks.get('gbps_source')})",
             "time/torch: median time divided by PyTorch's for the same benchmark (lower is faster)"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def _num(v) -> str:
    return f"{v:.3g}" if isinstance(v, (int, float)) else "?"


def write_json(path: Path, results: list[Result], machine: dict, peaks: dict, notes: list[str],
               settings: dict) -> None:
    doc = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine, "peaks": peaks,
           "settings": settings, "notes": notes, "results": [r.to_dict() for r in results]}
    path.write_text(json.dumps(doc, indent=1))


_COLORS = {"numpy": "#4c72b0", "torch": "#dd8452", "strata": "#55a868"}


def write_png(path: Path, results: list[Result], title: str) -> bool:
    """One panel per benchmark, a bar per target (median time, IQR as error bar)."""
    ok = [r for r in results if r.status == "ok"]
    if not ok:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = list(dict.fromkeys(r.bench for r in ok))
    cols = min(3, len(benches))
    nrows = math.ceil(len(benches) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 0.45 * 7 * nrows + 1), squeeze=False)
    for ax, name in zip(axes.flat, benches):
        rs = [r for r in ok if r.bench == name]
        unit, k = _unit(max(r.median for r in rs))
        y = range(len(rs))
        ax.barh(list(y), [r.median / k for r in rs],
                xerr=[[(r.median - r.q1) / k for r in rs], [(r.q3 - r.median) / k for r in rs]],
                color=[_COLORS.get(r.kind, "#888888") for r in rs])
        ax.set_yticks(list(y), [r.target for r in rs], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(f"median time per call ({unit})", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        for i, r in enumerate(rs):
            ax.text(r.median / k, i, " " + fmt_time(r.median), va="center", fontsize=7)
        ax.margins(x=0.25)
    for ax in list(axes.flat)[len(benches):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _unit(s: float) -> tuple[str, float]:
    for unit, k in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= k:
            return unit, k
    return "ns", 1e-9
