"""Global gradient-recording switch shared by every Autodiff layer (strata.no_grad)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def set_grad_enabled(flag: bool) -> None:
    _state.enabled = bool(flag)


@contextmanager
def _grad_mode(flag: bool):
    prev = is_grad_enabled()
    _state.enabled = flag
    try:
        yield
    finally:
        _state.enabled = prev


class no_grad:
    """Context manager and decorator: ops inside record no graph (like torch.no_grad)."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = False

    def __exit__(self, *exc):
        _state.enabled = self._prev

    def __call__(self, fn):
        def wrapper(*a, **k):
            with no_grad():
                return fn(*a, **k)
        wrapper.__wrapped__ = fn
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        return wrapper


class enable_grad(no_grad):
    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = True
