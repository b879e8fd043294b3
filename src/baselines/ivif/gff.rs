//! Guided-filter fusion, GFF (Li, Kang and Hu, "Image Fusion With Guided Filtering", IEEE TIP
//! 22(7), 2013), two sources, following the authors' `GFF.m` step by step.
//!
//! All of it runs on images scaled to `[0, 1]` as the authors' code does: the guided filter's
//! ε values (0.3, 1e-6) are in squared `[0, 1]` units. Steps, for each source X:
//! 1. two-scale split: base `B = mean_31x31(X)` (replicated border), detail `D = X − B`;
//! 2. saliency `S = |Laplacian(X)| ∗ Gaussian 11x11, σ 5` (replicated borders);
//! 3. `P = 1` where X has the larger saliency (ties: the first source, MATLAB `max`);
//! 4. `W_B = GF(P, guide X, r 45, ε 0.3)`, `W_D = GF(P, guide X, r 7, ε 1e-6)`, each clamped to
//!    `[0, 1]` and quantised to 1/255 (the reference stores them as `uint8`), plus 1e-12,
//!    normalised to sum 1 over the sources;
//! 5. `F = Σ W_B·B + Σ W_D·D`.

use ndarray::Zip;

use super::guided_filter::guided_filter;
use crate::dsp::{
    Border, Image, Output, box_mean, correlate, correlate_separable, gaussian_taps, pad,
};

/// Side of the mean filter giving the base layer.
const BASE_SIZE: usize = 31;
/// Gaussian smoothing of the Laplacian magnitude: 11x11, σ 5.
const SALIENCY_SIZE: usize = 11;
const SALIENCY_SIGMA: f64 = 5.0;
/// Guided-filter radius and regulariser of the base-layer weights.
const R_BASE: usize = 45;
const EPS_BASE: f64 = 0.3;
/// Guided-filter radius and regulariser of the detail-layer weights.
const R_DETAIL: usize = 7;
const EPS_DETAIL: f64 = 1e-6;

/// `BASE_SIZE x BASE_SIZE` mean with a replicated border (MATLAB `imfilter(X,
/// fspecial('average', 31), 'replicate')`), through one integral image of the padded image.
fn base_layer(x: &Image) -> Image {
    let r = BASE_SIZE / 2;
    let padded = pad(&x.view(), (r, r, r, r), Border::Replicate);
    let (h, w) = x.dim();
    // Away from the padded image's border every window is whole (31²), so the clipped mean
    // there is the plain mean of the replicate-padded image.
    box_mean(&padded.view(), r)
        .slice(ndarray::s![r..r + h, r..r + w])
        .to_owned()
}

/// `|X ∗ [0 1 0; 1 −4 1; 0 1 0]|` smoothed by the 11x11 σ 5 Gaussian, replicated borders.
fn saliency(x: &Image) -> Image {
    let laplacian = ndarray::array![[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]];
    let magnitude = correlate(
        &x.view(),
        &laplacian.view(),
        Border::Replicate,
        Output::Same,
    )
    .mapv(f64::abs);
    let taps = gaussian_taps(SALIENCY_SIZE, SALIENCY_SIGMA);
    correlate_separable(
        &magnitude.view(),
        &taps,
        &taps,
        Border::Replicate,
        Output::Same,
    )
}

/// The two weight maps of one layer, refined by the guided filter and normalised.
fn weights(xa: &Image, xb: &Image, pa: &Image, r: usize, eps: f64) -> (Image, Image) {
    // The reference rounds through uint8, which also clamps the filter's overshoot.
    let quantise = |w: f64| (w.clamp(0.0, 1.0) * 255.0).round() / 255.0 + 1e-12;
    let pb = pa.mapv(|p| 1.0 - p);
    let mut wa = guided_filter(xa, pa, r, eps);
    let mut wb = guided_filter(xb, &pb, r, eps);
    wa.mapv_inplace(quantise);
    wb.mapv_inplace(quantise);
    Zip::from(&mut wa).and(&mut wb).for_each(|a, b| {
        let sum = *a + *b;
        *a /= sum;
        *b /= sum;
    });
    (wa, wb)
}

