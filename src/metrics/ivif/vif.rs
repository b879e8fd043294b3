//! VIF-P: Sheikh & Bovik's pixel-domain visual information fidelity, four scales, exactly as
//! `vifp_mscale.m` (LIVE) and MMIF-CDDFuse `compare_viff` compute it, with the `tang2022`
//! option of uint8 products at the first scale.

use ndarray::Zip;

use super::filter;
use crate::dsp::{Image, gaussian_taps};

/// Noise variance of the HVS model (`sigma_nsq`).
const SIGMA_N2: f64 = 2.0;
const EPS: f64 = 1e-10;

/// Sum of log10 of factors ≥ 1, taking one logarithm per batch of products instead of one
/// per pixel (the logarithms were a third of VIF's time); a batch is flushed before it could
/// overflow.
struct Log10Sum {
    logs: f64,
    product: f64,
}

impl Log10Sum {
    fn new() -> Log10Sum {
        Log10Sum {
            logs: 0.0,
            product: 1.0,
        }
    }

    fn add(&mut self, factor: f64) {
        let p = self.product * factor;
        if p < 1e290 {
            self.product = p;
        } else {
            self.logs += self.product.log10() + factor.log10();
            self.product = 1.0;
        }
    }

    fn total(&self) -> f64 {
        self.logs + self.product.log10()
    }
}

/// [vifp(a, f), vifp(b, f)]: two references against one distorted image, sharing the
/// distorted image's filtered statistics. Order matters: the sources are the references.
///
/// With `saturate_scale1` the first-scale products ref², dist², ref·dist saturate at 255 as
/// MATLAB `.*` does on uint8 images (inputs must then be uint8-valued); the means and the
/// later scales stay in float. A value is NaN when its reference has no variance anywhere
/// (0/0), as in the references.
pub(super) fn vifp_pair(a: &Image, b: &Image, f: &Image, saturate_scale1: bool) -> [f64; 2] {
    let originals = [a, b];
    let mut refs: [Option<Image>; 2] = [None, None];
    let mut dist: Option<Image> = None;
    let mut num = [Log10Sum::new(), Log10Sum::new()];
    let mut den = [Log10Sum::new(), Log10Sum::new()];
    for scale in 1..=4u32 {
        let n = (1usize << (5 - scale)) + 1;
        // fspecial('gaussian', n, n/5) is separable; none of its taps falls under eps·max.
        let taps = gaussian_taps(n, n as f64 / 5.0);
        let filt = |x: &Image| filter::valid(x, &taps, 1);
        // filter2 'valid', then x(1:2:end, 1:2:end), computing only the samples kept.
        let reduce = |x: &Image| filter::valid(x, &taps, 2);
        if scale > 1 {
            for (r, original) in refs.iter_mut().zip(originals) {
                *r = Some(reduce(r.as_ref().unwrap_or(original)));
            }
            dist = Some(reduce(dist.as_ref().unwrap_or(f)));
        }
        let saturate = saturate_scale1 && scale == 1;
        let product = |x: &Image, y: &Image| {
            Zip::from(x)
                .and(y)
                .map_collect(|&u, &v| if saturate { (u * v).min(255.0) } else { u * v })
        };
        let d = dist.as_ref().unwrap_or(f);
        let mu2 = filt(d);
        let e22 = filt(&product(d, d));
        for i in 0..2 {
            let r = refs[i].as_ref().unwrap_or(originals[i]);
            let mu1 = filt(r);
            let e11 = filt(&product(r, r));
            let e12 = filt(&product(r, d));
            let (num, den) = (&mut num[i], &mut den[i]);
            Zip::from(&mu1)
                .and(&mu2)
                .and(&e11)
                .and(&e22)
                .and(&e12)
                .for_each(|&m1, &m2, &e11, &e22, &e12| {
                    let (g, s1, sv) = gain(e11 - m1 * m1, e22 - m2 * m2, e12 - m1 * m2);
                    num.add(1.0 + g * g * s1 / (sv + SIGMA_N2));
                    den.add(1.0 + s1 / SIGMA_N2);
                });
        }
    }
    [0, 1].map(|i| num[i].total() / den[i].total())
}

/// The per-pixel gain g, source variance σ1² and distortion variance sv², with the reference
/// code's guards in its order.
fn gain(s1: f64, s2: f64, s12: f64) -> (f64, f64, f64) {
    let mut s1 = s1.max(0.0);
    let s2 = s2.max(0.0);
    let mut g = s12 / (s1 + EPS);
    let mut sv = s2 - g * s12;
    if s1 < EPS {
        g = 0.0;
        sv = s2;
        s1 = 0.0;
    }
    if s2 < EPS {
        g = 0.0;
        sv = 0.0;
    }
    if g < 0.0 {
        sv = s2;
        g = 0.0;
    }
    if sv <= EPS {
        sv = EPS;
    }
    (g, s1, sv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Border, Output, correlate_separable};

    fn texture(h: usize, w: usize) -> Image {
        Image::from_shape_fn((h, w), |(y, x)| ((x * 37 + y * 11 + x * y) % 251) as f64)
    }

    #[test]
    fn identity_is_one_and_noise_lowers_it() {
        let a = texture(64, 80);
        let [v, _] = vifp_pair(&a, &a, &a, false);
        assert!((v - 1.0).abs() < 1e-9, "{v}");
        let blurred = correlate_separable(
            &a.view(),
            &[0.25, 0.5, 0.25],
            &[0.25, 0.5, 0.25],
            Border::Replicate,
            Output::Same,
        );
        let [v, w] = vifp_pair(&a, &blurred, &blurred, false);
        assert!((w - 1.0).abs() < 1e-9, "{w}");
        assert!(v > 0.0 && v < 1.0, "{v}");
    }

    #[test]
    fn constant_reference_is_nan() {
        let [v, w] = vifp_pair(
            &Image::from_elem((50, 50), 7.0),
            &texture(50, 50),
            &texture(50, 50),
            false,
        );
        assert!(v.is_nan() && (w - 1.0).abs() < 1e-9);
    }

    #[test]
    fn log_sum_matches_plain_logs() {
        let mut s = Log10Sum::new();
        let mut want = 0.0;
        for i in 0..10_000 {
            let f = 1.0 + (i % 97) as f64 * 1e3 + if i % 1000 == 0 { 1e200 } else { 0.0 };
            s.add(f);
            want += f64::log10(f);
        }
        assert!(
            (s.total() - want).abs() < 1e-9 * want,
            "{} vs {want}",
            s.total()
        );
    }
}
