"""The OpenCL backend (pyopencl + .cl kernels). Importing this package does not import
pyopencl; constructing OpenCL() does, and raises BackendError when it is missing."""
from .backend import OpenCL

__all__ = ["OpenCL"]
