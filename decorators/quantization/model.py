"""Post-training quantization of models: QuantizedLinear, QuantizedConv2d and quantize_model."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ...core.grad_mode import no_grad
from ...core.tensor import Tensor
from ...modules.conv import Conv2d
from ...modules.linear import Linear
from ...modules.module import Module
from .ops import ActQuant, qconv2d, qmatmul_core
from .qtensor import QTensor, make_qtensor
from .scheme import QuantScheme


def _host(t: Tensor) -> np.ndarray:
    return np.asarray(t.detach().numpy(), dtype=np.float64)


class QuantizedLinear(Module):
    """Inference-only Linear with a quantized weight (out, in); int8 activations when `act`
    (static scale/zero point from calibration) is set, else the weight is dequantized per call."""

    def __init__(self, qweight: QTensor, bias: Tensor | None, act: ActQuant | None = None):
        super().__init__()
        self.qweight = qweight
        self.act = act
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, m: Linear, scheme: QuantScheme, act: ActQuant | None = None):
        B = m.weight._b
        q = make_qtensor(B, _host(m.weight), scheme)
        bias = None if m.bias is None else m.bias.detach()
        return cls(q, bias, act)

    def forward(self, input: Tensor) -> Tensor:
        B = self.qweight.backend
        _same_stack(input, B, "QuantizedLinear")
        with no_grad():
            b = None if self.bias is None else self.bias._p
            y = qmatmul_core(B, input.detach()._p, self.qweight, b, self.act, transpose=True,
                             op="linear")
        return Tensor._make(y, B)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"{self.qweight.scheme.kwargs_repr() or 'int8'}, "
                f"activations={'int8' if self.act else 'float'}")


class QuantizedConv2d(Module):
    """Inference-only Conv2d with a quantized weight (O, C/groups, kh, kw)."""

    def __init__(self, qweight: QTensor, bias: Tensor | None, stride, padding, dilation,
                 groups: int, act: ActQuant | None = None):
        super().__init__()
        self.qweight = qweight
        self.act = act
        self.stride, self.padding, self.dilation = tuple(stride), tuple(padding), tuple(dilation)
        self.groups = int(groups)
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, m: Conv2d, scheme: QuantScheme, act: ActQuant | None = None):
        if getattr(m, "padding_mode", "zeros") != "zeros":
            raise ValueError(f"quantize_model: Conv2d with padding_mode={m.padding_mode!r} is not "
                             f"quantized (only 'zeros'); exclude it or use zero padding")
        B = m.weight._b
        q = make_qtensor(B, _host(m.weight), scheme)
        bias = None if m.bias is None else m.bias.detach()
        return cls(q, bias, m.stride, _padding(m), m.dilation, m.groups, act)

    def forward(self, input: Tensor) -> Tensor:
        B = self.qweight.backend
        _same_stack(input, B, "QuantizedConv2d")
        with no_grad():
            b = None if self.bias is None else self.bias._p
            y = qconv2d(B, input.detach()._p, self.qweight, b, self.stride, self.padding,
                        self.dilation, self.groups, self.act)
        return Tensor._make(y, B)

    def extra_repr(self) -> str:
        return (f"{self.qweight.shape[1] * self.groups}, {self.qweight.shape[0]}, "
                f"kernel_size={self.qweight.shape[2:]}, stride={self.stride}, "
                f"padding={self.padding}, {self.qweight.scheme.kwargs_repr() or 'int8'}, "
                f"activations={'int8' if self.act else 'float'}")


def _padding(m: Conv2d) -> tuple:
    p = m.padding
    if isinstance(p, str):
        if p == "valid":
            return (0, 0)
        ks, dl = m.kernel_size, m.dilation
        tot = [d * (k - 1) for k, d in zip(ks, dl)]
        if any(t % 2 for t in tot):
            raise ValueError("quantize_model: Conv2d(padding='same') with an even kernel extent "
                             "pads asymmetrically; give explicit padding")
        return tuple(t // 2 for t in tot)
    return tuple(p)


def _same_stack(x: Tensor, B, who: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects a strata Tensor, got {type(x).__name__}")
    if x._b != B:
        from ...core.errors import BackendError
        raise BackendError(f"{who}: input is on {x._b} but the quantized weight is on {B}; move "
                           f"the input with .to(backend) or quantize the model on {x._b}")


# ---------------------------------------------------------------------- calibration
class _Observer:
    def __init__(self, scheme: QuantScheme):
        self.scheme = scheme
        self.lo = np.inf
        self.hi = -np.inf
        self.samples: list = []

    def observe(self, a: np.ndarray) -> None:
        a = a.reshape(-1)
        if not a.size:
            return
        self.lo = min(self.lo, float(a.min()))
        self.hi = max(self.hi, float(a.max()))
        if self.scheme.calibration == "percentile":
            step = max(1, a.size // 65536)
            self.samples.append(a[::step].astype(np.float32))

    def act(self) -> ActQuant | None:
        if not np.isfinite(self.lo):
            return None
        lo, hi = self.lo, self.hi
        if self.scheme.calibration == "percentile" and self.samples:
            s = np.concatenate(self.samples)
            p = self.scheme.percentile
            lo, hi = float(np.percentile(s, 100 - p)), float(np.percentile(s, p))
        return ActQuant.from_range(lo, hi)


def _targets(model: Module, types) -> list:
    return [(n, m) for n, m in model.named_modules() if n and isinstance(m, types)] + \
        ([("", model)] if isinstance(model, types) else [])


def _calibrate(model: Module, targets: list, data: Iterable, scheme: QuantScheme) -> dict:
    obs = {name: _Observer(scheme) for name, _ in targets}
    saved = {}
    for name, m in targets:
        orig = m.forward

        def hooked(x, *a, _orig=orig, _o=obs[name], **k):
            _o.observe(np.asarray(x.detach().numpy()))
            return _orig(x, *a, **k)
        saved[name] = m
        object.__setattr__(m, "forward", hooked)
    was_training = model.training
    model.eval()
    n = 0
    try:
        with no_grad():
            for batch in data:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                if isinstance(x, np.ndarray):
                    B = targets[0][1].weight._b
                    from ...core.creation import from_numpy
                    x = from_numpy(np.ascontiguousarray(x, np.float32), backend=B)
                model(x)
                n += 1
    finally:
        for m in saved.values():
            del m.__dict__["forward"]
        model.train(was_training)
    if n == 0:
        raise ValueError("quantize_model: calibration_data gave no batches; pass an iterable of "
                         "input batches (Tensors, arrays, or (input, target) pairs)")
    return {name: o.act() for name, o in obs.items()}


def _replace(model: Module, name: str, new: Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    parent._modules[child] = new


def quantize_model(model: Module, scheme: QuantScheme | dict | str | None = None,
                   calibration_data: Iterable | None = None) -> Module:
    """Post-training quantization, in place: every Linear and Conv2d becomes its quantized
    version with weights quantized by `scheme`. With `calibration_data` (an iterable of input
    batches) the input range of each layer is observed and activations run as int8 too (integer
    GEMMs); without it only weights are quantized. Returns `model`."""
    if not isinstance(model, Module):
        raise TypeError(f"quantize_model expects a strata Module, got {type(model).__name__}")
    if isinstance(model, (Linear, Conv2d)):
        raise TypeError("quantize_model quantizes the layers inside a model; wrap a single layer "
                        "in strata.modules.Sequential(layer) first")
    scheme = QuantScheme.build(scheme)
    targets = _targets(model, (Linear, Conv2d))
    if not targets:
        raise ValueError("quantize_model: the model has no Linear or Conv2d layer to quantize")
    acts = _calibrate(model, targets, calibration_data, scheme) if calibration_data is not None \
        else {}
    for name, m in targets:
        # weights keep scheme.axis (0 = output channels, what the integer GEMMs need)
        if isinstance(m, Linear):
            new = QuantizedLinear.from_float(m, scheme, acts.get(name))
        else:
            new = QuantizedConv2d.from_float(m, scheme, acts.get(name))
        new.train(False)
        _replace(model, name, new)
    model.eval()
    return model


__all__ = ["QuantizedLinear", "QuantizedConv2d", "quantize_model"]
