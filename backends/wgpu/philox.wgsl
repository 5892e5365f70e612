// Philox4x32-10 exactly as core/philox.py specifies it: element i uses the 64-bit counter
// offset + i and key (seed lo, seed hi). ${KIND} is "uniform" or "normal".
// meta: [0] numel, [1] k0, [2] k1, [3] offset lo, [4] offset hi.
${ENABLE}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${TO}>;

// (hi, lo) 32-bit halves of the 64-bit product a * b, from 16-bit pieces
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(lo: u32, hi: u32) -> vec4<u32> {
    var c = vec4<u32>(lo, hi, 0u, 0u);
    var k0 = M(1);
    var k1 = M(2);
    for (var r = 0; r < 10; r = r + 1) {
        let p0 = mulhilo(c.x, 0xD2511F53u);
        let p1 = mulhilo(c.z, 0xCD9E8D57u);
        c = vec4<u32>(p1.x ^ c.y ^ k0, p1.y, p0.x ^ c.w ^ k1, p0.y);
        k0 = k0 + 0x9E3779B9u;
        k1 = k1 + 0xBB67AE85u;
    }
    return c;
}

fn u24(x: u32) -> f32 { return f32(x >> 8u) * 5.9604644775390625e-08; }

fn gen_uniform(x: vec4<u32>) -> f32 { return u24(x.x); }

fn gen_normal(x: vec4<u32>) -> f32 {
    let r = sqrt(-2.0 * log(1.0 - u24(x.x)));
    return r * cos(6.2831854820251465 * u24(x.y));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * 256u + lid;
    if (i >= M(0)) { return; }
    let lo = M(3) + i;
    let hi = M(4) + select(0u, 1u, lo < i);
    let v = gen_${KIND}(philox(lo, hi));
    out[i] = ${STORE};
}
