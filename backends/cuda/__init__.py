"""CUDA C generation for the CuPy backend's fused kernels (the Fusion decorator's programs).

codegen.py turns a program into a __host__ __device__ element function (helpers in
fused_ops.cu), kernels.py into the pieces of a cupy.ElementwiseKernel / ReductionKernel, and
fused.py runs them on CuPy. Nothing here imports cupy: fused.py uses the CuPy backend's own
module object, so the code generator is usable (and tested with nvcc) without a GPU.
"""
