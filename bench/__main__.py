"""python -m bench [--backend STACK ...] [--only PATTERN ...] [--repeat N] [--out DIR]

Runs every selected benchmark on each strata stack and, in the same run, in raw NumPy and
PyTorch; prints a table and writes results.json, results.md and results.png into --out.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import report
from .machine import Peaks, cpu_peaks, describe
from .registry import load_all, registered, select
from .runner import Result, Settings, run_all
from .targets import DEFAULT_STACKS, Target, baseline_targets, strata_targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="strata benchmarks, side by side with raw NumPy and PyTorch")
    p.add_argument("--backend", nargs="+", action="extend", metavar="STACK",
                   help="strata stacks to run, e.g. 'Autodiff(NumPy())' (default: every stack "
                        f"that can be built here out of {', '.join(DEFAULT_STACKS)})")
    p.add_argument("--only", nargs="+", action="extend", metavar="PATTERN",
                   help="benchmark names or groups to run (glob or substring), e.g. overhead")
    p.add_argument("--repeat", type=int, default=7, metavar="N",
                   help="timed repeats per benchmark and target (default 7; median is reported)")
    p.add_argument("--min-time", type=float, default=0.02, metavar="S",
                   help="minimum seconds per repeat; short ops loop inside it (default 0.02)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out", metavar="DIR",
                   help="where results.json/.md/.png go (default bench/out/)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the raw NumPy and PyTorch rows")
    p.add_argument("--peak-gflops", type=float, metavar="X",
                   help="CPU float32 peak to report %% of (default: detected from the CPU)")
    p.add_argument("--peak-gbps", type=float, metavar="X",
                   help="DRAM traffic peak to report %% of (default: measured by a copy)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error(f"--repeat must be at least 1, got {a.repeat}")
    if a.min_time <= 0:
        p.error(f"--min-time must be positive, got {a.min_time}")
    for name in ("peak_gflops", "peak_gbps"):
        v = getattr(a, name)
        if v is not None and v <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {v}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if not os.path.isdir(os.environ.get("XDG_RUNTIME_DIR", "")):
        # Mesa's Vulkan driver (WGPU stacks) complains on stderr without a runtime directory
        xdg = tempfile.mkdtemp(prefix="strata-bench-xdg-")
        atexit.register(shutil.rmtree, xdg, ignore_errors=True)
        os.environ["XDG_RUNTIME_DIR"] = xdg
    load_all()
    benches = select(registered(), a.only)
    if a.list:
        for b in benches:
            print(f"{b.group:12s} {b.name:24s} {b.doc}")
        return 0

    targets: list[Target] = []
    notes: list[str] = []
    if not a.no_baselines:
        base, n = baseline_targets()
        targets += base
        notes += n
    stacks, n = strata_targets(a.backend)
    targets += stacks
    notes += n
    if not targets:
        print("nothing to run: no strata stack is available and baselines are off", file=sys.stderr)
        return 2

    machine = describe()
    cpu = cpu_peaks(a.peak_gflops, a.peak_gbps)
    none = Peaks(None, None, "unknown for this device", "unknown for this device")

    def peaks_for(t: Target) -> Peaks:
        adv = t.advertised_peaks()
        if adv:
            return Peaks(adv.get("peak_gflops"), adv.get("peak_gbps"), "advertised by the backend",
                         "advertised by the backend")
        return cpu if t.cpu_device() else none

    print(report.header(machine, cpu.to_dict(), notes), flush=True)
    print(f"running {len(benches)} benchmarks on {', '.join(t.name for t in targets)}", flush=True)

    def progress(r: Result) -> None:
        shown = report.fmt_time(r.median) if r.status == "ok" else f"{r.status}: {r.note}"
        print(f"  {r.bench:22s} {r.target:24s} {shown}", file=sys.stderr, flush=True)

    settings = Settings(repeat=a.repeat, min_time=a.min_time)
    results = run_all(benches, targets, peaks_for, settings, progress)

    print()
    print(report.text_table(results))
    a.out.mkdir(parents=True, exist_ok=True)
    report.write_json(a.out / "results.json", results, machine, cpu.to_dict(), notes,
                      {"repeat": a.repeat, "min_time": a.min_time})
    (a.out / "results.md").write_text(report.header(machine, cpu.to_dict(), notes).replace(
        "\n", "  \n") + "\n\n" + report.markdown_table(results) + "\n")
    drew = report.write_png(a.out / "results.png", results, f"strata bench on {machine['cpu']}")
    print(f"\nwrote {a.out}/results.json, results.md" + (", results.png" if drew else ""))
    errors = [r for r in results if r.status == "error"]
    if errors:
        print(f"{len(errors)} benchmark(s) failed; see the note column", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
