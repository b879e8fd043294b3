//! SIMD kernels of the custom ops, picked once for the running CPU.
//!
//! `scalar.rs` is the reference every variant is tested against; `x86.rs` (AVX2 + FMA) and
//! `neon.rs` (aarch64) are the variants. [`kernels`] detects the CPU's features once and keeps
//! the table in a static; the ops fetch it when a plan is built, never per pixel.
//! `SHIP_EDGE_ISA=scalar` forces the reference (for comparisons and bug reports).
//!
//! The int8 convolution ([`QConvRowFn`]) has its own variants: `vnni.rs` on x86 (AVX-512 VNNI:
//! `vpdpbusd` does 64 u8·i8 multiply-adds per instruction), `sdot.rs` on aarch64 (DotProd:
//! `sdot` does 16); their tables take the float kernels from `x86.rs` and `neon.rs`. There is
//! no AVX-512 copy of the float kernels: they are bound by memory bandwidth (the gate) or are a
//! small share of an FFT-bound op (the complex product).

#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod scalar;
#[cfg(target_arch = "aarch64")]
pub mod sdot;
#[cfg(target_arch = "x86_64")]
pub mod vnni;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::sync::OnceLock;

use realfft::num_complex::Complex32;

/// `x ← (LayerNorm_channels(x) · weight + bias) · r` in place.
///
/// `x` and `r` hold `C = weight.len()` planes of `x.len() / C` pixels each (NCHW, one image);
/// the statistics of each pixel are taken over its C values, in two passes (mean, then mean of
/// squared deviations) as the standard-op twin does, with `epsilon` added to the variance.
pub type GateFn = fn(x: &mut [f32], r: &[f32], weight: &[f32], bias: &[f32], epsilon: f32);

/// `a ← a · b · scale`, element-wise over complex numbers.
pub type ComplexMulFn = fn(a: &mut [Complex32], b: &[Complex32], scale: f32);

/// Interleaves four channel rows of `w` u8 pixels into `out` (`4·w` bytes): pixel x of
/// channel c goes to `out[4x + c]`, the layout [`QConvRowFn`] reads.
pub type PackQuadRowFn = fn(rows: [&[u8]; 4], out: &mut [u8]);

/// One output row of a stride-1 int8 convolution (u8 activations, i8 weights, i32 sums),
/// requantized to u8 or dequantized to f32.
///
/// - `src` is the padded input packed by channel quads, `[quads][rows][cols][4]` bytes (see
///   [`PackQuadRowFn`] and [`QConvGeometry::packed_offset`]); padding holds the input's zero
///   point.
/// - `weights` is `[cout][quads][kh][kw]` words, each the four i8 weights of one channel quad
///   at one tap, little-endian (channel `4q` in the low byte).
/// - Output row `y`, channel `o`, column `x < wo` goes to `out[o][x]`:
///   [`Requant::apply`]`(o, rq.bias[o] + Σ src·w)` into a [`QRow::U8`] row,
///   [`Requant::apply_f32`] into a [`QRow::F32`] one.
///
/// Every variant gives the same values as the scalar reference: the sums are exact integers and
/// the requantization is the same f32 arithmetic.
pub type QConvRowFn =
    fn(src: &[u8], weights: &[i32], rq: &Requant, g: &QConvGeometry, y: usize, out: QRow<'_, '_>);

/// Where a [`QConvRowFn`] writes its row: one slice per output channel, at least `wo` long
/// (in the op, each is a row of a different channel plane of the output tensor).
#[derive(Debug)]
pub enum QRow<'a, 'b> {
    /// Requantized to u8 ([`Requant::apply`]).
    U8(&'a mut [&'b mut [u8]]),
    /// Dequantized to f32 ([`Requant::apply_f32`]).
    F32(&'a mut [&'b mut [f32]]),
}

impl QRow<'_, '_> {
    /// The rows as pointers to their first value, and whether they hold f32 (else u8): for the
    /// SIMD variants' stores, once [`QConvGeometry::check`] has bounded them.
    pub fn raw_rows(&mut self) -> (Vec<*mut u8>, bool) {
        match self {
            QRow::U8(rows) => (rows.iter_mut().map(|r| r.as_mut_ptr()).collect(), false),
            QRow::F32(rows) => (
                rows.iter_mut().map(|r| r.as_mut_ptr().cast()).collect(),
                true,
            ),
        }
    }

