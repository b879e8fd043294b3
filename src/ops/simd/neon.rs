//! aarch64 Advanced SIMD variants (4 f32 lanes): the same algorithm as `scalar.rs`, four pixels
//! at once.

use std::arch::aarch64::*;

use realfft::num_complex::Complex32;

use super::{Isa, Kernels, scalar};

/// The NEON table.
pub const KERNELS: Kernels = Kernels {
    isa: Isa::Neon,
    gate,
    complex_mul,
    pack_quad_row: scalar::pack_quad_row,
    qconv_row: scalar::qconv_row,
    quantize_u8: scalar::quantize_u8,
};

/// Whether this CPU runs [`KERNELS`] (always on aarch64 Linux; asked anyway).
pub fn available() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

fn gate(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32) {
    assert!(available(), "NEON kernel called on a CPU without it");
    // SAFETY: the feature was checked just above.
    unsafe { gate_neon(x, r, weight, bias, epsilon) }
}

#[target_feature(enable = "neon")]
unsafe fn gate_neon(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32) {
    let channels = weight.len();
    if channels == 0 {
        return;
    }
    let hw = x.len() / channels;
    assert!(r.len() >= channels * hw && bias.len() == channels);
    let vectors = hw / 4 * 4;
    let (xp, rp) = (x.as_mut_ptr(), r.as_ptr());
    let inv_c = 1.0 / channels as f32;
    for p in (0..vectors).step_by(4) {
        // SAFETY: p + 4 <= hw and k < channels, so every access is inside the C·hw slices.
        unsafe {
            let mut sum = vdupq_n_f32(0.0);
            for k in 0..channels {
                sum = vaddq_f32(sum, vld1q_f32(xp.add(k * hw + p)));
            }
            let mean = vmulq_n_f32(sum, inv_c);
            let mut sq = vdupq_n_f32(0.0);
            for k in 0..channels {
                let d = vsubq_f32(vld1q_f32(xp.add(k * hw + p)), mean);
                sq = vfmaq_f32(sq, d, d);
            }
            let sd = vsqrtq_f32(vaddq_f32(vmulq_n_f32(sq, inv_c), vdupq_n_f32(epsilon)));
            for k in 0..channels {
                let at = k * hw + p;
                let d = vsubq_f32(vld1q_f32(xp.add(at)), mean);
                let y = vfmaq_n_f32(vdupq_n_f32(bias[k]), vdivq_f32(d, sd), weight[k]);
                vst1q_f32(xp.add(at), vmulq_f32(y, vld1q_f32(rp.add(at))));
            }
        }
    }
    scalar::gate_pixels(x, r, weight, bias, epsilon, vectors..hw);
}

fn complex_mul(a: &mut [Complex32], b: &[Complex32], scale: f32) {
    assert!(available(), "NEON kernel called on a CPU without it");
    // SAFETY: the feature was checked just above.
    unsafe { complex_mul_neon(a, b, scale) }
}

#[target_feature(enable = "neon")]
unsafe fn complex_mul_neon(a: &mut [Complex32], b: &[Complex32], scale: f32) {
    let n = a.len().min(b.len());
    let vectors = n / 4 * 4;
    // Complex32 is repr(C) {re, im}: vld2q splits four of them into re and im lanes.
    let (ap, bp) = (a.as_mut_ptr() as *mut f32, b.as_ptr() as *const f32);
    for i in (0..vectors).step_by(4) {
        // SAFETY: i + 4 <= n complex values, 2(i + 4) f32, inside both slices.
        unsafe {
            let va = vld2q_f32(ap.add(2 * i));
            let vb = vld2q_f32(bp.add(2 * i));
            let re = vfmsq_f32(vmulq_f32(va.0, vb.0), va.1, vb.1);
            let im = vfmaq_f32(vmulq_f32(va.0, vb.1), va.1, vb.0);
            vst2q_f32(
                ap.add(2 * i),
                float32x4x2_t(vmulq_n_f32(re, scale), vmulq_n_f32(im, scale)),
            );
        }
    }
    scalar::complex_mul(&mut a[vectors..n], &b[vectors..n], scale);
}
