//! AVX-512 VNNI int8 convolution: `vpdpbusd` multiplies 16 pixels × 4 packed input channels
//! (u8) by one broadcast word of 4 i8 weights and adds each pixel's four products to its i32
//! lane, so one instruction does 64 multiply-adds. Up to eight output channels share every
//! input load; the requantization runs in the same registers. The float kernels are `x86.rs`'s.

use std::arch::x86_64::*;

use super::{Isa, Kernels, QCONV_LANES, QConvGeometry, QRow, Requant, x86};

/// The AVX-512 VNNI table.
pub const KERNELS: Kernels = Kernels {
    isa: Isa::Avx512Vnni,
    gate: x86::KERNELS.gate,
    complex_mul: x86::KERNELS.complex_mul,
    pack_quad_row: x86::pack_quad_row,
    qconv_row,
    quantize_u8: x86::KERNELS.quantize_u8,
};

/// Whether this CPU runs [`KERNELS`]' int8 convolution.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// Output channels that share one input load (eight accumulators, of the 32 registers).
const CHANNEL_BLOCK: usize = 8;

fn qconv_row(
    src: &[u8],
    weights: &[i32],
    rq: &Requant,
    g: &QConvGeometry,
    y: usize,
    mut out: QRow<'_, '_>,
) {
    g.check(src, weights, rq, y, &out);
    assert!(
        available(),
        "AVX-512 VNNI kernel called on a CPU without it"
    );
    let (rows, f32_out) = out.raw_rows();
    // SAFETY: the features were checked above, and `check` bounds every access (see
    // `channel_block`).
    unsafe {
        if f32_out {
            channel_blocks::<true>(src, weights, rq, g, y, &rows)
        } else {
            channel_blocks::<false>(src, weights, rq, g, y, &rows)
        }
    }
}

/// Every output channel of row `y`, [`CHANNEL_BLOCK`] at a time, into the channel rows `out`:
/// u8 values, or f32 ones where `F32`.
///
/// Safety: as [`channel_block`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn channel_blocks<const F32: bool>(
    src: &[u8],
    weights: &[i32],
    rq: &Requant,
    g: &QConvGeometry,
    y: usize,
    out: &[*mut u8],
) {
    for o in (0..g.cout).step_by(CHANNEL_BLOCK) {
        let n = (g.cout - o).min(CHANNEL_BLOCK);
        // SAFETY: the caller's contract.
        unsafe {
            match n {
                1 => channel_block::<1, F32>(src, weights, rq, g, y, o, out),
                2 => channel_block::<2, F32>(src, weights, rq, g, y, o, out),
                3 => channel_block::<3, F32>(src, weights, rq, g, y, o, out),
                4 => channel_block::<4, F32>(src, weights, rq, g, y, o, out),
                5 => channel_block::<5, F32>(src, weights, rq, g, y, o, out),
                6 => channel_block::<6, F32>(src, weights, rq, g, y, o, out),
                7 => channel_block::<7, F32>(src, weights, rq, g, y, o, out),
                _ => channel_block::<8, F32>(src, weights, rq, g, y, o, out),
            }
        }
    }
}

/// Output channels `o0..o0 + N` of row `y`, sixteen columns at a time, into the channel rows
/// `out` (`wo` u8 values each, or f32 ones where `F32`).
///
/// Safety: AVX-512F/BW/VNNI present, `g.check` passed on the rows, `o0 + N <= g.cout`. The
/// loads read 64 bytes at packed column `x + kx` for `x < wo` rounded up to 16 and `kx < kw`,
/// which `QConvGeometry::cols` covers; stores past `wo` are masked off.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn channel_block<const N: usize, const F32: bool>(
    src: &[u8],
    weights: &[i32],
    rq: &Requant,
    g: &QConvGeometry,
    y: usize,
    o0: usize,
    out: &[*mut u8],
) {
    let taps = g.quads * g.kh * g.kw;
    let w = &weights[o0 * taps..(o0 + N) * taps];
    let zero_point = _mm512_set1_epi32(rq.zero_point);
    let (lo, hi) = (_mm512_set1_ps(rq.range.0), _mm512_set1_ps(rq.range.1));
    let slope = _mm512_set1_ps(rq.negative_slope);
    let (u8_min, u8_max) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    for x in (0..g.wo).step_by(QCONV_LANES) {
        let mut acc: [__m512i; N] = std::array::from_fn(|j| _mm512_set1_epi32(rq.bias[o0 + j]));
        for q in 0..g.quads {
            for ky in 0..g.kh {
                let row = g.packed_offset(q, y + ky, x);
                let tap0 = (q * g.kh + ky) * g.kw;
                for kx in 0..g.kw {
                    // SAFETY: see the function's contract.
                    let v = unsafe { _mm512_loadu_si512(src.as_ptr().add(row + 4 * kx).cast()) };
                    for (j, a) in acc.iter_mut().enumerate() {
                        let wj = _mm512_set1_epi32(w[j * taps + tap0 + kx]);
                        *a = _mm512_dpbusd_epi32(*a, v, wj);
                    }
                }
            }
        }
        let lanes = (g.wo - x).min(QCONV_LANES);
        let mask: __mmask16 = if lanes == QCONV_LANES {
            !0
        } else {
            (1 << lanes) - 1
        };
        for (j, a) in acc.iter().enumerate() {
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(*a), _mm512_set1_ps(rq.scale[o0 + j]));
            // As `Requant::apply_f32`: max first (NaN to the low end), then the activation as
            // max(v, slope·v), and + 0 (−0 to +0).
            let v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            let v = _mm512_max_ps(v, _mm512_mul_ps(v, slope));
            let v = _mm512_add_ps(v, _mm512_setzero_ps());
            let row = out[o0 + j];
            // SAFETY (both stores): the mask keeps the store inside this channel row's wo
            // values.
            if F32 {
                unsafe { _mm512_mask_storeu_ps(row.cast::<f32>().add(x), mask, v) };
            } else {
                // Round half to even, the default MXCSR mode, as `saturate_u8` rounds.
                let v = _mm512_add_epi32(_mm512_cvtps_epi32(v), zero_point);
                let v = _mm512_min_epi32(_mm512_max_epi32(v, u8_min), u8_max);
                unsafe { _mm512_mask_cvtepi32_storeu_epi8(row.add(x).cast(), mask, v) };
            }
        }
    }
}
