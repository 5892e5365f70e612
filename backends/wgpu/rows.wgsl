// Row-wise kernels over a contiguous tensor viewed as (outer, L, inner): one thread per
// (outer, inner) row of L elements with stride `inner`. softmax, log_softmax, layer_norm.
// meta: [0] outer, [1] L, [2] inner, [3] has weight, [4] has bias, [5] eps (f32 bits),
//       [6] x offset
${ENABLE}
${COMMON}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${T}>;
@group(0) @binding(2) var<storage, read> x: array<${T}>;
@group(0) @binding(3) var<storage, read> wt: array<${T}>;
@group(0) @binding(4) var<storage, read> bs: array<${T}>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, 64u);
    let L = M(1);
    let inner = M(2);
    if (t >= M(0) * inner) { return; }
    let base = (t / inner) * L * inner + t % inner;
    let xo = M(6);
    ${BODY}
}
