"""Decorator backends: each wraps a Backend and is one (Autodiff, Fusion, Quantization, PoolAllocator)."""
from .autodiff import Autodiff
from .fusion import Fusion
from .pool import PoolAllocator, PoolConfig
from .quantization import Quantization, QuantScheme

__all__ = ["Autodiff", "Fusion", "PoolAllocator", "PoolConfig", "Quantization", "QuantScheme"]
