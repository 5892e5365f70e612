// Batched matmul c[b] = a[b] (N x K) @ b[b] (K x M) for element type T, accumulating in ACC.
// Register-blocked for CPUs and GPUs alike: each work-item owns a TM x VW block of c (NN) or
// a TM x TN block (NT) and keeps it in registers; PoCL on a CPU runs local-memory tiles
// far slower than this (see MEASUREMENTS.md). The Python side defines T, ACC, TM, VW, TN.
//   matmul_nn: b is read as rows of VW consecutive elements (stride 1 along m), or gathered
//              element by element when it has no unit stride (GATHER_B build).
//   matmul_nt: a and b both have stride 1 along k (x @ w.T, the Linear layer): vectors run
//              along k and are summed at the end.
// Every operand is read through its strides and offset: transposed and sliced views and
// broadcast batch dims (stride 0) need no copy. Batch dims (up to 16) come innermost first
// (walked with dims.cl).

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VT CAT(ACC, VW)

// PoCL's CPU driver calls every builtin (fma, vload, min ...) as a function instead of
// inlining it, which costs ~10x in this loop: the multiply-add is written as an expression
// (contracted to one FMA instruction) and vector loads are built from scalars (merged into
// one unaligned vector load by the compiler).
#define MAC(a, b, c) ((c) + (a) * (b))
#if VW == 4
#define LOADV(p) ((VT)((ACC)(p)[0], (ACC)(p)[1], (ACC)(p)[2], (ACC)(p)[3]))
#elif VW == 8
#define LOADV(p) ((VT)((ACC)(p)[0], (ACC)(p)[1], (ACC)(p)[2], (ACC)(p)[3], (ACC)(p)[4], \
                       (ACC)(p)[5], (ACC)(p)[6], (ACC)(p)[7]))
#elif VW == 16
#define LOADV(p) ((VT)((ACC)(p)[0], (ACC)(p)[1], (ACC)(p)[2], (ACC)(p)[3], (ACC)(p)[4], \
                       (ACC)(p)[5], (ACC)(p)[6], (ACC)(p)[7], (ACC)(p)[8], (ACC)(p)[9], \
                       (ACC)(p)[10], (ACC)(p)[11], (ACC)(p)[12], (ACC)(p)[13], (ACC)(p)[14], \
                       (ACC)(p)[15]))
#else
#error "VW must be 4, 8 or 16"
#endif

#if T_KIND == 0
#define STORE_T(x) ((T)((x) != (ACC)0))
#else
#define STORE_T(x) ((T)(x))
#endif

// A matmul with an epilogue (fused_matmul.py) defines EPI_KPARAMS (its extra kernel
// parameters), EPI_ARGS and STORE_C, which hands each result to the generated epilogue
// instead of storing it.
#ifndef STORE_C
#define EPI_KPARAMS
#define STORE_C(idx, r, col, v) c[idx] = STORE_T(v)
#endif

#define BSTEP(k) if (nb > 0x##k) { const long i = q % bsh.s##k; q /= bsh.s##k;   \
    pa += i * bsa.s##k; pb += i * bsb.s##k; pc += i * bsc.s##k; }
#define BATCH_OFFSETS                                                              \
    long q = get_global_id(2);                                                     \
    long pa = ao, pb = bo, pc = co;                                                \
    FOR_ALL_DIMS(BSTEP)

