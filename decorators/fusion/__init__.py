"""Fusion decorator: lazy elementwise graphs compiled into fused kernels by each backend."""
from .fusion import Fusion
from .ir import Program, ProgramBuilder

__all__ = ["Fusion", "Program", "ProgramBuilder"]
