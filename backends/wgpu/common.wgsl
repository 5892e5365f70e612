// Helpers shared by the kernels. Float math runs in f32; WGSL leaves many edge cases of its
// builtins undefined (log of negatives, pow of negatives, max with NaN), so these functions
// pin them down to IEEE/PyTorch behaviour.

fn f_nan() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn f_inf() -> f32 { return bitcast<f32>(0x7f800000u); }
fn f_isnan(a: f32) -> bool { return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u; }
fn f_isinf(a: f32) -> bool { return (bitcast<u32>(a) & 0x7fffffffu) == 0x7f800000u; }

fn f_log(a: f32) -> f32 {
    if (f_isnan(a) || a < 0.0) { return f_nan(); }
    if (a == 0.0) { return -f_inf(); }
    return log(a);
}

fn f_sqrt(a: f32) -> f32 {
    if (a < 0.0) { return f_nan(); }
    return sqrt(a);
}

fn f_tanh(a: f32) -> f32 {
    // tanh is often lowered as a ratio of exponentials that overflows to inf/inf
    if (abs(a) > 15.0) { return sign(a); }
    return tanh(a);
}

fn f_sign(a: f32) -> f32 {
    // NaN fails both tests and gives 0, like torch.sign; select() keeps the zero positive
    // (lavapipe turned the if-chain into a copysign that returned -0.0)
    return select(select(0.0, -1.0, a < 0.0), 1.0, a > 0.0);
}

fn f_erf(x: f32) -> f32 {
    let z = abs(x);
    if (z < 0.5) {
        // Maclaurin series: relative accuracy near 0 where 1 - erfc cancels
        let z2 = x * x;
        return 1.1283791671 * x * (1.0 + z2 * (-0.3333333333 + z2 * (0.1 + z2 * (-0.0238095238
            + z2 * (0.0046296296 + z2 * (-0.0007575758))))));
    }
    if (f_isnan(x)) { return x; }
    // Numerical Recipes erfcc, fractional error < 1.2e-7
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
    let e = 1.0 - r;
    if (x < 0.0) { return -e; }
    return e;
}

fn f_pow(a: f32, b: f32) -> f32 {
    if (b == 0.0) { return 1.0; }
    if (f_isnan(a) || f_isnan(b)) { return f_nan(); }
    if (a == 0.0) {
        if (b > 0.0) { return 0.0; }
        return f_inf();
    }
    if (a < 0.0) {
        if (floor(b) != b) { return f_nan(); }
        let r = exp2(b * log2(-a));
        if (abs(b) < 16777216.0 && (i32(b) & 1) == 1) { return -r; }
        return r;
    }
    return exp2(b * log2(a));
}

fn f_max(a: f32, b: f32) -> f32 {
    if (f_isnan(a)) { return a; }
    if (f_isnan(b)) { return b; }
    return max(a, b);
}

fn f_min(a: f32, b: f32) -> f32 {
    if (f_isnan(a)) { return a; }
    if (f_isnan(b)) { return b; }
    return min(a, b);
}

fn f_fmod(a: f32, b: f32) -> f32 {
    return a - b * trunc(a / b);
}

fn f_remainder(a: f32, b: f32) -> f32 {
    var r = f_fmod(a, b);
    if (r != 0.0 && ((r < 0.0) != (b < 0.0))) { r = r + b; }
    return r;
}

fn f_floor_divide(a: f32, b: f32) -> f32 {
    // PyTorch's div_floor: exact for integral quotients where floor(a / b) is not
    if (b == 0.0) { return a / b; }
    let m = f_fmod(a, b);
    var d = (a - m) / b;
    if (m != 0.0 && ((b < 0.0) != (m < 0.0))) { d = d - 1.0; }
    var f = floor(d);
    if (d - f > 0.5) { f = f + 1.0; }
    return f;
}

fn i_sign(a: i32) -> i32 { return select(select(0, -1, a < 0), 1, a > 0); }

fn i_div(a: i32, b: i32) -> i32 {
    if (b == 0) { return 0; }
    return a / b;
}

fn i_floor_divide(a: i32, b: i32) -> i32 {
    if (b == 0) { return 0; }
    var q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) { q = q - 1; }
    return q;
}

fn i_remainder(a: i32, b: i32) -> i32 {
    if (b == 0) { return 0; }
    var r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) { r = r + b; }
    return r;
}

fn i_pow(a: i32, b: i32) -> i32 {
    if (b < 0) {
        if (a == 1) { return 1; }
        if (a == -1) { return select(1, -1, (b & 1) == 1); }
        return 0;
    }
    var r = 1;
    var base = a;
    var e = u32(b);
    loop {
        if (e == 0u) { break; }
        if ((e & 1u) == 1u) { r = r * base; }
        base = base * base;
        e = e >> 1u;
    }
    return r;
}

fn u_div(a: u32, b: u32) -> u32 {
    if (b == 0u) { return 0u; }
    return a / b;
}

fn u_rem(a: u32, b: u32) -> u32 {
    if (b == 0u) { return 0u; }
    return a % b;
}

fn u_pow(a: u32, b: u32) -> u32 {
    var r = 1u;
    var base = a;
    var e = b;
    loop {
        if (e == 0u) { break; }
        if ((e & 1u) == 1u) { r = r * base; }
        base = base * base;
        e = e >> 1u;
    }
    return r;
}

// Index of element i of a strided operand whose (offset, strides) start at meta word `base`,
// for a shape held at meta words 8..8+ndim.
fn strided_index(i: u32, base: u32) -> u32 {
    let nd = M(1);
    var off = bitcast<i32>(M(base));
    var rem = i;
    var d = nd;
    loop {
        if (d == 0u) { break; }
        d = d - 1u;
        let s = M(8u + d);
        off = off + i32(rem % s) * bitcast<i32>(M(base + 1u + d));
        rem = rem / s;
    }
    return u32(off);
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg_size: u32) -> u32 {
    return ((wid.z * nwg.y + wid.y) * nwg.x + wid.x) * wg_size + lid;
}
