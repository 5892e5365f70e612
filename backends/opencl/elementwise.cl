// Elementwise kernels for one element type T (ops from ops.cl, walks from dims.cl). The Python side defines
// UNARY_OPS(X) and BINARY_OPS(X) as lists X(name, output type) of the ops valid for T.
//
// Two layouts per kernel:
//   _c  every operand is dense in the same order: element i lives at offset + i.
//   _s  strided: dims are innermost first; dim 0 and dim 1 come from global ids 0 and 1,
//       the rest (up to 16 dims in all) are decomposed from global id 2. Strides may be 0
//       (broadcast) or negative (flip), so no input is ever copied to make it dense.
// Binary ops come as _tt (two tensors), _ts (tensor, scalar) and _st (scalar, tensor).

#define HEAD_S                                                             \
    const long i0 = get_global_id(0), i1 = get_global_id(1);               \
    if (i0 >= shp.s0) return;                                              \
    long q = get_global_id(2);

#define STEP_OA(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;              \
    po += c * so.s##k; pa += c * sa.s##k; }
#define STEP_OB(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;              \
    po += c * so.s##k; pb += c * sb.s##k; }
#define STEP_OAB(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;             \
    po += c * so.s##k; pa += c * sa.s##k; pb += c * sb.s##k; }

#define UNARY_KERNELS(NAME, OT)                                                              \
__kernel void NAME##_c(__global OT* o, const long oo, __global const T* a, const long oa,    \
                       const long n) {                                                       \
    const long i = get_global_id(0);                                                         \
    if (i < n) o[oo + i] = op_##NAME(a[oa + i]);                                             \
}                                                                                            \
__kernel void NAME##_s(__global OT* o, const long oo, const long16 so,                       \
                       __global const T* a, const long oa, const long16 sa,                  \
                       const long16 shp, const int nd) {                                     \
    HEAD_S                                                                                   \
    long po = oo + i0 * so.s0 + i1 * so.s1, pa = oa + i0 * sa.s0 + i1 * sa.s1;               \
    FOR_DIMS(STEP_OA)                                                            \
    o[po] = op_##NAME(a[pa]);                                                                \
}

#define BINARY_KERNELS(NAME, OT)                                                             \
__kernel void NAME##_tt_c(__global OT* o, const long oo, __global const T* a, const long oa, \
                          __global const T* b, const long ob, const long n) {                \
    const long i = get_global_id(0);                                                         \
    if (i < n) o[oo + i] = op_##NAME(a[oa + i], b[ob + i]);                                  \
}                                                                                            \
__kernel void NAME##_ts_c(__global OT* o, const long oo, __global const T* a, const long oa, \
                          const T b, const long n) {                                         \
    const long i = get_global_id(0);                                                         \
    if (i < n) o[oo + i] = op_##NAME(a[oa + i], b);                                          \
}                                                                                            \
__kernel void NAME##_st_c(__global OT* o, const long oo, const T a,                          \
                          __global const T* b, const long ob, const long n) {                \
    const long i = get_global_id(0);                                                         \
    if (i < n) o[oo + i] = op_##NAME(a, b[ob + i]);                                          \
}                                                                                            \
__kernel void NAME##_tt_s(__global OT* o, const long oo, const long16 so,                    \
                          __global const T* a, const long oa, const long16 sa,               \
                          __global const T* b, const long ob, const long16 sb,               \
                          const long16 shp, const int nd) {                                  \
    HEAD_S                                                                                   \
    long po = oo + i0 * so.s0 + i1 * so.s1, pa = oa + i0 * sa.s0 + i1 * sa.s1;               \
    long pb = ob + i0 * sb.s0 + i1 * sb.s1;                                                  \
    FOR_DIMS(STEP_OAB)                                                                       \
    o[po] = op_##NAME(a[pa], b[pb]);                                                         \
}                                                                                            \
__kernel void NAME##_ts_s(__global OT* o, const long oo, const long16 so,                    \
                          __global const T* a, const long oa, const long16 sa,               \
                          const T b, const long16 shp, const int nd) {                       \
    HEAD_S                                                                                   \
    long po = oo + i0 * so.s0 + i1 * so.s1, pa = oa + i0 * sa.s0 + i1 * sa.s1;               \
    FOR_DIMS(STEP_OA)                                                            \
    o[po] = op_##NAME(a[pa], b);                                                             \
}                                                                                            \
__kernel void NAME##_st_s(__global OT* o, const long oo, const long16 so, const T a,         \
                          __global const T* b, const long ob, const long16 sb,               \
                          const long16 shp, const int nd) {                                  \
    HEAD_S                                                                                   \
    long po = oo + i0 * so.s0 + i1 * so.s1, pb = ob + i0 * sb.s0 + i1 * sb.s1;               \
    FOR_DIMS(STEP_OB)                                                                        \
    o[po] = op_##NAME(a, b[pb]);                                                             \
}

// 8 elements per work-item through the vector form vop_NAME (dense layout only)
#define VECTOR_KERNELS(NAME, OT)                                                             \
__kernel void NAME##_v(__global OT* o, const long oo, __global const T* a, const long oa,    \
                       const long n) {                                                       \
    long i = get_global_id(0) * 8;                                                           \
    if (i + 8 <= n) {                                                                        \
        vstore8(vop_##NAME(vload8(0, a + oa + i)), 0, o + oo + i);                           \
    } else {                                                                                 \
        for (; i < n; ++i) o[oo + i] = op_##NAME(a[oa + i]);                                 \
    }                                                                                        \
}

UNARY_OPS(UNARY_KERNELS)
#ifdef VECTOR_OPS
VECTOR_OPS(VECTOR_KERNELS)
#endif
BINARY_OPS(BINARY_KERNELS)

// contiguous fill, used by full() and pad()
__kernel void fill(__global T* o, const long oo, const T v, const long n) {
    const long i = get_global_id(0);
    if (i < n) o[oo + i] = v;
}