__kernel void matmul_nn(__global T* c, const long co, const long sc_n, const long sc_m,
                        __global const T* a, const long ao, const long sa_n, const long sa_k,
                        __global const T* b, const long bo, const long sb_k, const long sb_m,
                        const long N, const long K, const long M,
                        const long16 bsh, const long16 bsa, const long16 bsb, const long16 bsc,
                        const int nb EPI_KPARAMS) {
    const long c0 = get_global_id(0) * VW, r0 = get_global_id(1) * TM;
    if (c0 >= M || r0 >= N) return;
    BATCH_OFFSETS
    VT acc[TM];
    for (int i = 0; i < TM; ++i) acc[i] = (VT)0;
    long arow[TM];
    for (int i = 0; i < TM; ++i) arow[i] = pa + min(r0 + i, N - 1) * sa_n;  // clamp edge rows
#ifndef GATHER_B
    if (c0 + VW <= M) {
        // pointer bumping keeps 64-bit multiplies out of the loop; TM * VW accumulators
        // stay in vector registers (TM=8, VW=8 fills 8 of AVX2's 16 ymm registers)
        __global const T* bp = b + pb + c0;
        __global const T* ap[TM];
#pragma unroll
        for (int i = 0; i < TM; ++i) ap[i] = a + arow[i];
        for (long k = 0; k < K; ++k) {
            const VT bv = LOADV(bp);
            bp += sb_k;
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                acc[i] = MAC((VT)((ACC)*ap[i]), bv, acc[i]);
                ap[i] += sa_k;
            }
        }
    } else
#endif
    {
        // edge tile (or a b without unit stride): gather b with clamped columns
        ACC bl[VW];
        for (long k = 0; k < K; ++k) {
            for (int j = 0; j < VW; ++j) bl[j] = (ACC)b[pb + k * sb_k + min(c0 + j, M - 1) * sb_m];
            const VT bv = LOADV(bl);
            for (int i = 0; i < TM; ++i) acc[i] = MAC((VT)((ACC)a[arow[i] + k * sa_k]), bv, acc[i]);
        }
    }
    // stores unrolled: a loop the compiler leaves rolled (an epilogue makes the body long)
    // indexes acc at run time, which keeps every accumulator in memory for the k loop too
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        if (r0 + i >= N) break;
        ACC row[VW];
        CAT(vstore, VW)(acc[i], 0, row);
        const long base = pc + (r0 + i) * sc_n;
#pragma unroll
        for (int j = 0; j < VW; ++j)
            if (c0 + j < M) STORE_C(base + (c0 + j) * sc_m, r0 + i, c0 + j, row[j]);
    }
}

__kernel void matmul_nt(__global T* c, const long co, const long sc_n, const long sc_m,
                        __global const T* a, const long ao, const long sa_n, const long sa_k,
                        __global const T* b, const long bo, const long sb_k, const long sb_m,
                        const long N, const long K, const long M,
                        const long16 bsh, const long16 bsa, const long16 bsb, const long16 bsc,
                        const int nb EPI_KPARAMS) {
    const long c0 = get_global_id(0) * TN, r0 = get_global_id(1) * TM;
    if (c0 >= M || r0 >= N) return;
    BATCH_OFFSETS
    // every loop over the TM x TN block is unrolled explicitly: PoCL's compiler left them
    // rolled, which kept acc[][] in memory and ran this kernel 3-6x slower than matmul_nn
    __global const T* ap[TM];
    __global const T* bp[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) ap[i] = a + pa + min(r0 + i, N - 1) * sa_n;
#pragma unroll
    for (int j = 0; j < TN; ++j) bp[j] = b + pb + min(c0 + j, M - 1) * sb_m;
    VT acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = (VT)0;
    const long kv = K - K % VW;
    for (long k = 0; k < kv; k += VW) {
        VT av[TM];
#pragma unroll
        for (int i = 0; i < TM; ++i) av[i] = LOADV(ap[i] + k);
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const VT bv = LOADV(bp[j] + k);
#pragma unroll
            for (int i = 0; i < TM; ++i) acc[i][j] = MAC(av[i], bv, acc[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        if (r0 + i >= N) break;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            if (c0 + j >= M) break;
            ACC lane[VW];
            CAT(vstore, VW)(acc[i][j], 0, lane);
            ACC s = (ACC)0;
            for (int l = 0; l < VW; ++l) s += lane[l];
            for (long k = kv; k < K; ++k) s = MAC((ACC)ap[i][k], (ACC)bp[j][k], s);
            STORE_C(pc + (r0 + i) * sc_n + (c0 + j) * sc_m, r0 + i, c0 + j, s);
        }
    }
}
