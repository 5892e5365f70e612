"""The Tensor frontend: one backend-agnostic class over an opaque backend primitive.

Ops live in the ops_*.py modules beside this file and are bound as methods in methods.py;
this file holds the class, conversions, autograd surface and the hot-path operators.
"""
from __future__ import annotations

import numpy as np

from . import dtype as dt
from .errors import BackendError

_new = object.__new__


class Tensor:
    """An n-dimensional array on a backend stack (PyTorch names and semantics)."""

    __slots__ = ("_p", "_b", "__weakref__")
    __array_priority__ = 1000  # so numpy scalars/arrays defer to our reflected operators

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with strata.tensor(...), strata.zeros(...), "
                        "strata.from_numpy(...) and friends")

    @staticmethod
    def _make(p, b) -> "Tensor":
        t = _new(Tensor)
        t._p = p
        t._b = b
        return t

    # ------------------------------------------------------------------ description
    @property
    def shape(self) -> tuple:
        return Size(self._b.shape(self._p))

    def size(self, dim: int | None = None):
        s = self._b.shape(self._p)
        if dim is None:
            return Size(s)
        from .shape import norm_dim
        return s[norm_dim(dim, len(s), "size")]

    @property
    def ndim(self) -> int:
        return len(self._b.shape(self._p))

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        n = 1
        for s in self._b.shape(self._p):
            n *= s
        return n

    @property
    def dtype(self) -> dt.DType:
        return self._b.dtype(self._p)

    @property
    def backend(self):
        return self._b

    @property
    def device(self) -> str:
        return self._b.device_name()

    def is_floating_point(self) -> bool:
        return self._b.dtype(self._p).is_floating_point

    def element_size(self) -> int:
        return self.dtype.itemsize

    def __len__(self) -> int:
        s = self._b.shape(self._p)
        if not s:
            raise TypeError("len() of a 0-d tensor")
        return s[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._b.requires_grad(self._p) and not force:
            raise RuntimeError("Can't call numpy() on a tensor that requires grad: "
                               "use tensor.detach().numpy()")
        return self._b.to_numpy(self._p)

    def _host(self) -> np.ndarray:
        return self._b.to_numpy(self._p)

    def tolist(self):
        return self._host().tolist()

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item(): a tensor with {self.numel()} elements cannot be converted "
                             f"to a Python scalar (shape {tuple(self.shape)})")
        return self._host().reshape(()).item()

    def __array__(self, dtype=None, copy=None):
        a = self._host()
        return a.astype(dtype) if dtype is not None else a

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind == 2:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self.numel()} elements is "
                               f"ambiguous: use .any() or .all()")
        return bool(self.item())

    def __dlpack__(self, stream=None, **kw):
        return self._b.to_dlpack(self._p, stream)

    def __dlpack_device__(self):
        return self._b.dlpack_device(self._p)

    def to(self, *args, dtype=None, backend=None, copy: bool = False) -> "Tensor":
        """to(dtype), to(backend), to(backend, dtype) or to('Autodiff(NumPy())')."""
        for a in args:
            if isinstance(a, dt.DType) or a in (float, int, bool):
                dtype = a
            else:
                backend = a
        t = self
        if backend is not None:
            from .default import resolve_backend
            B = resolve_backend(backend)
            if B is not t._b and B != t._b:
                t = Tensor._make(B.from_numpy(np.ascontiguousarray(t._host()), t.dtype), B)
        if dtype is not None:
            t = t._cast(dt.as_dtype(dtype))
        return t

    def _cast(self, d: dt.DType) -> "Tensor":
        b = self._b
        if b.dtype(self._p) is d:
            return self
        _check_supported(b, d)
        return Tensor._make(b.cast(self._p, d), b)

    def type(self, dtype=None):
        if dtype is None:
            return f"strata.{self.dtype.name}"
        return self._cast(dt.as_dtype(dtype))

    def float(self): return self._cast(dt.float32)
    def double(self): return self._cast(dt.float64)
    def half(self): return self._cast(dt.float16)
    def int(self): return self._cast(dt.int32)
    def long(self): return self._cast(dt.int64)
    def bool(self): return self._cast(dt.bool_)
    def short(self): return self._cast(dt.int16)
    def byte(self): return self._cast(dt.uint8)
    def char(self): return self._cast(dt.int8)

    def realize(self) -> "Tensor":
        """Queue the computation of this tensor now, without waiting for it (see
        Backend.realize): under Fusion a result is otherwise computed when it is read."""
        self._b.realize(self._p)
        return self

    def contiguous(self) -> "Tensor":
        # layout is the backend's business: views are read strided by every kernel
        return self

    def clone(self) -> "Tensor":
        b = self._b
        return Tensor._make(b.add(self._p, False if b.dtype(self._p) is dt.bool_ else 0), b)

    def cpu(self) -> "Tensor":
        return self

    # ------------------------------------------------------------------ autograd surface
    @property
    def requires_grad(self) -> bool:
        return self._b.requires_grad(self._p)

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        d = self._b.dtype(self._p)
        if requires_grad and not d.is_floating_point:
            raise RuntimeError(f"only floating point tensors can require gradients "
                               f"(this one is {d.name}): convert with .float() first")
        self._p = self._b.set_requires_grad(self._p, requires_grad)
        return self

    @property
    def grad(self):
        g = self._b.grad(self._p)
        return None if g is None else Tensor._make(g, self._b)

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError("grad must be a strata Tensor or None")
            if tuple(value.shape) != tuple(self.shape):
                raise ValueError(f"grad of shape {tuple(value.shape)} assigned to a tensor of "
                                 f"shape {tuple(self.shape)}")
            value = value._p
        self._b.set_grad(self._p, value)

    @property
    def is_leaf(self) -> bool:
        return self._b.is_leaf(self._p)

    @property
    def grad_fn(self):
        return self._b.grad_fn_name(self._p)

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        g = None
        if gradient is not None:
            g = _as_tensor_like(gradient, self)._p
        if retain_graph is None:
            retain_graph = create_graph
        self._b.backward(self._p, g, retain_graph, create_graph)

    def detach(self) -> "Tensor":
        return Tensor._make(self._b.detach(self._p), self._b)

    def detach_(self) -> "Tensor":
        self._p = self._b.detach(self._p)
        return self

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        from .grad_mode import no_grad
        with no_grad():
            self._assign(value, check_shape=False)

    def _assign(self, new: "Tensor", check_shape: bool = True) -> "Tensor":
        """Make this tensor hold `new`'s value (cast to this dtype): how in-place ops work."""
        if new._b is not self._b and new._b != self._b:
            raise BackendError(f"in-place op mixes backends {self._b} and {new._b}")
        if check_shape and tuple(new.shape) != tuple(self.shape):
            from .ops_movement import broadcast_to
            new = broadcast_to(new, self.shape)
        new = new._cast(self.dtype)
        self._p = self._b.assign(self._p, new._p)
        return self

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        a = self._host()
        body = np.array2string(a, separator=", ", prefix="tensor(",
                               precision=4, floatmode="maxprec_equal", threshold=1000)
        extra = []
        d = self.dtype
        if d not in (dt.float32, dt.int64, dt.bool_) or (a.size == 0 and d is not dt.float32):
            extra.append(f"dtype=strata.{d.name}")
        from .default import get_default_backend
        if self._b is not get_default_backend():
            extra.append(f"backend={self._b}")
        gf = self.grad_fn
        if gf:
            extra.append(f"grad_fn=<{gf}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __str__ = __repr__

    # ------------------------------------------------------------------ hot-path arithmetic
    # Same-backend, same-dtype tensors skip promotion entirely: per-op overhead is measured.
    def __add__(self, o):
        if type(o) is Tensor and o._b is self._b:
            b = self._b
            if b.dtype(self._p) is b.dtype(o._p):
                try:
                    return _make(b.add(self._p, o._p), b)
                except Exception:
                    pass  # the general path below names the op and shapes in its error
        return _binary("add", self, o)

    def __mul__(self, o):
        if type(o) is Tensor and o._b is self._b:
            b = self._b
            if b.dtype(self._p) is b.dtype(o._p):
                try:
                    return _make(b.mul(self._p, o._p), b)
                except Exception:
                    pass  # the general path below names the op and shapes in its error
        return _binary("mul", self, o)

    def __sub__(self, o):
        if type(o) is Tensor and o._b is self._b:
            b = self._b
            if b.dtype(self._p) is b.dtype(o._p) and b.dtype(self._p) is not dt.bool_:
                try:
                    return _make(b.sub(self._p, o._p), b)
                except Exception:
                    pass  # the general path below names the op and shapes in its error
        return _binary("sub", self, o)

    def __radd__(self, o): return _binary("add", o, self)
    def __rmul__(self, o): return _binary("mul", o, self)
    def __rsub__(self, o): return _binary("sub", o, self)
    def __truediv__(self, o): return _binary("div", self, o)
    def __rtruediv__(self, o): return _binary("div", o, self)
    def __floordiv__(self, o): return _binary("floor_divide", self, o)
    def __rfloordiv__(self, o): return _binary("floor_divide", o, self)
    def __mod__(self, o): return _binary("remainder", self, o)
    def __rmod__(self, o): return _binary("remainder", o, self)
    def __pow__(self, o): return _binary("pow", self, o)
    def __rpow__(self, o): return _binary("pow", o, self)
    def __eq__(self, o): return _binary("eq", self, o)
    def __ne__(self, o): return _binary("ne", self, o)
    def __lt__(self, o): return _binary("lt", self, o)
    def __le__(self, o): return _binary("le", self, o)
    def __gt__(self, o): return _binary("gt", self, o)
    def __ge__(self, o): return _binary("ge", self, o)
    def __and__(self, o): return _binary("bitwise_and", self, o)
    def __rand__(self, o): return _binary("bitwise_and", o, self)
    def __or__(self, o): return _binary("bitwise_or", self, o)
    def __ror__(self, o): return _binary("bitwise_or", o, self)
    def __xor__(self, o): return _binary("bitwise_xor", self, o)
    def __rxor__(self, o): return _binary("bitwise_xor", o, self)

    def __neg__(self):
        b = self._b
        if b.dtype(self._p) is dt.bool_:
            raise TypeError("negation of a bool tensor: use ~ or logical_not() instead")
        return _make(b.neg(self._p), b)

    def __pos__(self):
        return self

    def __invert__(self):
        b = self._b
        d = b.dtype(self._p)
        if d.kind == 2:
            raise TypeError("~ (bitwise_not) is only defined on integer and bool tensors")
        return _make(b.bitwise_not(self._p), b)

    def __abs__(self):
        return _make(self._b.abs(self._p), self._b)

    def __matmul__(self, o):
        from .ops_linalg import matmul
        return matmul(self, o)

    def __rmatmul__(self, o):
        from .ops_linalg import matmul
        return matmul(_as_tensor_like(o, self), self)


_make = Tensor._make


class Size(tuple):
    """torch.Size look-alike: a tuple of ints with numel()."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"strata.Size({list(self)})"


def _check_supported(b, d: dt.DType) -> None:
    if not b.supports(d):
        from .errors import UnsupportedError
        ok = [x.name for x in dt.ALL if b.supports(x)]
        hint = " (use NumPy() or OpenCL() for float64)" if d is dt.float64 else ""
        raise UnsupportedError(f"{b} does not support {d.name} tensors{hint}; "
                               f"it supports: {', '.join(ok)}")


def _as_tensor_like(v, like: Tensor) -> Tensor:
    """A Tensor on like's backend from a Tensor, array, list or scalar."""
    if isinstance(v, Tensor):
        if v._b is not like._b and v._b != like._b:
            raise BackendError(f"tensors on different backends: {like._b} and {v._b}; "
                               f"move one with .to(other.backend)")
        return v
    a = np.asarray(v)
    d = dt.from_numpy(a.dtype) if a.dtype != np.float64 or isinstance(v, np.ndarray) else like.dtype
    return Tensor._make(like._b.from_numpy(np.ascontiguousarray(a, dtype=d.np), d), like._b)


from .ops_elementwise import _binary  # noqa: E402  (needs Tensor defined)
