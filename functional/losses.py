"""Loss functions (torch.nn.functional names, arguments and reductions), numerically stable."""
from __future__ import annotations

from ..core.errors import ShapeError
from ..core.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")
# torch clamps the BCE denominator at 1e-12 rounded to float32
_BCE_EPS = 9.999999960041972e-13


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; use one of {_REDUCTIONS}")


def _check_reduction(reduction: str, op: str, extra=()) -> None:
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; use one of "
                         f"{_REDUCTIONS + tuple(extra)}")


def _same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        from ..core.shape import broadcast_shapes
        if broadcast_shapes(tuple(input.shape), tuple(target.shape), op) != tuple(input.shape):
            raise ShapeError(f"{op}: target shape {tuple(target.shape)} does not broadcast to the "
                             f"input shape {tuple(input.shape)}")


def _log_softmax(x: Tensor, dim: int) -> Tensor:
    b = x._b
    return Tensor._make(b.log_softmax(x._p, dim % x.ndim), b)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "mse_loss")
    _same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "l1_loss")
    _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    _check_reduction(reduction, "smooth_l1_loss")
    _same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    ad = (input - target).abs()
    if beta == 0.0:
        return _reduce(ad, reduction, "smooth_l1_loss")
    from .. import where
    loss = where(ad < beta, ad * ad * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    _check_reduction(reduction, "huber_loss")
    _same_shape(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    from .. import where
    ad = (input - target).abs()
    loss = where(ad < delta, ad * ad * 0.5, (ad - 0.5 * delta) * delta)
    return _reduce(loss, reduction, "huber_loss")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(t log x + (1 - t) log(1 - x)) with the logs clamped at -100, as torch does."""
    _check_reduction(reduction, "binary_cross_entropy")
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"binary_cross_entropy: using a target size {tuple(target.shape)} that is "
                         f"different to the input size {tuple(input.shape)} is not allowed")
    if input.numel() and (float(input.min()) < 0 or float(input.max()) > 1):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1; "
                         "for logits use binary_cross_entropy_with_logits")
    # value from the clamped logs; the input gradient is torch's (x - t) / max(x (1 - x), 1e-12),
    # which stays finite at x = 0 or 1 where the analytic one is infinite
    x = input.detach()
    log_x = x.log().clamp(min=-100.0)
    log_1mx = (1.0 - x).log().clamp(min=-100.0)
    loss = -(target * log_x + (1.0 - target) * log_1mx)
    if input.requires_grad:
        c = ((x - target) / (x * (1.0 - x)).clamp(min=_BCE_EPS)).detach()
        surrogate = input * c
        loss = loss + (surrogate - surrogate.detach())
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     reduction: str = "mean", pos_weight: Tensor | None = None) -> Tensor:
    """Stable for any logit: uses softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"binary_cross_entropy_with_logits: target size {tuple(target.shape)} must be "
                         f"the same as input size {tuple(input.shape)}")
    sp_neg = (-(input.abs())).exp().log1p() + (-input).clamp(min=0.0)
    if pos_weight is not None:
        log_weight = (pos_weight - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * sp_neg
    else:
        loss = (1.0 - target) * input + sp_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def _class_dim_checks(input: Tensor, target: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have at least 1 dim (classes), got a 0-d tensor")
    return 0 if input.ndim == 1 else 1


def _nll_checks(logp: Tensor, target: Tensor, weight, op: str):
    cdim = 0 if logp.ndim == 1 else 1
    C = logp.shape[cdim]
    if target.dtype.is_floating_point:
        raise TypeError(f"{op}: class-index targets must be integers, got {target.dtype.name}")
    expect = tuple(logp.shape[:cdim]) + tuple(logp.shape[cdim + 1:])
    if tuple(target.shape) != expect:
        raise ShapeError(f"{op}: expected target of shape {expect} for input {tuple(logp.shape)}, "
                         f"got {tuple(target.shape)}")
    if weight is not None and tuple(weight.shape) != (C,):
        raise ShapeError(f"{op}: weight must have shape ({C},), got {tuple(weight.shape)}")


def _nll(logp: Tensor, target: Tensor, weight, ignore_index: int, reduction: str, op: str) -> Tensor:
    """The backend's nll_loss op (one op and one backward rule instead of a dozen)."""
    _nll_checks(logp, target, weight, op)
    b = logp._b
    wp = weight._cast(logp.dtype)._p if weight is not None else None
    return Tensor._make(b.nll_loss(logp._p, target.long()._p, wp, int(ignore_index), reduction), b)


def _nll_terms(logp: Tensor, target: Tensor, weight, ignore_index: int, op: str):
    """Per-element -w[t] * logp[t] (0 where ignored), the per-element weights w[t] and the
    kept-target mask, for label smoothing, which needs them beside the loss. The targets are
    checked and weighed by the backend's _nll_weights, as the nll_loss op does."""
    _nll_checks(logp, target, weight, op)
    cdim = 0 if logp.ndim == 1 else 1
    b = logp._b
    t = target.long()
    wp = weight._cast(logp.dtype)._p if weight is not None else None
    safe, w = (Tensor._make(v, b) for v in
               b._nll_weights(t._p, wp, int(ignore_index), logp.shape[cdim], logp.dtype))
    picked = logp.gather(cdim, safe.unsqueeze(cdim)).squeeze(cdim)
    return -(picked * w), w, t != ignore_index


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    _check_reduction(reduction, "nll_loss")
    _class_dim_checks(input, target, "nll_loss")
    return _nll(input, target, weight, ignore_index, reduction, "nll_loss")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim (1, or 0 for unbatched input) then NLL; targets are class
    indices or class probabilities (same shape as input), as torch."""
    op = "cross_entropy"
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    cdim = _class_dim_checks(input, target, op)
    C = input.shape[cdim]
    logp = _log_softmax(input, cdim)
    wshape = (C,) + (1,) * (input.ndim - cdim - 1)
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise ShapeError(f"{op}: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if weight is not None and tuple(weight.shape) != (C,):
            raise ShapeError(f"{op}: weight must have shape ({C},), got {tuple(weight.shape)}")
        if label_smoothing > 0:
            target = target * (1.0 - label_smoothing) + label_smoothing / C
        lw = logp if weight is None else logp * weight.reshape(wshape)
        loss = -(lw * target).sum(cdim)
        if reduction == "mean":
            return loss.sum() / float(max(input.numel() // C, 1)) if input.numel() else loss.sum() * float("nan")
        return _reduce(loss, reduction, op)
    if label_smoothing <= 0:
        return _nll(logp, target, weight, ignore_index, reduction, op)
    nll, w, valid = _nll_terms(logp, target, weight, ignore_index, op)
    if reduction == "mean":
        nll_red = nll.sum() / w.sum()
    else:
        nll_red = _reduce(nll, reduction, op)
    lw = logp if weight is None else logp * weight.reshape(wshape)
    smooth = -(lw.sum(cdim)) * valid.to(logp.dtype)
    if reduction == "mean":
        denom = w.sum() if weight is not None else valid.to(logp.dtype).sum()
        smooth_red = smooth.sum() / denom
    else:
        smooth_red = _reduce(smooth, reduction, op)
    return nll_red * (1.0 - label_smoothing) + smooth_red * (label_smoothing / C)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """target * (log target - input) pointwise (input holds log-probabilities); 0 where target is 0."""
    op = "kl_div"
    _check_reduction(reduction, op, ("batchmean",))
    _same_shape(input, target, op)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        from .. import where
        pos = target > 0
        safe = where(pos, target, 1.0)
        loss = where(pos, target * safe.log(), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / float(input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, op)


__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "nll_loss", "cross_entropy", "kl_div"]
