//! MTF-matched low-pass filters of Vivone's toolbox (`genMTF.m`, `MTF.m`, `MTF_PAN.m`,
//! `LPfilterGauss.m`): a 41×41 Gaussian whose gain at the MS Nyquist frequency is the sensor's
//! GNyq, windowed into a FIR filter by MATLAB's `fwind1(Hd, kaiser(41))`.
//!
//! We follow MATLAB `fwind1` itself, not PanCollection's `fir_filter_wind` port:
//! 1. the 1-D Kaiser window (β = 0.5, MATLAB's default) is turned into a rotationally symmetric
//!    2-D window by Huang's method: `w(t1, t2) = interp1(t, w1, √(t1² + t2²))` on the grid
//!    `t = -1 … 1`, zero outside the unit disc (PanCollection's `kaiser2d` is the same window
//!    on a `-0.5 … 0.5` grid);
//! 2. the frequency-sampling design `fsamp2(Hd)` (centred inverse DFT of the desired response);
//! 3. `h = fsamp2(Hd) .* w`, **not renormalised**: the filter's DC gain is `Σh` (0.99968 for
//!    ratio 2, 0.99874 for ratio 4 with GNyq 0.3). PanCollection divides by `Σh`; that changes
//!    every filtered value by the same factor (≤ 0.2 %).
//!
//! Filtering is MATLAB `imfilter(x, h, 'replicate')`. The kernel is symmetric and numerically
//! of very low rank, so it is applied as a short sum of separable passes from its
//! eigen-decomposition (terms below 1e-8 of the largest are dropped: the result matches the
//! full 41×41 correlation to ~1e-7 of the image's range, with a few separable passes).

use ndarray::Array2;

use crate::dsp::{Border, Cube, Image, correlate_separable_valid, fspecial_gaussian, pad};

/// Size of the toolbox's MTF filters.
pub const MTF_TAPS: usize = 41;

/// Kaiser β of MATLAB's `kaiser(N)` default.
pub const KAISER_BETA: f64 = 0.5;

/// Modified Bessel function of the first kind, order 0 (power series; exact to f64 for the
/// small arguments of a Kaiser window).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut term, mut sum, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// MATLAB `kaiser(n, beta)`: `I0(β·√(1 − (2i/(n−1) − 1)²)) / I0(β)`.
pub fn kaiser(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let den = bessel_i0(beta);
    (0..n)
        .map(|i| {
            let x = 2.0 * i as f64 / (n - 1) as f64 - 1.0;
            bessel_i0(beta * (1.0 - x * x).max(0.0).sqrt()) / den
        })
        .collect()
}

/// MATLAB `fwind1(Hd, win)` for a square `n×n` desired response (`n = win.len()`, odd) and a
/// 1-D window: Huang's rotationally symmetric window times the frequency-sampling design.
/// Returns the real part (the imaginary part is round-off for the symmetric `Hd` used here).
pub fn fwind1(hd: &Image, win: &[f64]) -> Image {
    let n = win.len();
    assert_eq!(hd.dim(), (n, n), "fwind1: Hd must be {n}x{n}");
    // Huang's window: t = (-(n-1)/2 : (n-1)/2) * 2/(n-1), linear interpolation in the radius.
    let t: Vec<f64> = (0..n)
        .map(|i| (i as f64 - (n as f64 - 1.0) / 2.0) * (2.0 / (n as f64 - 1.0)))
        .collect();
    let (t0, tn) = (t[0], t[n - 1]);
    let window = Array2::from_shape_fn((n, n), |(y, x)| {
        let r = (t[x] * t[x] + t[y] * t[y]).sqrt();
        if r < t0 || r > tn {
            return 0.0;
        }
        // interp1(t, w1, r, 'linear'): the interval [t[k], t[k+1]] holding r.
        let k = t.partition_point(|&v| v <= r).clamp(1, n - 1) - 1;
        let f = (r - t[k]) / (t[k + 1] - t[k]);
        win[k] + f * (win[k + 1] - win[k])
    });
    // fsamp2: h = rot90(fftshift(ifft2(ifftshift-like(Hd))), 2). For odd n this is the centred
    // inverse DFT h[m] = (1/n²) Σ_k Hd[k] e^{+2πi (k−c)(m−c)/n}, c = (n−1)/2, flipped on both
    // axes. Its real part is C·Hd·Cᵀ − S·Hd·Sᵀ with C, S the cos/sin matrices.
    let c = (n as f64 - 1.0) / 2.0;
    let angle = |m: usize, k: usize| {
        2.0 * std::f64::consts::PI * (k as f64 - c) * (m as f64 - c) / n as f64
    };
    let cos = Array2::from_shape_fn((n, n), |(m, k)| angle(m, k).cos());
    let sin = Array2::from_shape_fn((n, n), |(m, k)| angle(m, k).sin());
    let re = cos.dot(hd).dot(&cos.t()) - sin.dot(hd).dot(&sin.t());
    let scale = 1.0 / (n * n) as f64;
    Array2::from_shape_fn((n, n), |(y, x)| {
        re[[n - 1 - y, n - 1 - x]] * scale * window[[y, x]]
    })
}

