// Scalar op definitions for one element type T (T_KIND: 0 bool stored as uchar, 1 integer,
// 2 floating). Each op_NAME is used by elementwise.cl; the Python side only asks for ops that
// are defined for the kind. Semantics follow PyTorch: floor-style remainder/floor_divide,
// NaN-propagating maximum/minimum, round half to even, sign(NaN) = 0.
// PoCL's CPU driver calls builtins (fabs, fmax, isnan ...) as functions rather than inlining
// them, so cheap ops are written as plain comparisons.

#define TRUE_ ((uchar)1)
#define FALSE_ ((uchar)0)

inline T op_copy(T a) { return a; }
inline uchar op_logical_not(T a) { return a == (T)0; }
inline uchar op_eq(T a, T b) { return a == b; }
inline uchar op_ne(T a, T b) { return a != b; }
inline uchar op_lt(T a, T b) { return a < b; }
inline uchar op_le(T a, T b) { return a <= b; }
inline uchar op_gt(T a, T b) { return a > b; }
inline uchar op_ge(T a, T b) { return a >= b; }
inline uchar op_logical_and(T a, T b) { return (a != (T)0) && (b != (T)0); }
inline uchar op_logical_or(T a, T b) { return (a != (T)0) || (b != (T)0); }
inline uchar op_logical_xor(T a, T b) { return (a != (T)0) != (b != (T)0); }

#if T_KIND == 2
inline T op_neg(T a) { return -a; }
inline T op_exp(T a) { return exp(a); }
inline T op_log(T a) { return log(a); }
inline T op_sqrt(T a) { return sqrt(a); }
inline T op_sin(T a) { return sin(a); }
inline T op_cos(T a) { return cos(a); }
inline T op_tanh(T a) { return tanh(a); }
inline T op_erf(T a) { return erf(a); }
inline T op_abs(T a) { return a < (T)0 ? -a : (a == (T)0 ? (T)0 : a); }
inline T op_sign(T a) { return a > (T)0 ? (T)1 : (a < (T)0 ? (T)-1 : (T)0); }
inline T op_reciprocal(T a) { return (T)1 / a; }
inline T op_floor(T a) { return floor(a); }
inline T op_ceil(T a) { return ceil(a); }
inline T op_round(T a) { return rint(a); }
inline T op_trunc(T a) { return trunc(a); }
inline T op_relu(T a) { return a != a ? a : (a > (T)0 ? a : (T)0); }
inline T op_sigmoid(T a) { return (T)1 / ((T)1 + exp(-a)); }
inline T op_silu(T a) { return a / ((T)1 + exp(-a)); }
inline T op_log1p(T a) { return log1p(a); }
inline T op_expm1(T a) { return expm1(a); }
inline T op_tan(T a) { return tan(a); }
inline T op_rsqrt(T a) { return rsqrt(a); }
inline uchar op_isnan(T a) { return a != a; }
inline uchar op_isinf(T a) { return a == (T)INFINITY || a == (T)-INFINITY; }

