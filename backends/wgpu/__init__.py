"""WebGPU backend (wgpu-py + WGSL). Importing this package never imports wgpu; WGPU() does."""
from .backend import WGPU

__all__ = ["WGPU"]
