"""Builds of the CuPy backend's fused-kernel source without a GPU, for
tests/test_cuda_fused_codegen.py.

The pieces backends/cuda/kernels.py hands to cupy.ElementwiseKernel / ReductionKernel (the
parameter lists, the operation or map/reduce expressions, the preamble with the generated
__host__ __device__ element function) are wrapped the way CuPy wraps them: array parameters
become references to the current element (`const float16 &in0 = _raw_in0[i];`), then the
operation runs; a reduction starts from its identity and folds REDUCE(a, b) over a row. Two
wrappers of the same text:

  host  a C++ program built with nvcc and run on the CPU: it reads the inputs and constants
        from binary files, runs every case over all of its elements, writes the outputs;
  ptx   __global__ kernels compiled with `nvcc --ptx -arch=sm_90`: the device code is valid.

CuPy's float16 class is stood in for by cuda_fp16's __half, which converts to and from float
the same way (round to nearest even). Many cases go into one source, as nvcc takes seconds
per build; each case lives in its own namespace with its own copy of the preamble.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strata.backends.cuda import kernels
from strata.core.shape import numel

NVCC = shutil.which("nvcc")

# CuPy's C names of parameter dtypes (cupy/_core/_scalar.pyx get_typename)
CUPY_CTYPE = {"bool": "bool", "uint8": "unsigned char", "int8": "signed char", "int16": "short",
              "int32": "int", "int64": "long long", "float16": "float16", "float32": "float",
              "float64": "double"}

_HEADER = """#include <cuda_fp16.h>
#include <cstdio>
#include <cstdlib>
typedef __half float16;  // CuPy's float16 converts to and from float like __half

template <typename T> static T* load(const char* dir, const char* name, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE* f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    T* p = (T*)malloc((n ? n : 1) * sizeof(T));
    if (fread(p, sizeof(T), n, f) != n) { fprintf(stderr, "short read: %s\\n", path); exit(2); }
    fclose(f);
    return p;
}

template <typename T> static T* alloc(size_t n) { return (T*)calloc(n ? n : 1, sizeof(T)); }

template <typename T> static void save(const char* dir, const char* name, const T* p, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(T), n, f) != n) { perror(path); exit(2); }
    fclose(f);
}
"""


@dataclass
class MapCase:
    """program over `arrays` (one per input, broadcastable to shape): every written slot."""
    program: object
    arrays: list
    shape: tuple


@dataclass
class ReduceCase:
    """op (sum/max/min) of the program's one output over the last axis of a 2-D shape."""
    program: object
    arrays: list
    shape: tuple
    op: str


def _params(decl: str) -> list:
    """[(dtype name, parameter name)] of a CuPy parameter list."""
    return [tuple(p.split()) for p in decl.split(",")] if decl.strip() else []


def _spec(case):
    if isinstance(case, MapCase):
        return kernels.map_kernel(case.program)
    return kernels.reduce_kernel(case.program, case.op)


def _prologue(tag: str, spec, n: str) -> list:
    """Loads of the array inputs and constants (host build)."""
    lines = []
    for ty, name in _params(spec.in_params):
        ct = CUPY_CTYPE[ty]
        if name.startswith("in"):
            lines.append(f"const {ct}* _raw_{name} = load<{ct}>(dir, \"{tag}_{name}\", {n});")
        else:
            lines.append(f"const {ct} {name} = load<{ct}>(dir, \"{tag}_{name}\", 1)[0];")
    return lines


def _element_refs(spec, index: str, outputs: bool) -> list:
    """CuPy's per-element bindings: a reference to the element of each array parameter."""
    refs = [f"const {CUPY_CTYPE[ty]} &{name} = _raw_{name}[{index}];"
            for ty, name in _params(spec.in_params) if name.startswith("in")]
    if outputs:
        refs += [f"{CUPY_CTYPE[ty]} &{name} = _raw_{name}[{index}];"
                 for ty, name in _params(spec.out_params)]
    return refs


def _kernel_params(spec) -> str:
    ps = [f"const {CUPY_CTYPE[ty]}* _raw_{name}" if name.startswith("in")
          else f"const {CUPY_CTYPE[ty]} {name}" for ty, name in _params(spec.in_params)]
    ps += [f"{CUPY_CTYPE[ty]}* _raw_{name}" for ty, name in _params(spec.out_params)]
    return ", ".join(ps)


def _map_code(tag: str, spec, n: int, device: bool) -> list:
    loop_body = _element_refs(spec, "i", True) + [spec.operation]
    if device:
        return [f"extern \"C\" __global__ void {tag}_map({_kernel_params(spec)}, long long n) {{",
                "for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; "
                "i += (long long)gridDim.x * blockDim.x) {", *loop_body, "}", "}"]
    outs = _params(spec.out_params)
    return ["static void run(const char* dir) {", f"const size_t n = {n};",
            *_prologue(tag, spec, "n"),
            *[f"{CUPY_CTYPE[ty]}* _raw_{name} = alloc<{CUPY_CTYPE[ty]}>(n);" for ty, name in outs],
            "for (size_t i = 0; i < n; ++i) {", *loop_body, "}",
            *[f"save(dir, \"{tag}_{name}\", _raw_{name}, n);" for _, name in outs], "}"]


