//! Per-channel 2-D circular convolution of real planes with real FFTs (realfft / rustfft,
//! both SIMD on x86_64 and aarch64): the algorithm of [`super::global_interaction`].
//!
//! a = irfft2(rfft2(v) · rfft2(r)) = v ⊛ r, with `a[i,j] = Σ v[m,n]·r[(i−m) mod H, (j−n) mod W]`.
//! The means are taken out first and added back, v ⊛ r = (v − v̄) ⊛ (r − r̄) + HW·v̄·r̄: an f32
//! FFT's error scales with the signal's norm, which the DC term dominates, and the LayerNorm
//! that follows looks only at the fluctuations (the exporter's standard-op twin does the same).
//!
//! Layout: rows are transformed with a real FFT (W → W/2+1 bins), the H x (W/2+1) spectrum is
//! transposed so each column is contiguous, and the columns are transformed in one rustfft call.
//! The product and the inverse column transform happen in that transposed layout.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use super::simd::ComplexMulFn;

/// FFT plans for one plane size, built once per size (plans are read-only and shareable).
#[derive(Clone)]
pub struct Plan {
    h: usize,
    w: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    col: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fft2::Plan({}x{})", self.w, self.h)
    }
}

impl Plan {
    /// Plans for H x W planes (both >= 1).
    pub fn new(h: usize, w: usize) -> Plan {
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        Plan {
            h,
            w,
            r2c: real.plan_fft_forward(w),
            c2r: real.plan_fft_inverse(w),
            col: complex.plan_fft_forward(h),
            col_inv: complex.plan_fft_inverse(h),
        }
    }