/// The toolbox's Gaussian MTF filter for gain `gnyq` at the Nyquist frequency of a `ratio`
/// decimation (`genMTF.m`): `α = √(((N−1)·f_cut/2)² / (−2 ln GNyq))`, `f_cut = 1/ratio`,
/// `fwind1(fspecial('gaussian', N, α) / max, kaiser(N))`.
pub fn mtf_kernel(gnyq: f64, ratio: usize) -> Image {
    let n = MTF_TAPS;
    let fcut = 1.0 / ratio as f64;
    let alpha = (((n as f64 - 1.0) * fcut / 2.0).powi(2) / (-2.0 * gnyq.ln())).sqrt();
    gaussian_design(n, alpha)
}

/// `LPfilterGauss.m`'s kernel (GNyq 0.3; note its `N·f_cut/2`, not `(N−1)·f_cut/2`), used by
/// MTF-GLP's PAN equalisation.
pub fn lp_gauss_kernel(ratio: usize) -> Image {
    let n = MTF_TAPS;
    let fcut = 1.0 / ratio as f64;
    let alpha = ((n as f64 * fcut / 2.0).powi(2) / (-2.0 * 0.3f64.ln())).sqrt();
    gaussian_design(n, alpha)
}

fn gaussian_design(n: usize, alpha: f64) -> Image {
    let h = fspecial_gaussian(n, alpha);
    let max = h.iter().cloned().fold(f64::MIN, f64::max);
    fwind1(&(h / max), &kaiser(n, KAISER_BETA))
}

/// A symmetric kernel as a sum of separable terms `λ_k · v_k v_kᵀ`.
#[derive(Debug, Clone)]
pub struct SeparableKernel {
    terms: Vec<(f64, Vec<f64>)>,
}

impl SeparableKernel {
    /// Eigen-decomposition (cyclic Jacobi) of the symmetric part of `k`, keeping the terms whose
    /// |λ| exceeds 1e-8 of the largest.
    pub fn new(k: &Image) -> SeparableKernel {
        let n = k.nrows();
        assert_eq!(k.dim(), (n, n), "SeparableKernel: square kernel expected");
        let mut a = (k + &k.t()) / 2.0;
        let mut v = Array2::<f64>::eye(n);
        for _sweep in 0..100 {
            let off: f64 = (0..n)
                .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| a[[i, j]] * a[[i, j]])
                .sum();
            let diag: f64 = (0..n).map(|i| a[[i, i]] * a[[i, i]]).sum();
            if off <= 1e-32 * diag {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    let apq = a[[p, q]];
                    if apq == 0.0 {
                        continue;
                    }
                    let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for r in 0..n {
                        let (arp, arq) = (a[[r, p]], a[[r, q]]);
                        a[[r, p]] = c * arp - s * arq;
                        a[[r, q]] = s * arp + c * arq;
                    }
                    for r in 0..n {
                        let (apr, aqr) = (a[[p, r]], a[[q, r]]);
                        a[[p, r]] = c * apr - s * aqr;
                        a[[q, r]] = s * apr + c * aqr;
                    }
                    for r in 0..n {
                        let (vrp, vrq) = (v[[r, p]], v[[r, q]]);
                        v[[r, p]] = c * vrp - s * vrq;
                        v[[r, q]] = s * vrp + c * vrq;
                    }
                }
            }
        }
        let largest = (0..n).map(|i| a[[i, i]].abs()).fold(0.0, f64::max);
        let mut terms: Vec<(f64, Vec<f64>)> = (0..n)
            .filter(|&i| a[[i, i]].abs() > 1e-8 * largest)
            .map(|i| (a[[i, i]], v.column(i).to_vec()))
            .collect();
        terms.sort_by(|x, y| y.0.abs().total_cmp(&x.0.abs()));
        SeparableKernel { terms }
    }

    /// Number of separable terms kept.
    pub fn rank(&self) -> usize {
        self.terms.len()
    }

    /// `imfilter(img, k, border)` ('same' output, MATLAB anchor).
    pub fn apply(&self, img: &Image, border: Border) -> Image {
        let n = self.terms.first().map_or(1, |(_, v)| v.len());
        let (lo, hi) = ((n - 1) / 2, n / 2);
        let padded = pad(&img.view(), (lo, hi, lo, hi), border);
        let mut out = Image::zeros(img.dim());
        for (lambda, v) in &self.terms {
            let part = correlate_separable_valid(&padded.view(), v, v);
            out.scaled_add(*lambda, &part);
        }
        out
    }
}