/// Fuses `a` and `b` (0–255, same shape, checked by the caller); the result is on 0–255, not
/// clamped.
pub fn fuse(a: &Image, b: &Image) -> Image {
    let (xa, xb) = (a / 255.0, b / 255.0);
    let (sa, sb) = (saliency(&xa), saliency(&xb));
    let pa = Zip::from(&sa)
        .and(&sb)
        .map_collect(|&s, &t| if s >= t { 1.0 } else { 0.0 });
    let (wba, wbb) = weights(&xa, &xb, &pa, R_BASE, EPS_BASE);
    let (wda, wdb) = weights(&xa, &xb, &pa, R_DETAIL, EPS_DETAIL);
    let (mut fa, mut fb) = (base_layer(&xa), base_layer(&xb));
    // W_B·B + W_D·(X − B) per source, in place over B (fewer full-size temporaries).
    for (f, x, wb, wd) in [(&mut fa, &xa, &wba, &wda), (&mut fb, &xb, &wbb, &wdb)] {
        Zip::from(f)
            .and(x)
            .and(wb)
            .and(wd)
            .for_each(|f, &x, &wb, &wd| *f = wb * *f + wd * (x - *f));
    }
    (fa + fb) * 255.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::ivif::testing::{max_abs_diff, texture};

    #[test]
    fn base_layer_is_the_replicated_31x31_mean() {
        let x = texture(20, 40, 1);
        let direct = correlate(
            &x.view(),
            &Image::from_elem((31, 31), 1.0 / 961.0).view(),
            Border::Replicate,
            Output::Same,
        );
        assert!(max_abs_diff(&base_layer(&x), &direct) < 1e-9);
    }

    #[test]
    fn identical_sources_give_the_source_back() {
        // Ties pick the first source with weight 1 - 1e-12: F = B + D = X.
        let x = texture(45, 38, 2);
        assert!(max_abs_diff(&fuse(&x, &x), &x) < 1e-6);
    }

    #[test]
    fn weights_are_normalised_and_follow_saliency() {
        // Left half of `a` textured, right half of `b`: each side's weight goes to its texture.
        let t = texture(60, 80, 3);
        let a = Image::from_shape_fn((60, 80), |(y, x)| if x < 40 { t[[y, x]] } else { 128.0 });
        let b = Image::from_shape_fn((60, 80), |(y, x)| if x >= 40 { t[[y, x]] } else { 128.0 });
        let f = fuse(&a, &b);
        let avg = (&a + &b) * 0.5;
        // Mean |fused - src| over some columns.
        let err = |fused: &Image, cols: std::ops::Range<usize>, src: &Image| {
            let n = (60 * cols.len()) as f64;
            let mut sum = 0.0;
            for y in 0..60 {
                for x in cols.clone() {
                    sum += (fused[[y, x]] - src[[y, x]]).abs();
                }
            }
            sum / n
        };
        // Away from the seam the fused image is close to the textured source; averaging is not.
        for (cols, src) in [(0..25, &a), (55..80, &b)] {
            let (gff, average) = (err(&f, cols.clone(), src), err(&avg, cols, src));
            assert!(gff < 0.1 * average, "GFF {gff}, average {average}");
        }
        let (xa, xb) = (&a / 255.0, &b / 255.0);
        let pa = Zip::from(&saliency(&xa))
            .and(&saliency(&xb))
            .map_collect(|&s, &t| f64::from(u8::from(s >= t)));
        let (wa, wb) = weights(&xa, &xb, &pa, R_BASE, EPS_BASE);
        assert!((&wa + &wb).iter().all(|s| (s - 1.0).abs() < 1e-12));
        assert!(wa.iter().chain(&wb).all(|w| (0.0..=1.0).contains(w)));
    }

    #[test]
    fn tiny_and_odd_sizes() {
        for (h, w) in [(1, 1), (2, 3), (3, 2), (37, 53)] {
            let (a, b) = (texture(h, w, 4), texture(h, w, 5));
            let f = fuse(&a, &b);
            assert_eq!(f.dim(), (h, w));
            assert!(f.iter().all(|v| v.is_finite()));
        }
    }
}
