// Helpers of the fused elementwise kernels (codegen.py) for the ops that need statements or a
// well-defined integer wrap. Every function is __host__ __device__: the tests compile the same
// code for the CPU with nvcc and compare it with NumPy, since CI has no GPU.
// Semantics are those of the OpenCL generator (backends/opencl/fused_ops.cl): floor-style
// remainder and floor_divide (NumPy's npy_divmod / PyTorch's div_floor_floating for floats),
// integer x / 0 and x % 0 give 0, MIN / -1 is guarded (it traps on x86), negative integer
// exponents truncate. Signed integer arithmetic runs in the unsigned type of the same width
// (wraps, where signed overflow would be undefined behaviour).
// cuda_fp16.h must be included before this file: CuPy's kernels already include it through
// cupy/float16.cuh; the host and PTX builds of the tests include it first.

// float16 values are computed in float and rounded once per instruction, as the unfused op
// stores its float result into a float16 array
__host__ __device__ __forceinline__ float strata_h(float x) {
    return __half2float(__float2half_rn(x));
}

// double -> float16 in one rounding (through float it would round twice)
__host__ __device__ __forceinline__ float strata_h(double x) {
    return __half2float(__double2half(x));
}

// +inf without math_constants.h or INFINITY, which NVRTC does not provide
__host__ __device__ __forceinline__ float strata_inf_f() {
    union { unsigned int u; float f; } v = {0x7f800000u};
    return v.f;
}

__host__ __device__ __forceinline__ double strata_inf_d() {
    union { unsigned long long u; double f; } v = {0x7ff0000000000000ull};
    return v.f;
}

__host__ __device__ __forceinline__ bool strata_isinf(float x) {
    return x == strata_inf_f() || x == -strata_inf_f();
}

__host__ __device__ __forceinline__ bool strata_isinf(double x) {
    return x == strata_inf_d() || x == -strata_inf_d();
}

// the float and double overloads the templates below call (host and device have both)
__host__ __device__ __forceinline__ float strata_fmod(float a, float b) { return fmodf(a, b); }
__host__ __device__ __forceinline__ double strata_fmod(double a, double b) { return fmod(a, b); }
__host__ __device__ __forceinline__ float strata_floor(float a) { return floorf(a); }
__host__ __device__ __forceinline__ double strata_floor(double a) { return floor(a); }
__host__ __device__ __forceinline__ float strata_copysign(float a, float b) { return copysignf(a, b); }
__host__ __device__ __forceinline__ double strata_copysign(double a, double b) { return copysign(a, b); }

template <typename T>
__host__ __device__ __forceinline__ T strata_remainder_f(T a, T b) {
    T m = strata_fmod(a, b);
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m += b;
    return m;
}

template <typename T>
__host__ __device__ __forceinline__ T strata_floor_divide_f(T a, T b) {
    if (b == (T)0) return a / b;
    T m = strata_fmod(a, b);
    T d = (a - m) / b;
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) d -= (T)1;
    if (d != (T)0) {
        T f = strata_floor(d);
        if (d - f > (T)0.5) f += (T)1;
        return f;
    }
    return strata_copysign((T)0, a / b);
}

// x < 0 without the "pointless comparison of unsigned integer with zero" warning
template <typename T> __host__ __device__ __forceinline__ bool strata_neg(T x) { return x < (T)0; }
template <> __host__ __device__ __forceinline__ bool strata_neg<unsigned char>(unsigned char) {
    return false;
}

// T: the integer type, U: the unsigned type its arithmetic wraps in
template <typename T, typename U>
__host__ __device__ __forceinline__ T strata_pow_i(T a, T b) {
    if (strata_neg(b)) {
        if (a == (T)1) return (T)1;
        if (strata_neg(a) && a == (T)-1) return (b & 1) ? (T)-1 : (T)1;
        return (T)0;
    }
    U r = 1, base = (U)a;
    while (b != (T)0) {
        if (b & 1) r = r * base;
        base = base * base;
        b = (T)(b >> 1);
    }
    return (T)r;
}

template <typename T, typename U>
__host__ __device__ __forceinline__ T strata_remainder_i(T a, T b) {
    if (b == (T)0) return (T)0;
    if (strata_neg(b) && b == (T)-1) return (T)0;
    T m = (T)(a % b);
    if (m != (T)0 && strata_neg(b) != strata_neg(m)) m = (T)((U)m + (U)b);
    return m;
}

template <typename T, typename U>
__host__ __device__ __forceinline__ T strata_floor_divide_i(T a, T b) {
    if (b == (T)0) return (T)0;
    if (strata_neg(b) && b == (T)-1) return (T)((U)0 - (U)a);
    T q = (T)(a / b);
    if ((T)(a % b) != (T)0 && strata_neg(a) != strata_neg(b)) q = (T)((U)q - (U)1);
    return q;
}