/// `MTF.m`: each band of `ms` filtered (replicate borders) with the MTF kernel of its GNyq.
/// Bands sharing a gain share one kernel decomposition.
pub fn mtf_filter_cube(ms: &Cube, gnyq: &[f64], ratio: usize) -> Cube {
    let mut out = Cube::zeros(ms.dim());
    let mut cache: Vec<(f64, SeparableKernel)> = Vec::new();
    for (b, band) in ms.outer_iter().enumerate() {
        let g = gnyq[b];
        if !cache.iter().any(|(cg, _)| *cg == g) {
            cache.push((g, SeparableKernel::new(&mtf_kernel(g, ratio))));
        }
        let k = &cache.iter().find(|(cg, _)| *cg == g).expect("cached").1;
        out.index_axis_mut(ndarray::Axis(0), b)
            .assign(&k.apply(&band.to_owned(), Border::Replicate));
    }
    out
}

/// `imfilter(img, kernel, 'replicate')` for one of this module's kernels.
pub fn filter(img: &Image, kernel: &Image) -> Image {
    SeparableKernel::new(kernel).apply(img, Border::Replicate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Output, correlate};

    #[test]
    fn kaiser_matches_matlab_values() {
        // MATLAB kaiser(5, 0.5): [0.9403 0.9849 1 0.9849 0.9403] (4 decimals).
        let k = kaiser(5, 0.5);
        assert!(
            (k[0] - 0.94030).abs() < 1e-4 && (k[2] - 1.0).abs() < 1e-15,
            "{k:?}"
        );
        assert!((k[1] - k[3]).abs() < 1e-15);
    }

    #[test]
    fn mtf_kernel_is_symmetric_lowpass_with_documented_gain() {
        let h = mtf_kernel(0.3, 2);
        assert!((h.sum() - 0.99968034).abs() < 1e-6, "{}", h.sum());
        let h4 = mtf_kernel(0.3, 4);
        assert!((h4.sum() - 0.99873995).abs() < 1e-6, "{}", h4.sum());
        assert!((&h - &h.t()).iter().all(|d| d.abs() < 1e-15));
    }

    #[test]
    fn separable_application_matches_full_correlation() {
        let img = Image::from_shape_fn((50, 47), |(y, x)| {
            ((y * 13 + x * 7) % 17) as f64 + 0.1 * x as f64
        });
        for (g, r) in [(0.3, 2), (0.15, 4), (0.22, 4)] {
            let k = mtf_kernel(g, r);
            let sep = SeparableKernel::new(&k);
            assert!(sep.rank() <= 12, "rank {}", sep.rank());
            let a = sep.apply(&img, Border::Replicate);
            let b = correlate(&img.view(), &k.view(), Border::Replicate, Output::Same);
            let err = (&a - &b).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 2e-6, "GNyq {g} ratio {r}: {err}");
        }
    }
}
