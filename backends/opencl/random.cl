// Philox4x32-10 exactly as core/philox.py specifies: element i of a request uses counter
// offset + i (c0 = low word, c1 = high word, c2 = c3 = 0) and key (seed low, seed high).
// Needs D (the output type: float, or double when DOUBLE is defined).

inline uint4 philox(const ulong ctr, const ulong seed) {
    uint c0 = (uint)ctr, c1 = (uint)(ctr >> 32), c2 = 0, c3 = 0;
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int r = 0; r < 10; ++r) {
        const uint lo0 = 0xD2511F53u * c0, hi0 = mul_hi(0xD2511F53u, c0);
        const uint lo1 = 0xCD9E8D57u * c2, hi1 = mul_hi(0xCD9E8D57u, c2);
        const uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint4)(c0, c1, c2, c3);
}

inline float u24(const uint x) { return (float)(x >> 8) * 5.9604644775390625e-8f; }

#ifdef DOUBLE
inline double u53(const uint hi, const uint lo) {
    return ((double)(hi >> 5) * 67108864.0 + (double)(lo >> 6)) * 1.1102230246251565e-16;
}
#endif

__kernel void uniform(__global D* o, const ulong seed, const ulong offset, const long n) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const uint4 x = philox(offset + (ulong)i, seed);
#ifdef DOUBLE
    o[i] = u53(x.s0, x.s1);
#else
    o[i] = (D)u24(x.s0);
#endif
}

__kernel void normal(__global D* o, const ulong seed, const ulong offset, const long n) {
    const long i = get_global_id(0);
    if (i >= n) return;
    const uint4 x = philox(offset + (ulong)i, seed);
#ifdef DOUBLE
    const double u0 = u53(x.s0, x.s1), u1 = u53(x.s2, x.s3);
    o[i] = sqrt(-2.0 * log1p(-u0)) * cos(6.283185307179586 * u1);
#else
    const float u0 = u24(x.s0), u1 = u24(x.s1);
    const float r = sqrt(-2.0f * log(1.0f - u0));
    o[i] = (D)(r * cos(6.2831854820251465f * u1));
#endif
}
