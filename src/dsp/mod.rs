//! Grey-image signal processing shared by the quality metrics and the classical baselines:
//! 2-D `f64` images, correlation with MATLAB-style border modes and output shapes, and the
//! standard kernels (Gaussian, box). Everything here is plain, single-threaded Rust on
//! [`ndarray`]; the metric and baseline modules build on it instead of re-implementing filters.
//!
//! Conventions (they matter for matching reference codes to 1e-4):
//! - an [`Image`] is indexed `[row, column]`;
//! - [`correlate`] is MATLAB `imfilter` / `filter2` (no kernel flip); [`convolve`] is `conv2`
//!   (kernel flipped);
//! - a kernel of size n is anchored at 0-based index `(n - 1) / 2`, as MATLAB does, so even
//!   sizes lean up/left.

use ndarray::{Array2, Array3, ArrayView2, s};

/// A grey image (or any 2-D field) in `f64`, indexed `[row, column]`.
pub type Image = Array2<f64>;

/// A multiband image (multispectral, or a pan-sharpened result) in `f64`, indexed
/// `[band, row, column]`.
pub type Cube = Array3<f64>;

/// How samples outside the image are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// Zeros (MATLAB `imfilter` default, `conv2` 'same').
    Zero,
    /// Repeat the edge sample (MATLAB 'replicate', OpenCV `BORDER_REPLICATE`).
    Replicate,
    /// Mirror including the edge sample: `c b a | a b c | c b a` (MATLAB 'symmetric',
    /// numpy 'symmetric', scipy.ndimage 'reflect', OpenCV `BORDER_REFLECT`).
    Symmetric,
    /// Mirror without repeating the edge sample: `d c b | a b c d | c b a` (numpy 'reflect',
    /// scipy.ndimage 'mirror', OpenCV `BORDER_REFLECT_101`).
    Reflect,
    /// Wrap around (MATLAB 'circular').
    Circular,
}

/// Which part of the full correlation to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Same size as the input (borders filled by the [`Border`] rule).
    Same,
    /// Only positions where the kernel lies inside the image: `(H - kh + 1) x (W - kw + 1)`;
    /// the border rule is unused.
    Valid,
}

/// Maps a possibly out-of-range index onto `0..n` by the border rule; `None` means "zero".
fn border_index(i: isize, n: usize, border: Border) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    let mapped = match border {
        Border::Zero => return None,
        Border::Replicate => i.clamp(0, n - 1),
        Border::Circular => i.rem_euclid(n),
        Border::Symmetric => {
            let period = 2 * n;
            let j = i.rem_euclid(period);
            if j < n { j } else { period - 1 - j }
        }
        Border::Reflect => {
            if n == 1 {
                0
            } else {
                let period = 2 * (n - 1);
                let j = i.rem_euclid(period);
                if j < n { j } else { period - j }
            }
        }
    };
    Some(mapped as usize)
}

/// `img` padded by `(top, bottom, left, right)` samples following `border`.
pub fn pad(
    img: &ArrayView2<f64>,
    (top, bottom, left, right): (usize, usize, usize, usize),
    border: Border,
) -> Image {
    let (h, w) = img.dim();
    let rows: Vec<Option<usize>> = (0..h + top + bottom)
        .map(|r| border_index(r as isize - top as isize, h, border))
        .collect();
    let cols: Vec<Option<usize>> = (0..w + left + right)
        .map(|c| border_index(c as isize - left as isize, w, border))
        .collect();
    Array2::from_shape_fn((rows.len(), cols.len()), |(r, c)| {
        match (rows[r], cols[c]) {
            (Some(r), Some(c)) => img[[r, c]],
            _ => 0.0,
        }
    })
}

/// Padding that turns a 'valid' correlation with a `kh x kw` kernel into 'same', with the
/// MATLAB anchor `(n - 1) / 2`.
fn same_padding(kh: usize, kw: usize) -> (usize, usize, usize, usize) {
    ((kh - 1) / 2, kh / 2, (kw - 1) / 2, kw / 2)
}

/// 2-D correlation (no kernel flip) of `img` with `kernel`.
///
/// An empty result (`Valid` with a kernel larger than the image) has a zero dimension.
pub fn correlate(
    img: &ArrayView2<f64>,
    kernel: &ArrayView2<f64>,
    border: Border,
    output: Output,
) -> Image {
    let (kh, kw) = kernel.dim();
    let padded;
    let src = match output {
        Output::Same => {
            padded = pad(img, same_padding(kh, kw), border);
            padded.view()
        }
        Output::Valid => img.view(),
    };
    let (h, w) = src.dim();
    let (oh, ow) = ((h + 1).saturating_sub(kh), (w + 1).saturating_sub(kw));
    let mut out = Image::zeros((oh, ow));
    if oh == 0 || ow == 0 {
        return out;
    }
    for (ky, krow) in kernel.outer_iter().enumerate() {
        for (kx, &k) in krow.iter().enumerate() {
            if k == 0.0 {
                continue;
            }
            out.scaled_add(k, &src.slice(s![ky..ky + oh, kx..kx + ow]));
        }
    }
    out
}

