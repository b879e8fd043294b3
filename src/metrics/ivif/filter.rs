//! The one filter VIF-P and SSIM need: a symmetric separable window applied 'valid' (MATLAB
//! `filter2(win, x, 'valid')`), optionally keeping only every other row and column.
//!
//! It computes the sums of [`crate::dsp::correlate_separable`] with `Output::Valid` (rounded in
//! a different order), but one output row at a time — vertical taps into a row buffer, then
//! horizontal taps — so the working set stays in cache, and with mirrored taps paired so each
//! pair costs one multiplication. Whole-image passes per tap were most of VIF's and SSIM's
//! time.

use crate::dsp::Image;

/// 'valid' correlation of `img` with `taps ⊗ taps` (`taps` must be symmetric), keeping rows and
/// columns `0, step, 2·step, …` of the result (`step` 1: all of it; 2: VIF's decimation
/// `x(1:2:end, 1:2:end)`). A `0 x 0` result when the image is smaller than the window
/// (MATLAB returns an empty matrix too).
pub(super) fn valid(img: &Image, taps: &[f64], step: usize) -> Image {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { valid_avx2(img, taps, step) };
    }
    valid_any(img, taps, step)
}

/// [`valid`] compiled for AVX2 (4 doubles per instruction instead of SSE2's 2); same
/// arithmetic, same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn valid_avx2(img: &Image, taps: &[f64], step: usize) -> Image {
    valid_any(img, taps, step)
}

#[inline(always)]
fn valid_any(img: &Image, taps: &[f64], step: usize) -> Image {
    let n = taps.len();
    let (h, w) = img.dim();
    debug_assert!(step > 0 && taps.iter().zip(taps.iter().rev()).all(|(a, b)| a == b));
    if n == 0 || h < n || w < n {
        return Image::zeros((0, 0));
    }
    let (oh, ow) = ((h - n) / step + 1, (w - n) / step + 1);
    let src = img.as_standard_layout();
    let data = src.as_slice().expect("standard layout is contiguous");
    let half = n / 2;
    let mut out = vec![0.0; oh * ow];
    let mut column = vec![0.0; w];
    for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
        let y = oy * step;
        let row = |k: usize| &data[(y + k) * w..(y + k + 1) * w];
        // Vertical: centre tap (odd n), then mirrored pairs.
        if n % 2 == 1 {
            let t = taps[half];
            for (c, &v) in column.iter_mut().zip(row(half)) {
                *c = t * v;
            }
        } else {
            column.fill(0.0);
        }
        for (k, &t) in taps[..half].iter().enumerate() {
            pair_axpy(&mut column, t, row(k), row(n - 1 - k));
        }
        // Horizontal, at columns 0, step, 2·step, ...
        if step == 1 {
            if n % 2 == 1 {
                let t = taps[half];
                for (o, &v) in out_row.iter_mut().zip(&column[half..half + ow]) {
                    *o = t * v;
                }
            }
            for (k, &t) in taps[..half].iter().enumerate() {
                pair_axpy(
                    out_row,
                    t,
                    &column[k..k + ow],
                    &column[n - 1 - k..n - 1 - k + ow],
                );
            }
        } else {
            for (ox, o) in out_row.iter_mut().enumerate() {
                let window = &column[ox * step..ox * step + n];
                let mut acc = if n % 2 == 1 {
                    taps[half] * window[half]
                } else {
                    0.0
                };
                for (k, &t) in taps[..half].iter().enumerate() {
                    acc += t * (window[k] + window[n - 1 - k]);
                }
                *o = acc;
            }
        }
    }
    Image::from_shape_vec((oh, ow), out).expect("shape matches the buffer")
}

/// `acc[i] += t · (u[i] + v[i])`. Indexing equal-length slices lets the compiler vectorise
/// it; the three-way iterator zip it replaces stayed scalar.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // the indexed form is the one that vectorises
fn pair_axpy(acc: &mut [f64], t: f64, u: &[f64], v: &[f64]) {
    let n = acc.len();
    let (u, v) = (&u[..n], &v[..n]);
    for i in 0..n {
        acc[i] += t * (u[i] + v[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::{Border, Output, correlate_separable, decimate, gaussian_taps};

    #[test]
    fn equals_dsp_valid_correlation() {
        let img = Image::from_shape_fn((23, 31), |(y, x)| ((x * 37 + y * 11 + x * y) % 251) as f64);
        for n in [3, 7, 11, 17, 4] {
            let taps = gaussian_taps(n, n as f64 / 5.0);
            let want = correlate_separable(&img.view(), &taps, &taps, Border::Zero, Output::Valid);
            for step in [1, 2, 3] {
                let want = decimate(&want.view(), 0, step);
                let got = valid(&img, &taps, step);
                assert_eq!(got.dim(), want.dim(), "n {n} step {step}");
                assert!(
                    (&got - &want).iter().all(|d| d.abs() < 1e-11),
                    "n {n} step {step}"
                );
            }
        }
        assert_eq!(valid(&img.t().to_owned(), &[1.0; 24], 1).dim(), (0, 0));
    }
}
