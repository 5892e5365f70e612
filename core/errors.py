"""Errors strata raises. Each names the problem and the fix."""


class StrataError(Exception):
    """Base class of strata's own errors."""


class ShapeError(StrataError, ValueError):
    """Operand shapes do not fit the op."""


class DTypeError(StrataError, TypeError):
    """A dtype the op or backend cannot handle."""


class BackendError(StrataError, RuntimeError):
    """A backend is missing, unavailable, or mixed with another."""


class UnsupportedError(BackendError):
    """The backend does not support this op or dtype; the message says what would work."""


class AutodiffError(StrataError, RuntimeError):
    """Gradients asked of a stack or tensor that cannot give them."""


class BackendParseError(StrataError, ValueError):
    """A backend string such as 'Fusion(Autodiff(NumPy()))' that does not parse."""
