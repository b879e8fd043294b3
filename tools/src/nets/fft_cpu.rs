//! The order-1 global interaction on candle's CPU backend with real FFTs (realfft, in f64), and
//! its gradients. The matmul DFT of `dft.rs` is the generic, device-independent form; this one
//! is O(HW log HW) and, computed in f64, also the more accurate one at full frame sizes.
//!
//! a = irfft2(rfft2(v) · rfft2(r)) is a circular convolution, so dL/dv = irfft2(G · conj(R)) and
//! dL/dr = irfft2(G · conj(V)): the same kernel with the second spectrum conjugated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use realfft::num_complex::Complex64;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// FFT plans of one (H, W), built once and shared.
struct Plans {
    r2c: Arc<dyn RealToComplex<f64>>,
    c2r: Arc<dyn ComplexToReal<f64>>,
    col: Arc<dyn Fft<f64>>,
    col_inv: Arc<dyn Fft<f64>>,
}

fn plans(h: usize, w: usize) -> Arc<Plans> {
    type Cache = Mutex<HashMap<(usize, usize), Arc<Plans>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("fft plan cache poisoned");
    cache
        .entry((h, w))
        .or_insert_with(|| {
            let mut real = RealFftPlanner::<f64>::new();
            let mut complex = FftPlanner::<f64>::new();
            Arc::new(Plans {
                r2c: real.plan_fft_forward(w),
                c2r: real.plan_fft_inverse(w),
                col: complex.plan_fft_forward(h),
                col_inv: complex.plan_fft_inverse(h),
            })
        })
        .clone()
}

/// rfft2 of one plane, stored transposed: [W/2+1][H].
fn spectrum(plane: &[f32], h: usize, w: usize, p: &Plans) -> Vec<Complex64> {
    let wc = w / 2 + 1;
    let mut rows = vec![Complex64::default(); h * wc];
    let mut line = vec![0f64; w];
    for y in 0..h {
        line.iter_mut()
            .zip(&plane[y * w..(y + 1) * w])
            .for_each(|(d, s)| *d = *s as f64);
        p.r2c
            .process(&mut line, &mut rows[y * wc..(y + 1) * wc])
            .expect("r2c sizes");
    }
    let mut spec = vec![Complex64::default(); h * wc];
    for y in 0..h {
        for c in 0..wc {
            spec[c * h + y] = rows[y * wc + c];
        }
    }
    p.col.process(&mut spec);
    spec
}

/// irfft2(rfft2(a) · rfft2(b)) (or · conj(rfft2(b))) of one plane pair.
fn circular(a: &[f32], b: &[f32], h: usize, w: usize, conj: bool, p: &Plans) -> Vec<f32> {
    let wc = w / 2 + 1;
    let mut prod = spectrum(a, h, w, p);
    let sb = spectrum(b, h, w, p);
    prod.iter_mut()
        .zip(&sb)
        .for_each(|(x, y)| *x *= if conj { y.conj() } else { *y });
    p.col_inv.process(&mut prod);
    let mut row = vec![Complex64::default(); wc];
    let mut line = vec![0f64; w];
    let scale = 1.0 / (h * w) as f64;
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for c in 0..wc {
            row[c] = prod[c * h + y];
        }
        // The DC (and even-W Nyquist) bins of a real signal are real; drop rounding residue,
        // as irfft does.
        row[0].im = 0.0;
        if w.is_multiple_of(2) {
            row[wc - 1].im = 0.0;
        }
        p.c2r.process(&mut row, &mut line).expect("c2r sizes");
        out[y * w..(y + 1) * w]
            .iter_mut()
            .zip(&line)
            .for_each(|(d, s)| *d = (*s * scale) as f32);
    }
    out
}

struct CircularConv {
    conj: bool,
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("circular conv: only f32 is supported"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("circular conv: non-contiguous input"),
    }
}

impl CustomOp2 for CircularConv {
    fn name(&self) -> &'static str {
        if self.conj {
            "ship-circular-corr"
        } else {
            "ship-circular-conv"
        }
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if al.shape() != bl.shape() {
            candle_core::bail!(
                "circular conv: shapes differ, {:?} vs {:?}",
                al.shape(),
                bl.shape()
            );
        }
        let (n, c, h, w) = al.shape().dims4()?;
        let (a, b) = (f32_slice(a, al)?, f32_slice(b, bl)?);
        let p = plans(h, w);
        let planes: Vec<Vec<f32>> = (0..n * c)
            .into_par_iter()
            .map(|i| {
                circular(
                    &a[i * h * w..(i + 1) * h * w],
                    &b[i * h * w..(i + 1) * h * w],
                    h,
                    w,
                    self.conj,
                    &p,
                )
            })
            .collect();
        Ok((CpuStorage::F32(planes.concat()), Shape::from((n, c, h, w))))
    }

    fn bwd(
        &self,
        v: &Tensor,
        r: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if self.conj {
            candle_core::bail!(
                "circular correlation has no gradient here (only used inside backward)"
            );
        }
        let grad = grad.contiguous()?;
        let gv = grad.apply_op2_no_bwd(r, &CircularConv { conj: true })?;
        let gr = grad.apply_op2_no_bwd(v, &CircularConv { conj: true })?;
        Ok((Some(gv), Some(gr)))
    }
}

/// Per-channel 2-D circular convolution of two CPU f32 NCHW tensors of the same shape.
pub fn circular_conv(v: &Tensor, r: &Tensor) -> Result<Tensor> {
    v.contiguous()?
        .apply_op2(&r.contiguous()?, CircularConv { conj: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::{max_diff, probe_grads, uniform};
    use candle_core::Var;

    /// Forward and gradients against the matmul DFT form (itself tested against the definition),
    /// on even and odd sizes.
    #[test]
    fn matches_the_matmul_dft_form_with_gradients() {
        for (h, w) in [(6, 8), (7, 9), (5, 12)] {
            let v = Var::from_tensor(&uniform(&[2, 3, h, w], 1, -0.5, 0.5)).unwrap();
            let r = Var::from_tensor(&uniform(&[2, 3, h, w], 2, -0.5, 0.5)).unwrap();
            let probe = uniform(&[2, 3, h, w], 3, -0.5, 0.5);
            let ours = circular_conv(&v, &r).unwrap();
            let theirs = crate::nets::dft::circular_conv_matmul(&v, &r).unwrap();
            // Values up to ~HW/4 summed from f32 matmuls: 1e-4 absolute.
            assert!(max_diff(&ours, &theirs) < 1e-4, "forward {h}x{w}");
            let g1 = probe_grads(&ours, &probe);
            let g2 = probe_grads(&theirs, &probe);
            for x in [&v, &r] {
                assert!(
                    max_diff(g1.get(x).unwrap(), g2.get(x).unwrap()) < 1e-4,
                    "gradient {h}x{w}"
                );
            }
        }
    }
}
