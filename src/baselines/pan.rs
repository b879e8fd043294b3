//! Classical pan-sharpening baselines (METRICS.md §5), each as in Vivone's MATLAB toolbox:
//! EXP (`interp23tap` only), Brovey, GIHS, GSA (component substitution) and MTF-GLP,
//! MTF-GLP-HPM, SFIM (multiresolution analysis).
//!
//! Every method takes the low-resolution MS (`[bands, h, w]`, DN), the PAN (`r·h × r·w`) and
//! the ratio `r` (a power of two, as `interp23tap` needs), upsamples the MS with
//! [`interp23tap`] (M̃; an MS sample lands on PAN position `r·i + r/2`) and returns `[bands,
//! r·h, r·w]` floats in the same DN scale, **not clamped** (quantise when saving).

use std::str::FromStr;

use ndarray::Axis;

use crate::dsp::{Border, Cube, Image, Output, correlate_separable};
use crate::pansharpen::mtf::{SeparableKernel, lp_gauss_kernel, mtf_kernel};
use crate::pansharpen::wald::decimate_nearest;
use crate::pansharpen::{PanError, Sensor, check_pair, interp23tap};

/// A classical pan-sharpening method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PanMethod {
    /// M̃ = `interp23tap(MS)`: no PAN detail at all (the floor).
    Exp,
    /// Brovey transform (`Brovey.m`): PAN equalised to I = mean_b M̃_b (mean and std), then
    /// `F_b = M̃_b · P′ / I`.
    Brovey,
    /// Generalised IHS (`IHS.m`): `F_b = M̃_b + (P′ − I)`, P′ the PAN equalised to I.
    Gihs,
    /// Gram–Schmidt adaptive (`GSA.m`, Aiazzi 2007): intensity from a regression of the
    /// low-pass PAN on the MS bands, band gains `cov(I, M̃_b)/var(I)`.
    Gsa,
    /// MTF-matched generalised Laplacian pyramid (`MTF_GLP.m`), additive injection.
    MtfGlp,
    /// MTF-GLP with high-pass modulation (`MTF_GLP_HPM.m`), multiplicative injection.
    MtfGlpHpm,
    /// Smoothing-filter-based intensity modulation (`SFIM.m`): box low-pass of the equalised
    /// PAN, `F_b = M̃_b · P_b / box(P_b)`.
    Sfim,
}

impl PanMethod {
    /// Every method, in report order.
    pub const ALL: [PanMethod; 7] = [
        PanMethod::Exp,
        PanMethod::Brovey,
        PanMethod::Gihs,
        PanMethod::Gsa,
        PanMethod::MtfGlp,
        PanMethod::MtfGlpHpm,
        PanMethod::Sfim,
    ];

    /// `"exp"`, `"brovey"`, `"gihs"`, `"gsa"`, `"mtf-glp"`, `"mtf-glp-hpm"`, `"sfim"`.
    pub fn name(self) -> &'static str {
        match self {
            PanMethod::Exp => "exp",
            PanMethod::Brovey => "brovey",
            PanMethod::Gihs => "gihs",
            PanMethod::Gsa => "gsa",
            PanMethod::MtfGlp => "mtf-glp",
            PanMethod::MtfGlpHpm => "mtf-glp-hpm",
            PanMethod::Sfim => "sfim",
        }
    }
}

impl FromStr for PanMethod {
    type Err = PanError;

    /// Parses a [`PanMethod::name`] (case-insensitive; `_` accepted for `-`).
    fn from_str(s: &str) -> Result<PanMethod, PanError> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        PanMethod::ALL
            .into_iter()
            .find(|m| m.name() == norm)
            .ok_or_else(|| PanError::UnknownMethod(s.to_owned()))
    }
}

impl std::fmt::Display for PanMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// MATLAB's `eps`, added to denominators exactly where the toolbox adds it.
const EPS: f64 = f64::EPSILON;

fn mean(x: &Image) -> f64 {
    x.sum() / x.len() as f64
}

