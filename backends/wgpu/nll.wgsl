// nll_loss and its gradient for a floating T (f32, or f16 stored and f32 arithmetic), ported
// from backends/opencl/nll.cl. logp is viewed as (N, C, S) and the targets as (N, S), both dense;
// S is the product of the spatial dims (1 for (N, C) inputs). A target equal to the ignore
// index weighs 0; one outside 0..C-1 is read as class 0 (so nothing indexes past the class
// dim) and reported through `bounds`, which the host checks at its next read-back, as the
// protocol's composition does. Targets are i32 (int64 is stored as i32 on WGPU).
// meta: [0] n targets, [1] C, [2] S, [3] logp offset, [4] target offset, [5] weight offset,
//       [6] has weight, [7] ignore index (i32 bits), [8] whether the ignore index fits i32 (if
//       not, no target can equal it), [9] reduction (0 none, 1 sum, 2 mean), [10] g offset,
//       [11] gradient elements (N * C * S)
${ENABLE}
${COMMON}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read_write> bounds: array<i32>;
@group(0) @binding(3) var<storage, read> logp: array<${T}>;
@group(0) @binding(4) var<storage, read> tgt: array<i32>;
@group(0) @binding(5) var<storage, read> weight: array<${T}>;
@group(0) @binding(6) var<storage, read> g: array<${T}>;

const WG: u32 = 256u;
// partials of the work-group reductions, combined in two levels (16 x 16) so that a reduction
// costs two barriers, not eight (barriers are slow on CPU drivers)
var<workgroup> ls: array<f32, 256>;
var<workgroup> lw: array<f32, 256>;
var<workgroup> lmin: array<i32, 256>;
var<workgroup> lmax: array<i32, 256>;

fn kept(t: i32) -> bool {
    return M(8) == 0u || t != bitcast<i32>(M(7));
}

// the class a target reads: itself inside 0..C-1, else 0
fn class_of(t: i32) -> u32 {
    return select(0u, u32(t), t >= 0 && u32(t) < M(1));
}

fn class_weight(c: u32) -> f32 {
    if (M(6) == 0u) { return 1.0; }
    return f32(weight[M(5) + c]);
}

// total / weight sum, NaN when no weight is kept (0 / 0) as torch gives
fn mean_of(s: f32, w: f32) -> f32 {
    if (w == 0.0) {
        if (s == 0.0 || f_isnan(s)) { return f_nan(); }
        return select(-f_inf(), f_inf(), s > 0.0);
    }
    return s / w;
}

// One work-group: every invocation walks the targets with stride WG, then the loss sum, the
// weight sum and the targets' min/max (ignored targets count as 0, as in the composition) are
// reduced. 'none' writes each target's loss as it goes.
@compute @workgroup_size(256)
fn nll_loss(@builtin(local_invocation_index) lid: u32) {
    let n = M(0);
    let C = M(1);
    let S = M(2);
    var s = 0.0;
    var sw = 0.0;
    var mn = bitcast<i32>(0x7fffffffu);
    var mx = bitcast<i32>(0x80000000u);
    for (var i = lid; i < n; i = i + WG) {
        let t = tgt[M(4) + i];
        let keep = kept(t);
        let sv = select(0, t, keep);
        mn = min(mn, sv);
        mx = max(mx, sv);
        let c = class_of(sv);
        let w = select(0.0, class_weight(c), keep);
        let l = -(f32(logp[M(3) + ((i / S) * C + c) * S + i % S]) * w);
        if (M(9) == 0u) { out[i] = ${T}(l); }
        s = s + l;
        sw = sw + w;
    }
    ls[lid] = s;
    lw[lid] = sw;
    lmin[lid] = mn;
    lmax[lid] = mx;
    workgroupBarrier();
    if (lid < 16u) {
        let b = lid * 16u;
        var ps = ls[b];
        var pw = lw[b];
        var pmn = lmin[b];
        var pmx = lmax[b];
        for (var k = 1u; k < 16u; k = k + 1u) {
            ps = ps + ls[b + k];
            pw = pw + lw[b + k];
            pmn = min(pmn, lmin[b + k]);
            pmx = max(pmx, lmax[b + k]);
        }
        ls[b] = ps;
        lw[b] = pw;
        lmin[b] = pmn;
        lmax[b] = pmx;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var tot = ls[0];
        var wsum = lw[0];
        var lo = lmin[0];
        var hi = lmax[0];
        for (var k = 1u; k < 16u; k = k + 1u) {
            tot = tot + ls[k * 16u];
            wsum = wsum + lw[k * 16u];
            lo = min(lo, lmin[k * 16u]);
            hi = max(hi, lmax[k * 16u]);
        }
        if (M(9) == 1u) { out[0] = ${T}(tot); }
        if (M(9) == 2u) { out[0] = ${T}(mean_of(tot, wsum)); }
        bounds[0] = lo;
        bounds[1] = hi;
    }
}

// grad[n, c, s] = -(w[t] * (g / divisor)) where c is the target t of (n, s), else 0. g is one
// value (sum, mean) or one per target (none). Under 'mean' every work-group first sums the
// kept targets' weights itself (the divisor), so the gradient is one dispatch; the host keeps
// the grid at most max(C, 64) work-groups then, each covering its share of the N * C * S
// elements with a grid-stride loop, so this redundant sum costs no more than the gradient.
@compute @workgroup_size(256)
fn nll_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let C = M(1);
    let S = M(2);
    let red = M(9);
    var div = 1.0;
    if (red == 2u) {
        var sw = 0.0;
        for (var i = lid; i < M(0); i = i + WG) {
            let t = tgt[M(4) + i];
            if (kept(t)) { sw = sw + class_weight(class_of(t)); }
        }
        lw[lid] = sw;
        workgroupBarrier();
        if (lid < 16u) {
            let b = lid * 16u;
            var p = lw[b];
            for (var k = 1u; k < 16u; k = k + 1u) { p = p + lw[b + k]; }
            lw[b] = p;
        }
        workgroupBarrier();
        var d = 0.0;
        for (var k = 0u; k < 16u; k = k + 1u) { d = d + lw[k * 16u]; }
        div = d;
    }
    let stride = nwg.x * WG;
    for (var e = wid.x * WG + lid; e < M(11); e = e + stride) {
        let i = (e / (S * C)) * S + e % S;
        let c = (e / S) % C;
        let t = tgt[M(4) + i];
        var v = 0.0;
        if (kept(t) && c == class_of(t)) {
            var gi = f32(g[M(10) + select(0u, i, red == 0u)]);
            if (red == 2u) { gi = gi / div; }
            v = -(class_weight(c) * gi);
        }
        out[e] = ${T}(v);
    }
}
