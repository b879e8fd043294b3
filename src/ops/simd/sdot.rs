//! aarch64 int8 convolution on the dot-product instructions (Armv8.2 DotProd: the Cortex-A76 of
//! the Raspberry Pi 5, the Cortex-A78AE of Jetson Orin; not the Pi 4's A72, which runs the
//! scalar reference). One `SDOT` by element multiplies 4 pixels × 4 packed input channels by
//! one channel's 4 weights and adds each pixel's four products to its i32 lane: 16
//! multiply-adds. Four output channels share every input load, sixteen pixels at a time; the
//! requantization runs in the same registers. The float kernels are `neon.rs`'s.
//!
//! SDOT multiplies signed bytes (the mixed-sign `USDOT` needs Armv8.6 I8MM, which the A76
//! lacks), so the u8 input goes in as x − 128 (x xor 0x80) and 128·Σw goes back into the
//! bias. The sums are the scalar reference's modulo 2³², and the requantization is the same
//! f32 arithmetic (`vmaxnm` maps NaN as `f32::max` does, `vcvtn` rounds half to even), so
//! the outputs are bit-identical. `std::arch`'s `vdotq_laneq_s32` is not stable yet, hence
//! the one instruction in `asm!`.

use std::arch::aarch64::*;
use std::arch::asm;

use super::{Isa, Kernels, QCONV_LANES, QConvGeometry, QRow, Requant, neon};

/// The NEON table with the dot-product int8 convolution.
pub const KERNELS: Kernels = Kernels {
    isa: Isa::NeonDotprod,
    qconv_row,
    ..neon::KERNELS
};

/// Whether this CPU runs [`KERNELS`].
pub fn available() -> bool {
    neon::available() && std::arch::is_aarch64_feature_detected!("dotprod")
}

/// Output channels that share one input load (sixteen accumulators, of the 32 registers).
const CHANNEL_BLOCK: usize = 4;

fn qconv_row(
    src: &[u8],
    weights: &[i32],
    rq: &Requant,
    g: &QConvGeometry,
    y: usize,
    mut out: QRow<'_, '_>,
) {
    g.check(src, weights, rq, y, &out);
    assert!(available(), "SDOT kernel called on a CPU without it");
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
#[target_feature(enable = "neon,dotprod")]
unsafe fn channel_blocks<const F32: bool>(
    src: &[u8],
    weights: &[i32],
    rq: &Requant,
    g: &QConvGeometry,
    y: usize,
    out: &[*mut u8],
) {
    for o in (0..g.cout).step_by(CHANNEL_BLOCK) {
        // SAFETY: the caller's contract.
        unsafe {
            match (g.cout - o).min(CHANNEL_BLOCK) {
                1 => channel_block::<1, F32>(src, weights, rq, g, y, o, out),
                2 => channel_block::<2, F32>(src, weights, rq, g, y, o, out),
                3 => channel_block::<3, F32>(src, weights, rq, g, y, o, out),
                _ => channel_block::<4, F32>(src, weights, rq, g, y, o, out),
            }
        }
    }
}

/// `acc + Σ a·b[lane]` per 32-bit lane, over signed bytes: `b`'s word `LANE` (four weights)
/// against each of `a`'s four words (four pixels of four channels).
///
/// Safety: DotProd present (the caller's `target_feature`).
#[inline(always)]
unsafe fn sdot_lane<const LANE: i32>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: a register-only instruction the caller's features provide.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            lane = const LANE,
            options(pure, nomem, nostack),
        );
    }
    acc
}

