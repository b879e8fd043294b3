//! SIMD kernels of the custom ops, picked once for the running CPU.
//!
//! `scalar.rs` is the reference every variant is tested against; `x86.rs` (AVX2 + FMA) and
//! `neon.rs` (aarch64) are the variants. [`kernels`] detects the CPU's features once and keeps
//! the table in a static; the ops fetch it when a plan is built, never per pixel.
//! `SHIP_EDGE_ISA=scalar` forces the reference (for comparisons and bug reports).
//!
//! There is no AVX-512 variant: the kernels are bound by memory bandwidth (the gate) or are a
//! small share of an FFT-bound op (the complex product), and no machine we test on has
//! AVX-512, so an untested 16-lane copy would buy nothing we can measure.

#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod scalar;
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

/// Instruction set a kernel table is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, the reference.
    Scalar,
    /// x86_64 AVX2 with FMA, 8 lanes.
    Avx2Fma,
    /// aarch64 Advanced SIMD, 4 lanes.
    Neon,
}

impl Isa {
    /// Name as written to `bench --json` and accepted by `SHIP_EDGE_ISA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Neon => "neon",
        }
    }
}

/// One consistent set of kernels.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    pub isa: Isa,
    pub gate: GateFn,
    pub complex_mul: ComplexMulFn,
}

/// Environment variable that forces an instruction set (`scalar` is the only useful value:
/// a variant the CPU lacks is never picked).
pub const ISA_ENV: &str = "SHIP_EDGE_ISA";

const SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    gate: scalar::gate,
    complex_mul: scalar::complex_mul,
};

/// The kernels for `isa`, if this CPU can run them.
pub fn for_isa(isa: Isa) -> Option<Kernels> {
    match isa {
        Isa::Scalar => Some(SCALAR),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if x86::available() => Some(x86::KERNELS),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if neon::available() => Some(neon::KERNELS),
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
        [Isa::Avx2Fma, Isa::Neon]
            .into_iter()
            .find_map(for_isa)
            .unwrap_or(SCALAR)
    })
}

/// Every kernel table this CPU can run, the reference first (for tests and benches).
pub fn available() -> Vec<Kernels> {
    [Isa::Scalar, Isa::Avx2Fma, Isa::Neon]
        .into_iter()
        .filter_map(for_isa)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (xorshift), so failures replay.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
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

    #[test]
    fn the_scalar_table_is_always_available() {
        assert_eq!(available()[0].isa, Isa::Scalar);
        #[cfg(target_arch = "aarch64")]
        assert!(available().iter().any(|k| k.isa == Isa::Neon));
    }
}
