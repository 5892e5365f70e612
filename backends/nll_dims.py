"""When the device backends' one-kernel nll_loss (OpenCL nll.cl, WGPU nll.wgsl) applies.

Both kernels walk the targets with one work-group, so they take at most NLL_MAX targets;
larger losses (segmentation maps) and layouts the kernels do not index take the protocol's
composition, which spreads over the device."""
from __future__ import annotations

from ..core import dtype as dt
from ..core.shape import numel

NLL_MAX = 1 << 16
NLL_WG = 256
#: the kernels' reduction codes
REDUCTIONS = {"none": 0, "sum": 1, "mean": 2}


def nll_dims(logp, target, weight, reduction: str, g=None):
    """(C, S) — classes and the product of the spatial dims — when the kernel path applies:
    batched dense float logp (N, C, d...), dense int64 targets (N, d...), 1..NLL_MAX of
    them, a dense (C,) weight of logp's dtype or none, and for the gradient a dense g of
    logp's dtype shaped like the loss; None otherwise."""
    d = logp.dtype
    ls, ts = logp.layout.shape, target.layout.shape
    if (reduction not in REDUCTIONS or not d.is_floating_point or len(ls) < 2
            or target.dtype is not dt.int64 or ts != ls[:1] + ls[2:]
            or not 0 < target.layout.numel <= NLL_MAX or logp.layout.numel == 0
            or not logp.layout.is_contiguous() or not target.layout.is_contiguous()):
        return None
    if weight is not None and (weight.dtype is not d or weight.layout.shape != ls[1:2]
                               or not weight.layout.is_contiguous()):
        return None
    if g is not None and (g.dtype is not d or not g.layout.is_contiguous()
                          or g.layout.shape != (ts if reduction == "none" else ())):
        return None
    return ls[1], numel(ls[2:])