/// Output channels `o0..o0 + N` of row `y`, sixteen columns at a time, into the channel rows
/// `out` (`wo` u8 values each, or f32 ones where `F32`).
///
/// Safety: NEON and DotProd present, `g.check` passed on the rows, `o0 + N <= g.cout`. The
/// loads read 64 bytes at packed column `x + kx` for `x < wo` rounded up to 16 and `kx < kw`,
/// which `QConvGeometry::cols` covers; a last block narrower than 16 is stored through a
/// buffer.
#[target_feature(enable = "neon,dotprod")]
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
    let channel = |j: usize| &weights[(o0 + j) * taps..(o0 + j + 1) * taps];
    // Per tap, the block's weight words side by side: word j is channel o0 + j.
    let tap_weights: Vec<int8x16_t> = (0..taps)
        .map(|t| {
            let words: [i32; 4] = std::array::from_fn(|j| if j < N { channel(j)[t] } else { 0 });
            // SAFETY: reads the four words of a local array.
            vreinterpretq_s8_s32(unsafe { vld1q_s32(words.as_ptr()) })
        })
        .collect();
    // The input enters as x − 128: 128·Σw goes back into the bias (wrapping, as the sums).
    let bias: [i32; N] = std::array::from_fn(|j| {
        let sum = channel(j)
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .fold(0i32, |s, b| s.wrapping_add(i32::from(b as i8)));
        rq.bias[o0 + j].wrapping_add(sum.wrapping_mul(128))
    });
    let sign = vdupq_n_u8(0x80);
    let (lo, hi) = (vdupq_n_f32(rq.range.0), vdupq_n_f32(rq.range.1));
    let slope = vdupq_n_f32(rq.negative_slope);
    let zero_point = vdupq_n_s32(rq.zero_point);
    for x in (0..g.wo).step_by(QCONV_LANES) {
        let mut acc: [[int32x4_t; 4]; N] = std::array::from_fn(|j| [vdupq_n_s32(bias[j]); 4]);
        for q in 0..g.quads {
            for ky in 0..g.kh {
                let row = g.packed_offset(q, y + ky, x);
                let tap0 = (q * g.kh + ky) * g.kw;
                for kx in 0..g.kw {
                    // SAFETY: see the function's contract.
                    let at = unsafe { src.as_ptr().add(row + 4 * kx) };
                    let pixels: [int8x16_t; 4] = std::array::from_fn(|i| {
                        // SAFETY: see the function's contract.
                        let v = unsafe { vld1q_u8(at.add(16 * i)) };
                        vreinterpretq_s8_u8(veorq_u8(v, sign))
                    });
                    let w = tap_weights[tap0 + kx];
                    for (j, a) in acc.iter_mut().enumerate() {
                        for (a, p) in a.iter_mut().zip(pixels) {
                            // SAFETY: DotProd is enabled on this function.
                            *a = unsafe {
                                match j {
                                    0 => sdot_lane::<0>(*a, p, w),
                                    1 => sdot_lane::<1>(*a, p, w),
                                    2 => sdot_lane::<2>(*a, p, w),
                                    _ => sdot_lane::<3>(*a, p, w),
                                }
                            };
                        }
                    }
                }
            }
        }
        let lanes = (g.wo - x).min(QCONV_LANES);
        for (j, a) in acc.iter().enumerate() {
            let scale = vdupq_n_f32(rq.scale[o0 + j]);
            // As `Requant::apply_f32`: maxnm first (NaN to the low end), then the activation
            // as max(v, slope·v), and + 0 (−0 to +0).
            let v: [float32x4_t; 4] = std::array::from_fn(|i| {
                let v = vmulq_f32(vcvtq_f32_s32(a[i]), scale);
                let v = vminnmq_f32(vmaxnmq_f32(v, lo), hi);
                vaddq_f32(vmaxnmq_f32(v, vmulq_f32(v, slope)), vdupq_n_f32(0.0))
            });
            let row = out[o0 + j];
            // SAFETY (all stores): `lanes` values from column x stay inside this channel row.
            if F32 {
                let mut block = [0f32; QCONV_LANES];
                for (i, v) in v.iter().enumerate() {
                    unsafe { vst1q_f32(block.as_mut_ptr().add(4 * i), *v) };
                }
                unsafe {
                    std::ptr::copy_nonoverlapping(block.as_ptr(), row.cast::<f32>().add(x), lanes)
                };
            } else {
                // Round half to even, then saturate to u8 in two narrowing steps.
                let q: [uint16x4_t; 4] = std::array::from_fn(|i| {
                    vqmovun_s32(vaddq_s32(vcvtnq_s32_f32(v[i]), zero_point))
                });
                let bytes = vcombine_u8(
                    vqmovn_u16(vcombine_u16(q[0], q[1])),
                    vqmovn_u16(vcombine_u16(q[2], q[3])),
                );
                let mut block = [0u8; QCONV_LANES];
                unsafe { vst1q_u8(block.as_mut_ptr(), bytes) };
                unsafe { std::ptr::copy_nonoverlapping(block.as_ptr(), row.add(x), lanes) };
            }
        }
    }
}