/// 2-D convolution (kernel flipped, MATLAB `conv2` / `imfilter(..., 'conv')`).
pub fn convolve(
    img: &ArrayView2<f64>,
    kernel: &ArrayView2<f64>,
    border: Border,
    output: Output,
) -> Image {
    let flipped = kernel.slice(s![..;-1, ..;-1]);
    correlate(img, &flipped, border, output)
}

/// Separable correlation: `vertical` taps run down the rows (axis 0), `horizontal` taps along
/// each row (axis 1). Equals [`correlate`] with the outer product `vertical ⊗ horizontal`.
pub fn correlate_separable(
    img: &ArrayView2<f64>,
    vertical: &[f64],
    horizontal: &[f64],
    border: Border,
    output: Output,
) -> Image {
    match output {
        Output::Same => {
            let padded = pad(img, same_padding(vertical.len(), horizontal.len()), border);
            correlate_separable_valid(&padded.view(), vertical, horizontal)
        }
        Output::Valid => correlate_separable_valid(img, vertical, horizontal),
    }
}

/// 1-D Gaussian taps of length `n`, `exp(-x²/2σ²)` at `x = i - (n-1)/2`, normalised to sum 1.
pub fn gaussian_taps(n: usize, sigma: f64) -> Vec<f64> {
    let c = (n as f64 - 1.0) / 2.0;
    let taps: Vec<f64> = (0..n)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.into_iter().map(|t| t / sum).collect()
}

/// MATLAB `fspecial('gaussian', [n n], sigma)`: the 2-D Gaussian with taps below
/// `eps · max` set to zero, normalised to sum 1.
pub fn fspecial_gaussian(n: usize, sigma: f64) -> Image {
    let c = (n as f64 - 1.0) / 2.0;
    let mut k = Array2::from_shape_fn((n, n), |(y, x)| {
        let (dy, dx) = (y as f64 - c, x as f64 - c);
        (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()
    });
    let max = k.iter().cloned().fold(0.0, f64::max);
    k.mapv_inplace(|v| if v < f64::EPSILON * max { 0.0 } else { v });
    let sum = k.sum();
    k / sum
}

/// Sum over every `(2r+1) x (2r+1)` window centred on each pixel, clipped at the image border
/// (windows shrink, nothing is padded), via an integral image. Divide by
/// [`box_count`] for the mean, as He et al.'s guided filter `boxfilter.m` does.
pub fn box_sum(img: &ArrayView2<f64>, r: usize) -> Image {
    let (h, w) = img.dim();
    // integral[y][x] = sum of img[..y, ..x]
    let mut integral = Image::zeros((h + 1, w + 1));
    for y in 0..h {
        let mut row = 0.0;
        for x in 0..w {
            row += img[[y, x]];
            integral[[y + 1, x + 1]] = integral[[y, x + 1]] + row;
        }
    }
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
        integral[[y1, x1]] - integral[[y0, x1]] - integral[[y1, x0]] + integral[[y0, x0]]
    })
}

/// Number of pixels in each clipped window of [`box_sum`].
pub fn box_count(h: usize, w: usize, r: usize) -> Image {
    Array2::from_shape_fn((h, w), |(y, x)| {
        let ny = (y + r + 1).min(h) - y.saturating_sub(r);
        let nx = (x + r + 1).min(w) - x.saturating_sub(r);
        (ny * nx) as f64
    })
}

/// Mean of `a` over all samples (0 for an empty array).
pub fn mean(a: &ArrayView2<f64>) -> f64 {
    if a.is_empty() {
        0.0
    } else {
        a.sum() / a.len() as f64
    }
}

/// Keeps every `step`-th row and column starting at `(offset, offset)`.
pub fn decimate(img: &ArrayView2<f64>, offset: usize, step: usize) -> Image {
    img.slice(s![offset..;step, offset..;step]).to_owned()
}

/// An image from row-major `f32` samples (the runtime's plane layout).
pub fn from_plane(width: usize, height: usize, data: &[f32]) -> Image {
    Array2::from_shape_fn((height, width), |(y, x)| f64::from(data[y * width + x]))
}

/// Row-major `f32` samples of `img` (back to the runtime's plane layout).
pub fn to_plane(img: &ArrayView2<f64>) -> Vec<f32> {
    img.iter().map(|&v| v as f32).collect()
}

