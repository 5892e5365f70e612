"""Quantized checkpoints in safetensors: integer data, scales and zero points, plus the model's
remaining float state, with the quantization layout in the metadata.

    "<layer>.weight.qdata"        int8 (C, R) or uint8 (C, R/2) for packed int4
    "<layer>.weight.scale"        float32 (C, 1) or (C, blocks, 1)
    "<layer>.weight.zero_point"   int8 like scale, affine schemes only
    everything else               the model's float state_dict entries (biases, norms ...)
    metadata "strata.quantized"   JSON: per quantized layer its kind, weight shape, scheme,
                                  activation scale/zero point and conv geometry

`load_quantized(model, path)` takes a float model of the same architecture (built on any
stack), swaps in the quantized layers the file describes, and loads every tensor.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ...modules.module import Module
from ...serialization import SerializationError, atomic_write, load_file_numpy
from .model import QuantizedConv2d, QuantizedLinear, _replace
from .ops import ActQuant
from .qtensor import qtensor_from_host
from .scheme import QuantScheme, QuantSchemeError

_META = "strata.quantized"
_VERSION = 1


def save_quantized(model: Module, path: str | os.PathLike) -> None:
    """Write a model processed by quantize_model (with its quantized layers) to `path`."""
    from safetensors.numpy import save as st_save
    from pathlib import Path
    tensors: dict = {}
    layers: dict = {}
    for name, m in model.named_modules():
        if not isinstance(m, (QuantizedLinear, QuantizedConv2d)):
            continue
        q = m.qweight
        h = q._host
        tensors[f"{name}.weight.qdata"] = np.ascontiguousarray(h["data"])
        tensors[f"{name}.weight.scale"] = np.ascontiguousarray(h["scale"], np.float32)
        if h.get("zero_point") is not None:
            tensors[f"{name}.weight.zero_point"] = np.ascontiguousarray(h["zero_point"], np.int8)
        info = {"kind": "linear" if isinstance(m, QuantizedLinear) else "conv2d",
                "shape": list(q.shape), "scheme": q.scheme.model_dump(),
                "act": None if m.act is None else [m.act.scale, m.act.zero_point, m.act.qmin,
                                                   m.act.qmax]}
        if isinstance(m, QuantizedConv2d):
            info.update(stride=list(m.stride), padding=list(m.padding),
                        dilation=list(m.dilation), groups=m.groups)
        layers[name] = info
    if not layers:
        raise SerializationError("save_quantized: the model has no quantized layer; run "
                                 "strata.quantization.quantize_model(model, scheme) first, or "
                                 "save a float model with strata.save(model.state_dict(), path)")
    for k, v in model.state_dict().items():
        tensors[k] = np.ascontiguousarray(v.detach().numpy())
    meta = {"format": "pt", _META: json.dumps({"version": _VERSION, "layers": layers})}
    atomic_write(Path(path), st_save(tensors, metadata=meta))


def load_quantized(model: Module, path: str | os.PathLike) -> Module:
    """Turn the float `model` (same architecture as the saved one) into the saved quantized
    model: its layers are replaced and all tensors loaded onto the model's stack."""
    tensors, meta = load_file_numpy(path)
    if _META not in meta:
        raise SerializationError(f"{path}: not a quantized strata checkpoint (no {_META!r} "
                                 f"metadata); load float checkpoints with strata.load")
    try:
        desc = json.loads(meta[_META])
        layers = desc["layers"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SerializationError(f"{path}: corrupt quantization metadata ({e})") from None
    if desc.get("version") != _VERSION:
        raise SerializationError(f"{path}: quantized checkpoint version {desc.get('version')} is "
                                 f"not supported (this strata reads version {_VERSION})")
    for name, info in layers.items():
        try:
            old = model.get_submodule(name)
        except AttributeError as e:
            raise SerializationError(f"{path}: layer {name!r} of the checkpoint is not in the "
                                     f"model ({e}); build the same architecture first") from None
        B = _backend_of(old)
        scheme = QuantScheme.build(info["scheme"])
        host = {"data": tensors[f"{name}.weight.qdata"],
                "scale": tensors[f"{name}.weight.scale"],
                "zero_point": tensors.get(f"{name}.weight.zero_point")}
        shape = tuple(info["shape"])
        wshape = tuple(old.weight.shape) if getattr(old, "weight", None) is not None else None
        if wshape is not None and wshape != shape:
            raise SerializationError(f"{path}: layer {name!r} has weight shape {shape} in the "
                                     f"checkpoint but {wshape} in the model")
        q = qtensor_from_host(B, host, scheme, shape)
        try:
            act = None if info["act"] is None else ActQuant(
                float(info["act"][0]), int(info["act"][1]), int(info["act"][2]),
                int(info["act"][3]))
        except QuantSchemeError as e:
            raise SerializationError(f"{path}: layer {name!r} has corrupt activation "
                                     f"quantization ({e})") from None
        bias = getattr(old, "bias", None)
        bias = None if bias is None else bias.detach()
        if info["kind"] == "linear":
            new = QuantizedLinear(q, bias, act)
        else:
            new = QuantizedConv2d(q, bias, info["stride"], info["padding"], info["dilation"],
                                  info["groups"], act)
        new.train(False)
        _replace(model, name, new)
    state = {k: v for k, v in tensors.items() if not k.endswith((".qdata", ".weight.scale",
                                                                  ".weight.zero_point"))}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def _backend_of(m: Module):
    for p in m.parameters():
        return p._b
    for b in m.buffers():
        return b._b
    from ...core.default import get_default_backend
    return get_default_backend()


__all__ = ["save_quantized", "load_quantized"]