inline T op_add(T a, T b) { return a + b; }
inline T op_sub(T a, T b) { return a - b; }
inline T op_mul(T a, T b) { return a * b; }
inline T op_div(T a, T b) { return a / b; }
inline T op_pow(T a, T b) { return pow(a, b); }
inline T op_maximum(T a, T b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
inline T op_minimum(T a, T b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
inline T op_remainder(T a, T b) {
    T m = fmod(a, b);
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m += b;
    return m;
}
inline T op_floor_divide(T a, T b) {
    // PyTorch's div_floor_floating: exact for values where floor(a / b) rounds wrongly
    if (b == (T)0) return a / b;
    T m = fmod(a, b);
    T d = (a - m) / b;
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) d -= (T)1;
    if (d != (T)0) {
        T f = floor(d);
        if (d - f > (T)0.5) f += (T)1;
        return f;
    }
    return copysign((T)0, a / b);
}

#elif T_KIND == 1
inline T op_neg(T a) { return (T)(-a); }
inline T op_abs(T a) { return a < (T)0 ? (T)(-a) : a; }
inline T op_sign(T a) { return a > (T)0 ? (T)1 : (a < (T)0 ? (T)-1 : (T)0); }
inline T op_floor(T a) { return a; }
inline T op_ceil(T a) { return a; }
inline T op_round(T a) { return a; }
inline T op_trunc(T a) { return a; }
inline T op_relu(T a) { return a > (T)0 ? a : (T)0; }
inline uchar op_isnan(T a) { return 0; }
inline uchar op_isinf(T a) { return 0; }
inline T op_bitwise_not(T a) { return (T)(~a); }

inline T op_add(T a, T b) { return (T)(a + b); }
inline T op_sub(T a, T b) { return (T)(a - b); }
inline T op_mul(T a, T b) { return (T)(a * b); }
inline T op_maximum(T a, T b) { return a > b ? a : b; }
inline T op_minimum(T a, T b) { return a < b ? a : b; }
inline T op_bitwise_and(T a, T b) { return a & b; }
inline T op_bitwise_or(T a, T b) { return a | b; }
inline T op_bitwise_xor(T a, T b) { return a ^ b; }
inline T op_pow(T a, T b) {
    // negative exponents give the truncated value 1 / a**|b|: 0 unless |a| == 1
    if (b < (T)0) return a == (T)1 ? (T)1 : (a == (T)-1 ? (((b & 1) != 0) ? (T)-1 : (T)1) : (T)0);
    T r = (T)1, base = a;
    while (b != (T)0) {
        if ((b & 1) != 0) r = (T)(r * base);
        base = (T)(base * base);
        b = (T)(b >> 1);
    }
    return r;
}
// Division by zero would trap (SIGFPE) on x86, as would MIN / -1: both are guarded.
// x / 0 and x % 0 give 0 like NumPy (PyTorch raises on CPU).
inline T op_remainder(T a, T b) {
    if (b == (T)0) return (T)0;
#if T_SIGNED
    if (b == (T)-1) return (T)0;
#endif
    T m = (T)(a % b);
    if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m = (T)(m + b);
    return m;
}
inline T op_floor_divide(T a, T b) {
    if (b == (T)0) return (T)0;
#if T_SIGNED
    if (b == (T)-1) return (T)(-a);
#endif
    T q = (T)(a / b);
    if ((T)(a % b) != (T)0 && ((a < (T)0) != (b < (T)0))) q = (T)(q - 1);
    return q;
}

#else  // bool
inline T op_abs(T a) { return a; }
inline T op_sign(T a) { return a; }
inline T op_floor(T a) { return a; }
inline T op_ceil(T a) { return a; }
inline T op_round(T a) { return a; }
inline T op_trunc(T a) { return a; }
inline T op_relu(T a) { return a; }
inline uchar op_isnan(T a) { return 0; }
inline uchar op_isinf(T a) { return 0; }
inline T op_bitwise_not(T a) { return (T)(a == (T)0); }
inline T op_add(T a, T b) { return a | b; }
inline T op_mul(T a, T b) { return a & b; }
inline T op_maximum(T a, T b) { return a | b; }
inline T op_minimum(T a, T b) { return a & b; }
inline T op_bitwise_and(T a, T b) { return a & b; }
inline T op_bitwise_or(T a, T b) { return a | b; }
inline T op_bitwise_xor(T a, T b) { return a ^ b; }
#endif

#if T_KIND == 2
// Vector forms (8 lanes) of the transcendental ops: PoCL calls builtins as functions, and one
// call of the vectorised float8 exp replaces eight scalar calls.
#define V8 CAT8(T)
#define CAT8_(t) t##8
#define CAT8(t) CAT8_(t)
inline V8 vop_exp(V8 a) { return exp(a); }
inline V8 vop_log(V8 a) { return log(a); }
inline V8 vop_sqrt(V8 a) { return sqrt(a); }
inline V8 vop_sin(V8 a) { return sin(a); }
inline V8 vop_cos(V8 a) { return cos(a); }
inline V8 vop_tanh(V8 a) { return tanh(a); }
inline V8 vop_erf(V8 a) { return erf(a); }
inline V8 vop_log1p(V8 a) { return log1p(a); }
inline V8 vop_expm1(V8 a) { return expm1(a); }
inline V8 vop_tan(V8 a) { return tan(a); }
inline V8 vop_rsqrt(V8 a) { return rsqrt(a); }
inline V8 vop_sigmoid(V8 a) { return (V8)1 / ((V8)1 + exp(-a)); }
inline V8 vop_silu(V8 a) { return a / ((V8)1 + exp(-a)); }
#endif