/// `std2`: sample standard deviation (N − 1).
fn std2(x: &Image) -> f64 {
    let m = mean(x);
    let n = x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt()
}

/// `(x − mean x)·(target_std / x_std) + target_mean`, the toolbox's histogram "equalisation".
/// A constant `x` (std 0) maps to `target_mean`.
fn equalise(x: &Image, x_std: f64, target_mean: f64, target_std: f64) -> Image {
    let m = mean(x);
    let gain = if x_std > 0.0 { target_std / x_std } else { 0.0 };
    x.mapv(|v| (v - m) * gain + target_mean)
}

/// Pan-sharpens `ms` (`[bands, h, w]` DN) with `pan` (`ratio·h × ratio·w`) by `method`.
/// The sensor chooses the MTF filters of MTF-GLP(-HPM); the others ignore it.
///
/// Errors: empty inputs, a PAN that is not `ratio` times the MS size, a ratio that is not a
/// power of two ≥ 2.
pub fn pansharpen(
    method: PanMethod,
    ms: &Cube,
    pan: &Image,
    ratio: usize,
    sensor: &Sensor,
) -> Result<Cube, PanError> {
    check_pair(ms, pan, ratio)?;
    let up = interp23tap(ms, ratio)?;
    Ok(match method {
        PanMethod::Exp => up,
        PanMethod::Brovey => brovey(&up, pan),
        PanMethod::Gihs => gihs(&up, pan),
        PanMethod::Gsa => gsa(&up, pan, ms, ratio),
        PanMethod::MtfGlp => mtf_glp(&up, pan, ratio, sensor, false),
        PanMethod::MtfGlpHpm => mtf_glp(&up, pan, ratio, sensor, true),
        PanMethod::Sfim => sfim(&up, pan, ratio),
    })
}

fn intensity(up: &Cube) -> Image {
    up.mean_axis(Axis(0)).expect("at least one band")
}

fn brovey(up: &Cube, pan: &Image) -> Cube {
    let i = intensity(up);
    let p = equalise(pan, std2(pan), mean(&i), std2(&i));
    let ratio = ndarray::Zip::from(&p)
        .and(&i)
        .map_collect(|p, i| p / (i + EPS));
    let mut out = up.clone();
    for mut band in out.axis_iter_mut(Axis(0)) {
        band *= &ratio;
    }
    out
}

fn gihs(up: &Cube, pan: &Image) -> Cube {
    let i = intensity(up);
    let p = equalise(pan, std2(pan), mean(&i), std2(&i));
    let detail = &p - &i;
    let mut out = up.clone();
    for mut band in out.axis_iter_mut(Axis(0)) {
        band += &detail;
    }
    out
}

/// Stand-in for the toolbox's `LPfilterPlusDec` (an undecimated Starck–Murtagh wavelet
/// approximation via `ndwt2_working`, detail bands zeroed, reconstructed, then
/// `imresize(…, 1/r, 'nearest')`): per level `l < ⌈log2 r⌉` the B3-spline `[1 4 6 4 1]/16`
/// dilated by `2^l`, applied twice (analysis and synthesis low-pass), symmetric borders, then
/// the nearest decimation. The wavelet toolbox's border extension is not reproduced; GSA uses
/// this only for its global regression weights.
fn lp_filter_plus_dec(img: &Image, ratio: usize) -> Image {
    let levels = (ratio as f64).log2().ceil() as u32;
    let mut cur = img.clone();
    for l in 0..levels {
        let step = 1usize << l;
        let mut taps = vec![0.0; 4 * step + 1];
        for (k, v) in [1.0, 4.0, 6.0, 4.0, 1.0].into_iter().enumerate() {
            taps[k * step] = v / 16.0;
        }
        for _ in 0..2 {
            cur = correlate_separable(&cur.view(), &taps, &taps, Border::Symmetric, Output::Same);
        }
    }
    decimate_nearest(&cur, ratio)
}