/// Mean over every `(2r+1) x (2r+1)` window centred on each pixel, clipped at the image border:
/// [`box_sum`] / [`box_count`] to rounding (He et al.'s `boxfilter(I, r) ./ N`), computed as two
/// running-sum passes over contiguous rows: O(1) per pixel whatever `r`, and several times
/// faster than the integral image (the guided filter calls it six times per use).
pub fn box_mean(img: &ArrayView2<f64>, r: usize) -> Image {
    let (h, w) = img.dim();
    if h == 0 || w == 0 {
        return Image::zeros((h, w));
    }
    let src = img.as_standard_layout();
    let src = src
        .as_slice()
        .expect("a standard-layout array is contiguous");
    // Window length along one axis at index i, clipped: the count is separable.
    let count = |i: usize, n: usize| ((i + r + 1).min(n) - i.saturating_sub(r)) as f64;
    let row = |y: usize| &src[y * w..(y + 1) * w];
    // Vertical pass first, as a sliding sum of whole rows (vectorisable), straight into the
    // output; then the horizontal pass in place, row by row. One allocation of the image size.
    let mut out = vec![0.0; h * w];
    let mut acc = vec![0.0; w];
    for y in 0..=r.min(h - 1) {
        acc.iter_mut().zip(row(y)).for_each(|(a, &v)| *a += v);
    }
    for (y, o_row) in out.chunks_exact_mut(w).enumerate() {
        if y > 0 {
            if y + r < h {
                acc.iter_mut().zip(row(y + r)).for_each(|(a, &v)| *a += v);
            }
            if y > r {
                acc.iter_mut()
                    .zip(row(y - r - 1))
                    .for_each(|(a, &v)| *a -= v);
            }
        }
        let inv_rows = 1.0 / count(y, h);
        o_row
            .iter_mut()
            .zip(&acc)
            .for_each(|(o, &a)| *o = a * inv_rows);
    }
    let inv_cols: Vec<f64> = (0..w).map(|x| 1.0 / count(x, w)).collect();
    let mut prefix = vec![0.0; w + 1];
    for o_row in out.chunks_exact_mut(w) {
        let mut sum = 0.0;
        for (p, &v) in prefix[1..].iter_mut().zip(o_row.iter()) {
            sum += v;
            *p = sum;
        }
        for (x, (o, &ic)) in o_row.iter_mut().zip(&inv_cols).enumerate() {
            *o = (prefix[(x + r + 1).min(w)] - prefix[x.saturating_sub(r)]) * ic;
        }
    }
    Image::from_shape_vec((h, w), out).expect("h * w samples")
}

