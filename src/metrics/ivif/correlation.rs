//! Correlation metrics: SCD (sum of the correlations of differences) and CC, both on MATLAB
//! `corr2`. They are scale-free, so the [0,1] and 0–255 forms agree.

use ndarray::Zip;

use crate::dsp::Image;

/// `corr2(x, y) = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² · Σ(y−ȳ)²)`; NaN when either image is constant.
pub(super) fn corr2(x: &Image, y: &Image) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.sum() / n, y.sum() / n);
    let (sxy, sxx, syy) = Zip::from(x)
        .and(y)
        .fold((0.0, 0.0, 0.0), |(sxy, sxx, syy), &u, &v| {
            let (du, dv) = (u - mx, v - my);
            (sxy + du * dv, sxx + du * du, syy + dv * dv)
        });
    sxy / (sxx * syy).sqrt()
}

/// SCD = corr2(F−B, A) + corr2(F−A, B).
pub(super) fn scd(f: &Image, a: &Image, b: &Image) -> f64 {
    corr2(&(f - b), a) + corr2(&(f - a), b)
}

/// CC = (corr2(A,F) + corr2(B,F)) / 2.
pub(super) fn cc(f: &Image, a: &Image, b: &Image) -> f64 {
    (corr2(a, f) + corr2(b, f)) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn corr2_basics() {
        let x = array![[1.0, 2.0], [3.0, 4.0]];
        assert!((corr2(&x, &(&x * 3.0 + 7.0)) - 1.0).abs() < 1e-15);
        assert!((corr2(&x, &(-&x)) + 1.0).abs() < 1e-15);
        assert!(corr2(&x, &Image::ones((2, 2))).is_nan());
    }
}
