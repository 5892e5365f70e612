"""Decorator backends: each wraps a Backend and is one (Autodiff, Fusion, Quantization, PoolAllocator)."""
from .autodiff import Autodiff
from .fusion import Fusion

__all__ = ["Autodiff", "Fusion"]