/// Least squares `argmin ‖X·a − y‖` by the normal equations (Gaussian elimination with partial
/// pivoting); `x_cols` are the regressors. A singular system gives zeros for the dependent
/// columns' weights.
fn least_squares(x_cols: &[Image], y: &Image) -> Vec<f64> {
    let n = x_cols.len();
    let mut a = vec![vec![0.0; n + 1]; n];
    for i in 0..n {
        for j in 0..n {
            a[i][j] = x_cols[i].iter().zip(&x_cols[j]).map(|(p, q)| p * q).sum();
        }
        a[i][n] = x_cols[i].iter().zip(y).map(|(p, q)| p * q).sum();
    }
    for c in 0..n {
        let pivot = (c..n)
            .max_by(|&p, &q| a[p][c].abs().total_cmp(&a[q][c].abs()))
            .expect("rows");
        a.swap(c, pivot);
        if a[c][c].abs() < 1e-300 {
            continue;
        }
        let pivot_row = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot_row[c];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(c) {
                    *v -= f * p;
                }
            }
        }
    }
    (0..n)
        .map(|i| {
            if a[i][i].abs() < 1e-300 {
                0.0
            } else {
                a[i][n] / a[i][i]
            }
        })
        .collect()
}

fn gsa(up: &Cube, pan: &Image, ms_lr: &Cube, ratio: usize) -> Cube {
    let bands = up.dim().0;
    let center = |c: &Cube| -> Vec<Image> {
        c.axis_iter(Axis(0))
            .map(|b| {
                let b = b.to_owned();
                let m = mean(&b);
                b - m
            })
            .collect()
    };
    let up0 = center(up);
    let mut lr0 = center(ms_lr);
    let pan0 = pan - mean(pan);
    let pan_lp = lp_filter_plus_dec(&pan0, ratio);
    lr0.push(Image::ones(lr0[0].dim()));
    let alpha = least_squares(&lr0, &pan_lp);
    let mut i = Image::from_elem(up0[0].dim(), alpha[bands]);
    for (b, band) in up0.iter().enumerate() {
        i.scaled_add(alpha[b], band);
    }
    let i0 = &i - mean(&i);
    let n = i0.len() as f64;
    let var_i = i0.iter().map(|v| v * v).sum::<f64>() / (n - 1.0);
    let delta = &pan0 - &i0;
    let mut out = Cube::zeros(up.dim());
    for (b, band) in up0.iter().enumerate() {
        // cov(I0, M̃0_b) / var(I0), both with N − 1 (band and I0 are zero-mean).
        let cov = band.iter().zip(&i0).map(|(p, q)| p * q).sum::<f64>() / (n - 1.0);
        let g = if var_i > 0.0 { cov / var_i } else { 0.0 };
        let mut f = band + &(&delta * g);
        // Final mean equalisation to the upsampled band's mean.
        let shift = mean(&up.index_axis(Axis(0), b).to_owned()) - mean(&f);
        f += shift;
        out.index_axis_mut(Axis(0), b).assign(&f);
    }
    out
}

