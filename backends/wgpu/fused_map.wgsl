// Fused elementwise program: every output element is computed from the inputs in registers
// and each output is written once (intermediates never touch memory).
// Generated per program structure by fused.py. Metadata words (u32, read through M()):
//   [0] numel, [1] ndim, [2 .. 2+ndim) coalesced shape, then per input its element offset
//   (+ ndim i32 strides when strided), then one word per program constant (compute-type bits).
// Inputs named x*, constants c*, instruction results t* (compute type, already rounded or
// wrapped to their dtype so that fused and unfused ops give the same bits).
${ENABLE}
${COMMON}

${META_DECL}
fn M(k: u32) -> u32 { return ${META_READ}; }
${BINDINGS}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= M(0u)) { return; }
    ${INDEX}
    ${BODY}
    ${STORE}
}