/// Separable 'valid' correlation (as [`correlate_separable`] with [`Output::Valid`]), computed
/// row-wise on contiguous slices: each tap is one vectorisable multiply-add over a whole row.
/// The result is `(H - kv + 1) x (W - kh + 1)`, with a zero dimension when a kernel is longer
/// than the image.
pub fn correlate_separable_valid(
    img: &ArrayView2<f64>,
    vertical: &[f64],
    horizontal: &[f64],
) -> Image {
    let (h, w) = img.dim();
    let (oh, ow) = (
        (h + 1).saturating_sub(vertical.len()),
        (w + 1).saturating_sub(horizontal.len()),
    );
    if oh == 0 || ow == 0 {
        return Image::zeros((oh, ow));
    }
    let src = img.as_standard_layout();
    let src = src
        .as_slice()
        .expect("a standard-layout array is contiguous");
    // Horizontal pass over every source row.
    let mut rows = vec![0.0; h * ow];
    for (s_row, t_row) in src.chunks_exact(w).zip(rows.chunks_exact_mut(ow)) {
        for (k, &tap) in horizontal.iter().enumerate() {
            if tap != 0.0 {
                t_row
                    .iter_mut()
                    .zip(&s_row[k..k + ow])
                    .for_each(|(t, &v)| *t += tap * v);
            }
        }
    }
    // Vertical pass over the output rows.
    let mut out = vec![0.0; oh * ow];
    for (y, o_row) in out.chunks_exact_mut(ow).enumerate() {
        for (k, &tap) in vertical.iter().enumerate() {
            if tap != 0.0 {
                let t_row = &rows[(y + k) * ow..(y + k + 1) * ow];
                o_row
                    .iter_mut()
                    .zip(t_row)
                    .for_each(|(o, &v)| *o += tap * v);
            }
        }
    }
    Image::from_shape_vec((oh, ow), out).expect("oh * ow samples")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn border_rules_match_matlab_padarray() {
        let row = array![[1.0, 2.0, 3.0]];
        let p = |b| pad(&row.view(), (0, 0, 2, 2), b).row(0).to_vec();
        assert_eq!(p(Border::Zero), [0., 0., 1., 2., 3., 0., 0.]);
        assert_eq!(p(Border::Replicate), [1., 1., 1., 2., 3., 3., 3.]);
        assert_eq!(p(Border::Symmetric), [2., 1., 1., 2., 3., 3., 2.]);
        assert_eq!(p(Border::Reflect), [3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(p(Border::Circular), [2., 3., 1., 2., 3., 1., 2.]);
    }

    #[test]
    fn row_wise_separable_valid_equals_separable() {
        let img = Array2::from_shape_fn((9, 12), |(y, x)| ((y * 31 + x * 17) % 11) as f64 - 3.0);
        let (v, hz) = ([1.0, -2.0, 0.5, 3.0], [0.25, 1.0, 0.0, -1.0, 2.0]);
        let a = correlate_separable(&img.view(), &v, &hz, Border::Zero, Output::Valid);
        let b = correlate_separable_valid(&img.view(), &v, &hz);
        assert_eq!(a.dim(), b.dim());
        assert!((&a - &b).iter().all(|d| d.abs() < 1e-12));
        assert_eq!(
            correlate_separable_valid(&img.view(), &[1.0; 10], &hz).dim(),
            (0, 8)
        );
    }

    #[test]
    fn separable_equals_full_correlation() {
        let img = Array2::from_shape_fn((7, 9), |(y, x)| ((y * 31 + x * 17) % 11) as f64);
        let (v, hz) = ([1.0, -2.0, 0.5, 3.0], [0.25, 1.0, -1.0]);
        let k = Array2::from_shape_fn((4, 3), |(y, x)| v[y] * hz[x]);
        for border in [
            Border::Zero,
            Border::Replicate,
            Border::Symmetric,
            Border::Reflect,
            Border::Circular,
        ] {
            for output in [Output::Same, Output::Valid] {
                let a = correlate(&img.view(), &k.view(), border, output);
                let b = correlate_separable(&img.view(), &v, &hz, border, output);
                assert_eq!(a.dim(), b.dim());
                let err = (&a - &b).iter().fold(0.0f64, |m, d| m.max(d.abs()));
                assert!(err < 1e-12, "{border:?} {output:?}: {err}");
            }
        }
    }

    #[test]
    fn same_output_keeps_size_and_anchor() {
        // A delta kernel at the MATLAB anchor must reproduce the image.
        let img = Array2::from_shape_fn((5, 6), |(y, x)| (y * 6 + x) as f64);
        let mut k = Image::zeros((4, 4));
        k[[1, 1]] = 1.0;
        assert_eq!(
            correlate(&img.view(), &k.view(), Border::Zero, Output::Same),
            img
        );
        assert_eq!(
            correlate(&img.view(), &k.view(), Border::Zero, Output::Valid).dim(),
            (2, 3)
        );
        // A kernel larger than the image leaves nothing valid: empty, not a panic.
        let big = Image::ones((7, 2));
        let valid = |k: &Image| correlate(&img.view(), &k.view(), Border::Zero, Output::Valid);
        assert_eq!(valid(&big).dim(), (0, 5));
        let sep = correlate_separable(&img.view(), &[1.0; 7], &[1.0], Border::Zero, Output::Valid);
        assert_eq!(sep.dim(), (0, 6));
    }

    #[test]
    fn gaussian_kernels_sum_to_one() {
        let g = fspecial_gaussian(11, 1.5);
        assert!((g.sum() - 1.0).abs() < 1e-12);
        let t = gaussian_taps(11, 1.5);
        let outer = Array2::from_shape_fn((11, 11), |(y, x)| t[y] * t[x]);
        assert!((&g - &outer).iter().all(|d| d.abs() < 1e-15));
    }

    #[test]
    fn box_sum_counts_clipped_windows() {
        let ones = Image::ones((4, 5));
        assert_eq!(box_sum(&ones.view(), 1), box_count(4, 5, 1));
        assert_eq!(box_count(4, 5, 1)[[0, 0]], 4.0);
        assert_eq!(box_count(4, 5, 1)[[1, 2]], 9.0);
    }

    #[test]
    fn box_mean_is_box_sum_over_box_count() {
        for (h, w, r) in [
            (7, 9, 1),
            (7, 9, 3),
            (5, 6, 45),
            (1, 1, 2),
            (480 / 8, 640 / 8, 7),
        ] {
            let img = Array2::from_shape_fn((h, w), |(y, x)| ((y * 31 + x * 17) % 11) as f64 - 3.0);
            let want = box_sum(&img.view(), r) / box_count(h, w, r);
            let got = box_mean(&img.view(), r);
            let err = (&got - &want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
            assert!(err < 1e-12, "{h}x{w} r {r}: {err}");
        }
        assert_eq!(box_mean(&Image::zeros((0, 3)).view(), 2).dim(), (0, 3));
    }
}