    /// Whether there is a slice for each of `channels`, each at least `width` long.
    pub fn holds(&self, channels: usize, width: usize) -> bool {
        match self {
            QRow::U8(rows) => rows.len() >= channels && rows.iter().all(|r| r.len() >= width),
            QRow::F32(rows) => rows.len() >= channels && rows.iter().all(|r| r.len() >= width),
        }
    }
}

/// `out[i] = saturate_u8(round_half_even(x[i] / scale) + zero_point)`: ONNX QuantizeLinear to
/// u8, per tensor. The quotient is clamped to ±512 first (NaN to −512), which changes no
/// saturated result and keeps every variant's conversion to i32 in range and equal.
pub type QuantizeU8Fn = fn(x: &[f32], scale: f32, zero_point: i32, out: &mut [u8]);

/// Shape of an int8 convolution over its packed input, for [`QConvRowFn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QConvGeometry {
    /// Input channels in groups of four (the last group padded with zero weights).
    pub quads: usize,
    /// Packed rows: input height plus top and bottom padding.
    pub rows: usize,
    /// Packed columns: at least `wo + kw − 1`, and [`QCONV_LANES`]-aligned output blocks plus
    /// `kw − 1` so that a variant may read whole blocks past `wo`.
    pub cols: usize,
    pub kh: usize,
    pub kw: usize,
    /// Output channels.
    pub cout: usize,
    /// Output width.
    pub wo: usize,
}

/// Output columns a SIMD variant computes at once; [`QConvGeometry::cols`] is padded for it.
pub const QCONV_LANES: usize = 16;

impl QConvGeometry {
    /// Packed columns for an output `wo` wide and a kernel `kw` wide.
    pub fn cols_for(wo: usize, kw: usize) -> usize {
        wo.next_multiple_of(QCONV_LANES) + kw - 1
    }

    /// Byte offset of packed pixel (`row`, `col`) of channel quad `q`.
    pub fn packed_offset(&self, q: usize, row: usize, col: usize) -> usize {
        ((q * self.rows + row) * self.cols + col) * 4
    }

    /// Bytes of the packed input.
    pub fn packed_len(&self) -> usize {
        self.quads * self.rows * self.cols * 4
    }

    /// Words of the packed weights.
    pub fn weights_len(&self) -> usize {
        self.cout * self.quads * self.kh * self.kw
    }

    /// The sizes a [`QConvRowFn`] relies on (a violation is a bug in the caller, not bad input).
    pub fn check(&self, src: &[u8], weights: &[i32], rq: &Requant, y: usize, out: &QRow<'_, '_>) {
        assert!(self.cols >= Self::cols_for(self.wo, self.kw));
        assert!(y + self.kh <= self.rows && src.len() >= self.packed_len());
        assert!(weights.len() >= self.weights_len() && out.holds(self.cout, self.wo));
        assert!(rq.bias.len() >= self.cout && rq.scale.len() >= self.cout);
    }
}

/// Requantization of an int8 convolution's i32 sums to u8, per output channel, with an
/// optional fused activation (see [`Requant::with_activation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Requant {
    /// The bias in accumulator units, minus the input zero point times the channel's weight sum
    /// (so the sums can run over raw u8 values).
    pub bias: Vec<i32>,
    /// x_scale · w_scale / y_scale.
    pub scale: Vec<f32>,
    /// The output zero point.
    pub zero_point: i32,
    /// Bounds of the scaled sum, in output steps, before the activation: ±512 for a plain
    /// convolution (which changes no result), the range of the convolution's own u8 output
    /// where an activation behind it was fused in.
    pub range: (f32, f32),
    /// Slope of the activation below zero: 1 for none, 0 for ReLU, in between for LeakyReLU.
    pub negative_slope: f32,
}

/// The widest [`Requant::range`]: anything beyond saturates anyway, and it keeps every
/// variant's conversion to i32 in range.
pub const REQUANT_LIMIT: f32 = 512.0;

impl Requant {
    /// A plain requantization: no activation.
    pub fn new(bias: Vec<i32>, scale: Vec<f32>, zero_point: i32) -> Requant {
        Requant {
            bias,
            scale,
            zero_point,
            range: (-REQUANT_LIMIT, REQUANT_LIMIT),
            negative_slope: 1.0,
        }
    }

