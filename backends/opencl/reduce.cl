// Reductions for one element type T (needs ops.cl and rows.cl). One program per dtype holds
// every reduction, generated below as NAME_row / NAME_wg for
//   sum, max, min:       REDUCE_KERNELS(NAME, combining op, identity)
//   argmax, argmin:      ARG_KERNELS(NAME, BETTER) where BETTER(v, w) says v is strictly more
//                        extreme than w (NaN beats numbers, like torch)
// The input is split into kept ("outer") dims and reduced ("inner") dims, each given as
// shape/strides innermost first (up to 16 dims), so any set of axes of any strided view is
// reduced in place. Each output row covers R inner elements.
//   *_row: one work-item per output row (short rows or very many rows)
//   *_wg:  one work-group per (row, chunk) with a local-memory tree; partial results of
//          several chunks of one row are combined by a second launch.

#ifndef WG
#define WG 64
#endif

#define REDUCE_KERNELS(NAME, RED, IDENT)                                                     \
__kernel void NAME##_row(__global T* out, __global const T* x, const long xo,               \
                         const long16 osh, const long16 ost, const int ond,                  \
                         const long16 ish, const long16 ist, const int ind,                  \
                         const long R, const long nout) {                                    \
    const long o = get_global_id(0);                                                         \
    if (o >= nout) return;                                                                   \
    const long base = xo + outer_offset(o, osh, ost, ond);                                   \
    T acc = IDENT;                                                                           \
    if (ind == 1) {                                                                          \
        const long s = ist.s0;                                                               \
        for (long r = 0; r < R; ++r) acc = RED(acc, x[base + r * s]);                        \
    } else {                                                                                 \
        for (long r = 0; r < R; ++r) acc = RED(acc, x[base + inner_offset(r, ish, ist, ind)]); \
    }                                                                                        \
    out[o] = acc;                                                                            \
}                                                                                            \
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))                                     \
void NAME##_wg(__global T* out, __global const T* x, const long xo,                          \
               const long16 osh, const long16 ost, const int ond,                            \
               const long16 ish, const long16 ist, const int ind,                            \
               const long R, const long nchunks, const long chunk) {                         \
    __local T part[WG];                                                                      \
    const long g = get_group_id(0);                                                          \
    const int lid = get_local_id(0);                                                         \
    const long o = g / nchunks, ck = g % nchunks;                                            \
    const long base = xo + outer_offset(o, osh, ost, ond);                                   \
    const long lo = ck * chunk, hi = R < lo + chunk ? R : lo + chunk;                                     \
    T acc = IDENT;                                                                           \
    if (ind == 1) {                                                                          \
        const long s = ist.s0;                                                               \
        for (long r = lo + lid; r < hi; r += WG) acc = RED(acc, x[base + r * s]);            \
    } else {                                                                                 \
        for (long r = lo + lid; r < hi; r += WG)                                             \
            acc = RED(acc, x[base + inner_offset(r, ish, ist, ind)]);                        \
    }                                                                                        \
    part[lid] = acc;                                                                         \
    barrier(CLK_LOCAL_MEM_FENCE);                                                            \
    for (int w = WG / 2; w > 0; w >>= 1) {                                                   \
        if (lid < w) part[lid] = RED(part[lid], part[lid + w]);                              \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
    }                                                                                        \
    if (lid == 0) out[g] = part[0];                                                          \
}

// w at index j replaces v at index i when it is more extreme, or as extreme and earlier
#define TAKE(BETTER, v, i, w, j) (BETTER(w, v) || (!BETTER(v, w) && (j) < (i)))

#define ARG_KERNELS(NAME, BETTER)                                                            \
__kernel void NAME##_row(__global long* out, __global const T* x, const long xo,            \
                         const long16 osh, const long16 ost, const int ond,                  \
                         const long16 ish, const long16 ist, const int ind,                  \
                         const long R, const long nout) {                                    \
    const long o = get_global_id(0);                                                         \
    if (o >= nout) return;                                                                   \
    const long base = xo + outer_offset(o, osh, ost, ond);                                   \
    T best = x[base];                                                                        \
    long bi = 0;                                                                             \
    for (long r = 1; r < R; ++r) {                                                           \
        const T v = x[base + inner_offset(r, ish, ist, ind)];                                \
        if (BETTER(v, best)) { best = v; bi = r; }                                           \
    }                                                                                        \
    out[o] = bi;                                                                             \
}                                                                                            \
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))                                     \
void NAME##_wg(__global long* out, __global const T* x, const long xo,                       \
               const long16 osh, const long16 ost, const int ond,                            \
               const long16 ish, const long16 ist, const int ind, const long R) {            \
    __local T pv[WG];                                                                        \
    __local long pi[WG];                                                                     \
    const long o = get_group_id(0);                                                          \
    const int lid = get_local_id(0);                                                         \
    const long base = xo + outer_offset(o, osh, ost, ond);                                   \
    T best = x[base];                                                                        \
    long bi = R; /* no element yet: loses every comparison */                                \
    for (long r = lid; r < R; r += WG) {                                                     \
        const T v = x[base + inner_offset(r, ish, ist, ind)];                                \
        if (bi == R || BETTER(v, best)) { best = v; bi = r; }                                \
    }                                                                                        \
    pv[lid] = best;                                                                          \
    pi[lid] = bi;                                                                            \
    barrier(CLK_LOCAL_MEM_FENCE);                                                            \
    for (int w = WG / 2; w > 0; w >>= 1) {                                                   \
        if (lid < w && pi[lid + w] < R) {                                                    \
            const T v = pv[lid], u = pv[lid + w];                                            \
            const long i = pi[lid], j = pi[lid + w];                                         \
            if (i == R || TAKE(BETTER, v, i, u, j)) { pv[lid] = u; pi[lid] = j; }           \
        }                                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
    }                                                                                        \
    if (lid == 0) out[o] = pi[0];                                                            \
}

#if T_KIND == 2
#define ARGMAX_BETTER(v, w) (((v) != (v) && (w) == (w)) || (v) > (w))
#define ARGMIN_BETTER(v, w) (((v) != (v) && (w) == (w)) || (v) < (w))
#else
#define ARGMAX_BETTER(v, w) ((v) > (w))
#define ARGMIN_BETTER(v, w) ((v) < (w))
#endif

REDUCE_KERNELS(sum, op_add, ((T)0))
REDUCE_KERNELS(max, op_maximum, T_MIN)
REDUCE_KERNELS(min, op_minimum, T_MAX)
ARG_KERNELS(argmax, ARGMAX_BETTER)
ARG_KERNELS(argmin, ARGMIN_BETTER)
