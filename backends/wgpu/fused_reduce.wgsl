// Fused elementwise program feeding a reduction (sum/max/min) over a set of axes, in one kernel.
// Same thread layout as reduce.wgsl (no workgroup barriers: they are slow on CPU drivers):
// thread t reduces output o = t / G over chunk g = t % G of the reduced range; with G > 1 the
// backend reduces the (n_out, G) partials with reduce.wgsl's second pass.
// Metadata words: [0] n_out, [1] R, [2] chunk, [3] G, [4 ..) kept shape, reduced shape, then
// per input: offset, kept strides, reduced strides; then one word per program constant.
${ENABLE}
${COMMON}

${META_DECL}
fn M(k: u32) -> u32 { return ${META_READ}; }
${BINDINGS}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid, 64u);
    let G = M(3u);
    if (t >= M(0u) * G) { return; }
    let o = t / G;
    let g = t % G;
    let start = g * M(2u);
    let stop = min(M(1u), start + M(2u));
    ${PROLOGUE}
    var acc: ${ACC} = ${INIT};
    for (var r = start; r < stop; r = r + 1u) {
        ${INDEX}
        ${BODY}
        let v: ${ACC} = ${VALUE};
        ${COMBINE}
    }
    out[t] = ${STORE};
}
