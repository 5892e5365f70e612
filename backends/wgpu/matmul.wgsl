// Batched strided matmul, register-blocked: each invocation computes a ${TM} x (4*${NV}) block
// of C with vec4 accumulators and no workgroup memory (barriers are slow on CPU drivers, and
// register blocking is what makes lavapipe fast). Inputs are read through strides, so
// transposed and broadcast-batch views need no copy. When B's rows are dense and 16-byte
// aligned, B is bound as vec4 and read four columns per load; when A's rows are, A is read
// four k-steps per load.
// meta: [0] n, [1] m, [2] k, [3] batch ndim, [4] a offset, [5] b offset, [6] row base,
//       [7] batch base, [8] a row stride, [9] a k stride, [10] b k stride, [11] b col stride,
//       [12] col base, [16..24) batch shape, [24..32) a batch strides, [32..40) b batch strides,
//       [40..64) an epilogue's input offsets and strides, and its constants
${ENABLE}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${TO}>;
@group(0) @binding(2) var<storage, read> A: array<${TA}>;
@group(0) @binding(3) var<storage, read> B: array<${TB}>;
${EXTRA_BINDINGS}

fn col_index(c: u32, m: u32, sb_m: i32, bo: i32) -> vec4<i32> {
    return vec4<i32>(i32(min(c, m - 1u)), i32(min(c + 1u, m - 1u)), i32(min(c + 2u, m - 1u)),
                     i32(min(c + 3u, m - 1u))) * sb_m + bo;
}

// STORE_STMT stores x, the result at (row, col + c) with index base + col + c; a fused
// epilogue (fused_matmul.py) evaluates its program there instead
fn store4(base: u32, row: u32, col: u32, m: u32, x4: vec4<${ACC}>) {
    for (var c = 0u; c < 4u; c = c + 1u) {
        if (col + c < m) {
            let x = x4[c];
            ${STORE_STMT}
        }
    }
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = M(0);
    let m = M(1);
    let K = M(2);
    let batch = wid.z + M(7);
    var ao = bitcast<i32>(M(4));
    var bo = bitcast<i32>(M(5));
    var rem = batch;
    var d = M(3);
    loop {
        if (d == 0u) { break; }
        d = d - 1u;
        let s = M(16u + d);
        let c = i32(rem % s);
        ao = ao + c * bitcast<i32>(M(24u + d));
        bo = bo + c * bitcast<i32>(M(32u + d));
        rem = rem / s;
    }
    let row0 = M(6) + (wid.y * 8u + lid.y) * ${TM}u;
    let col0 = M(12) + (wid.x * 8u + lid.x) * ${TN}u;
    if (row0 >= n || col0 >= m) { return; }
    let sa_n = bitcast<i32>(M(8));
    let sa_k = bitcast<i32>(M(9));
    let sb_k = bitcast<i32>(M(10));
    let sb_m = bitcast<i32>(M(11));
    // clamped row/col bases: out-of-range lanes read valid memory and are never stored
${BASES}
    // accumulators and the k loop body are unrolled by the backend (${TM} x ${NV} named
    // vec4 registers): arrays indexed in loops are spilled to memory by CPU drivers
${ACC_DECL}
${LOOP}
    let obase = batch * n * m;
${STORES}
}