    /// Fuses an activation behind the convolution (`DequantizeLinear → activation`, then a
    /// `QuantizeLinear` or [`dequantized`](Requant::dequantized)): the scaled sum is first held
    /// to `range` (the convolution's own u8 output range, in the new
    /// output's steps, so its saturation survives the fusion), then multiplied by
    /// `negative_slope` where below zero. Both ReLU and LeakyReLU commute with the positive
    /// scale, so one rounding replaces the chain's two. `negative_slope` must lie in [0, 1].
    pub fn with_activation(mut self, range: (f32, f32), negative_slope: f32) -> Requant {
        let negative_slope = negative_slope.clamp(0.0, 1.0);
        // The bound that keeps the activated value within ±REQUANT_LIMIT: −LIMIT / slope, not
        // −LIMIT, or a LeakyReLU would see large negative sums already cut short.
        let floor = if negative_slope > 0.0 {
            -REQUANT_LIMIT / negative_slope
        } else {
            -REQUANT_LIMIT
        };
        let low = range.0.max(floor);
        self.range = (low, range.1.min(REQUANT_LIMIT).max(low));
        self.negative_slope = negative_slope;
        self
    }

    /// Turns a requantization to u8 into a dequantization to f32: the output becomes
    /// [`apply_f32`](Requant::apply_f32) times `step` (the output scale the u8 result would
    /// have had), with no rounding to steps, and the zero point no longer applies. What
    /// `QLinearConv → DequantizeLinear` computes, less the rounding in between.
    pub fn dequantized(mut self, step: f32) -> Requant {
        for s in &mut self.scale {
            *s = (f64::from(*s) * f64::from(step)) as f32;
        }
        self.range = (self.range.0 * step, self.range.1 * step);
        self
    }

    /// The value of channel `o` for the sum `acc` (the bias included) before the output's
    /// rounding: `acc · scale` held to the range (NaN to its low end, as `maxps` does), then the
    /// activation. Every [`QConvRowFn`] variant does this same f32 arithmetic.
    #[inline]
    pub fn apply_f32(&self, o: usize, acc: i32) -> f32 {
        // Not `clamp`: it keeps NaN, and this must map NaN to the low end as `maxps` does.
        #[allow(clippy::manual_clamp)]
        let v = (acc as f32 * self.scale[o])
            .max(self.range.0)
            .min(self.range.1);
        // max(v, slope·v) is the activation for a slope in [0, 1]; + 0 turns a −0 (ReLU of a
        // negative value) into the +0 ONNX's Relu gives, the same in every variant.
        v.max(v * self.negative_slope) + 0.0
    }

    /// The u8 output of channel `o` for the sum `acc`: [`apply_f32`](Requant::apply_f32), then
    /// [`saturate_u8`].
    #[inline]
    pub fn apply(&self, o: usize, acc: i32) -> u8 {
        saturate_u8(self.apply_f32(o, acc), self.zero_point)
    }
}

/// `clamp(round_half_even(v) + zero_point, 0, 255)` with `v` first clamped to ±512 (NaN to
/// −512, as `maxps` does), the one rounding every int8 kernel shares.
#[inline]
pub fn saturate_u8(v: f32, zero_point: i32) -> u8 {
    // Not `clamp`: it keeps NaN, and this must map NaN to -512 as `maxps` does.
    #[allow(clippy::manual_clamp)]
    let v = v.max(-512.0).min(512.0).round_ties_even() as i32;
    (v + zero_point).clamp(0, 255) as u8
}

/// Instruction set a kernel table is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, the reference.
    Scalar,
    /// x86_64 AVX2 with FMA, 8 lanes.
    Avx2Fma,
    /// aarch64 Advanced SIMD, 4 lanes.
    Neon,
    /// aarch64 Advanced SIMD with the DotProd extension (`SDOT`) for the int8 convolution; the
    /// float kernels of [`Isa::Neon`].
    NeonDotprod,
    /// x86_64 AVX-512 with VNNI for the int8 convolution; the float kernels of [`Isa::Avx2Fma`].
    Avx512Vnni,
}

impl Isa {
    /// Name as written to `bench --json` and accepted by `SHIP_EDGE_ISA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Neon => "neon",
            Isa::NeonDotprod => "neon-dotprod",
            Isa::Avx512Vnni => "avx512-vnni",
        }
    }
}

/// One consistent set of kernels.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub isa: Isa,
    pub gate: GateFn,
    pub complex_mul: ComplexMulFn,
    pub pack_quad_row: PackQuadRowFn,
    pub qconv_row: QConvRowFn,
    pub quantize_u8: QuantizeU8Fn,
}

