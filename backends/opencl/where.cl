// where(cond, a, b) for one element type T; cond is bool (uchar). a and b are tensors or
// scalars: a scalar operand is passed by value with its flag set (its pointer is a dummy),
// a uniform branch that costs less than a kernel per combination would cost to compile.
// Layouts _c and _s as in elementwise.cl (needs dims.cl).

__kernel void where_c(__global T* o, const long oo, __global const uchar* c, const long oc,
                      __global const T* a, const long oa, const T av, const int a_scalar,
                      __global const T* b, const long ob, const T bv, const int b_scalar,
                      const long n) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const T x = a_scalar ? av : a[oa + i];
    const T y = b_scalar ? bv : b[ob + i];
    o[oo + i] = c[oc + i] ? x : y;
}

__kernel void where_s(__global T* o, const long oo, const long16 so,
                      __global const uchar* c, const long oc, const long16 sc,
                      __global const T* a, const long oa, const long16 sa, const T av, const int a_scalar,
                      __global const T* b, const long ob, const long16 sb, const T bv, const int b_scalar,
                      const long16 shp, const int nd) {
    const long i0 = get_global_id(0), i1 = get_global_id(1);
    if (i0 >= shp.s0) return;
    long q = get_global_id(2);
    long po = oo + i0 * so.s0 + i1 * so.s1, pc = oc + i0 * sc.s0 + i1 * sc.s1;
    long pa = oa + i0 * sa.s0 + i1 * sa.s1, pb = ob + i0 * sb.s0 + i1 * sb.s1;
#define STEP(k) if (nd > 0x##k) { const long c = q % shp.s##k; q /= shp.s##k;                 \
        po += c * so.s##k; pc += c * sc.s##k; pa += c * sa.s##k; pb += c * sb.s##k; }
    FOR_DIMS(STEP)
    const T x = a_scalar ? av : a[pa];
    const T y = b_scalar ? bv : b[pb];
    o[po] = c[pc] ? x : y;
}
