// 2-D max pooling with flat (h * W + w) indices, and average pooling; one output per thread.
// meta: [0] total, [1] C, [2] H, [3] W, [4] Ho, [5] Wo, [6] kh, [7] kw, [8] sh, [9] sw,
//       [10] ph, [11] pw, [12] dh, [13] dw, [14] count_include_pad, [15] divisor_override,
//       [16] x offset, [17..21) x strides (N, C, H, W)
${ENABLE}
${COMMON}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read_write> out_idx: array<i32>;
@group(0) @binding(3) var<storage, read> x: array<${T}>;

struct Pos { nb: u32, c: u32, ho: u32, wo: u32, base: i32 }

fn position(i: u32) -> Pos {
    var t = i;
    let wo = t % M(5); t = t / M(5);
    let ho = t % M(4); t = t / M(4);
    let c = t % M(1);
    let nb = t / M(1);
    let base = bitcast<i32>(M(16)) + i32(nb) * bitcast<i32>(M(17)) + i32(c) * bitcast<i32>(M(18));
    return Pos(nb, c, ho, wo, base);
}

@compute @workgroup_size(256)
fn max_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= M(0)) { return; }
    let p = position(i);
    let H = i32(M(2));
    let W = i32(M(3));
    var best: ${C} = ${C}(0);
    var best_i: i32 = -1;
    for (var ki = 0u; ki < M(6); ki = ki + 1u) {
        let h = i32(p.ho * M(8) + ki * M(12)) - i32(M(10));
        if (h < 0 || h >= H) { continue; }
        for (var kj = 0u; kj < M(7); kj = kj + 1u) {
            let w = i32(p.wo * M(9) + kj * M(13)) - i32(M(11));
            if (w < 0 || w >= W) { continue; }
            let v = ${C}(x[p.base + h * bitcast<i32>(M(19)) + w * bitcast<i32>(M(20))]);
            if (best_i < 0 || ${BETTER}) {
                best = v;
                best_i = h * W + w;
            }
        }
    }
    out[i] = ${T}(best);
    out_idx[i] = best_i;
}

@compute @workgroup_size(256)
fn avg_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= M(0)) { return; }
    let p = position(i);
    let H = i32(M(2));
    let W = i32(M(3));
    let hs = i32(p.ho * M(8)) - i32(M(10));
    let ws = i32(p.wo * M(9)) - i32(M(11));
    let he = min(hs + i32(M(6)), H + i32(M(10)));
    let we = min(ws + i32(M(7)), W + i32(M(11)));
    var div = f32((he - hs) * (we - ws));
    let h0 = max(hs, 0);
    let w0 = max(ws, 0);
    let h1 = min(he, H);
    let w1 = min(we, W);
    if (M(14) == 0u) { div = f32((h1 - h0) * (w1 - w0)); }
    if (M(15) != 0u) { div = f32(M(15)); }
    var s = 0.0;
    for (var h = h0; h < h1; h = h + 1) {
        for (var w = w0; w < w1; w = w + 1) {
            s = s + f32(x[p.base + h * bitcast<i32>(M(19)) + w * bitcast<i32>(M(20))]);
        }
    }
    out[i] = ${T}(s / div);
}
