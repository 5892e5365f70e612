"""The default backend stack: STRATA_BACKEND, set_default_backend, `with default_backend(B)`."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from .backend import Backend

DEFAULT_STACK = "Autodiff(NumPy())"
_lock = threading.Lock()
_default: Backend | None = None
_local = threading.local()


def get_default_backend() -> Backend:
    stack = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from .parse import backend
                _default = backend(os.environ.get("STRATA_BACKEND") or DEFAULT_STACK)
    return _default


def set_default_backend(b) -> Backend:
    """Set the process-wide default stack (a Backend or a string such as 'Autodiff(NumPy())')."""
    global _default
    _default = resolve_backend(b)
    return _default


@contextmanager
def default_backend(b):
    """Within the block, tensors created without backend= live on `b` (this thread only)."""
    B = resolve_backend(b)
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append(B)
    try:
        yield B
    finally:
        stack.pop()


def resolve_backend(b) -> Backend:
    if b is None:
        return get_default_backend()
    if isinstance(b, Backend):
        return b
    if isinstance(b, str):
        from .parse import backend
        return backend(b)
    raise TypeError(f"backend must be a strata Backend or a stack string such as "
                    f"'Autodiff(NumPy())', got {type(b).__name__}")
