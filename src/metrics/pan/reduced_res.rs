//! Reduced-resolution metrics of one fused cube against its reference (same shape, DN). The
//! callers ([`super::reduced`]) check shapes and sizes; these functions assume them.

use ndarray::{ArrayView2, Axis};

use crate::dsp::{Cube, Image, correlate_separable_valid, gaussian_taps};

/// PSNR in dB, `[G]` form: `20·log10(peak / RMSE)` with the MSE taken jointly over all bands and
/// pixels. Data range: DN with `peak` its maximum (255 for 8-bit). `+∞` for identical cubes.
pub fn psnr(fused: &Cube, reference: &Cube, peak: f64) -> f64 {
    let mse = fused
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / fused.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    20.0 * (peak / mse.sqrt()).log10()
}

/// Mean over bands of Wang's SSIM (`[G]`): 11×11 Gaussian window σ = 1.5 (normalised),
/// 'valid' positions only, `C1 = (0.01·peak)²`, `C2 = (0.03·peak)²`. Data range: DN with
/// `peak` its maximum. Needs sides ≥ 11. 1 for identical cubes.
pub fn ssim(fused: &Cube, reference: &Cube, peak: f64) -> f64 {
    let g = gaussian_taps(11, 1.5);
    let (c1, c2) = ((0.01 * peak).powi(2), (0.03 * peak).powi(2));
    let filt = |x: &Image| correlate_separable_valid(&x.view(), &g, &g);
    let mut total = 0.0;
    for (f, r) in fused.axis_iter(Axis(0)).zip(reference.axis_iter(Axis(0))) {
        let (x, y) = (f.to_owned(), r.to_owned());
        let (mx, my) = (filt(&x), filt(&y));
        let sxx = filt(&(&x * &x));
        let syy = filt(&(&y * &y));
        let sxy = filt(&(&x * &y));
        let mut sum = 0.0;
        for i in 0..mx.len() {
            let (a, b) = (mx.as_slice().unwrap()[i], my.as_slice().unwrap()[i]);
            let vx = sxx.as_slice().unwrap()[i] - a * a;
            let vy = syy.as_slice().unwrap()[i] - b * b;
            let cxy = sxy.as_slice().unwrap()[i] - a * b;
            sum +=
                ((2.0 * a * b + c1) * (2.0 * cxy + c2)) / ((a * a + b * b + c1) * (vx + vy + c2));
        }
        total += sum / mx.len() as f64;
    }
    total / fused.dim().0 as f64
}

/// Spectral angle mapper in **degrees** (`SAM.m`): the mean over pixels of
/// `acos(⟨r, f⟩ / (‖r‖·‖f‖))`, pixels where `‖r‖·‖f‖ = 0` excluded, cosines past ±1 from
/// round-off clamped (MATLAB's `real(acos(·))`). Scale-invariant; any DN range. 0 for identical
/// (or proportional) spectra; 0 if no pixel counts.
pub fn sam(reference: &Cube, fused: &Cube) -> f64 {
    let (bands, h, w) = reference.dim();
    let (mut sum, mut count) = (0.0, 0usize);
    for y in 0..h {
        for x in 0..w {
            let (mut dot, mut nr, mut nf) = (0.0, 0.0, 0.0);
            for b in 0..bands {
                let (r, f) = (reference[[b, y, x]], fused[[b, y, x]]);
                dot += r * f;
                nr += r * r;
                nf += f * f;
            }
            let norm = (nr * nf).sqrt();
            if norm == 0.0 {
                continue;
            }
            sum += (dot / norm).clamp(-1.0, 1.0).acos();
            count += 1;
        }
    }
    if count == 0 {
        return 0.0;
    }
    sum / count as f64 * 180.0 / std::f64::consts::PI
}

/// ERGAS (`ERGAS.m`): `(100/ratio)·√((1/B)·Σ_b mean((R_b − F_b)²) / mean(R_b)²)`. Scale-
/// invariant; needs reference bands with non-zero mean (a zero-mean band gives ∞). 0 for
/// identical cubes.
pub fn ergas(reference: &Cube, fused: &Cube, ratio: f64) -> f64 {
    let bands = reference.dim().0;
    let mut acc = 0.0;
    for (r, f) in reference.axis_iter(Axis(0)).zip(fused.axis_iter(Axis(0))) {
        let n = r.len() as f64;
        let mse = r.iter().zip(f).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / n;
        let mean = r.sum() / n;
        acc += mse / (mean * mean);
    }
    (100.0 / ratio) * (acc / bands as f64).sqrt()
}

