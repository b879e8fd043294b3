//! AVX2 + FMA variants (8 f32 lanes): the same algorithm as `scalar.rs`, eight pixels at once.

use std::arch::x86_64::*;

use realfft::num_complex::Complex32;

use super::{Isa, Kernels, scalar};

/// The AVX2 + FMA table.
pub const KERNELS: Kernels = Kernels {
    isa: Isa::Avx2Fma,
    gate,
    complex_mul,
    pack_quad_row,
    // No AVX2 int8 convolution: without VNNI, u8·i8 products need a widening (vpmaddubsw
    // saturates in i16), and the reference is what runs; the VNNI table has the fast one.
    qconv_row: scalar::qconv_row,
    quantize_u8,
};

/// Whether this CPU runs [`KERNELS`].
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

fn gate(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32) {
    assert!(available(), "AVX2/FMA kernel called on a CPU without them");
    // SAFETY: the features were checked just above.
    unsafe { gate_avx2(x, r, weight, bias, epsilon) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn gate_avx2(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32) {
    let channels = weight.len();
    if channels == 0 {
        return;
    }
    let hw = x.len() / channels;
    assert!(r.len() >= channels * hw && bias.len() == channels);
    let vectors = hw / 8 * 8;
    let (xp, rp) = (x.as_mut_ptr(), r.as_ptr());
    let inv_c = _mm256_set1_ps(1.0 / channels as f32);
    let eps = _mm256_set1_ps(epsilon);
    for p in (0..vectors).step_by(8) {
        // SAFETY: p + 8 <= hw and k < channels, so every access is inside the C·hw slices.
        unsafe {
            let mut sum = _mm256_setzero_ps();
            for k in 0..channels {
                sum = _mm256_add_ps(sum, _mm256_loadu_ps(xp.add(k * hw + p)));
            }
            let mean = _mm256_mul_ps(sum, inv_c);
            let mut sq = _mm256_setzero_ps();
            for k in 0..channels {
                let d = _mm256_sub_ps(_mm256_loadu_ps(xp.add(k * hw + p)), mean);
                sq = _mm256_fmadd_ps(d, d, sq);
            }
            let sd = _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(sq, inv_c), eps));
            for k in 0..channels {
                let at = k * hw + p;
                let d = _mm256_sub_ps(_mm256_loadu_ps(xp.add(at)), mean);
                let y = _mm256_fmadd_ps(
                    _mm256_div_ps(d, sd),
                    _mm256_set1_ps(weight[k]),
                    _mm256_set1_ps(bias[k]),
                );
                _mm256_storeu_ps(xp.add(at), _mm256_mul_ps(y, _mm256_loadu_ps(rp.add(at))));
            }
        }
    }
    scalar::gate_pixels(x, r, weight, bias, epsilon, vectors..hw);
}

fn complex_mul(a: &mut [Complex32], b: &[Complex32], scale: f32) {
    assert!(available(), "AVX2/FMA kernel called on a CPU without them");
    // SAFETY: the features were checked just above.
    unsafe { complex_mul_avx2(a, b, scale) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn complex_mul_avx2(a: &mut [Complex32], b: &[Complex32], scale: f32) {
    let n = a.len().min(b.len());
    let vectors = n / 4 * 4;
    // Complex32 is repr(C) {re, im}: four of them are eight interleaved f32.
    let (ap, bp) = (a.as_mut_ptr() as *mut f32, b.as_ptr() as *const f32);
    let s = _mm256_set1_ps(scale);
    for i in (0..vectors).step_by(4) {
        // SAFETY: i + 4 <= n complex values, 2(i + 4) f32, inside both slices.
        unsafe {
            let va = _mm256_loadu_ps(ap.add(2 * i));
            let vb = _mm256_loadu_ps(bp.add(2 * i));
            let b_re = _mm256_moveldup_ps(vb);
            let b_im = _mm256_movehdup_ps(vb);
            let a_swapped = _mm256_permute_ps(va, 0b10_11_00_01);
            // even lanes: ar·br − ai·bi, odd lanes: ai·br + ar·bi
            let prod = _mm256_fmaddsub_ps(va, b_re, _mm256_mul_ps(a_swapped, b_im));
            _mm256_storeu_ps(ap.add(2 * i), _mm256_mul_ps(prod, s));
        }
    }
    scalar::complex_mul(&mut a[vectors..n], &b[vectors..n], scale);
}

/// [`super::PackQuadRowFn`] with SSE2 (every x86_64): a 4 × 16 byte transpose per 16 pixels.
pub fn pack_quad_row(rows: [&[u8]; 4], out: &mut [u8]) {
    let w = out.len() / 4;
    assert!(rows.iter().all(|r| r.len() >= w));
    let blocks = w / 16 * 16;
    for x in (0..blocks).step_by(16) {
        // SAFETY: x + 16 <= w, so the loads read inside every row and the stores write inside
        // out's 4·w bytes; SSE2 is part of x86_64.
        unsafe {
            let load = |r: &[u8]| _mm_loadu_si128(r.as_ptr().add(x).cast());
            let (a, b, c, d) = (load(rows[0]), load(rows[1]), load(rows[2]), load(rows[3]));
            let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
            let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
            let dst = out.as_mut_ptr().add(4 * x).cast::<__m128i>();
            _mm_storeu_si128(dst, _mm_unpacklo_epi16(ab_lo, cd_lo));
            _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(ab_lo, cd_lo));
            _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(ab_hi, cd_hi));
            _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(ab_hi, cd_hi));
        }
    }
    let tail = rows.map(|r| &r[blocks..w]);
    scalar::pack_quad_row(tail, &mut out[4 * blocks..]);
}

/// [`super::QuantizeU8Fn`] with AVX2, eight values at a time.
pub fn quantize_u8(x: &[f32], scale: f32, zero_point: i32, out: &mut [u8]) {
    assert!(available(), "AVX2 kernel called on a CPU without it");
    // SAFETY: the features were checked just above.
    unsafe { quantize_u8_avx2(x, scale, zero_point, out) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_u8_avx2(x: &[f32], scale: f32, zero_point: i32, out: &mut [u8]) {
    let n = x.len().min(out.len());
    let blocks = n / 8 * 8;
    let (s, zp) = (_mm256_set1_ps(scale), _mm256_set1_epi32(zero_point));
    let (lo, hi) = (_mm256_set1_ps(-512.0), _mm256_set1_ps(512.0));
    let (u8_min, u8_max) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
    // Gathers byte 0 of each i32 lane into the low four bytes of each 128-bit half.
    let bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    for i in (0..blocks).step_by(8) {
        // SAFETY: i + 8 <= n, inside both slices.
        unsafe {
            let v = _mm256_div_ps(_mm256_loadu_ps(x.as_ptr().add(i)), s);
            // max first: a NaN quotient becomes -512, as in `saturate_u8`.
            let v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            let v = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
            let v = _mm256_min_epi32(_mm256_max_epi32(v, u8_min), u8_max);
            let v = _mm256_shuffle_epi8(v, bytes);
            let lo4 = _mm256_cvtsi256_si32(v) as u32;
            let hi4 = _mm256_extract_epi32::<4>(v) as u32;
            let packed = u64::from(lo4) | (u64::from(hi4) << 32);
            std::ptr::write_unaligned(out.as_mut_ptr().add(i).cast::<u64>(), packed.to_le());
        }
    }
    scalar::quantize_u8(&x[blocks..n], scale, zero_point, &mut out[blocks..n]);
}
