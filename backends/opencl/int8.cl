// Exact int32 products of int8 codes, c (N x M, dense) = a (N x K) @ b^T where b holds the
// right operand as M rows of K codes: both operands are read with unit stride along k, so
// each work-item's TM x TN block is TM * TN integer dot products over k. PoCL's compiler
// vectorizes those loops itself (integer sums may be reordered, float sums may not): 2.6 ms
// for 256 x 1024 x 512 on this project's CPU, against 6-7.5 ms for int32 operands in
// matmul_nn and 2.6-5 ms for float32 in matmul_nt. The Python side defines TM, TN and the
// codes' storage types AT and BT (char, or int where a cast to char would cost more: PoCL
// stores chars one at a time).

__kernel void int8_matmul_nt(__global int* c,
                             __global const AT* a, const long ao, const long sa,
                             __global const BT* b, const long bo, const long sb,
                             const long N, const long K, const long M) {
    const long j0 = get_global_id(0) * TN, i0 = get_global_id(1) * TM;
    if (j0 >= M || i0 >= N) return;
    __global const AT* ap[TM];
    __global const BT* bp[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) ap[i] = a + ao + min(i0 + i, N - 1) * sa;  // clamp edge rows
#pragma unroll
    for (int j = 0; j < TN; ++j) bp[j] = b + bo + min(j0 + j, M - 1) * sb;
    int acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0;
    for (long k = 0; k < K; ++k) {
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] += (int)ap[i][k] * (int)bp[j][k];
    }
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
            if (i0 + i < N && j0 + j < M) c[(i0 + i) * M + j0 + j] = acc[i][j];
}
