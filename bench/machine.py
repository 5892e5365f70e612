"""The machine a run happens on, and the peaks that throughput is compared with.

The FLOP peak is theoretical: cores x clock x float32 FLOPs per cycle for the vector units
the CPU reports. The DRAM figure is measured: a copy between two reused buffers larger than
the last-level cache, counted as read + write traffic. Both can be overridden (--peak-gflops,
--peak-gbps, or STRATA_BENCH_PEAK_GFLOPS / STRATA_BENCH_PEAK_GBPS) where the guess is wrong,
e.g. on a CPU with one FMA unit per core.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Peaks:
    gflops: float | None
    gbps: float | None
    gflops_source: str
    gbps_source: str

    def to_dict(self) -> dict:
        return asdict(self)


def _cpuinfo() -> dict:
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    if info:
                        break  # the first processor block is enough
                    continue
                k, v = (p.strip() for p in line.split(":", 1))
                info.setdefault(k, v)
    except OSError:
        pass
    return info


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _flops_per_cycle(vendor: str, family: int, model: int, flags: set) -> tuple[int, str]:
    """float32 FLOPs per cycle per core of the widest FMA path (2 FLOPs per FMA lane)."""
    amd = vendor == "AuthenticAMD"
    if "avx512f" in flags and not (amd and family < 26):
        return 64, "AVX-512, 2 FMA units"
    if "avx512f" in flags or ("avx2" in flags and "fma" in flags):
        if amd and family == 23 and model < 0x30:
            return 16, "AVX2 on Zen 1 (2x128-bit FMA)"
        return 32, "AVX2/FMA, 2x256-bit FMA units"
    if "avx" in flags:
        return 16, "AVX (separate add and multiply)"
    return 8, "SSE"


def describe() -> dict:
    """What the table header and RESULTS.md say about the machine."""
    ci = _cpuinfo()
    flags = set(ci.get("flags", "").split())
    d = {
        "cpu": ci.get("model name", platform.processor() or platform.machine()),
        "vendor": ci.get("vendor_id", ""),
        "cores": usable_cores(),
        "mhz": float(ci["cpu MHz"]) if "cpu MHz" in ci else None,
        "isa": " ".join(x for x in ("avx512f", "avx512_vnni", "avx2", "fma") if x in flags),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        # other processes competing for the cores make every number slower: say so
        d["load_avg_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        d["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch
        d["torch"] = torch.__version__
        d["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return d


def theoretical_gflops() -> tuple[float | None, str]:
    ci = _cpuinfo()
    flags = set(ci.get("flags", "").split())
    mhz = float(ci["cpu MHz"]) if "cpu MHz" in ci else None
    if not mhz or not flags:
        return None, "unknown (no /proc/cpuinfo clock or flags; pass --peak-gflops)"
    try:
        family, model = int(ci.get("cpu family", 0)), int(ci.get("model", 0))
    except ValueError:
        family, model = 0, 0
    per_cycle, why = _flops_per_cycle(ci.get("vendor_id", ""), family, model, flags)
    cores = usable_cores()
    return (cores * mhz / 1000 * per_cycle,
            f"theoretical: {cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle ({why})")


def measured_dram_gbps(mib: int = 64, repeat: int = 5) -> tuple[float, str]:
    """Read+write traffic of a copy between reused buffers (first touch excluded)."""
    n = mib * 2**20 // 4
    src = np.ones(n, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return 2 * src.nbytes / t / 1e9, f"measured: NumPy copy of {mib} MiB, read+write traffic"


def cpu_peaks(gflops: float | None = None, gbps: float | None = None) -> Peaks:
    """CPU peaks: explicit values win, then the environment, then detection."""
    gflops = gflops or _env_float("STRATA_BENCH_PEAK_GFLOPS")
    gbps = gbps or _env_float("STRATA_BENCH_PEAK_GBPS")
    if gflops:
        fsrc = "given"
    else:
        gflops, fsrc = theoretical_gflops()
    if gbps:
        bsrc = "given"
    else:
        gbps, bsrc = measured_dram_gbps()
    return Peaks(gflops, gbps, fsrc, bsrc)


def _env_float(name: str) -> float | None:
    v = os.environ.get(name)
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        raise SystemExit(f"{name}={v!r} is not a number; set it to e.g. 300") from None
