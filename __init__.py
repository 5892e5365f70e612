"""strata: a deep-learning framework built like Burn — a small Backend protocol, real backends
(NumPy, CuPy, WGPU, OpenCL) and stackable decorators (Autodiff, Fusion, Quantization,
PoolAllocator) under a PyTorch-shaped Tensor API."""
from .core import methods as _methods  # noqa: F401  (binds Tensor methods)
from .core.dtype import (DType, bool_ as bool, uint8, int8, int16, int32, int64, float16,
                         float32, float64, promote_types)
from .core.dtype import float32 as float, float64 as double, float16 as half  # noqa: A001
from .core.dtype import int64 as long, int32 as int, int16 as short  # noqa: A001
from .core.tensor import Tensor, Size
from .core.backend import Backend
from .core.errors import (StrataError, ShapeError, DTypeError, BackendError, UnsupportedError,
                          AutodiffError, BackendParseError)
from .core.parse import backend, register_backend
from .core.default import get_default_backend, set_default_backend, default_backend
from .core.grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .core.creation import (tensor, as_tensor, from_numpy, from_dlpack, zeros, ones, full,
                            empty, zeros_like, ones_like, full_like, empty_like, arange,
                            linspace, logspace, eye, rand, randn, randint, rand_like,
                            randn_like, randint_like, randperm, bernoulli, normal, manual_seed,
                            seed, initial_seed, get_rng_state, set_rng_state, Generator,
                            default_generator)
from .core.ops_elementwise import (add, sub, mul, div, true_divide, floor_divide, remainder,
                                   pow, maximum, minimum, eq, ne, lt, le, gt, ge, greater,
                                   greater_equal, less, less_equal, not_equal, logical_and,
                                   logical_or, logical_xor, logical_not, bitwise_and,
                                   bitwise_or, bitwise_xor, bitwise_not, where, exp, exp2, log,
                                   log2, log10, log1p, expm1, sqrt, rsqrt, sin, cos, tan, tanh,
                                   erf, sigmoid, relu, abs, absolute, neg, negative, sign,
                                   reciprocal, floor, ceil, round, trunc, fix, square, clamp,
                                   clip, clamp_min, clamp_max, isnan, isinf, isfinite,
                                   isposinf, isneginf, nan_to_num, lerp, addcmul, addcdiv,
                                   multiply, subtract, divide, isclose, allclose, equal)
from .core.ops_reduce import (sum, nansum, mean, max, min, amax, amin, aminmax, argmax, argmin,
                              prod, var, std, var_mean, std_mean, logsumexp, cumsum, cumprod,
                              all, any, norm, count_nonzero)
from .core.ops_movement import (reshape, flatten, unflatten, squeeze, unsqueeze, permute,
                                transpose, swapaxes, swapdims, t, movedim, broadcast_to,
                                broadcast_tensors, tile, flip,
                                fliplr, flipud, roll, cat, concat, concatenate, stack, hstack,
                                vstack, narrow, split, chunk, tensor_split, unbind, diagonal)
from .core.ops_index import (gather, scatter, scatter_add, index_select, masked_fill,
                             take_along_dim, nonzero, argwhere, masked_select, tril, triu)
from .core.ops_linalg import matmul, mm, bmm, dot, mv, outer, inner, addmm, einsum
from . import autograd  # noqa: F401
from . import functional  # noqa: F401
from . import fusion  # noqa: F401
from . import modules, optim, data, quantization  # noqa: F401,E402  (training stack; modules is torch.nn)
from .serialization import save, load  # noqa: F401,E402

__version__ = "0.1.0"