    /// (H, W).
    pub fn size(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    fn bins(&self) -> usize {
        self.w / 2 + 1
    }
}

/// Scratch for one plane at a time: allocated once, reused for every plane and frame.
#[derive(Debug, Clone)]
pub struct Workspace {
    line: Vec<f32>,
    rows: Vec<Complex32>,
    spec_v: Vec<Complex32>,
    spec_r: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl Workspace {
    /// Buffers sized for `plan`.
    pub fn new(plan: &Plan) -> Workspace {
        let n = plan.h * plan.bins();
        let scratch = [
            plan.r2c.get_scratch_len(),
            plan.c2r.get_scratch_len(),
            plan.col.get_inplace_scratch_len(),
            plan.col_inv.get_inplace_scratch_len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let zero = Complex32::default();
        Workspace {
            line: vec![0.0; plan.w],
            rows: vec![zero; n],
            spec_v: vec![zero; n],
            spec_r: vec![zero; n],
            scratch: vec![zero; scratch],
        }
    }
}

fn mean(plane: &[f32]) -> f32 {
    // f64: a 1280x1024 plane summed in f32 would lose the mean's last digits.
    (plane.iter().map(|&x| x as f64).sum::<f64>() / plane.len() as f64) as f32
}

/// `dst[c][r] = src[r][c]` for a `rows x cols` row-major `src`, in cache-sized tiles.
fn transpose(src: &[Complex32], dst: &mut [Complex32], rows: usize, cols: usize) {
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// The column-major (transposed) 2-D spectrum of `plane − offset` into `spec`.
fn spectrum(
    plan: &Plan,
    ws_line: &mut [f32],
    rows: &mut [Complex32],
    spec: &mut [Complex32],
    scratch: &mut [Complex32],
    plane: &[f32],
    offset: f32,
) {
    let (h, w, k) = (plan.h, plan.w, plan.bins());
    for y in 0..h {
        ws_line
            .iter_mut()
            .zip(&plane[y * w..(y + 1) * w])
            .for_each(|(d, s)| *d = s - offset);
        plan.r2c
            .process_with_scratch(ws_line, &mut rows[y * k..(y + 1) * k], scratch)
            .expect("r2c buffers are sized by the plan");
    }
    transpose(rows, spec, h, k);
    plan.col.process_with_scratch(spec, scratch);
}

/// Overwrites `v` (one H x W plane) with v ⊛ r.
pub fn circular_conv(
    plan: &Plan,
    ws: &mut Workspace,
    v: &mut [f32],
    r: &[f32],
    complex_mul: ComplexMulFn,
) {
    let (h, w, k) = (plan.h, plan.w, plan.bins());
    debug_assert!(v.len() == h * w && r.len() == h * w);
    let (v_mean, r_mean) = (mean(v), mean(r));
    let Workspace {
        line,
        rows,
        spec_v,
        spec_r,
        scratch,
    } = ws;
    spectrum(plan, line, rows, spec_v, scratch, v, v_mean);
    spectrum(plan, line, rows, spec_r, scratch, r, r_mean);
    // rustfft's inverse is unnormalised: fold the 1/(HW) into the product.
    complex_mul(spec_v, spec_r, 1.0 / (h * w) as f32);
    plan.col_inv.process_with_scratch(spec_v, scratch);
    transpose(spec_v, rows, k, h);
    let dc = (h * w) as f32 * v_mean * r_mean;
    for y in 0..h {
        let row = &mut rows[y * k..(y + 1) * k];
        // The DC (and even-W Nyquist) bins of a real signal's spectrum are real: drop the
        // rounding residue, as irfft does (realfft rejects a non-zero imaginary part there).
        row[0].im = 0.0;
        if w % 2 == 0 {
            row[k - 1].im = 0.0;
        }
        let out = &mut v[y * w..(y + 1) * w];
        plan.c2r
            .process_with_scratch(row, out, scratch)
            .expect("c2r buffers are sized by the plan");
        out.iter_mut().for_each(|x| *x += dc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::simd;

    fn plane(h: usize, w: usize, seed: u32) -> Vec<f32> {
        (0..h * w)
            .map(|i| {
                let x = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 97);
                0.5 + ((x >> 8) % 1000) as f32 / 1000.0
            })
            .collect()
    }

    /// The definition, in f64.
    fn direct(v: &[f32], r: &[f32], h: usize, w: usize) -> Vec<f64> {
        let mut out = vec![0f64; h * w];
        for i in 0..h {
            for j in 0..w {
                let mut acc = 0f64;
                for m in 0..h {
                    for n in 0..w {
                        acc +=
                            v[m * w + n] as f64 * r[((i + h - m) % h) * w + (j + w - n) % w] as f64;
                    }
                }
                out[i * w + j] = acc;
            }
        }
        out
    }

    /// Odd, even, prime and degenerate sizes against the definition, with every kernel table.
    /// Values of order HW/2 (inputs in [0.5, 1.5)): the relative error bound is f32 FFT
    /// rounding, a few 1e-7 times log(HW).
    #[test]
    fn matches_the_definition() {
        for kernels in simd::available() {
            for (h, w) in [(1, 1), (1, 8), (5, 1), (6, 8), (7, 9), (13, 4), (16, 17)] {
                let (v0, r) = (plane(h, w, 1), plane(h, w, 2));
                let plan = Plan::new(h, w);
                let mut ws = Workspace::new(&plan);
                let mut v = v0.clone();
                circular_conv(&plan, &mut ws, &mut v, &r, kernels.complex_mul);
                let expect = direct(&v0, &r, h, w);
                let scale = expect.iter().fold(0f64, |m, x| m.max(x.abs()));
                for (i, (a, b)) in v.iter().zip(&expect).enumerate() {
                    assert!(
                        (*a as f64 - b).abs() <= 2e-6 * scale,
                        "{:?} {h}x{w} at {i}: {a} vs {b}",
                        kernels.isa
                    );
                }
                // The workspace is reused: a second run gives the same answer.
                let mut again = v0.clone();
                circular_conv(&plan, &mut ws, &mut again, &r, kernels.complex_mul);
                assert_eq!(again, v);
            }
        }
    }
}