/// Environment variable that forces an instruction set (`scalar` is the only useful value:
/// a variant the CPU lacks is never picked).
pub const ISA_ENV: &str = "SHIP_EDGE_ISA";

const SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    gate: scalar::gate,
    complex_mul: scalar::complex_mul,
    pack_quad_row: scalar::pack_quad_row,
    qconv_row: scalar::qconv_row,
    quantize_u8: scalar::quantize_u8,
};

/// The kernels for `isa`, if this CPU can run them.
pub fn for_isa(isa: Isa) -> Option<Kernels> {
    match isa {
        Isa::Scalar => Some(SCALAR),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if x86::available() => Some(x86::KERNELS),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni if x86::available() && vnni::available() => Some(vnni::KERNELS),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if neon::available() => Some(neon::KERNELS),
        #[cfg(target_arch = "aarch64")]
        Isa::NeonDotprod if sdot::available() => Some(sdot::KERNELS),
        _ => None,
    }
}

/// The best kernels for the running CPU (or the scalar ones under `SHIP_EDGE_ISA=scalar`),
/// detected once.
pub fn kernels() -> &'static Kernels {
    static BEST: OnceLock<Kernels> = OnceLock::new();
    BEST.get_or_init(|| {
        if std::env::var(ISA_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("scalar")) {
            return SCALAR;
        }
        [Isa::Avx512Vnni, Isa::Avx2Fma, Isa::NeonDotprod, Isa::Neon]
            .into_iter()
            .find_map(for_isa)
            .unwrap_or(SCALAR)
    })
}

