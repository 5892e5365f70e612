// Fused elementwise program: every output element is computed from the inputs in registers
// and each output is written once (intermediates never touch memory). fused.py fills in the
// ${...} parts per program structure and layout pattern:
//   PARAMS  outputs o<j>, then per input in<k> and its element offset f<k> (+ strides
//           s<k>_<d> when strided), then the program constants c<j>, then the sizes
//   LOADS   x<k> = element of input k;  BODY: t<k> = instruction k;  STORES: o<j>[i] = ...
// Four layouts (one per program build):
//   fused_c  dense: every input is contiguous like the output or one broadcast value
//   fused_v  dense, eight elements per work-item in float8/double8 (tail element-wise)
//   fused_s  strided: collapsed dims innermost first; dims 0 and 1 from global ids 0 and 1,
//            the rest decomposed from global id 2 (no copy of any permuted, sliced,
//            flipped or broadcast input is made)
//   fused_w  strided with every input read along rows with unit or zero stride (a bias row,
//            a per-row mean): eight elements of a row per work-item, like fused_v
${HEADER}

#if defined(FUSED_C)
__kernel void fused_c(${PARAMS}, const long n) {
    const long i = get_global_id(0);
    if (i >= n) return;
    ${LOADS}
    ${BODY}
    ${STORES}
}
#elif defined(FUSED_V)
__kernel void fused_v(${PARAMS}, const long n) {
    long i = get_global_id(0) * 8;
    if (i + 8 <= n) {
        ${VCONSTS}
        ${VLOADS}
        ${VBODY}
        ${VSTORES}
    } else {
        for (; i < n; ++i) {
            ${TLOADS}
            ${TBODY}
            ${TSTORES}
        }
    }
}
#elif defined(FUSED_W)
__kernel void fused_w(${PARAMS}) {
    const long j0 = get_global_id(0) * 8;
    if (j0 >= n0) return;
    const long i1 = get_global_id(1);
    const long g2 = get_global_id(2);
    ${COORDS}
    const long row = (g2 * ${N1} + i1) * n0;
    if (j0 + 8 <= n0) {
        const long i0 = j0, i = row + j0;
        ${VCONSTS}
        ${VLOADS}
        ${VBODY}
        ${VSTORES}
    } else {
        for (long i0 = j0; i0 < n0; ++i0) {
            const long i = row + i0;
            ${TLOADS}
            ${TBODY}
            ${TSTORES}
        }
    }
}
#else
__kernel void fused_s(${PARAMS}) {
    const long i0 = get_global_id(0);
    if (i0 >= n0) return;
    const long i1 = get_global_id(1);
    const long g2 = get_global_id(2);
    ${COORDS}
    const long i = (g2 * ${N1} + i1) * n0 + i0;
    ${LOADS}
    ${BODY}
    ${STORES}
}
#endif
