"""Binds the op functions to Tensor as methods, and defines the in-place (trailing _) ops.

In-place ops compute the new value functionally and hand it to `Backend.assign`, which keeps
the tensor's identity (an Autodiff leaf keeps its .grad); views taken earlier do not see the
write (strata has no aliasing between tensors, unlike torch).
"""
from __future__ import annotations

from .tensor import Tensor
from . import ops_elementwise as E
from . import ops_index as I
from . import ops_linalg as L
from . import ops_movement as M
from . import ops_reduce as R
from .tensor import Tensor


def _bind(names, module):
    for n in names:
        setattr(Tensor, n, getattr(module, n))


_bind(("add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "pow",
       "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal",
       "less", "less_equal", "not_equal", "logical_and", "logical_or", "logical_xor",
       "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "exp", "exp2",
       "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
       "erf", "sigmoid", "relu", "abs", "absolute", "neg", "negative", "sign", "reciprocal",
       "floor", "ceil", "round", "trunc", "fix", "square", "clamp", "clip", "clamp_min",
       "clamp_max", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "nan_to_num", "lerp",
       "addcmul", "addcdiv", "multiply", "subtract", "divide", "isclose", "allclose", "equal"),
      E)
Tensor.where = lambda self, condition, other: E.where(condition, self, other)
_bind(("sum", "nansum", "mean", "max", "min", "amax", "amin", "aminmax", "argmax", "argmin",
       "prod", "var", "std", "logsumexp", "cumsum", "cumprod", "all", "any", "norm",
       "count_nonzero"), R)
_bind(("reshape", "view", "view_as", "reshape_as", "flatten", "unflatten", "squeeze",
       "unsqueeze", "permute", "transpose", "swapaxes", "swapdims", "t", "movedim", "expand",
       "expand_as", "broadcast_to", "repeat", "tile", "flip", "fliplr", "flipud", "roll",
       "narrow", "split", "chunk", "tensor_split", "unbind", "diagonal"), M)
Tensor.T = property(M.T)
Tensor.mT = property(M.mT)
_bind(("gather", "scatter", "scatter_add", "index_select", "masked_fill", "take_along_dim",
       "nonzero", "argwhere", "masked_select", "tril", "triu"), I)
_bind(("matmul", "mm", "bmm", "dot", "mv", "outer", "inner"), L)
Tensor.__getitem__ = I.getitem
Tensor.__setitem__ = I.setitem


def softmax(self, dim, dtype=None):
    from ..functional.activations import softmax as f
    return f(self, dim, dtype=dtype)


def log_softmax(self, dim, dtype=None):
    from ..functional.activations import log_softmax as f
    return f(self, dim, dtype=dtype)


Tensor.softmax = softmax
Tensor.log_softmax = log_softmax


# ---------------------------------------------------------------------- in-place ops
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self._assign(fn(self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


for _name in ("add", "sub", "mul", "div", "pow", "clamp", "clamp_min", "clamp_max", "neg",
              "abs", "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "floor", "ceil", "round",
              "trunc", "reciprocal", "sign", "lerp", "addcmul", "addcdiv", "masked_fill",
              "scatter", "scatter_add", "remainder", "floor_divide", "maximum", "minimum",
              "nan_to_num", "tril", "triu", "logical_not", "square", "rsqrt", "sin", "cos"):
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name)))

Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_


def zero_(self):
    return self._assign(self._make(self._b.full(tuple(self.shape), 0, self.dtype), self._b))


def fill_(self, value):
    d = self.dtype
    v = float(value) if d.kind == 2 else (bool(value) if d.kind == 0 else int(value))
    return self._assign(self._make(self._b.full(tuple(self.shape), v, d), self._b))


def copy_(self, src):
    from .tensor import _as_tensor_like
    return self._assign(_as_tensor_like(src, self))


def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
    from .creation import rand
    u = rand(tuple(self.shape), dtype=self.dtype, backend=self._b, generator=generator)
    return self._assign(u * (b - a) + a)


def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
    from .creation import randn
    z = randn(tuple(self.shape), dtype=self.dtype, backend=self._b, generator=generator)
    return self._assign(z * std + mean)


def bernoulli_(self, p: float = 0.5, *, generator=None):
    from .creation import rand
    u = rand(tuple(self.shape), dtype=self.dtype if self.dtype.kind == 2 else None,
             backend=self._b, generator=generator)
    return self._assign(E.lt(u, p))


def new_zeros(self, *size, dtype=None):
    from .creation import zeros
    return zeros(*size, dtype=dtype or self.dtype, backend=self._b)


def new_ones(self, *size, dtype=None):
    from .creation import ones
    return ones(*size, dtype=dtype or self.dtype, backend=self._b)


def new_full(self, size, fill_value, *, dtype=None):
    from .creation import full
    return full(size, fill_value, dtype=dtype or self.dtype, backend=self._b)


def new_tensor(self, data, *, dtype=None):
    from .creation import tensor
    return tensor(data, dtype=dtype or self.dtype, backend=self._b)


for _f in (zero_, fill_, copy_, uniform_, normal_, bernoulli_, new_zeros, new_ones, new_full,
           new_tensor):
    setattr(Tensor, _f.__name__, _f)