def _reduce_code(tag: str, spec, rows: int, cols: int, device: bool) -> list:
    (oty, oname), = _params(spec.out_params)
    ins = [f"const {CUPY_CTYPE[ty]} {name} = _raw_{name}[o * cols + r];"
           for ty, name in _params(spec.in_params) if name.startswith("in")]
    fold = [f"_type_reduce _s = _type_reduce({spec.identity});",
            "for (long long r = 0; r < cols; ++r) {", *ins,
            f"_type_reduce _a = static_cast<_type_reduce>({spec.map_expr});",
            "_s = REDUCE(_s, _a);", "}",
            f"{CUPY_CTYPE[oty]} &{oname} = _raw_{oname}[o];", "POST_MAP(_s);"]
    if device:
        body = [f"extern \"C\" __global__ void {tag}_reduce({_kernel_params(spec)}, "
                "long long rows, long long cols) {",
                "const long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x;",
                "if (o >= rows) return;", *fold, "}"]
    else:
        body = ["static void run(const char* dir) {",
                f"const long long rows = {rows}, cols = {cols};",
                *_prologue(tag, spec, "rows * cols"),
                f"{CUPY_CTYPE[oty]}* _raw_{oname} = alloc<{CUPY_CTYPE[oty]}>(rows);",
                "for (long long o = 0; o < rows; ++o) {", *fold, "}",
                f"save(dir, \"{tag}_{oname}\", _raw_{oname}, rows);", "}"]
    return [f"typedef {spec.reduce_type} _type_reduce;",
            f"#define REDUCE(a, b) ({spec.reduce_expr})",
            f"#define POST_MAP(a) ({spec.post_map_expr})", *body,
            "#undef REDUCE", "#undef POST_MAP"]


def source(cases: dict, device: bool) -> str:
    """One CUDA source with every case (host program or __global__ kernels)."""
    parts = [_HEADER]
    for i, case in enumerate(cases.values()):
        spec = _spec(case)
        tag = f"case{i}"
        if isinstance(case, MapCase):
            code = _map_code(tag, spec, numel(case.shape), device)
        else:
            code = _reduce_code(tag, spec, case.shape[0], case.shape[1], device)
        parts += [f"namespace {tag} {{", spec.preamble, *code, f"}}  // namespace {tag}", ""]
    if not device:
        runs = "\n".join(f"    case{i}::run(dir);" for i in range(len(cases)))
        parts.append(f"int main(int argc, char** argv) {{\n    const char* dir = argv[1];\n"
                     f"{runs}\n    return 0;\n}}\n")
    return "\n".join(parts)


def _write_inputs(tag: str, case, spec, data: Path) -> None:
    shape = case.shape
    for ty, name in _params(spec.in_params):
        if name.startswith("in"):
            a = case.arrays[int(name[2:])]
            a = np.ascontiguousarray(np.broadcast_to(np.asarray(a, ty), shape))
        else:
            (v,) = [v for (j, _), v in zip(spec.consts, kernels.const_args(case.program,
                                                                           spec.consts))
                    if f"c{j}" == name]
            assert v.dtype == np.dtype(ty), (name, v.dtype, ty)  # the declared parameter type
            a = np.asarray(v)
        a.tofile(data / f"{tag}_{name}.bin")


def compile_cuda(src: str, work: Path, device: bool) -> subprocess.Popen:
    """Start nvcc on `src` (a host executable, or PTX for sm_90); returns the process."""
    work.mkdir(parents=True, exist_ok=True)
    kind = "ptx" if device else "host"
    path = work / f"{kind}.cu"
    path.write_text(src)
    cmd = [NVCC, "-x", "cu", str(path), "-fmad=false"]
    # the host compiler must not contract a * b + c either (GCC does on FMA targets: ARM)
    cmd += ["--ptx", "-arch=sm_90", "-o", str(work / "fused.ptx")] if device else \
        ["-Xcompiler", "-ffp-contract=off", "-o", str(work / "host")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, what: str) -> str:
    out, _ = proc.communicate()
    if proc.returncode:
        raise AssertionError(f"nvcc failed on the {what} build:\n{out[-6000:]}")
    return out


def run_host(cases: dict, work: Path, proc: subprocess.Popen) -> dict:
    """Write every case's inputs, wait for the host build `proc`, run it; returns
    {case name: {slot: array}} for map cases and {case name: array} for reductions."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    specs = {}
    for i, (name, case) in enumerate(cases.items()):
        specs[name] = _spec(case)
        _write_inputs(f"case{i}", case, specs[name], data)
    finish(proc, "host")
    subprocess.run([str(work / "host"), str(data)], check=True, timeout=120)
    results: dict = {}
    for i, (name, case) in enumerate(cases.items()):
        spec = specs[name]
        outs = _params(spec.out_params)
        if isinstance(case, MapCase):
            results[name] = {s: np.fromfile(data / f"case{i}_{o}.bin", ty).reshape(case.shape)
                             for s, (ty, o) in zip(spec.write, outs)}
        else:
            (ty, o), = outs
            results[name] = np.fromfile(data / f"case{i}_{o}.bin", ty)
    return results
