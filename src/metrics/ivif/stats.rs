//! Single-image statistics of the fused image (EN, SD, SF, AG) and its squared error against
//! the sources (the MSE behind PSNR).

use ndarray::{Zip, s};

use crate::dsp::Image;

/// Grey-level bin of a sample: round half away from zero, clamped to 0–255.
pub(super) fn level(v: f64) -> usize {
    v.round().clamp(0.0, 255.0) as usize
}

/// 256-bin histogram of the rounded grey levels.
fn histogram(img: &Image) -> [u64; 256] {
    let mut h = [0u64; 256];
    for &v in img {
        h[level(v)] += 1;
    }
    h
}

/// Shannon entropy in bits of a histogram with `total` samples.
pub(super) fn entropy_bits(counts: impl IntoIterator<Item = u64>, total: u64) -> f64 {
    let n = total as f64;
    -counts
        .into_iter()
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            p * p.log2()
        })
        .sum::<f64>()
}

/// EN: entropy (bits) of the 256-bin histogram of round(F).
pub(super) fn entropy(f: &Image) -> f64 {
    entropy_bits(histogram(f), f.len() as u64)
}

/// SD: population standard deviation.
pub(super) fn sd(f: &Image) -> f64 {
    let n = f.len() as f64;
    let m = f.sum() / n;
    (f.iter().map(|&v| (v - m) * (v - m)).sum::<f64>() / n).sqrt()
}

/// SD as MATLAB computes it on a uint8 image (`SD_evaluation.m`): `F − mean` is rounded and
/// saturated to 0–255, and its square saturates at 255; only the sum is in double.
pub(super) fn sd_uint8(f: &Image) -> f64 {
    let n = f.len() as f64;
    let m = f.sum() / n;
    let sum: f64 = f
        .iter()
        .map(|&v| {
            let d = (v - m).round().clamp(0.0, 255.0);
            (d * d).min(255.0)
        })
        .sum();
    (sum / n).sqrt()
}

/// SF: √(mean of squared horizontal differences + mean of squared vertical differences).
pub(super) fn sf(f: &Image) -> f64 {
    let sq_mean = |a: ndarray::ArrayView2<f64>, b: ndarray::ArrayView2<f64>| {
        let n = a.len() as f64;
        Zip::from(a)
            .and(b)
            .fold(0.0, |acc, &x, &y| acc + (x - y) * (x - y))
            / n
    };
    let horizontal = sq_mean(f.slice(s![.., 1..]), f.slice(s![.., ..-1]));
    let vertical = sq_mean(f.slice(s![1.., ..]), f.slice(s![..-1, ..]));
    (horizontal + vertical).sqrt()
}

/// AG: mean of √((Gx² + Gy²)/2) with `numpy.gradient` / MATLAB `gradient` differences
/// (central inside, one-sided at the borders). `tang2022` divides the sum by (H−1)(W−1)
/// instead of H·W.
pub(super) fn ag(f: &Image, tang2022: bool) -> f64 {
    let (h, w) = f.dim();
    // Difference along one axis at index k of n, for a sample accessor `at`.
    let diff = |k: usize, n: usize, at: &dyn Fn(usize) -> f64| {
        if k == 0 {
            at(1) - at(0)
        } else if k == n - 1 {
            at(n - 1) - at(n - 2)
        } else {
            (at(k + 1) - at(k - 1)) / 2.0
        }
    };
    let mut sum = 0.0;
    for y in 0..h {
        let row = f.row(y);
        for x in 0..w {
            let gx = diff(x, w, &|i| row[i]);
            let gy = diff(y, h, &|i| f[[i, x]]);
            sum += ((gx * gx + gy * gy) / 2.0).sqrt();
        }
    }
    let divisor = if tang2022 { (h - 1) * (w - 1) } else { h * w };
    sum / divisor as f64
}

/// ½(mean((F−A)²) + mean((F−B)²)).
pub(super) fn mse(f: &Image, a: &Image, b: &Image) -> f64 {
    let n = f.len() as f64;
    let one = |x: &Image| {
        Zip::from(f)
            .and(x)
            .fold(0.0, |acc, &p, &q| acc + (p - q) * (p - q))
            / n
    };
    0.5 * one(a) + 0.5 * one(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn small_cases_by_hand() {
        let f = array![[0.0, 2.0, 4.0], [1.0, 3.0, 9.0]];
        // Two levels of each... six distinct values: log2(6).
        assert!((entropy(&f) - 6f64.log2()).abs() < 1e-12);
        // numpy: np.std → 2.9107...
        let m = 19.0 / 6.0;
        let var = f.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 6.0;
        assert!((sd(&f) - var.sqrt()).abs() < 1e-12);
        // horizontal diffs 2,2,2,6 → mean sq 12; vertical 1,1,5 → 9.
        assert!((sf(&f) - 21f64.sqrt()).abs() < 1e-12);
        // numpy.gradient by hand for row 0: gx = [2, 2, 2]; gy = [1, 1, 5] in both rows.
        let mut want = 0.0;
        let gx = [[2.0, 2.0, 2.0], [2.0, 4.0, 6.0]];
        let gy = [1.0, 1.0, 5.0];
        for r in gx {
            for (x, g) in r.iter().enumerate() {
                want += ((g * g + gy[x] * gy[x]) / 2.0f64).sqrt();
            }
        }
        assert!((ag(&f, false) - want / 6.0).abs() < 1e-12);
        assert!((ag(&f, true) - want / 2.0).abs() < 1e-12);
    }

    #[test]
    fn uint8_sd_saturates() {
        // mean 50: d = [0 (clamped), 50 → 2500 → 255].
        let f = array![[0.0, 100.0]];
        assert!((sd_uint8(&f) - (255.0f64 / 2.0).sqrt()).abs() < 1e-12);
    }
}
