"""Parse backend stacks such as 'Fusion(Autodiff(OpenCL(device=1)))' — a tiny grammar, no eval.

    stack   := NAME '(' [args] ')'
    args    := arg (',' arg)* [',']
    arg     := stack | NAME '=' literal | NAME '=' stack
    literal := INT | FLOAT | STRING | True | False | None

Names resolve through a registry (`register_backend`), so user-written backends parse too.
"""
from __future__ import annotations

import re
from typing import Callable

from .backend import Backend
from .errors import BackendError, BackendParseError

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<float>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)|[-+]?(?:\d+\.\d*|\.\d+))
  | (?P<int>[-+]?\d+)
  | (?P<str>'[^'\\]*'|"[^"\\]*")
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<punct>[(),=])
""", re.VERBOSE)

_registry: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make `name(...)` usable in backend strings (and in STRATA_BACKEND)."""
    if not name.isidentifier():
        raise ValueError(f"backend name must be an identifier, got {name!r}")
    _registry[name] = factory


def _builtin(name: str):
    # imported on first use so that a missing optional package only matters when asked for
    if name in ("NumPy", "CuPy", "OpenCL", "WGPU"):
        from .. import backends
        return getattr(backends, name, None)
    if name in ("Autodiff", "Fusion", "Quantization", "PoolAllocator"):
        from .. import decorators
        return getattr(decorators, name, None)
    return None


def known_names() -> list:
    return sorted(set(_registry) | {"NumPy", "CuPy", "OpenCL", "WGPU", "Autodiff", "Fusion",
                                    "Quantization", "PoolAllocator"})


def _tokenize(s: str):
    pos = 0
    out = []
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise BackendParseError(f"cannot parse backend string {s!r}: unexpected character "
                                    f"{s[pos]!r} at position {pos}")
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(), pos))
        pos = m.end()
    out.append(("end", "", len(s)))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self, kind=None, value=None):
        tok = self.toks[self.i]
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            want = value or kind
            got = tok[1] or "end of string"
            raise BackendParseError(f"cannot parse backend string {self.text!r}: expected "
                                    f"{want!r} at position {tok[2]}, found {got!r} "
                                    f"(write stacks like 'Fusion(Autodiff(NumPy()))')")
        self.i += 1
        return tok

    def stack(self):
        name = self.take("name")[1]
        self.take("punct", "(")
        args, kwargs = [], {}
        while not (self.peek()[0] == "punct" and self.peek()[1] == ")"):
            if self.peek()[0] == "name" and self.toks[self.i + 1][1] == "=":
                key = self.take("name")[1]
                self.take("punct", "=")
                if key in kwargs:
                    raise BackendParseError(f"{name}(): keyword {key!r} given twice in {self.text!r}")
                kwargs[key] = self.value()
            else:
                if kwargs:
                    raise BackendParseError(f"{name}(): positional argument after keywords in "
                                            f"{self.text!r}")
                args.append(self.stack())
            if self.peek()[1] == ",":
                self.take("punct", ",")
            else:
                break
        self.take("punct", ")")
        return _build(name, args, kwargs)

    def value(self):
        kind, text, _ = self.peek()
        if kind == "int":
            self.i += 1
            return int(text)
        if kind == "float":
            self.i += 1
            return float(text)
        if kind == "str":
            self.i += 1
            return text[1:-1]
        if kind == "name" and text in ("True", "False", "None"):
            self.i += 1
            return {"True": True, "False": False, "None": None}[text]
        if kind == "name":
            return self.stack()
        raise BackendParseError(f"cannot parse backend string {self.text!r}: expected a number, "
                                f"string, True/False/None or a stack at position {self.peek()[2]}")


def _build(name: str, args, kwargs) -> Backend:
    factory = _registry.get(name) or _builtin(name)
    if factory is None:
        raise BackendParseError(f"unknown backend {name!r}; known: {', '.join(known_names())}")
    try:
        return factory(*args, **kwargs)
    except BackendError:
        raise
    except TypeError as e:
        raise BackendParseError(f"{name}(...): {e}") from None


def backend(spec) -> Backend:
    """A backend stack from a string such as 'Fusion(Autodiff(NumPy()))' (or a Backend as is)."""
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"backend() takes a stack string, got {type(spec).__name__}")
    p = _Parser(spec.strip())
    b = p.stack()
    p.take("end")
    return b
