// Elementwise map over up to three strided (possibly broadcast) inputs into a strided output.
// meta: [0] numel, [1] ndim, [2] scalar s0 bits, [3] scalar s1 bits, [8..16) shape,
//       operand k (0 = out, 1.. = inputs) at word 16 + 9k: offset, strides[8] (i32 elements).
// Placeholders are filled per (op, dtypes, contiguity) specialisation by the backend.
${ENABLE}
${COMMON}

@group(0) @binding(0) var<uniform> md: array<vec4<u32>, 16>;
fn M(k: u32) -> u32 { return md[k >> 2u][k & 3u]; }
@group(0) @binding(1) var<storage, read_write> out: array<${TO}>;
${INPUTS}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid, 256u);
    if (i >= M(0)) { return; }
    ${BODY}
}
