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

/// [`super::PackQuadRowFn`].
pub fn pack_quad_row(rows: [&[u8]; 4], out: &mut [u8]) {
    for (x, px) in out.chunks_exact_mut(4).enumerate() {
        px.copy_from_slice(&[rows[0][x], rows[1][x], rows[2][x], rows[3][x]]);
    }
}

/// [`super::QConvRowFn`]: the definition, one output value at a time.
pub fn qconv_row(
    src: &[u8],
    weights: &[i32],
    rq: &super::Requant,
    g: &super::QConvGeometry,
    y: usize,
    mut out: super::QRow<'_, '_>,
) {
    g.check(src, weights, rq, y, &out);
    let taps = g.quads * g.kh * g.kw;
    for o in 0..g.cout {
        let w = &weights[o * taps..(o + 1) * taps];
        for x in 0..g.wo {
            let mut acc: i32 = rq.bias[o];
            for q in 0..g.quads {
                for ky in 0..g.kh {
                    let row = g.packed_offset(q, y + ky, x);
                    for kx in 0..g.kw {
                        let px = &src[row + 4 * kx..row + 4 * kx + 4];
                        let wq = w[(q * g.kh + ky) * g.kw + kx].to_le_bytes();
                        for (p, wb) in px.iter().zip(wq) {
                            // Wrapping, as vpdpbusd adds (only a hostile model gets there).
                            acc = acc.wrapping_add(i32::from(*p) * i32::from(wb as i8));
                        }
                    }
                }
            }
            match &mut out {
                super::QRow::U8(out) => out[o][x] = rq.apply(o, acc),
                super::QRow::F32(out) => out[o][x] = rq.apply_f32(o, acc),
            }
        }
    }
}

/// [`super::QuantizeU8Fn`].
pub fn quantize_u8(x: &[f32], scale: f32, zero_point: i32, out: &mut [u8]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = super::saturate_u8(v / scale, zero_point);
    }
}
