"""Tensor creation: tensor, from_numpy, zeros/ones/full/arange/linspace/eye, random numbers."""
from __future__ import annotations

import math
import threading

import numpy as np

from . import dtype as dt
from .default import resolve_backend
from .errors import DTypeError
from .tensor import Tensor, _check_supported

_make = Tensor._make


def _finish(p, B, requires_grad: bool) -> Tensor:
    t = _make(p, B)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(a: np.ndarray, data) -> dt.DType:
    if a.dtype == np.bool_:
        return dt.bool_
    if a.dtype.kind in "iu":
        # Python ints become int64 like torch; NumPy arrays keep their dtype
        return dt.from_numpy(a.dtype) if isinstance(data, np.ndarray) else dt.int64
    if a.dtype.kind == "f":
        return dt.from_numpy(a.dtype) if isinstance(data, (np.ndarray, np.floating)) else dt.float32
    raise DTypeError(f"cannot make a tensor from data of NumPy dtype {a.dtype}")


def _nested_tensors(data):
    if isinstance(data, Tensor):
        return data._host()
    if isinstance(data, (list, tuple)):
        return [_nested_tensors(d) for d in data]
    return data


def tensor(data, dtype=None, backend=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, scalars, arrays or tensors)."""
    B = resolve_backend(backend)
    a = np.asarray(_nested_tensors(data))
    if a.dtype == object:
        raise ValueError("tensor(): data has ragged nested sequences; every row must have the "
                         "same length")
    d = dt.as_dtype(dtype) if dtype is not None else (
        data.dtype if isinstance(data, Tensor) else _infer_dtype(a, data))
    _check_supported(B, d)
    return _finish(B.from_numpy(np.array(a, dtype=d.np, order="C", copy=True), d), B, requires_grad)


as_tensor = tensor


def from_numpy(a: np.ndarray, backend=None) -> Tensor:
    """A tensor with the array's dtype (shares memory on NumPy(), like torch.from_numpy)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(a).__name__}")
    B = resolve_backend(backend)
    d = dt.from_numpy(a.dtype)
    _check_supported(B, d)
    return _make(B.from_numpy(a, d), B)


def from_dlpack(obj, backend=None) -> Tensor:
    """Zero-copy where the backend can (NumPy() from CPU producers, CuPy() from CUDA ones)."""
    B = resolve_backend(backend)
    p = B.from_dlpack(obj)
    return _make(p, B)


def _shape_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in size {shape}")
    return shape


def _dtype_or_default(dtype) -> dt.DType:
    return dt.float32 if dtype is None else dt.as_dtype(dtype)


def full(size, fill_value, *, dtype=None, backend=None, requires_grad=False) -> Tensor:
    B = resolve_backend(backend)
    shape = _shape_args((size,) if isinstance(size, int) else (tuple(size),))
    if dtype is None:
        dtype = (dt.bool_, dt.int64, dt.float32)[dt.scalar_kind(fill_value)]
    d = dt.as_dtype(dtype)
    _check_supported(B, d)
    v = float(fill_value) if d.kind == 2 else (bool(fill_value) if d.kind == 0 else int(fill_value))
    return _finish(B.full(shape, v, d), B, requires_grad)


def zeros(*size, dtype=None, backend=None, requires_grad=False) -> Tensor:
    return full(_shape_args(size), 0, dtype=_dtype_or_default(dtype), backend=backend,
                requires_grad=requires_grad)


def ones(*size, dtype=None, backend=None, requires_grad=False) -> Tensor:
    return full(_shape_args(size), 1, dtype=_dtype_or_default(dtype), backend=backend,
                requires_grad=requires_grad)


def empty(*size, dtype=None, backend=None, requires_grad=False) -> Tensor:
    return zeros(*size, dtype=dtype, backend=backend, requires_grad=requires_grad)


def _like(x: Tensor, dtype, backend):
    return (x.dtype if dtype is None else dt.as_dtype(dtype)), (x._b if backend is None else backend)


def zeros_like(x, *, dtype=None, backend=None, requires_grad=False):
    d, B = _like(x, dtype, backend)
    return full(tuple(x.shape), 0, dtype=d, backend=B, requires_grad=requires_grad)


def ones_like(x, *, dtype=None, backend=None, requires_grad=False):
    d, B = _like(x, dtype, backend)
    return full(tuple(x.shape), 1, dtype=d, backend=B, requires_grad=requires_grad)


def empty_like(x, *, dtype=None, backend=None, requires_grad=False):
    return zeros_like(x, dtype=dtype, backend=backend, requires_grad=requires_grad)