fn mtf_glp(up: &Cube, pan: &Image, ratio: usize, sensor: &Sensor, hpm: bool) -> Cube {
    let bands = up.dim().0;
    let gnyq = sensor.gnyq(bands);
    let pan_mean = mean(pan);
    let lp_std = std2(&SeparableKernel::new(&lp_gauss_kernel(ratio)).apply(pan, Border::Replicate));
    // The per-band PAN P_b = a_b·P + c_b is an affine map of P and the low-pass chain
    // (MTF filter with replicate borders, nearest decimation, interp23tap) is linear and maps
    // a constant c to c·Σh, so P_L,b = a_b·L(P) + c_b·Σh with L(P) computed once per gain.
    let mut lows: Vec<(f64, Image, f64)> = Vec::new();
    let mut out = Cube::zeros(up.dim());
    for (b, &g) in gnyq.iter().enumerate() {
        if !lows.iter().any(|(cg, _, _)| *cg == g) {
            let k = mtf_kernel(g, ratio);
            let dc = k.sum();
            let filtered = SeparableKernel::new(&k).apply(pan, Border::Replicate);
            let low = decimate_nearest(&filtered, ratio).insert_axis(Axis(0));
            let low = interp23tap(&low, ratio)
                .expect("ratio checked")
                .index_axis_move(Axis(0), 0);
            lows.push((g, low, dc));
        }
        let (_, low, dc) = lows.iter().find(|(cg, _, _)| *cg == g).expect("cached");
        let m = up.index_axis(Axis(0), b).to_owned();
        let a = if lp_std > 0.0 { std2(&m) / lp_std } else { 0.0 };
        let c = mean(&m) - a * pan_mean;
        let p_b = pan.mapv(|v| a * v + c);
        let p_low = low.mapv(|v| a * v + c * dc);
        let f = if hpm {
            ndarray::Zip::from(&m)
                .and(&p_b)
                .and(&p_low)
                .map_collect(|m, p, l| m * (p / (l + EPS)))
        } else {
            &m + &p_b - &p_low
        };
        out.index_axis_mut(Axis(0), b).assign(&f);
    }
    out
}

fn sfim(up: &Cube, pan: &Image, ratio: usize) -> Cube {
    // SFIM.m: an odd box, ratio + 1 for even ratios.
    let size = if ratio.is_multiple_of(2) {
        ratio + 1
    } else {
        ratio
    };
    let taps = vec![1.0 / size as f64; size];
    let pan_std = std2(pan);
    let pan_box = correlate_separable(&pan.view(), &taps, &taps, Border::Replicate, Output::Same);
    let pan_mean = mean(pan);
    let mut out = Cube::zeros(up.dim());
    for (b, m) in up.axis_iter(Axis(0)).enumerate() {
        let m = m.to_owned();
        let a = if pan_std > 0.0 {
            std2(&m) / pan_std
        } else {
            0.0
        };
        let c = mean(&m) - a * pan_mean;
        // box(a·P + c) = a·box(P) + c: the box filter sums to one.
        let f = ndarray::Zip::from(&m)
            .and(pan)
            .and(&pan_box)
            .map_collect(|m, p, l| m * (a * p + c) / (a * l + c + EPS));
        out.index_axis_mut(Axis(0), b).assign(&f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for m in PanMethod::ALL {
            assert_eq!(m.name().parse::<PanMethod>().unwrap(), m);
        }
        assert_eq!("MTF_GLP".parse::<PanMethod>().unwrap(), PanMethod::MtfGlp);
        assert!("pca".parse::<PanMethod>().is_err());
    }

    #[test]
    fn methods_keep_shape_and_flat_inputs() {
        let ms = Cube::from_shape_fn((4, 16, 16), |(b, _, _)| 50.0 + 10.0 * b as f64);
        let pan = Image::from_elem((32, 32), 80.0);
        for m in PanMethod::ALL {
            let f = pansharpen(m, &ms, &pan, 2, &Sensor::other()).unwrap();
            assert_eq!(f.dim(), (4, 32, 32), "{m}");
            assert!(f.iter().all(|v| v.is_finite()), "{m}");
            if matches!(m, PanMethod::MtfGlp | PanMethod::MtfGlpHpm) {
                // A flat PAN makes the toolbox's std ratio 0/0; only finiteness is promised.
                continue;
            }
            for b in 0..4 {
                let want = 50.0 + 10.0 * b as f64;
                assert!(
                    f.index_axis(Axis(0), b)
                        .iter()
                        .all(|v| (v - want).abs() < 1e-6),
                    "{m}"
                );
            }
        }
        assert!(
            pansharpen(
                PanMethod::Gsa,
                &ms,
                &Image::zeros((30, 32)),
                2,
                &Sensor::other()
            )
            .is_err()
        );
        assert!(
            pansharpen(
                PanMethod::Exp,
                &ms,
                &Image::zeros((48, 48)),
                3,
                &Sensor::other()
            )
            .is_err()
        );
    }
}
