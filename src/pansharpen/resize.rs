//! MATLAB `imresize(img, scale, method)` on `f64` images, reproduced from its documented
//! algorithm (`contributions` in `imresize.m`): for each output index `u` (1-based) the input
//! position is `x = u/scale + ½(1 − 1/scale)`; the kernel is evaluated at the `⌈width⌉ + 2`
//! nearest integer positions, the weights are normalised to sum 1, and out-of-range indices are
//! mirrored (`[1:n, n:-1:1]`, MATLAB 'symmetric'). When shrinking with antialiasing (the default
//! for bicubic) the kernel is stretched by `1/scale`: `h(x) = scale·k(scale·x)`, width `4/scale`.
//! Rows are resized before columns (MATLAB's order for equal scales). The output size is
//! `⌈n·scale⌉`. Double input is not rounded.

use ndarray::{Array2, Axis};

use crate::dsp::Image;

/// The interpolation kernel of [`imresize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Keys' cubic (a = −0.5), width 4, antialiased when shrinking (MATLAB 'bicubic', the
    /// default).
    Bicubic,
    /// Nearest neighbour, no antialiasing (MATLAB 'nearest'). Shrinking by an integer `r` keeps
    /// the 0-based indices `r·u + ⌊r/2⌋` (2, 6, 10, … for r = 4; 1, 3, 5, … for r = 2).
    Nearest,
}

fn cubic(x: f64) -> f64 {
    let a = x.abs();
    let (a2, a3) = (a * a, a * a * a);
    if a <= 1.0 {
        1.5 * a3 - 2.5 * a2 + 1.0
    } else if a <= 2.0 {
        -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    } else {
        0.0
    }
}

fn nearest(x: f64) -> f64 {
    if (-0.5..0.5).contains(&x) { 1.0 } else { 0.0 }
}

/// Per output sample: (input indices, weights), MATLAB `contributions`.
fn contributions(
    in_len: usize,
    out_len: usize,
    scale: f64,
    method: Method,
) -> Vec<Vec<(usize, f64)>> {
    let (kernel, mut width): (fn(f64) -> f64, f64) = match method {
        Method::Bicubic => (cubic, 4.0),
        Method::Nearest => (nearest, 1.0),
    };
    let stretch = method == Method::Bicubic && scale < 1.0;
    if stretch {
        width /= scale;
    }
    let h = |x: f64| {
        if stretch {
            scale * kernel(scale * x)
        } else {
            kernel(x)
        }
    };
    let taps = width.ceil() as i64 + 2;
    let period = 2 * in_len as i64;
    (1..=out_len)
        .map(|u| {
            let x = u as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            let left = (x - width / 2.0).floor() as i64;
            let mut row: Vec<(usize, f64)> = (0..taps)
                .map(|p| {
                    let idx = left + p; // 1-based
                    let w = h(x - idx as f64);
                    // aux = [1:n, n:-1:1]; aux(mod(idx-1, 2n) + 1), back to 0-based.
                    let m = (idx - 1).rem_euclid(period);
                    let src = if m < in_len as i64 { m } else { period - 1 - m };
                    (src as usize, w)
                })
                .collect();
            let sum: f64 = row.iter().map(|(_, w)| w).sum();
            for (_, w) in &mut row {
                *w /= sum;
            }
            row.retain(|(_, w)| *w != 0.0);
            row
        })
        .collect()
}

fn resize_axis(img: &Image, axis: Axis, scale: f64, method: Method) -> Image {
    let in_len = img.len_of(axis);
    let out_len = (in_len as f64 * scale).ceil() as usize;
    let weights = contributions(in_len, out_len, scale, method);
    let (h, w) = img.dim();
    match axis {
        Axis(0) => Array2::from_shape_fn((out_len, w), |(u, x)| {
            weights[u].iter().map(|&(i, wt)| wt * img[[i, x]]).sum()
        }),
        _ => Array2::from_shape_fn((h, out_len), |(y, u)| {
            weights[u].iter().map(|&(i, wt)| wt * img[[y, i]]).sum()
        }),
    }
}

/// MATLAB `imresize(img, scale, method)` (same scale on both axes, `scale > 0`).
pub fn imresize(img: &Image, scale: f64, method: Method) -> Image {
    if img.is_empty() {
        return img.clone();
    }
    let rows = resize_axis(img, Axis(0), scale, method);
    resize_axis(&rows, Axis(1), scale, method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_shrink_keeps_the_documented_phase() {
        let img = Image::from_shape_fn((12, 12), |(y, x)| (y * 100 + x) as f64);
        let d4 = imresize(&img, 0.25, Method::Nearest);
        assert_eq!(d4.dim(), (3, 3));
        assert_eq!(d4[[0, 0]], 202.0);
        assert_eq!(d4[[1, 2]], 610.0);
        let d2 = imresize(&img, 0.5, Method::Nearest);
        assert_eq!(d2[[0, 0]], 101.0);
        assert_eq!(d2[[2, 1]], 503.0);
    }

    #[test]
    fn bicubic_shrink_preserves_constants_and_ramps() {
        let c = Image::from_elem((10, 8), 3.0);
        let d = imresize(&c, 0.5, Method::Bicubic);
        assert_eq!(d.dim(), (5, 4));
        assert!(d.iter().all(|v| (v - 3.0).abs() < 1e-12));
        // A linear ramp away from the borders maps to the ramp at the output centres.
        let ramp = Image::from_shape_fn((40, 40), |(_, x)| x as f64);
        let d = imresize(&ramp, 0.5, Method::Bicubic);
        assert!((d[[10, 10]] - 20.5).abs() < 1e-12, "{}", d[[10, 10]]);
    }
}
