// Reduction over a set of axes without workgroup barriers (they are slow on CPU drivers):
// thread t handles output o = t / G and chunk g = t % G of the reduced index range, serially.
// With G > 1 the backend runs a second pass over the (n_out, G) partials.
// meta: [0] n_out, [1] R, [2] chunk, [3] G, [4] kept ndim, [5] reduced ndim, [6] in offset,
//       [8..16) kept shape, [16..24) kept strides, [24..32) reduced shape, [32..40) reduced strides
${ENABLE}
${COMMON}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${TO}>;
@group(0) @binding(2) var<storage, read_write> out_idx: array<i32>;
@group(0) @binding(3) var<storage, read> inp: array<${TI}>;
@group(0) @binding(4) var<storage, read> inp_idx: array<i32>;

fn offset_of(o: u32, r: u32) -> u32 {
    var off = bitcast<i32>(M(6));
    var rem = o;
    var d = M(4);
    loop {
        if (d == 0u) { break; }
        d = d - 1u;
        let s = M(8u + d);
        off = off + i32(rem % s) * bitcast<i32>(M(16u + d));
        rem = rem / s;
    }
    rem = r;
    d = M(5);
    loop {
        if (d == 0u) { break; }
        d = d - 1u;
        let s = M(24u + d);
        off = off + i32(rem % s) * bitcast<i32>(M(32u + d));
        rem = rem / s;
    }
    return u32(off);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, 64u);
    let G = M(3);
    if (t >= M(0) * G) { return; }
    let o = t / G;
    let g = t % G;
    let start = g * M(2);
    let stop = min(M(1), start + M(2));
    var acc: ${ACC} = ${INIT};
    var best_i: i32 = -1;
    for (var r = start; r < stop; r = r + 1u) {
        let ii = offset_of(o, r);
        let v: ${ACC} = ${LOAD};
        ${COMBINE}
    }
    out[t] = ${STORE};
    ${STORE_IDX}
}
