"""Normalisation, dropout, embedding, linear and bilinear (torch.nn.functional names)."""
from __future__ import annotations


from ..core.errors import ShapeError
from ..core.grad_mode import no_grad
from ..core.tensor import Tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias, for input (..., in_features) and weight (out_features, in_features)."""
    if weight.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be 1-D or 2-D, got shape {tuple(weight.shape)}")
    if input.shape[-1] != weight.shape[-1]:
        raise ShapeError(f"linear: input has {input.shape[-1]} features (shape {tuple(input.shape)}) "
                         f"but weight {tuple(weight.shape)} expects {weight.shape[-1]}")
    if weight.ndim == 1 or input.ndim == 0 or input.dtype is not weight.dtype or (
            bias is not None and (bias.dtype is not weight.dtype or tuple(bias.shape) != (weight.shape[0],))):
        out = input @ (weight.transpose(0, 1) if weight.ndim == 2 else weight)
        return out if bias is None else out + bias
    from ..core.tensor import _as_tensor_like
    B = weight._b
    x = _as_tensor_like(input, weight)
    p = B.linear(x._p, weight._p, None if bias is None else _as_tensor_like(bias, weight)._p)
    return Tensor._make(p, B)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y[..., o] = sum_ij x1[..., i] W[o, i, j] x2[..., j] + b[o]."""
    if weight.ndim != 3:
        raise ShapeError(f"bilinear: weight must be 3-D (out, in1, in2), got {tuple(weight.shape)}")
    O, I1, I2 = weight.shape
    if input1.shape[-1] != I1 or input2.shape[-1] != I2 or tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ShapeError(f"bilinear: inputs {tuple(input1.shape)} and {tuple(input2.shape)} do not fit "
                         f"weight {tuple(weight.shape)} (need (..., {I1}) and (..., {I2}) with equal "
                         f"leading dims)")
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, I1)
    x2 = input2.reshape(-1, I2)
    t = (x1 @ weight.permute(1, 0, 2).reshape(I1, O * I2)).reshape(-1, O, I2)
    out = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(lead + (O,))


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight at integer indices; the padding_idx row receives no gradient."""
    if input.dtype.is_floating_point or input.dtype.name == "bool":
        raise TypeError(f"embedding: indices must be an integer tensor, got {input.dtype.name}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"{tuple(weight.shape)}")
    if sparse or scale_grad_by_freq:
        raise ValueError("embedding: sparse gradients and scale_grad_by_freq are not supported by "
                         "strata; pass sparse=False, scale_grad_by_freq=False")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings {n}")
        padding_idx %= n
    flat = input.reshape(-1).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= n):
        raise IndexError(f"embedding: index out of range: indices must be in [0, {n}), got "
                         f"[{int(flat.min())}, {int(flat.max())}]")
    if max_norm is not None:
        # torch renormalises the referenced rows of weight in place before the lookup
        import numpy as np
        with no_grad():
            w = np.array(weight.detach().numpy(), copy=True)
            rows = np.unique(flat.numpy())
            norms = (np.abs(w[rows]) ** norm_type).sum(-1, keepdims=True) ** (1.0 / norm_type)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            w[rows] = w[rows] * scale.astype(w.dtype)
            weight.copy_(Tensor._make(weight._b.from_numpy(w, weight.dtype), weight._b))
    out = weight.index_select(0, flat)
    if padding_idx is not None and weight.requires_grad:
        from .. import where
        mask = (flat == padding_idx).unsqueeze(-1)
        out = where(mask, out.detach(), out)
    return out.reshape(tuple(input.shape) + (weight.shape[1],))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity in eval)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        out = input * 0.0
    else:
        from .. import rand_like
        keep = rand_like(input) >= p
        out = input * keep.to(input.dtype) * (1.0 / (1.0 - p))
    if inplace:
        with no_grad():
            input.copy_(out)
        return input
    return out


def _channel_shape(x: Tensor) -> tuple:
    return (1, -1) + (1,) * (x.ndim - 2)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5, *,
               num_batches_tracked: Tensor | None = None) -> Tensor:
    """Normalise over all dims but the channel dim 1; in training update the running stats
    (unbiased variance, like torch); with momentum=None a cumulative average is used."""
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected at least 2-D input (N, C, ...), got {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ShapeError(f"batch_norm: {name} must have shape ({C},), got {tuple(t.shape)}")
    axes = (0,) + tuple(range(2, input.ndim))
    cs = _channel_shape(input)
    if training:
        n = input.numel() // C
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(input.shape)}")
        mean = input.mean(dim=axes, keepdim=True)
        xc = input - mean
        var = (xc * xc).mean(dim=axes, keepdim=True)
        if running_mean is not None and running_var is not None:
            with no_grad():
                if num_batches_tracked is not None:
                    num_batches_tracked.add_(1)
                if momentum is None:
                    m = 1.0 / float(num_batches_tracked.item()) if num_batches_tracked is not None else 0.0
                else:
                    m = momentum
                running_mean.mul_(1.0 - m).add_(mean.detach().reshape(C), alpha=m)
                running_var.mul_(1.0 - m).add_(var.detach().reshape(C) * (n / (n - 1)), alpha=m)
        y = xc * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when not training "
                             "(or build the layer with track_running_stats=True)")
        y = (input - running_mean.reshape(cs)) * (running_var.reshape(cs) + eps).rsqrt()
    if weight is not None:
        y = y * weight.reshape(cs)
    if bias is not None:
        y = y + bias.reshape(cs)
    return y


def _norm_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(s) for s in normalized_shape)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    ns = _norm_shape(normalized_shape)
    if tuple(input.shape[input.ndim - len(ns):]) != ns or input.ndim < len(ns):
        raise ShapeError(f"layer_norm: normalized_shape {ns} does not match the trailing dims of "
                         f"input {tuple(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise ShapeError(f"layer_norm: {name} must have shape {ns}, got {tuple(t.shape)}")
    b = input._b
    out = b.layer_norm(input._p, len(ns), None if weight is None else weight._p,
                       None if bias is None else bias._p, eps)
    return Tensor._make(out, b)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected at least 2-D input (N, C, ...), got {tuple(input.shape)}")
    N, C = input.shape[0], input.shape[1]
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"group_norm: num_channels ({C}) must be divisible by num_groups ({num_groups})")
    g = input.reshape(N, num_groups, -1)
    mean = g.mean(dim=-1, keepdim=True)
    xc = g - mean
    var = (xc * xc).mean(dim=-1, keepdim=True)
    y = (xc * (var + eps).rsqrt()).reshape(tuple(input.shape))
    cs = _channel_shape(input)
    if weight is not None:
        y = y * weight.reshape(cs)
    if bias is not None:
        y = y + bias.reshape(cs)
    return y


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2 over the normalised dims) + eps) * weight; eps defaults to the dtype's eps."""
    import numpy as np
    ns = _norm_shape(normalized_shape)
    if tuple(input.shape[input.ndim - len(ns):]) != ns or input.ndim < len(ns):
        raise ShapeError(f"rms_norm: normalized_shape {ns} does not match the trailing dims of "
                         f"input {tuple(input.shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype.np).eps)
    dims = tuple(range(input.ndim - len(ns), input.ndim))
    y = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    if weight is not None:
        y = y * weight
    return y


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    norm = input.abs().pow(p).sum(dim, keepdim=True).pow(1.0 / p)
    return input / norm.clamp(min=eps)


__all__ = ["linear", "bilinear", "embedding", "dropout", "batch_norm", "layer_norm", "group_norm",
           "rms_norm", "normalize"]