/// Sobel gradient magnitude of the interior `[1..h-1, 1..w-1]` (`SCC.m`: `imfilter` with
/// `fspecial('sobel')` and its transpose, zero padding around the interior crop).
fn sobel_magnitude(band: &ArrayView2<f64>) -> Image {
    let (h, w) = band.dim();
    let (ih, iw) = (h - 2, w - 2);
    // The interior crop with a ring of zeros: imfilter's zero padding.
    let mut p = Image::zeros((ih + 2, iw + 2));
    p.slice_mut(ndarray::s![1..ih + 1, 1..iw + 1])
        .assign(&band.slice(ndarray::s![1..h - 1, 1..w - 1]));
    let src = p.as_slice().expect("fresh array");
    let pw = iw + 2;
    Image::from_shape_fn((ih, iw), |(y, x)| {
        let at = |dy: usize, dx: usize| src[(y + dy) * pw + x + dx];
        // fspecial('sobel') = [1 2 1; 0 0 0; -1 -2 -1] (correlation), and its transpose.
        let gy = at(0, 0) + 2.0 * at(0, 1) + at(0, 2) - at(2, 0) - 2.0 * at(2, 1) - at(2, 2);
        let gx = at(0, 0) + 2.0 * at(1, 0) + at(2, 0) - at(0, 2) - 2.0 * at(1, 2) - at(2, 2);
        (gx * gx + gy * gy).sqrt()
    })
}

/// Spatial correlation coefficient (`SCC.m`): Sobel magnitudes of both cubes on the interior
/// crop, then the global **un-centred** correlation `Σ∇F·∇R / √(Σ∇F²·Σ∇R²)` over all bands.
/// Scale-invariant; in `[0, 1]`, 1 for identical cubes. Needs sides ≥ 3.
pub fn scc(fused: &Cube, reference: &Cube) -> f64 {
    let (mut ff, mut rr, mut fr) = (0.0, 0.0, 0.0);
    for (f, r) in fused.axis_iter(Axis(0)).zip(reference.axis_iter(Axis(0))) {
        let (gf, gr) = (sobel_magnitude(&f), sobel_magnitude(&r));
        for (a, b) in gf.iter().zip(&gr) {
            ff += a * a;
            rr += b * b;
            fr += a * b;
        }
    }
    fr / ff.sqrt() / rr.sqrt()
}

/// Wang & Bovik's universal image quality index (`img_qi.m`) on every `block×block` window
/// (step 1, 'valid'), averaged. Windows where both variances and both means vanish count 1;
/// where only the variances vanish, `2x̄ȳ/(x̄²+ȳ²)`. In `[-1, 1]`; scale-invariant.
pub fn img_qi(x: &Image, y: &Image, block: usize) -> f64 {
    let (h, w) = x.dim();
    let n = (block * block) as f64;
    let (x, y) = (x.as_standard_layout(), y.as_standard_layout());
    let (xs, ys) = (
        x.as_slice().expect("standard"),
        y.as_slice().expect("standard"),
    );
    // Integral images of x, y, x², y², xy, interleaved: entry (r, c) holds the sums over
    // rows < r and columns < c.
    let stride = w + 1;
    let mut integral = vec![[0.0f64; 5]; (h + 1) * stride];
    for r in 0..h {
        let mut row = [0.0f64; 5];
        for c in 0..w {
            let (a, b) = (xs[r * w + c], ys[r * w + c]);
            let v = [a, b, a * a, b * b, a * b];
            let above = integral[r * stride + c + 1];
            let cell = &mut integral[(r + 1) * stride + c + 1];
            for k in 0..5 {
                row[k] += v[k];
                cell[k] = above[k] + row[k];
            }
        }
    }
    let (oh, ow) = (h + 1 - block, w + 1 - block);
    let mut total = 0.0;
    for r in 0..oh {
        for c in 0..ow {
            let (a, b, cc, d) = (
                integral[(r + block) * stride + c + block],
                integral[r * stride + c + block],
                integral[(r + block) * stride + c],
                integral[r * stride + c],
            );
            let s: [f64; 5] = std::array::from_fn(|k| a[k] - b[k] - cc[k] + d[k]);
            let mul = s[0] * s[1];
            let sq = s[0] * s[0] + s[1] * s[1];
            let numerator = 4.0 * (n * s[4] - mul) * mul;
            let den1 = n * (s[2] + s[3]) - sq;
            let den = den1 * sq;
            total += if den != 0.0 {
                numerator / den
            } else if den1 == 0.0 && sq != 0.0 {
                2.0 * mul / sq
            } else {
                1.0
            };
        }
    }
    total / (oh * ow) as f64
}

/// Q (`Q.m`): [`img_qi`] with `block×block` sliding windows per band, averaged over bands.
/// In `[-1, 1]`, 1 for identical cubes; scale-invariant. Needs sides ≥ `block`.
pub fn q_index(reference: &Cube, fused: &Cube, block: usize) -> f64 {
    let bands = reference.dim().0;
    reference
        .axis_iter(Axis(0))
        .zip(fused.axis_iter(Axis(0)))
        .map(|(r, f)| img_qi(&r.to_owned(), &f.to_owned(), block))
        .sum::<f64>()
        / bands as f64
}
