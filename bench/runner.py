"""Timing: warm-up, calibrated inner loops, N repeats, median and spread.

The clock stops only after the target's sync(), so asynchronous device backends are charged
for the work they queued. Each repeat runs the work `inner` times (chosen so that one repeat
lasts at least `min_time`), which keeps timer resolution out of microsecond-scale results.
"""
from __future__ import annotations

import gc
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from .machine import Peaks
from .registry import Benchmark, NotApplicable, Work
from .targets import Target


@dataclass
class Settings:
    repeat: int = 7
    min_time: float = 0.02      # seconds per repeat (inner loop length is derived from it)
    warmup_time: float = 0.05   # seconds of warm-up after the first call
    budget: float = 10.0        # seconds one (benchmark, target) pair may take before repeats shrink
    max_inner: int = 100_000
    settle: float = 0.02        # seconds of idle before each repeat when targets alternate


@dataclass
class Result:
    bench: str
    group: str
    target: str
    kind: str                   # strata | numpy | torch
    status: str                 # ok | skipped | error
    note: str = ""
    times: list = field(default_factory=list)   # seconds per call, one per repeat
    inner: int = 0
    bytes: float = 0.0
    flops: float = 0.0
    median: float = math.nan
    q1: float = math.nan
    q3: float = math.nan
    min: float = math.nan
    max: float = math.nan
    gbps: float | None = None
    gflops: float | None = None
    pct_peak: float | None = None   # of the FLOP peak when flops are given, else of DRAM traffic

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _call_and_sync(run: Callable, sync: Callable, n: int, realize: Callable | None = None) -> float:
    t0 = time.perf_counter()
    out = None
    for _ in range(n):
        out = run()
        if realize is not None:
            # a lazy stack computes only what is read or realized: the output of each call
            # but the last would be dropped unread, and its work never done
            realize(out)
    sync()
    t = time.perf_counter() - t0
    del out
    return t


class WrongResult(AssertionError):
    """The benchmarked work returned a value different from the reference."""


def check(got: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise WrongResult(f"result shape {got.shape}, expected {expected.shape}")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
    if not err <= rtol * max(scale, 1.0):
        raise WrongResult(f"wrong result: max abs error {err:.3g} > {rtol:g} x {max(scale, 1.0):.3g}")


@dataclass
class _Prepared:
    target: Target
    result: Result
    work: Work
    inner: int
    repeat: int


def prepare(work: Work, target: Target, s: Settings) -> tuple[int, int]:
    """Warm up, check the result, and choose (inner loop count, number of repeats)."""
    out = work.run()          # the first call compiles kernels and fills caches
    target.sync()
    if work.expected is not None:
        check(target.to_numpy(out), work.expected, work.rtol)
        work.expected = None  # the reference is not needed while timing; free its memory
    del out
    # Autorange (like timeit): double the loop until one batch lasts min_time. Judging the
    # loop length from one call would be misled by a single slow call (a GC pause, a cold
    # cache) into loops too short to amortise the cold start of each repeat.
    inner = 1
    spent = 0.0
    while True:
        t = _call_and_sync(work.run, target.sync, inner, target.realize if target.lazy else None)
        spent += t
        if (t >= s.min_time and spent >= s.warmup_time) or inner >= s.max_inner:
            break
        if t < s.min_time:
            inner = min(s.max_inner, inner * 2)
    single = t / inner
    repeat = s.repeat
    if single * inner * repeat > s.budget:
        repeat = max(min(3, s.repeat), int(s.budget / (single * inner)))
    return inner, repeat


def _timed_repeat(p: _Prepared, settle: float) -> float:
    gc.collect()
    # Thread pools of the previous target (OpenBLAS, PyTorch's OpenMP) spin for a while after
    # their last job; on a small machine they would steal the cores this repeat needs.
    time.sleep(settle)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t = p.target
        return _call_and_sync(p.work.run, t.sync, p.inner, t.realize if t.lazy else None) / p.inner
    finally:
        if gc_was:
            gc.enable()


def _error(r: Result, e: BaseException) -> None:
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
    r.status, r.note = "error", f"{type(e).__name__}: {first} [{_where(e)}]"


def run_benchmark(bench: Benchmark, targets: list[Target], peaks_for: Callable[[Target], Peaks],
                  s: Settings) -> list[Result]:
    """One benchmark on every target, the repeats interleaved across targets.

    Interleaving (A B C, A B C, ...) spreads the host's speed drift over all targets alike,
    so the ratios between rows stay fair even when the absolute numbers wander.
    """
    results: list[Result] = []
    prepared: list[_Prepared] = []
    for t in targets:
        r = Result(bench.name, bench.group, t.name, t.kind, "ok")
        results.append(r)
        try:
            work = bench.fn(t)
            if not isinstance(work, Work):
                raise TypeError(f"benchmark {bench.name} returned {type(work).__name__}, "
                                f"expected bench.Work")
            inner, repeat = prepare(work, t, s)
        except NotApplicable as e:
            r.status, r.note = "skipped", str(e)
            continue
        except Exception as e:  # one broken stack must not stop the others; the row says why
            _error(r, e)
            continue
        r.note, r.inner, r.bytes, r.flops = work.note, inner, work.bytes, work.flops
        prepared.append(_Prepared(t, r, work, inner, repeat))
    for i in range(max((p.repeat for p in prepared), default=0)):
        for p in prepared:
            if i >= p.repeat or p.result.status != "ok":
                continue
            try:
                p.result.times.append(_timed_repeat(p, s.settle if len(prepared) > 1 else 0.0))
            except Exception as e:
                _error(p.result, e)
    del prepared
    gc.collect()
    for t, r in zip(targets, results):
        if r.status == "ok":
            _stats(r, peaks_for(t))
    return results


def _stats(r: Result, peaks: Peaks) -> None:
    a = np.asarray(r.times)
    r.median = float(np.median(a))
    r.q1, r.q3 = (float(v) for v in np.percentile(a, [25, 75]))
    r.min, r.max = float(a.min()), float(a.max())
    if r.bytes:
        r.gbps = r.bytes / r.median / 1e9
    if r.flops:
        r.gflops = r.flops / r.median / 1e9
    if r.gflops is not None and peaks.gflops:
        r.pct_peak = 100 * r.gflops / peaks.gflops
    elif r.gbps is not None and peaks.gbps:
        r.pct_peak = 100 * r.gbps / peaks.gbps


def _where(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "?"
    f = tb[-1]
    return f"{os.path.basename(f.filename)}:{f.lineno}"


def run_all(benches: list[Benchmark], targets: list[Target], peaks_for: Callable[[Target], Peaks],
            s: Settings, progress: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for b in benches:
        for r in run_benchmark(b, targets, peaks_for, s):
            results.append(r)
            if progress:
                progress(r)
    return results
