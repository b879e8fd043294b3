//! SSIM(F,A) + SSIM(F,B) in two forms: Wang et al.'s (`ssim_index.m`: Gaussian 11x11, σ 1.5,
//! L = 255, mean over the 'valid' region) for the default convention, and scikit-image 0.19's
//! `structural_similarity` defaults as MMIF-CDDFuse calls it (7x7 uniform window, sample
//! covariance, `data_range = 2`, map cropped by 3 px) for `cddfuse`.

use ndarray::Zip;

use super::filter;
use crate::dsp::{Image, gaussian_taps};

const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// Window statistics and constants of one SSIM flavour.
struct Flavour {
    taps: Vec<f64>,
    /// Multiplies the (co)variances: 1 for population, NP/(NP−1) for sample covariance.
    cov_norm: f64,
    c1: f64,
    c2: f64,
}

impl Flavour {
    fn filt(&self, x: &Image) -> Image {
        filter::valid(x, &self.taps, 1)
    }

    /// SSIM(F,A) + SSIM(F,B), each the mean of its map over the 'valid' region; F's window
    /// statistics are computed once.
    fn sum(&self, f: &Image, a: &Image, b: &Image) -> f64 {
        let mu_f = self.filt(f);
        let e_ff = self.filt(&(f * f));
        let one = |x: &Image| {
            let mu_x = self.filt(x);
            let e_xx = self.filt(&(x * x));
            let e_fx = self.filt(&(f * x));
            let n = mu_x.len() as f64;
            let mut total = 0.0;
            Zip::from(&mu_f)
                .and(&e_ff)
                .and(&mu_x)
                .and(&e_xx)
                .and(&e_fx)
                .for_each(|&mf, &eff, &mx, &exx, &efx| {
                    let vf = self.cov_norm * (eff - mf * mf);
                    let vx = self.cov_norm * (exx - mx * mx);
                    let vfx = self.cov_norm * (efx - mf * mx);
                    let num = (2.0 * mf * mx + self.c1) * (2.0 * vfx + self.c2);
                    let den = (mf * mf + mx * mx + self.c1) * (vf + vx + self.c2);
                    total += num / den;
                });
            total / n
        };
        one(a) + one(b)
    }
}

/// Wang SSIM, Gaussian 11/1.5, L = 255, K = (0.01, 0.03), 'valid' mean; SSIM(F,A) + SSIM(F,B).
/// NaN for images smaller than 11x11.
pub(super) fn wang_sum(f: &Image, a: &Image, b: &Image) -> f64 {
    let l = 255.0;
    Flavour {
        taps: gaussian_taps(11, 1.5),
        cov_norm: 1.0,
        c1: (K1 * l) * (K1 * l),
        c2: (K2 * l) * (K2 * l),
    }
    .sum(f, a, b)
}

/// scikit-image 0.19 `structural_similarity(F, X)` defaults on float input: 7x7 uniform
/// window, sample covariance (×49/48), `data_range = 2` (float images taken as [−1, 1], so the
/// constants are negligible on 0–255 data), mean over the map cropped by 3 px (= 'valid').
/// NaN for images smaller than 7x7.
pub(super) fn skimage019_sum(f: &Image, a: &Image, b: &Image) -> f64 {
    let (r, np) = (2.0, 49.0);
    Flavour {
        taps: vec![1.0 / 7.0; 7],
        cov_norm: np / (np - 1.0),
        c1: (K1 * r) * (K1 * r),
        c2: (K2 * r) * (K2 * r),
    }
    .sum(f, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_two_and_offset_lowers_it() {
        let a = Image::from_shape_fn((30, 40), |(y, x)| ((x * 37 + y * 11 + x * y) % 251) as f64);
        assert!((wang_sum(&a, &a, &a) - 2.0).abs() < 1e-12);
        assert!((skimage019_sum(&a, &a, &a) - 2.0).abs() < 1e-12);
        let b = &a * 0.5 + 20.0;
        let s = wang_sum(&a, &a, &b);
        assert!(s > 1.0 && s < 2.0, "{s}");
    }
}
