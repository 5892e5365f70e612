// Unfold NCHW input patches into columns (N, G, Cg*kh*kw, Ho*Wo) for conv2d as a matmul.
// meta: [0] total, [1] G, [2] Cg, [3] kh, [4] kw, [5] Ho, [6] Wo, [7] sh, [8] sw, [9] ph,
//       [10] pw, [11] dh, [12] dw, [13] H, [14] W, [15] x offset, [16..20) x strides (N, C, H, W)
${ENABLE}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> x: array<${T}>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * 256u + lid;
    if (i >= M(0)) { return; }
    var t = i;
    let wo = t % M(6); t = t / M(6);
    let ho = t % M(5); t = t / M(5);
    let kj = t % M(4); t = t / M(4);
    let ki = t % M(3); t = t / M(3);
    let c = t % M(2); t = t / M(2);
    let g = t % M(1);
    let nb = t / M(1);
    let h = i32(ho * M(7) + ki * M(11)) - i32(M(9));
    let w = i32(wo * M(8) + kj * M(12)) - i32(M(10));
    if (h < 0 || w < 0 || h >= i32(M(13)) || w >= i32(M(14))) {
        out[i] = ${T}(0);
        return;
    }
    let off = bitcast<i32>(M(15)) + i32(nb) * bitcast<i32>(M(16))
        + i32(g * M(2) + c) * bitcast<i32>(M(17)) + h * bitcast<i32>(M(18))
        + w * bitcast<i32>(M(19));
    out[i] = x[off];
}
