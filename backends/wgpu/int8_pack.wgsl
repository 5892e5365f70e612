// Packs int8 codes, stored one per element (T: i32 or f32 holding integers in -128..127),
// four to a u32 word along k, for dot4I8Packed (int8_dot4.wgsl). Row r, step i reads
// codes[offset + r * row_stride + i * k_stride]; steps past k pack as 0.
// meta: [0] rows, [1] k, [2] words per row, [3] offset, [4] row stride, [5] k stride
// (strides as i32 bits)
@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> packed: array<u32>;
@group(0) @binding(2) var<storage, read> codes: array<${T}>;

fn code(r: u32, i: u32) -> i32 {
    if (i >= M(1)) { return 0; }
    let at = bitcast<i32>(M(3)) + i32(r) * bitcast<i32>(M(4)) + i32(i) * bitcast<i32>(M(5));
    return i32(codes[u32(at)]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) ng: vec3<u32>) {
    let w = gid.x + gid.y * ng.x * 64u;
    let k4 = M(2);
    if (w >= M(0) * k4) { return; }
    let r = w / k4;
    let i = (w % k4) * 4u;
    packed[w] = pack4xI8(vec4<i32>(code(r, i), code(r, i + 1u), code(r, i + 2u), code(r, i + 3u)));
}
