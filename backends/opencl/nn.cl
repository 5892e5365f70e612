// Neural-network kernels for a floating type T (pools also for integers; needs rows.cl):
// im2col for conv2d, max/avg pooling, softmax/log_softmax and layer norm over rows.
// NCHW inputs are read through their strides (sx = n, c, h, w strides) and offset.

#ifndef WG
#define WG 64
#endif

// col[n][(c*kh + i)*kw + j][oh*Wo + ow] = x[n][c][oh*sh - ph + i*dh][ow*sw - pw + j*dw] or 0
__kernel void im2col(__global T* col, __global const T* x, const long xo, const long4 sx,
                     const int C, const int H, const int W, const int kh, const int kw,
                     const int sh, const int sw, const int ph, const int pw, const int dh,
                     const int dw, const int Ho, const int Wo) {
    const long p = get_global_id(0);
    const int ckk = get_global_id(1);
    const long n = get_global_id(2);
    if (p >= (long)Ho * Wo) return;
    const int oh = p / Wo, ow = p % Wo;
    const int c = ckk / (kh * kw), ij = ckk % (kh * kw), i = ij / kw, j = ij % kw;
    const int h = oh * sh - ph + i * dh, w = ow * sw - pw + j * dw;
    T v = (T)0;
    if (h >= 0 && h < H && w >= 0 && w < W) v = x[xo + n * sx.s0 + c * sx.s1 + h * sx.s2 + w * sx.s3];
    col[(n * C * kh * kw + ckk) * ((long)Ho * Wo) + p] = v;
}

// PyTorch's CPU rule: a value replaces the max when greater or NaN; the index starts at the
// first in-bounds position of the window. Indices are flat h * W + w in each plane.
__kernel void max_pool2d(__global T* out, __global long* ind, __global const T* x, const long xo,
                         const long4 sx, const int C, const int H, const int W, const int kh,
                         const int kw, const int sh, const int sw, const int ph, const int pw,
                         const int dh, const int dw, const int Ho, const int Wo) {
    const long p = get_global_id(0);
    const long nc = get_global_id(1);
    if (p >= (long)Ho * Wo) return;
    const int oh = p / Wo, ow = p % Wo;
    const long n = nc / C, c = nc % C;
    const long base = xo + n * sx.s0 + c * sx.s1;
    int hs = oh * sh - ph, ws = ow * sw - pw;
    while (hs < 0) hs += dh;
    while (ws < 0) ws += dw;
    T best = T_MIN;
    long bi = (long)hs * W + ws;
    for (int i = 0; i < kh; ++i) {
        const int h = oh * sh - ph + i * dh;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < kw; ++j) {
            const int w = ow * sw - pw + j * dw;
            if (w < 0 || w >= W) continue;
            const T v = x[base + h * sx.s2 + w * sx.s3];
#if T_KIND == 2
            if (v > best || isnan(v)) { best = v; bi = (long)h * W + w; }
#else
            if (v > best) { best = v; bi = (long)h * W + w; }
#endif
        }
    }
    out[nc * Ho * Wo + p] = best;
    ind[nc * Ho * Wo + p] = bi;
}

__kernel void avg_pool2d(__global T* out, __global const T* x, const long xo, const long4 sx,
                         const int C, const int H, const int W, const int kh, const int kw,
                         const int sh, const int sw, const int ph, const int pw, const int Ho,
                         const int Wo, const int include_pad, const int divisor) {
    const long p = get_global_id(0);
    const long nc = get_global_id(1);
    if (p >= (long)Ho * Wo) return;
    const int oh = p / Wo, ow = p % Wo;
    const long n = nc / C, c = nc % C;
    const long base = xo + n * sx.s0 + c * sx.s1;
    int hs = oh * sh - ph, ws = ow * sw - pw;
    int he = min(hs + kh, H + ph), we = min(ws + kw, W + pw);
    const int pool = (he - hs) * (we - ws);
    hs = max(hs, 0); ws = max(ws, 0); he = min(he, H); we = min(we, W);
    T s = (T)0;
    for (int h = hs; h < he; ++h)
        for (int w = ws; w < we; ++w) s += x[base + h * sx.s2 + w * sx.s3];
    const int div = divisor > 0 ? divisor : (include_pad ? pool : (he - hs) * (we - ws));
    out[nc * Ho * Wo + p] = s / (T)div;
}