/// Every kernel table this CPU can run, the reference first (for tests and benches).
pub fn available() -> Vec<Kernels> {
    [
        Isa::Scalar,
        Isa::Avx2Fma,
        Isa::Neon,
        Isa::Avx512Vnni,
        Isa::NeonDotprod,
    ]
    .into_iter()
    .filter_map(for_isa)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[cout][wo]` buffer as the per-channel rows a [`QConvRowFn`] writes.
    fn rows<T>(buffer: &mut [T], wo: usize) -> Vec<&mut [T]> {
        buffer.chunks_exact_mut(wo).collect()
    }

    /// Deterministic values in [-1, 1) (xorshift), so failures replay.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        super::super::takeover::test_models::xorshift(seed)
            .take(n)
            .map(|s| (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect()
    }

    /// Every available variant against the scalar reference, on pixel counts off the lane
    /// widths (tails) and channel counts from 1 up. Tolerance: the variants sum in a different
    /// order (8 or 4 lanes vs one), a few f32 ulps of values of order 1.
    #[test]
    fn gate_variants_match_the_reference() {
        for kernels in available() {
            for channels in [1, 3, 4, 8, 16] {
                for pixels in [0, 1, 3, 7, 8, 9, 15, 17, 33, 100] {
                    let n = channels * pixels;
                    let (mut x, r) = (values(n, 1), values(n, 2));
                    let (w, b) = (values(channels, 3), values(channels, 4));
                    // An offset mean, as features have: the centring must not lose digits.
                    x.iter_mut().for_each(|v| *v = *v * 0.5 + 3.0);
                    let mut reference = x.clone();
                    scalar::gate(&mut reference, &r, &w, &b, 1e-5);
                    (kernels.gate)(&mut x, &r, &w, &b, 1e-5);
                    let err = x
                        .iter()
                        .zip(&reference)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(
                        err <= 2e-6,
                        "{:?}: C={channels} HW={pixels}: max error {err}",
                        kernels.isa
                    );
                }
            }
        }
    }

    /// The gate against the formula written out in f64.
    #[test]
    fn scalar_gate_is_layer_norm_times_r() {
        let (c, hw) = (5, 6);
        let (mut x, r) = (values(c * hw, 5), values(c * hw, 6));
        let (w, b) = (values(c, 7), values(c, 8));
        let x0 = x.clone();
        scalar::gate(&mut x, &r, &w, &b, 1e-5);
        for p in 0..hw {
            let col: Vec<f64> = (0..c).map(|k| x0[k * hw + p] as f64).collect();
            let mean = col.iter().sum::<f64>() / c as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
            for k in 0..c {
                let y = ((col[k] - mean) / (var + 1e-5).sqrt() * w[k] as f64 + b[k] as f64)
                    * r[k * hw + p] as f64;
                assert!(
                    (x[k * hw + p] as f64 - y).abs() < 1e-5,
                    "pixel {p} channel {k}"
                );
            }
        }
    }

    #[test]
    fn complex_mul_variants_match_the_reference() {
        for kernels in available() {
            for n in [0, 1, 3, 4, 5, 8, 9, 31] {
                let cx = |v: Vec<f32>| -> Vec<Complex32> {
                    v.chunks(2).map(|p| Complex32::new(p[0], p[1])).collect()
                };
                let (mut a, b) = (cx(values(2 * n, 9)), cx(values(2 * n, 10)));
                let expected: Vec<Complex32> =
                    a.iter().zip(&b).map(|(x, y)| x * y * 0.25).collect();
                (kernels.complex_mul)(&mut a, &b, 0.25);
                for (i, (x, y)) in a.iter().zip(&expected).enumerate() {
                    assert!((x - y).norm() < 1e-6, "{:?}: n={n} i={i}", kernels.isa);
                }
            }
        }
    }

    /// Every variant's int8 convolution gives the reference's bytes (exact integer sums, the
    /// same requantization), over channel counts around the quad and block sizes, widths
    /// around the 16-column blocks, and 1x1 and 3x3 kernels.
    #[test]
    fn qconv_variants_match_the_reference() {
        let mut seed = 0;
        for kernels in available() {
            for (cin, cout) in [(1usize, 1usize), (3, 2), (4, 8), (5, 9), (8, 8), (24, 17)] {
                for (kh, kw) in [(1, 1), (3, 3), (1, 3)] {
                    for wo in [1, 15, 16, 17, 40] {
                        seed += 1;
                        let g = QConvGeometry {
                            quads: cin.div_ceil(4),
                            rows: kh + 2,
                            cols: QConvGeometry::cols_for(wo, kw),
                            kh,
                            kw,
                            cout,
                            wo,
                        };
                        let src: Vec<u8> = values(g.packed_len(), seed)
                            .iter()
                            .map(|v| ((v + 1.0) * 127.5) as u8)
                            .collect();
                        let weights: Vec<i32> = values(g.weights_len(), seed + 1000)
                            .iter()
                            .map(|v| (v * i32::MAX as f32) as i32)
                            .collect();
                        let plain = Requant::new(
                            (0..cout as i32).map(|o| o * 1000 - 4000).collect(),
                            (0..cout).map(|o| 1e-4 * (o + 1) as f32).collect(),
                            128,
                        );
                        // Plain, and with a ReLU and a LeakyReLU fused in (the range cuts
                        // both ends of the spread of sums).
                        let requants = [
                            plain.clone(),
                            plain.clone().with_activation((-100.0, 90.0), 0.0),
                            plain.clone().with_activation((-100.0, 90.0), 0.1),
                        ];
                        for (rq, y) in requants.iter().flat_map(|rq| (0..3).map(move |y| (rq, y))) {
                            let mut expected = vec![0u8; cout * wo];
                            let out = &mut rows(&mut expected, wo);
                            scalar::qconv_row(&src, &weights, rq, &g, y, QRow::U8(out));
                            let mut got = vec![0u8; cout * wo];
                            let out = &mut rows(&mut got, wo);
                            (kernels.qconv_row)(&src, &weights, rq, &g, y, QRow::U8(out));
                            let mut expected_f32 = vec![0f32; cout * wo];
                            let out = &mut rows(&mut expected_f32, wo);
                            scalar::qconv_row(&src, &weights, rq, &g, y, QRow::F32(out));
                            let mut got_f32 = vec![0f32; cout * wo];
                            let out = &mut rows(&mut got_f32, wo);
                            (kernels.qconv_row)(&src, &weights, rq, &g, y, QRow::F32(out));
                            assert_eq!(
                                got_f32, expected_f32,
                                "{:?}: {g:?} row {y} {rq:?}",
                                kernels.isa
                            );
                            assert_eq!(got, expected, "{:?}: {g:?} row {y} {rq:?}", kernels.isa);
                            let spread = expected.iter().filter(|v| **v != 0 && **v != 255);
                            assert!(spread.count() * 2 >= expected.len(), "{g:?}: saturated");
                        }
                    }
                }
            }
        }
    }

    /// The reference against the convolution written out on unpacked NCHW data.
    #[test]
    fn scalar_qconv_is_the_convolution() {
        let (cin, cout, h, w, k) = (5usize, 3usize, 4usize, 6usize, 3usize);
        let x: Vec<u8> = (0..cin * h * w).map(|i| (i * 37 % 251) as u8).collect();
        let wt: Vec<i8> = (0..cout * cin * k * k)
            .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
            .collect();
        // Valid convolution (no padding): rows h, output (h - 2) x (w - 2).
        let wo = w - k + 1;
        let g = QConvGeometry {
            quads: cin.div_ceil(4),
            rows: h,
            cols: QConvGeometry::cols_for(wo, k),
            kh: k,
            kw: k,
            cout,
            wo,
        };
        let mut packed = vec![0u8; g.packed_len()];
        for c in 0..cin {
            for y in 0..h {
                for xx in 0..w {
                    packed[g.packed_offset(c / 4, y, xx) + c % 4] = x[(c * h + y) * w + xx];
                }
            }
        }
        let mut weights = vec![0i32; g.weights_len()];
        for o in 0..cout {
            for c in 0..cin {
                for t in 0..k * k {
                    let word = &mut weights[(o * g.quads + c / 4) * k * k + t];
                    *word |= i32::from(wt[(o * cin + c) * k * k + t] as u8) << (8 * (c % 4));
                }
            }
        }
        let rq = Requant::new(vec![100, -200, 300], vec![0.001, 0.002, 0.0005], 100);
        for y in 0..h - k + 1 {
            let mut got = vec![0u8; cout * wo];
            scalar::qconv_row(
                &packed,
                &weights,
                &rq,
                &g,
                y,
                QRow::U8(&mut rows(&mut got, wo)),
            );
            for o in 0..cout {
                for xx in 0..wo {
                    let mut acc = rq.bias[o] as f64;
                    for c in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                acc += f64::from(x[(c * h + y + ky) * w + xx + kx])
                                    * f64::from(wt[((o * cin + c) * k + ky) * k + kx]);
                            }
                        }
                    }
                    let want = ((acc * rq.scale[o] as f64).round() + 100.0).clamp(0.0, 255.0);
                    let have = f64::from(got[o * wo + xx]);
                    assert!(
                        (have - want).abs() <= 1.0,
                        "o {o} y {y} x {xx}: {have} vs {want}"
                    );
                }
            }
        }
    }

    /// A LeakyReLU sees the convolution's whole negative range (not one cut at the limit the
    /// u8 conversion needs), and ReLU's zeros are +0.
    #[test]
    fn fused_activations_follow_the_onnx_chain() {
        let leaky = Requant::new(vec![0], vec![1.0], 100).with_activation((-848.0, 172.0), 0.1);
        // −848 · 0.1 = −84.8 → −85 steps.
        assert_eq!(leaky.apply(0, -848), 15);
        // Below the convolution's own range: its saturation first.
        assert_eq!(leaky.apply(0, -2000), 15);
        assert_eq!(leaky.apply(0, 100), 200);
        assert_eq!(leaky.apply(0, 500), 255);
        let relu = Requant::new(vec![0], vec![1.0], 7).with_activation((-300.0, 300.0), 0.0);
        assert_eq!(relu.apply(0, -50), 7);
        assert_eq!(relu.apply_f32(0, -50).to_bits(), 0f32.to_bits());
        assert_eq!(relu.dequantized(0.5).apply_f32(0, 9), 4.5);
    }

    #[test]
    fn pack_variants_match_the_reference() {
        for kernels in available() {
            for w in [0, 1, 15, 16, 17, 33, 100] {
                let planes: Vec<Vec<u8>> = (0..4)
                    .map(|c| (0..w).map(|x| (x * 4 + c) as u8).collect())
                    .collect();
                let rows = std::array::from_fn(|c| planes[c].as_slice());
                let mut got = vec![0u8; 4 * w];
                (kernels.pack_quad_row)(rows, &mut got);
                let expected: Vec<u8> = (0..4 * w).map(|i| i as u8).collect();
                assert_eq!(got, expected, "{:?} w={w}", kernels.isa);
            }
        }
    }

    #[test]
    fn the_scalar_table_is_always_available() {
        assert_eq!(available()[0].isa, Isa::Scalar);
        #[cfg(target_arch = "aarch64")]
        assert!(available().iter().any(|k| k.isa == Isa::Neon));
        #[cfg(target_arch = "aarch64")]
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            assert!(available().iter().any(|k| k.isa == Isa::NeonDotprod));
        }
    }
}
