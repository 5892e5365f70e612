// nll_loss and its gradient for a floating T. logp is viewed as (N, C, S) and the targets as
// (N, S), both dense; S is the product of the spatial dims (1 for (N, C) inputs). A target equal
// to `ignore` weighs 0; one outside 0..C-1 is read as class 0 (so nothing indexes past the
// class dim) and reported through `bounds`, which the host checks at its next read-back, as
// the protocol's composition does. reduction: 0 none, 1 sum, 2 mean.

#ifndef WG
#define WG 256
#endif

// One work-group: every item walks the targets with stride WG, then a tree reduction of the
// loss sum, the weight sum and the targets' min/max (ignored targets count as 0, as in the
// composition). 'none' writes each target's loss as it goes.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void nll_loss_wg(__global T* out, __global long* bounds, __global const T* logp, const long lo,
                 __global const long* target, const long to, __global const T* weight,
                 const long wo, const int has_w, const long n, const long C, const long S,
                 const long ignore, const int reduction) {
    __local T ls[WG];
    __local T lw[WG];
    __local long lmin[WG];
    __local long lmax[WG];
    const int lid = get_local_id(0);
    T s = (T)0, sw = (T)0;
    long mn = LONG_MAX, mx = LONG_MIN;
    for (long i = lid; i < n; i += WG) {
        const long t = target[to + i];
        const int keep = t != ignore;
        const long sv = keep ? t : 0;
        mn = min(mn, sv);
        mx = max(mx, sv);
        const long c = (sv >= 0 && sv < C) ? sv : 0;
        const T w = keep ? (has_w ? weight[wo + c] : (T)1) : (T)0;
        const T l = -(logp[lo + ((i / S) * C + c) * S + i % S] * w);
        if (reduction == 0) out[i] = l;
        s += l;
        sw += w;
    }
    ls[lid] = s;
    lw[lid] = sw;
    lmin[lid] = mn;
    lmax[lid] = mx;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = WG / 2; k > 0; k >>= 1) {
        if (lid < k) {
            ls[lid] += ls[lid + k];
            lw[lid] += lw[lid + k];
            lmin[lid] = min(lmin[lid], lmin[lid + k]);
            lmax[lid] = max(lmax[lid], lmax[lid + k]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        if (reduction == 1) out[0] = ls[0];
        if (reduction == 2) out[0] = ls[0] / lw[0];
        bounds[0] = lmin[0];
        bounds[1] = lmax[0];
    }
}

// The summed weight of the kept targets (the 'mean' divisor), one work-group.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void nll_weight_sum(__global T* out, __global const long* target, const long to,
                    __global const T* weight, const long wo, const int has_w, const long n,
                    const long C, const long ignore) {
    __local T lw[WG];
    const int lid = get_local_id(0);
    T sw = (T)0;
    for (long i = lid; i < n; i += WG) {
        const long t = target[to + i];
        const long c = (t >= 0 && t < C) ? t : 0;
        sw += t != ignore ? (has_w ? weight[wo + c] : (T)1) : (T)0;
    }
    lw[lid] = sw;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = WG / 2; k > 0; k >>= 1) {
        if (lid < k) lw[lid] += lw[lid + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[0] = lw[0];
}

// grad[n, c, s] = -(w[t] * (g / divisor)) where c is the target t of (n, s), else 0. g is one
// value (sum, mean) or one per target (none); the divisor is read from `div` for 'mean'.
__kernel void nll_grad(__global T* grad, __global const T* g, const long go,
                       __global const long* target, const long to, __global const T* weight,
                       const long wo, const int has_w, __global const T* div, const long C,
                       const long S, const long total, const long ignore, const int reduction) {
    const long e = get_global_id(0);
    if (e >= total) return;
    const long sp = e % S, c = (e / S) % C, i = (e / (S * C)) * S + sp;
    const long t = target[to + i];
    const long tc = (t >= 0 && t < C) ? t : 0;
    T v = (T)0;
    if (t != ignore && c == tc) {
        const T w = has_w ? weight[wo + tc] : (T)1;
        T gi = reduction == 0 ? g[go + i] : g[go];
        if (reduction == 2) gi = gi / div[0];
        v = -(w * gi);
    }
    grad[e] = v;
}