def full_like(x, fill_value, *, dtype=None, backend=None, requires_grad=False):
    d, B = _like(x, dtype, backend)
    return full(tuple(x.shape), fill_value, dtype=d, backend=B, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, backend=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                     for v in (start, end, step))
        dtype = dt.int64 if is_int else dt.float32
    d = dt.as_dtype(dtype)
    n = max(0, math.ceil((end - start) / step))
    B = resolve_backend(backend)
    _check_supported(B, d)
    return _finish(B.arange(start, step, n, d), B, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, backend=None, requires_grad=False) -> Tensor:
    d = _dtype_or_default(dtype)
    if steps < 0:
        raise ValueError("linspace: steps must be non-negative")
    i = np.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    # torch fills the second half from the end so that the last value is exactly `end`
    half = steps // 2
    vals = np.where(i < half, start + step * i, end - step * (steps - 1 - i))
    if steps == 1:
        vals = np.array([start], dtype=np.float64)
    if d.kind != 2:
        vals = np.trunc(vals)
    return tensor(vals.astype(d.np), dtype=d, backend=backend, requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, backend=None):
    lin = linspace(start, end, steps, dtype=dt.float64 if resolve_backend(backend).supports(dt.float64) else None)
    return tensor(np.power(base, lin._host()).astype(_dtype_or_default(dtype).np), backend=backend)


def eye(n: int, m: int | None = None, *, dtype=None, backend=None, requires_grad=False) -> Tensor:
    d = _dtype_or_default(dtype)
    return tensor(np.eye(n, n if m is None else m, dtype=d.np), dtype=d, backend=backend,
                  requires_grad=requires_grad)


# ---------------------------------------------------------------------- random numbers
class Generator:
    """A Philox stream: (seed, offset). Every backend draws the same numbers from it."""

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> "Generator":
        self.seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        self.offset = 0
        return self

    def initial_seed(self) -> int:
        return self.seed

    def get_state(self) -> dict:
        return {"seed": self.seed, "offset": self.offset}

    def set_state(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.offset = int(state["offset"])

    def _take(self, n: int) -> tuple:
        with self._lock:
            off = self.offset
            self.offset += n
        return self.seed, off


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    return default_generator.manual_seed(seed)


def seed() -> int:
    import os
    s = int.from_bytes(os.urandom(8), "little")
    default_generator.manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.seed


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def _random(kind: str, size, dtype, backend, generator, requires_grad) -> Tensor:
    B = resolve_backend(backend)
    shape = _shape_args(size)
    d = _dtype_or_default(dtype)
    if d.kind != 2:
        raise DTypeError(f"{kind}: dtype must be floating point, got {d.name}")
    _check_supported(B, d)
    n = 1
    for s in shape:
        n *= s
    g = generator or default_generator
    sd, off = g._take(n)
    fn = B.random_uniform if kind == "rand" else B.random_normal
    return _finish(fn(shape, sd, off, d), B, requires_grad)


def rand(*size, dtype=None, backend=None, generator=None, requires_grad=False) -> Tensor:
    return _random("rand", size, dtype, backend, generator, requires_grad)


def randn(*size, dtype=None, backend=None, generator=None, requires_grad=False) -> Tensor:
    return _random("randn", size, dtype, backend, generator, requires_grad)


def rand_like(x, *, dtype=None, generator=None):
    return rand(tuple(x.shape), dtype=dtype or x.dtype, backend=x._b, generator=generator)


def randn_like(x, *, dtype=None, generator=None):
    return randn(tuple(x.shape), dtype=dtype or x.dtype, backend=x._b, generator=generator)


def randint(low, high=None, size=None, *, dtype=None, backend=None, generator=None) -> Tensor:
    """Integers in [low, high): floor(u * (high - low)) + low from float64 uniforms where the
    backend has them (exact for ranges below 2**53), else float32 (exact below 2**24)."""
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    B = resolve_backend(backend)
    fd = dt.float64 if B.supports(dt.float64) else dt.float32
    u = _random("rand", (tuple(size),) if not isinstance(size, int) else (size,), fd, B,
                generator, False)
    d = dt.int64 if dtype is None else dt.as_dtype(dtype)
    from .ops_elementwise import floor
    v = floor(u * float(high - low)) + float(low)
    return v._cast(d)


def randint_like(x, low, high=None, *, dtype=None):
    return randint(low, high, tuple(x.shape), dtype=dtype or x.dtype, backend=x._b)


def randperm(n: int, *, dtype=None, backend=None, generator=None) -> Tensor:
    """A permutation of 0..n-1: argsort of Philox uniforms (same on every backend)."""
    B = resolve_backend(backend)
    g = generator or default_generator
    sd, off = g._take(n)
    from .philox import uniform
    perm = np.argsort(uniform(sd, off, n, double=True), kind="stable")
    d = dt.int64 if dtype is None else dt.as_dtype(dtype)
    return tensor(perm.astype(d.np), dtype=d, backend=B)


def bernoulli(p: Tensor, *, generator=None) -> Tensor:
    u = rand(tuple(p.shape), dtype=p.dtype, backend=p._b, generator=generator)
    from .ops_elementwise import lt
    return lt(u, p)._cast(p.dtype)


def normal(mean=0.0, std=1.0, size=None, *, dtype=None, backend=None, generator=None):
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        z = randn(tuple(ref.shape), dtype=ref.dtype, backend=ref._b, generator=generator)
    else:
        z = randn(tuple(size), dtype=dtype, backend=backend, generator=generator)
    return z * std + mean
