// Exact int32 products of packed int8 codes: out[n, m] = sum over words w of
// dot4I8Packed(a[n, w], b[m, w]) — four multiply-adds of bytes per instruction, where the
// adapter has them (DP4a and alike on GPUs). a and b are int8_pack.wgsl's output: rows of a,
// and columns of the right operand as rows of b. Each invocation owns a 4 x 4 block of out
// (its 8 words per k-step feed 16 dot products); 8 x 8 invocations cover 32 x 32.
// meta: [0] n, [1] m, [2] words per row
@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;

fn row4(a: u32, b: vec4<u32>) -> vec4<i32> {
    return vec4<i32>(dot4I8Packed(a, b.x), dot4I8Packed(a, b.y), dot4I8Packed(a, b.z),
                     dot4I8Packed(a, b.w));
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = M(0);
    let m = M(1);
    let k4 = M(2);
    let r0 = gid.y * 4u;
    let c0 = gid.x * 4u;
    if (r0 >= n || c0 >= m) { return; }
    // clamped rows and columns: lanes past the edge read valid words and are never stored
    let ra = vec4<u32>(min(r0, n - 1u), min(r0 + 1u, n - 1u), min(r0 + 2u, n - 1u),
                       min(r0 + 3u, n - 1u)) * k4;
    let cb = vec4<u32>(min(c0, m - 1u), min(c0 + 1u, m - 1u), min(c0 + 2u, m - 1u),
                       min(c0 + 3u, m - 1u)) * k4;
    var acc0 = vec4<i32>(0);
    var acc1 = vec4<i32>(0);
    var acc2 = vec4<i32>(0);
    var acc3 = vec4<i32>(0);
    for (var w = 0u; w < k4; w = w + 1u) {
        let bw = vec4<u32>(b[cb.x + w], b[cb.y + w], b[cb.z + w], b[cb.w + w]);
        acc0 = acc0 + row4(a[ra.x + w], bw);
        acc1 = acc1 + row4(a[ra.y + w], bw);
        acc2 = acc2 + row4(a[ra.z + w], bw);
        acc3 = acc3 + row4(a[ra.w + w], bw);
    }
    let accs = array<vec4<i32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (r0 + i >= n) { break; }
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (c0 + j < m) { out[(r0 + i) * m + c0 + j] = accs[i][j]; }
        }
    }
}
