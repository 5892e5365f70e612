// gather and scatter_add along one axis over strided operands (index values are i32).
// meta: [0] numel of index, [1] ndim, [2] axis, [3] x/out offset, [4] index offset,
//       [5] src offset, [8..16) index shape, [16..24) x (gather) or out (scatter) strides,
//       [24..32) index strides, [32..40) src strides
${ENABLE}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${TO}>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read> src: array<${TS}>;

struct Offs { tgt: i32, ix: i32, sx: i32 }

fn offsets(i: u32) -> Offs {
    var o = Offs(bitcast<i32>(M(3)), bitcast<i32>(M(4)), bitcast<i32>(M(5)));
    var rem = i;
    var d = M(1);
    loop {
        if (d == 0u) { break; }
        d = d - 1u;
        let s = M(8u + d);
        let c = i32(rem % s);
        rem = rem / s;
        o.ix = o.ix + c * bitcast<i32>(M(24u + d));
        o.sx = o.sx + c * bitcast<i32>(M(32u + d));
        if (d != M(2)) { o.tgt = o.tgt + c * bitcast<i32>(M(16u + d)); }
    }
    o.tgt = o.tgt + idx[o.ix] * bitcast<i32>(M(16u + M(2)));
    return o;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * 256u + lid;
    if (i >= M(0)) { return; }
    let o = offsets(i);
    ${BODY}
}
