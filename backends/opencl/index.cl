// gather and scatter_add along one axis, for one element type T (needs ops.cl, dims.cl).
// Dims are given innermost first as in elementwise.cl: dims 0 and 1 come from global ids
// 0 and 1, the rest are decomposed from global id 2. The stride of x (or out) along the
// indexed axis is passed as 0 in its stride vector and separately as ax_stride.

#if T_SIZE == 8
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#endif

#define WALK3(SH, ND)                                                          \
    const long i0 = get_global_id(0), i1 = get_global_id(1);                   \
    if (i0 >= SH.s0) return;                                                   \
    long q = get_global_id(2);

__kernel void gather_s(__global T* o, __global const T* x, const long xo, const long16 sx,
                       const long ax_stride, __global const long* idx, const long io,
                       const long16 si, const long16 shp, const int nd, const long16 so) {
    WALK3(shp, nd)
    long po = i0 * so.s0 + i1 * so.s1, px = xo + i0 * sx.s0 + i1 * sx.s1;
    long pi = io + i0 * si.s0 + i1 * si.s1;
#define GSTEP(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;                \
        po += c * so.s##k; px += c * sx.s##k; pi += c * si.s##k; }
    FOR_DIMS(GSTEP)
    o[po] = x[px + idx[pi] * ax_stride];
}

// the bits of a 1- or 2-byte element read back as T (two's complement wrap on every target)
#define as_T_from(x) ((T)(x))

// *p = op_add(*p, v) atomically, by compare-and-swap on the machine word holding *p
inline void atomic_add_T(__global T* p, const T v) {
#if T_SIZE == 4
    __global volatile uint* w = (__global volatile uint*)p;
    uint old, nw;
    do {
        old = *w;
        union { uint u; T t; } cur, upd;
        cur.u = old;
        upd.t = op_add(cur.t, v);
        nw = upd.u;
    } while (atomic_cmpxchg(w, old, nw) != old);
#elif T_SIZE == 8
    __global volatile ulong* w = (__global volatile ulong*)p;
    ulong old, nw;
    do {
        old = *w;
        union { ulong u; T t; } cur, upd;
        cur.u = old;
        upd.t = op_add(cur.t, v);
        nw = upd.u;
    } while (atom_cmpxchg(w, old, nw) != old);
#else
    // 1- and 2-byte elements: swap the aligned 32-bit word that contains them (little endian)
    const uintptr_t addr = (uintptr_t)p;
    __global volatile uint* w = (__global volatile uint*)(addr & ~(uintptr_t)3);
    const uint shift = (uint)(addr & 3) * 8;
    const uint mask = (T_SIZE == 1 ? 0xFFu : 0xFFFFu) << shift;
    uint old, nw;
    do {
        old = *w;
#if T_SIZE == 1
        const T cur = as_T_from((uchar)((old & mask) >> shift));
        const uint bits = (uint)as_uchar(op_add(cur, v));
#else
        const T cur = as_T_from((ushort)((old & mask) >> shift));
        const uint bits = (uint)as_ushort(op_add(cur, v));
#endif
        nw = (old & ~mask) | (bits << shift);
    } while (atomic_cmpxchg(w, old, nw) != old);
#endif
}

__kernel void scatter_add_s(__global T* o, const long16 so, const long ax_stride,
                            __global const long* idx, const long io, const long16 si,
                            __global const T* src, const long ro, const long16 sr,
                            const long16 shp, const int nd) {
    WALK3(shp, nd)
    long po = i0 * so.s0 + i1 * so.s1, pr = ro + i0 * sr.s0 + i1 * sr.s1;
    long pi = io + i0 * si.s0 + i1 * si.s1;
#define SSTEP(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;                \
        po += c * so.s##k; pr += c * sr.s##k; pi += c * si.s##k; }
    FOR_DIMS(SSTEP)
    atomic_add_T(o + po + idx[pi] * ax_stride, src[pr]);
}
