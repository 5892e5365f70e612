// Helpers of fused kernels (fused.cl, fused_reduce.cl) for the ops that need statements, as
// macros instantiated once per dtype that uses them: DEF_FLOAT_HELPERS(type, suffix) and
// DEF_INT_HELPERS(type, suffix, signed). Same semantics as ops.cl: floor-style remainder and
// floor_divide (PyTorch's div_floor_floating for floats), integer x / 0 and x % 0 give 0,
// MIN / -1 is guarded (it traps on x86), negative integer exponents truncate.
#pragma OPENCL FP_CONTRACT OFF

#define DEF_FLOAT_HELPERS(T, S)                                                              \
inline T remainder_##S(T a, T b) {                                                           \
    T m = fmod(a, b);                                                                        \
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m += b;                                     \
    return m;                                                                                \
}                                                                                            \
inline T floor_divide_##S(T a, T b) {                                                        \
    if (b == (T)0) return a / b;                                                             \
    T m = fmod(a, b);                                                                        \
    T d = (a - m) / b;                                                                       \
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) d -= (T)1;                                  \
    if (d != (T)0) {                                                                         \
        T f = floor(d);                                                                      \
        if (d - f > (T)0.5) f += (T)1;                                                       \
        return f;                                                                            \
    }                                                                                        \
    return copysign((T)0, a / b);                                                            \
}

#define DEF_INT_HELPERS(T, S, SIGNED)                                                        \
inline T pow_##S(T a, T b) {                                                                 \
    if (b < (T)0) return a == (T)1 ? (T)1 : (a == (T)-1 ? (((b & 1) != 0) ? (T)-1 : (T)1) : (T)0); \
    T r = (T)1, base = a;                                                                    \
    while (b != (T)0) {                                                                      \
        if ((b & 1) != 0) r = (T)(r * base);                                                 \
        base = (T)(base * base);                                                             \
        b = (T)(b >> 1);                                                                     \
    }                                                                                        \
    return r;                                                                                \
}                                                                                            \
inline T remainder_##S(T a, T b) {                                                           \
    if (b == (T)0) return (T)0;                                                              \
    if (SIGNED && b == (T)-1) return (T)0;                                                   \
    T m = (T)(a % b);                                                                        \
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m = (T)(m + b);                             \
    return m;                                                                                \
}                                                                                            \
inline T floor_divide_##S(T a, T b) {                                                        \
    if (b == (T)0) return (T)0;                                                              \
    if (SIGNED && b == (T)-1) return (T)(-a);                                                \
    T q = (T)(a / b);                                                                        \
    if ((T)(a % b) != (T)0 && ((a < (T)0) != (b < (T)0))) q = (T)(q - 1);                    \
    return q;                                                                                \
}
