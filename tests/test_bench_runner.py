"""The benchmark runner: timing includes sync, statistics, result checks, selection, CLI output."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `bench` is a top-level package run from the repository root
    sys.path.insert(0, str(ROOT))

from bench import machine, report  # noqa: E402
from bench.__main__ import main  # noqa: E402
from bench.registry import Benchmark, NotApplicable, Work, select  # noqa: E402
from bench.runner import Settings, WrongResult, check, run_benchmark  # noqa: E402
from bench.targets import NumPyTarget  # noqa: E402


class SlowSyncTarget(NumPyTarget):
    """Raw NumPy whose sync() stands for a device queue that takes 5 ms to drain."""

    name = "slow-sync"

    def __init__(self) -> None:
        super().__init__()
        self.syncs = 0

    def sync(self) -> None:
        self.syncs += 1
        time.sleep(0.005)


def _peaks(gflops=None, gbps=None) -> machine.Peaks:
    return machine.Peaks(gflops, gbps, "test", "test")


FAST = Settings(repeat=3, min_time=1e-4, warmup_time=0.0, settle=0.0)


def test_check_accepts_close_and_rejects_wrong_shape_value_and_nan():
    ref = np.array([1.0, 2.0, 3.0])
    check(np.float32(ref), ref, 1e-6)
    with pytest.raises(WrongResult, match="shape"):
        check(np.zeros(2), ref, 1e-3)
    with pytest.raises(WrongResult, match="max abs error"):
        check(ref + 0.01, ref, 1e-3)
    with pytest.raises(WrongResult):
        check(np.array([1.0, np.nan, 3.0]), ref, 1e-3)


def test_sync_is_inside_the_timed_region():
    t = SlowSyncTarget()
    b = Benchmark("noop", "test", lambda tg: Work(lambda: None), "")
    (r,) = run_benchmark(b, [t], lambda tg: _peaks(), FAST)
    assert r.status == "ok", r.note
    # min_time is below one sync, so every repeat is one call plus one 5 ms sync
    assert r.inner == 1 and len(r.times) == 3
    assert r.median >= 0.005
    assert t.syncs >= 1 + 3


def test_every_output_of_a_lazy_stack_is_computed():
    """Under Fusion a result dropped unread is never computed: the runner realizes each call's
    output, so a row times as many fused programs as calls (not just the last one's)."""
    import strata as st
    from bench.targets import StrataTarget
    from strata.decorators.fusion import stats
    t = StrataTarget(st, st.backend("Fusion(NumPy(), eager_below=0)"))
    assert t.lazy
    a = t.array(np.arange(64, dtype=np.float32))
    calls = []

    def run():
        calls.append(1)
        return ((a * 2.0 + 1.0).relu(), a - 1.0)
    b = Benchmark("lazy", "test", lambda tg: Work(run), "")
    before = stats.counters["fused_kernels"]
    # min_time long enough that calls are looped (inner > 1) between syncs
    (r,) = run_benchmark(b, [t], lambda tg: _peaks(),
                         Settings(repeat=3, min_time=2e-3, warmup_time=0.0, settle=0.0))
    assert r.status == "ok", r.note
    assert r.inner > 1
    # two programs per call (the first call's structure is built once more, hence >=)
    assert stats.counters["fused_kernels"] - before >= 2 * len(calls)


def test_statistics_and_throughput_come_from_the_times():
    a = np.ones(1 << 16, np.float32)
    b = Benchmark("copy", "test", lambda tg: Work(lambda: a.copy(), bytes=2 * a.nbytes,
                                                  flops=a.size, expected=a.astype(np.float64)), "")
    s = Settings(repeat=5, min_time=1e-3, warmup_time=0.0, settle=0.0)
    (r,) = run_benchmark(b, [NumPyTarget()], lambda tg: _peaks(gflops=1000.0, gbps=50.0), s)
    assert r.status == "ok", r.note
    assert len(r.times) == 5 and r.inner >= 1
    assert r.min <= r.q1 <= r.median <= r.q3 <= r.max
    assert r.median == pytest.approx(float(np.median(r.times)))
    assert r.gbps == pytest.approx(2 * a.nbytes / r.median / 1e9)
    assert r.gflops == pytest.approx(a.size / r.median / 1e9)
    assert r.pct_peak == pytest.approx(100 * r.gflops / 1000.0)  # FLOP peak wins when given


def test_skips_errors_and_wrong_answers_become_rows_not_crashes():
    def not_here(tg):
        raise NotApplicable("needs autograd")

    def broken(tg):
        raise ValueError("bad stack")

    wrong = Benchmark("wrong", "t", lambda tg: Work(lambda: np.zeros(3), expected=np.ones(3)), "")
    good = Benchmark("good", "t", lambda tg: Work(lambda: np.ones(3), expected=np.ones(3)), "")
    targets = [NumPyTarget()]
    got = {}
    for b in (Benchmark("skip", "t", not_here, ""), Benchmark("err", "t", broken, ""), wrong, good):
        (got[b.name],) = run_benchmark(b, targets, lambda tg: _peaks(), FAST)
    assert (got["skip"].status, got["skip"].note) == ("skipped", "needs autograd")
    assert got["err"].status == "error" and "ValueError: bad stack" in got["err"].note
    assert got["wrong"].status == "error" and "wrong result" in got["wrong"].note
    assert got["good"].status == "ok"


def test_select_by_name_group_and_glob():
    bs = [Benchmark(n, g, lambda t: Work(lambda: None), "") for n, g in
          (("add_4M", "elementwise"), ("matmul_256", "matmul"), ("overhead_add", "overhead"))]
    assert [b.name for b in select(bs, ["overhead"])] == ["overhead_add"]
    assert [b.name for b in select(bs, ["matmul"])] == ["matmul_256"]
    assert [b.name for b in select(bs, ["*add*"])] == ["add_4M", "overhead_add"]
    assert select(bs, None) == bs
    with pytest.raises(SystemExit, match="matches no benchmark"):
        select(bs, ["nothing"])


def test_peak_guess_per_instruction_set():
    zen3 = {"avx", "avx2", "fma"}
    cascade_lake = zen3 | {"avx512f", "avx512_vnni"}
    assert machine._flops_per_cycle("GenuineIntel", 6, 85, cascade_lake)[0] == 64
    assert machine._flops_per_cycle("AuthenticAMD", 25, 1, zen3)[0] == 32
    assert machine._flops_per_cycle("AuthenticAMD", 25, 17, cascade_lake)[0] == 32  # Zen 4
    assert machine._flops_per_cycle("GenuineIntel", 6, 42, {"avx"})[0] == 16


def test_time_formatting():
    assert report.fmt_time(2.5) == "2.5 s"
    assert report.fmt_time(0.0031) == "3.1 ms"
    assert report.fmt_time(4.2e-6) == "4.2 µs"
    assert report.fmt_time(float("nan")) == "-"


def test_cli_runs_stacks_and_baselines_and_writes_table_json_and_png(tmp_path, capsys):
    rc = main(["--only", "overhead_add", "--backend", "NumPy()", "Autodiff(NumPy())",
               "--repeat", "2", "--min-time", "0.001", "--peak-gflops", "100", "--peak-gbps", "10",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "overhead_add" in out and "raw NumPy" in out
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["bench"], r["target"]): r for r in doc["results"]}
    for target in ("raw NumPy", "NumPy()", "Autodiff(NumPy())"):
        row = rows[("overhead_add", target)]
        assert row["status"] == "ok" and len(row["times"]) == 2, row
        assert 0 < row["median"] < 0.01
    assert rows[("overhead_add_tracked", "Autodiff(NumPy())")]["status"] == "ok"
    assert rows[("overhead_add_tracked", "raw NumPy")]["status"] == "skipped"
    assert rows[("overhead_add_tracked", "NumPy()")]["status"] == "skipped"
    assert doc["peaks"]["gflops"] == 100 and doc["peaks"]["gflops_source"] == "given"
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "results.md").read_text()
    assert "| overhead_add | NumPy() |" in md
    assert "overhead_add_tracked: skipped on raw NumPy, NumPy()" in md
    assert rc == 0


def test_cli_names_a_stack_that_cannot_be_built(tmp_path):
    with pytest.raises(SystemExit, match="NoSuchBackend"):
        main(["--backend", "NoSuchBackend()", "--out", str(tmp_path)])


def test_cli_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--repeat", "0"])
    with pytest.raises(SystemExit):
        main(["--peak-gflops", "-3"])