#if T_KIND == 2
// softmax (or log_softmax when logsm) of rows: x row o, element r at
// xo + outer_offset(o, osh, xst) + r * xs; the output likewise with ost / os.
__kernel void softmax_row(__global T* out, const long16 ost, const long os,
                          __global const T* x, const long xo, const long16 xst, const long xs,
                          const long16 osh, const int ond, const long R, const long nrows,
                          const int logsm) {
    const long o = get_global_id(0);
    if (o >= nrows) return;
    const long bx = xo + outer_offset(o, osh, xst, ond), bo = outer_offset(o, osh, ost, ond);
    T m = -INFINITY;
    for (long r = 0; r < R; ++r) { const T v = x[bx + r * xs]; m = v > m ? v : m; }
    T s = (T)0;
    for (long r = 0; r < R; ++r) s += exp(x[bx + r * xs] - m);
    const T ls = log(s);
    for (long r = 0; r < R; ++r) {
        const T z = x[bx + r * xs] - m;
        out[bo + r * os] = logsm ? z - ls : exp(z) / s;
    }
}

// the gradient of softmax (or log_softmax when logsm) of rows, from its output y and the
// incoming gradient g: y * (g - sum(g * y)), or g - exp(y) * sum(g)
__kernel void softmax_bw_row(__global T* out, const long16 ost, const long os,
                             __global const T* g, const long go, const long16 gst, const long gs,
                             __global const T* y, const long yo, const long16 yst, const long ys,
                             const long16 osh, const int ond, const long R, const long nrows,
                             const int logsm) {
    const long o = get_global_id(0);
    if (o >= nrows) return;
    const long bg = go + outer_offset(o, osh, gst, ond), by = yo + outer_offset(o, osh, yst, ond);
    const long bo = outer_offset(o, osh, ost, ond);
    T s = (T)0;
    for (long r = 0; r < R; ++r) s += logsm ? g[bg + r * gs] : g[bg + r * gs] * y[by + r * ys];
    for (long r = 0; r < R; ++r) {
        const T gv = g[bg + r * gs], yv = y[by + r * ys];
        out[bo + r * os] = logsm ? gv - exp(yv) * s : yv * (gv - s);
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void softmax_wg(__global T* out, const long16 ost, const long os,
                __global const T* x, const long xo, const long16 xst, const long xs,
                const long16 osh, const int ond, const long R, const int logsm) {
    __local T part[WG];
    const long o = get_group_id(0);
    const int lid = get_local_id(0);
    const long bx = xo + outer_offset(o, osh, xst, ond), bo = outer_offset(o, osh, ost, ond);
    T m = -INFINITY;
    for (long r = lid; r < R; r += WG) { const T v = x[bx + r * xs]; m = v > m ? v : m; }
    part[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = WG / 2; w > 0; w >>= 1) {
        if (lid < w && part[lid + w] > part[lid]) part[lid] = part[lid + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    T s = (T)0;
    for (long r = lid; r < R; r += WG) s += exp(x[bx + r * xs] - m);
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int w = WG / 2; w > 0; w >>= 1) {
        if (lid < w) part[lid] += part[lid + w];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    s = part[0];
    const T ls = log(s);
    for (long r = lid; r < R; r += WG) {
        const T z = x[bx + r * xs] - m;
        out[bo + r * os] = logsm ? z - ls : exp(z) / s;
    }
}

// layer norm over rows of R elements (the normalised dims, given by ish and per-operand
// inner strides); output contiguous; weight/bias read through their own strides.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void layer_norm_wg(__global T* out, __global const T* x, const long xo, const long16 xost,
                   const long16 xist, const long16 osh, const int ond, const long16 ish,
                   const int ind, const long R,
                   __global const T* w, const long wo, const long16 wst, const int has_w,
                   __global const T* b, const long bo, const long16 bst, const int has_b,
                   const T eps) {
    __local T part[WG];
    const long o = get_group_id(0);
    const int lid = get_local_id(0);
    const long bx = xo + outer_offset(o, osh, xost, ond);
    T s = (T)0;
    for (long r = lid; r < R; r += WG) s += x[bx + inner_offset(r, ish, xist, ind)];
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = WG / 2; k > 0; k >>= 1) {
        if (lid < k) part[lid] += part[lid + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const T mean = part[0] / (T)R;
    barrier(CLK_LOCAL_MEM_FENCE);
    T v = (T)0;
    for (long r = lid; r < R; r += WG) {
        const T d = x[bx + inner_offset(r, ish, xist, ind)] - mean;
        v += d * d;
    }
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = WG / 2; k > 0; k >>= 1) {
        if (lid < k) part[lid] += part[lid + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const T inv = rsqrt(part[0] / (T)R + eps);
    for (long r = lid; r < R; r += WG) {
        T y = (x[bx + inner_offset(r, ish, xist, ind)] - mean) * inv;
        if (has_w) y *= w[wo + inner_offset(r, ish, wst, ind)];
        if (has_b) y += b[bo + inner_offset(r, ish, bst, ind)];
        out[o * R + r] = y;
    }
}
#endif
