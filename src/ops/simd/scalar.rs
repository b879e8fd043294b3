//! The reference kernels in plain Rust: the algorithm every SIMD variant follows.

use realfft::num_complex::Complex32;

/// [`super::GateFn`] over all pixels.
pub fn gate(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32) {
    let pixels = x.len() / weight.len().max(1);
    gate_pixels(x, r, weight, bias, epsilon, 0..pixels);
}

/// [`super::GateFn`] over the pixels in `range` only (the SIMD variants' tails).
pub fn gate_pixels(
    x: &mut [f32],
    r: &[f32],
    weight: &[f32],
    bias: &[f32],
    epsilon: f32,
    range: std::ops::Range<usize>,
) {
    let channels = weight.len();
    if channels == 0 {
        return;
    }
    let hw = x.len() / channels;
    let inv_c = 1.0 / channels as f32;
    for p in range {
        let mut sum = 0f32;
        for k in 0..channels {
            sum += x[k * hw + p];
        }
        let mean = sum * inv_c;
        let mut sq = 0f32;
        for k in 0..channels {
            let d = x[k * hw + p] - mean;
            sq += d * d;
        }
        let sd = (sq * inv_c + epsilon).sqrt();
        for k in 0..channels {
            let i = k * hw + p;
            x[i] = ((x[i] - mean) / sd * weight[k] + bias[k]) * r[i];
        }
    }
}

/// [`super::ComplexMulFn`].
pub fn complex_mul(a: &mut [Complex32], b: &[Complex32], scale: f32) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = *x * *y * scale;
    }
}
