"""What a conformance case is: inputs (shapes, domains, dtypes), the op through the public
Tensor API, its float64 NumPy reference, the expected result dtype and the tolerance."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core import dtype as dt
from ..core.dtype import DType

FLOATS = (dt.float32, dt.float64, dt.float16)
INTS = (dt.int8, dt.uint8, dt.int32, dt.int64)
SIGNED = (dt.int8, dt.int32, dt.int64)
NUMERIC = FLOATS + INTS
ALL = NUMERIC + (dt.bool_,)
#: the dtypes the harness reports on, in table order
REPORTED = (dt.float32, dt.float64, dt.float16, dt.int8, dt.uint8, dt.int32, dt.int64, dt.bool_)


@dataclass(frozen=True)
class Arg:
    """One input. dtype None means the case's dtype; a fixed dtype (int64 indices, bool masks)
    stays as given. `domain` keeps values where the op is defined and differentiable."""
    shape: tuple
    domain: str = "any"
    dtype: DType | None = None
    grad: bool = True          # whether backward checks this input (float inputs only)
    transposed: bool = False   # pass a non-contiguous view (the transpose of a contiguous tensor)


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[..., Any]          # (strata, F, *tensors) -> Tensor
    ref: Callable[..., np.ndarray]   # (*float64 / int64 arrays) -> array
    args: Sequence[Arg]
    dtypes: tuple = FLOATS
    out: Any = None                  # None: same as input; a DType; a rule name ("bool", "int64",
                                     # "sum", "div"); or a function of the input dtype
    tol: float = 1.0                 # multiplier on the per-dtype tolerance
    grad: bool = True                # differentiable (backward is checked on float dtypes)
    dref: Callable[..., tuple] | None = None  # analytic VJP: (g, *inputs) -> grads of grad args
    make: Callable[[np.random.Generator, DType], list] | None = None  # custom input maker
    group: str = "misc"
    tags: tuple = field(default=())

    def out_dtype(self, d: DType) -> DType:
        o = self.out
        if o is None:
            return d
        if isinstance(o, DType):
            return o
        if callable(o):
            return o(d)
        if o == "bool":
            return dt.bool_
        if o == "int64":
            return dt.int64
        if o == "sum":  # torch: integer and bool sums/products accumulate in int64
            return d if d.is_floating_point else dt.int64
        if o == "div":  # true division and float-valued ops promote integers to float32
            return d if d.is_floating_point else dt.float32
        raise ValueError(f"unknown out rule {o!r}")


# ---------------------------------------------------------------- deterministic inputs
_INT_RANGE = {"int8": (-8, 8), "uint8": (0, 15), "int16": (-50, 50), "int32": (-50, 50),
              "int64": (-50, 50)}


def rng_for(case_name: str, d: DType) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{case_name}/{d.name}".encode()))


def sample(rng: np.random.Generator, shape: tuple, domain: str, d: DType) -> np.ndarray:
    """Values in `domain` representable in dtype d, returned as an array of d.np."""
    if d is dt.bool_:
        return rng.random(shape) < 0.5
    if d.is_floating_point:
        a = _float_domain(rng, shape, domain)
        if d is dt.float16:
            a = np.clip(a, -6e4, 6e4)
        return a.astype(d.np)
    lo, hi = _INT_RANGE[d.name]
    if domain in ("pos", "nonzero_pos", "log"):
        lo = max(lo, 1)
    elif domain == "small":
        lo, hi = max(lo, -3), 3
    elif domain == "exponent":
        lo, hi = 0, 3
    elif domain == "index_small":
        lo, hi = 0, 3
    a = rng.integers(lo, hi + 1, size=shape)
    if domain == "nonzero":
        a = np.where(a == 0, 1 if d is dt.uint8 else -1 if rng.random() < 0.5 else 1, a)
    return a.astype(d.np)


def _float_domain(rng, shape, domain):
    u = rng.random(shape)
    sgn = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    if domain == "any":
        return rng.uniform(-2.0, 2.0, shape)
    if domain in ("pos", "log"):
        return rng.uniform(0.25, 3.0, shape)
    if domain == "nonzero":          # away from 0: kinks of abs/relu/sign, poles of 1/x
        return sgn * (0.2 + 1.8 * u)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "frac":             # away from integers and half-integers (floor, round ...)
        k = rng.integers(-3, 4, shape)
        f = np.where(u < 0.5, 0.1 + 0.3 * u / 0.5, 0.6 + 0.3 * (u - 0.5) / 0.5)
        return k + f
    if domain == "small":
        return rng.uniform(-1.0, 1.0, shape)
    if domain == "eighths":          # exact in every float dtype: casts round-trip losslessly
        return rng.integers(-32, 33, shape) / 8.0
    if domain == "exponent":
        return rng.uniform(-1.5, 2.0, shape)
    if domain == "wide":             # exercises overflow-safe formulations
        return rng.uniform(-30.0, 30.0, shape)
    if domain == "special":          # NaN, +-inf and ordinary values
        a = rng.uniform(-2.0, 2.0, shape)
        pick = rng.integers(0, 5, shape)
        return np.select([pick == 0, pick == 1, pick == 2], [np.nan, np.inf, -np.inf], a)
    raise ValueError(f"unknown domain {domain!r}")


def make_inputs(case: Case, d: DType) -> list[np.ndarray]:
    rng = rng_for(case.name, d)
    if case.make is not None:
        return [np.asarray(a) for a in case.make(rng, d)]
    return [sample(rng, a.shape, a.domain, a.dtype or d) for a in case.args]


# ---------------------------------------------------------------- tolerances
# (rtol, atol relative to the largest reference magnitude) per result dtype
_TOL = {"float64": (1e-9, 1e-10), "float32": (3e-5, 3e-6), "float16": (1.5e-2, 4e-3)}
_GRAD_TOL = {"float64": (1e-6, 1e-7), "float32": (2e-3, 2e-4), "float16": (6e-2, 3e-2)}


def tolerance(d: DType, mult: float, backward: bool = False) -> tuple[float, float]:
    """Exact for integer and bool results; loosest for float16."""
    if not d.is_floating_point:
        return 0.0, 0.0
    rtol, atol = (_GRAD_TOL if backward else _TOL)[d.name]
    return rtol * mult, atol * mult


def compare(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> tuple[bool, float, str]:
    """(ok, max abs error, message). NaN must match NaN, infinities must match exactly."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return False, float("nan"), f"shape {got.shape}, expected {ref.shape}"
    if got.size == 0:
        return True, 0.0, ""
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    nan_g, nan_r = np.isnan(g), np.isnan(r)
    if (nan_g != nan_r).any():
        i = np.argwhere(nan_g != nan_r)[0]
        return False, float("nan"), f"NaN mismatch at {tuple(int(v) for v in i)}: got {g[tuple(i)]}, expected {r[tuple(i)]}"
    inf_r = np.isinf(r) | np.isinf(g)
    if (g[inf_r] != r[inf_r]).any():
        i = np.argwhere(inf_r & (g != r))[0]
        return False, float("inf"), f"inf mismatch at {tuple(int(v) for v in i)}: got {g[tuple(i)]}, expected {r[tuple(i)]}"
    fin = ~(nan_r | inf_r)
    if not fin.any():
        return True, 0.0, ""
    err = np.abs(g[fin] - r[fin])
    scale = float(np.max(np.abs(r[fin]))) if fin.any() else 0.0
    bound = rtol * np.abs(r[fin]) + atol * max(scale, 1.0)
    max_err = float(err.max())
    if (err > bound).any():
        k = int(np.argmax(err - bound))
        idx = tuple(int(v) for v in np.argwhere(fin)[k])
        return False, max_err, (f"max error {max_err:.3g} at {idx}: got {g[idx]!r}, expected "
                                f"{r[idx]!r} (rtol {rtol:g}, atol {atol:g})")
    return True, max_err, ""
