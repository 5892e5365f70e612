"""Global gradient-recording switch shared by every Autodiff layer (strata.no_grad)."""
from __future__ import annotations

import threading
from contextlib import contextmanager

class _State(threading.local):
    # a class attribute default: reading `_state.enabled` on a fresh thread is a plain lookup
    # (getattr with a default would raise and catch internally, ~0.6 us on the hot path)
    enabled = True


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class set_grad_enabled:
    """`set_grad_enabled(False)` switches recording off; also usable as a context manager."""

    def __init__(self, mode: bool):
        self._prev = _state.enabled
        _state.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev


@contextmanager
def _grad_mode(flag: bool):
    prev = _state.enabled
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
