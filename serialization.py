"""strata.save / strata.load: tensors and nested state dicts in the safetensors format.

A flat `{name: Tensor}` dict is written as is, so files interoperate with
`safetensors.torch.save_file` / `load_file` in both directions. Anything else (a single
tensor, nested dicts, lists, numbers, strings, None, NumPy arrays, as in a training
checkpoint) is written with its tensors named by their path ("model/fc.weight") and the
structure as JSON in the safetensors metadata header under "strata.structure". Files are
written atomically (temp file + os.replace). Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .core.errors import StrataError

_STRUCT_KEY = "strata.structure"
_FORMAT_KEY = "strata.format"
_ORDER_KEY = "strata.order"
_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "I32": np.int32,
           "I64": np.int64, "F16": np.float16, "F32": np.float32, "F64": np.float64}


class SerializationError(StrataError, ValueError):
    """A file that is not a readable safetensors file, or an object that cannot be saved."""


def _is_tensor(x) -> bool:
    from .core.tensor import Tensor
    return isinstance(x, Tensor)


def _encode(obj, path: str, tensors: dict) -> Any:
    """JSON description of obj; tensors and arrays are moved into `tensors` under their path."""
    if _is_tensor(obj) or isinstance(obj, np.ndarray):
        name = path or "tensor"
        if name in tensors:
            raise SerializationError(f"save: two tensors map to the name {name!r}")
        arr = obj.detach().numpy() if _is_tensor(obj) else obj
        if arr.dtype.type not in _DTYPES.values():
            raise SerializationError(f"save: {name!r} has dtype {arr.dtype}, which safetensors "
                                     f"cannot hold; cast it to a supported dtype")
        tensors[name] = np.asarray(arr, order="C")
        return {"__tensor__" if _is_tensor(obj) else "__ndarray__": name}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if np.isfinite(v) else {"__float__": repr(v)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise SerializationError(f"save: dict keys must be str or int, got {k!r} at {path or '/'}")
            items.append([k, _encode(v, f"{path}/{k}" if path else str(k), tensors)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        enc = [_encode(v, f"{path}/{i}" if path else str(i), tensors) for i, v in enumerate(obj)]
        return {"__tuple__": enc} if isinstance(obj, tuple) else enc
    raise SerializationError(f"save: cannot store an object of type {type(obj).__name__} at "
                             f"{path or 'the top level'}; strata.save takes tensors, arrays, numbers, "
                             f"strings, None and dicts/lists/tuples of them (no pickling)")


def _decode(node, tensors: dict, make):
    if isinstance(node, list):
        return [_decode(v, tensors, make) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            return make(tensors[node["__tensor__"]])
        if "__ndarray__" in node:
            return tensors[node["__ndarray__"]]
        if "__float__" in node:
            return float(node["__float__"])
        if "__tuple__" in node:
            return tuple(_decode(v, tensors, make) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: _decode(v, tensors, make) for k, v in node["__dict__"]}
        raise SerializationError(f"load: unknown structure node {sorted(node)}")
    return node


def _flat_tensor_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(_is_tensor(v) for v in obj.values()))


def save(obj: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write obj (a Tensor, a state dict, or a nested checkpoint) to `path` in safetensors format."""
    from safetensors.numpy import save as st_save
    tensors: dict = {}
    meta = {"format": "pt"}
    if _flat_tensor_dict(obj):
        for k, v in obj.items():
            tensors[k] = np.asarray(v.detach().numpy(), order="C")
        # safetensors stores names sorted; keep the state dict's order for load
        meta[_ORDER_KEY] = json.dumps(list(obj))
    else:
        meta[_STRUCT_KEY] = json.dumps(_encode(obj, "", tensors), allow_nan=False)
    meta[_FORMAT_KEY] = "1"
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise SerializationError(f"save: metadata must map str to str; bad keys {bad}")
        meta.update(metadata)
    data = st_save(tensors, metadata=meta)
    atomic_write(Path(path), data)


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_header(raw: bytes, path) -> dict:
    if len(raw) < 8:
        raise SerializationError(f"{path}: not a safetensors file (only {len(raw)} bytes; it may be "
                                 f"truncated)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n == 0 or 8 + n > len(raw) or n > 100_000_000:
        raise SerializationError(f"{path}: not a safetensors file or truncated (header length {n} "
                                 f"but the file has {len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SerializationError(f"{path}: not a safetensors file (the header is not JSON); "
                                 f"strata.load reads only files written by strata.save or "
                                 f"safetensors") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{path}: malformed safetensors header")
    data_len = len(raw) - 8 - n
    for k, info in header.items():
        if k == "__metadata__":
            continue
        try:
            lo, hi = info["data_offsets"]
            dtype = info["dtype"]
        except (TypeError, KeyError, ValueError):
            raise SerializationError(f"{path}: malformed entry for {k!r} in the header") from None
        if hi > data_len or lo > hi:
            raise SerializationError(f"{path}: tensor {k!r} needs bytes {lo}..{hi} but the data "
                                     f"section has {data_len}; the file is truncated or corrupt")
        if dtype not in _DTYPES:
            raise SerializationError(f"{path}: tensor {k!r} has dtype {dtype}, which strata does "
                                     f"not support (supported: {', '.join(_DTYPES)})")
    return header


def load_file_numpy(path: str | os.PathLike) -> tuple[dict, dict]:
    """(tensors as NumPy arrays, metadata) of a safetensors file, with clear errors."""
    from safetensors.numpy import load as st_load
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    raw = p.read_bytes()
    header = _read_header(raw, p)
    try:
        tensors = st_load(raw)
    except Exception as e:  # safetensors raises its own error types
        raise SerializationError(f"{p}: corrupt safetensors file ({e})") from None
    return tensors, dict(header.get("__metadata__") or {})


def load(path: str | os.PathLike, backend=None) -> Any:
    """Read what `save` wrote (or any safetensors file) with tensors on `backend`."""
    from .core.default import resolve_backend
    B = resolve_backend(backend) if backend is not None else None
    tensors, meta = load_file_numpy(path)

    def make(a: np.ndarray):
        from . import from_numpy
        return from_numpy(np.array(a, copy=True), backend=B)

    if _STRUCT_KEY in meta:
        try:
            structure = json.loads(meta[_STRUCT_KEY])
            return _decode(structure, tensors, make)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"{path}: corrupt strata structure metadata ({e})") from None
    order = tensors.keys()
    if _ORDER_KEY in meta:
        try:
            saved = json.loads(meta[_ORDER_KEY])
            if sorted(saved) == sorted(tensors):
                order = saved
        except (json.JSONDecodeError, TypeError):
            pass
    return {k: make(tensors[k]) for k in order}


__all__ = ["save", "load", "atomic_write", "load_file_numpy", "SerializationError"]
