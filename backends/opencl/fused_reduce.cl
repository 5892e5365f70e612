// A fused elementwise program feeding a reduction (sum/max/min) over any set of axes, in one
// kernel with the structure of reduce.cl, so that the result has the bits of the unfused
// program followed by the unfused reduction:
//   fused_row: one work-item per output row (short rows or very many rows)
//   fused_wg:  one work-group per (row, chunk) with a local-memory tree; partial results of
//              several chunks of one row are reduced again by reduce.cl's kernels.
// fused.py fills in: ACC (the output type), IDENT, COMBINE (acc with v), PARAMS (per input
// in<k>, offset f<k>, kept strides a<k>_<d>, reduced strides r<k>_<d>; then the constants;
// then kept sizes ks<d> and reduced sizes rs<d>, innermost dim last), PROLOGUE (row base of
// each input from the output index o), INDEX (loads of element r of the row), BODY, VALUE.
${HEADER}

#ifndef WG
#define WG 64
#endif

__kernel void fused_row(__global ${ACC}* restrict out, ${PARAMS}, const long R,
                        const long nout) {
    const long o = get_global_id(0);
    if (o >= nout) return;
    ${PROLOGUE}
    ${ACC} acc = ${IDENT};
    for (long r = 0; r < R; ++r) {
        ${INDEX}
        ${BODY}
        const ${ACC} v = ${VALUE};
        acc = ${COMBINE};
    }
    out[o] = acc;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void fused_wg(__global ${ACC}* restrict out, ${PARAMS}, const long R, const long nchunks,
              const long chunk) {
    __local ${ACC} part[WG];
    const long g = get_group_id(0);
    const int lid = get_local_id(0);
    const long o = g / nchunks, ck = g % nchunks;
    ${PROLOGUE}
    const long lo = ck * chunk, hi = R < lo + chunk ? R : lo + chunk;
    ${ACC} acc = ${IDENT};
    for (long r = lo + lid; r < hi; r += WG) {
        ${INDEX}
        ${BODY}
        const ${ACC} v = ${VALUE};
        acc = ${COMBINE};
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = WG / 2; w > 0; w >>= 1) {
        if (lid < w) {
            const ${ACC} a = part[lid], v = part[lid + w];
            part[lid] = ${COMBINE_AV};
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[g] = part[0];
}
