//! The toolbox's `interp23tap.m`: upsampling by a power of two with the 23-tap
//! Cohen–Daubechies–Feauveau interpolator, one ×2 stage at a time.

use ndarray::Axis;

use super::{PanError, check_cube};
use crate::dsp::{Cube, Image};

/// Half of the symmetric 23-tap kernel (centre first), as in `interp23tap.m`, before ×2.
const CDF23_HALF: [f64; 12] = [
    0.5,
    0.305334091185,
    0.0,
    -0.072698593239,
    0.0,
    0.021809577942,
    0.0,
    -0.005192756653,
    0.0,
    0.000807762146,
    0.0,
    -0.000060081482,
];

/// The 23 taps `[reverse(CDF23[1..]), CDF23]` with `CDF23 = 2·CDF23_HALF`.
pub fn interp23_taps() -> Vec<f64> {
    let half: Vec<f64> = CDF23_HALF.iter().map(|v| 2.0 * v).collect();
    half[1..].iter().rev().chain(half.iter()).copied().collect()
}

/// Upsamples every band of `ms` by `ratio` (a power of two ≥ 2) like `interp23tap.m`:
/// each ×2 stage zero-inserts the samples (at 1-based `(2:2:end, 2:2:end)` in the first stage,
/// `(1:2:end, 1:2:end)` in later ones) and filters rows and columns with the 23-tap kernel,
/// 'circular' borders. An input sample `(i, j)` lands on output `(r·i + r/2, r·j + r/2)`,
/// 0-based, i.e. the sample [`super::wald::degrade`] keeps.
///
/// The toolbox runs `ratio/2` stages, which is `log2(ratio)` only for 2 and 4; we run
/// `log2(ratio)` stages (so 8 also works).
pub fn interp23tap(ms: &Cube, ratio: usize) -> Result<Cube, PanError> {
    check_cube("image to interpolate", ms)?;
    if ratio < 2 || !ratio.is_power_of_two() {
        return Err(PanError::Ratio {
            ratio,
            expected: "interp23tap needs a power of two >= 2",
        });
    }
    let (bands, h, w) = ms.dim();
    let mut out = Cube::zeros((bands, h * ratio, w * ratio));
    for (b, band) in ms.axis_iter(Axis(0)).enumerate() {
        let mut cur: Image = band.to_owned();
        let mut first = true;
        while cur.nrows() < h * ratio {
            cur = upsample2(&cur, usize::from(first));
            first = false;
        }
        out.index_axis_mut(Axis(0), b).assign(&cur);
    }
    Ok(out)
}

/// One ×2 stage, polyphase: with the samples zero-inserted at `2i + off`, the 23-tap
/// correlation reproduces them (the even taps other than the centre are 0) and fills
/// `2i + off + 1` with `Σ_e t[2e − 1]·x[i + e]`, e = −5..=6, indices modulo the length
/// ('circular'). Rows first, then columns; equal to zero-inserting in 2-D and filtering both
/// axes.
fn upsample2(x: &Image, off: usize) -> Image {
    let taps = interp23_taps();
    // t[d] for odd d = 2e − 1, e = −5..=6 (taps[11 + d]).
    let odd: Vec<(isize, f64)> = (-5isize..=6)
        .map(|e| (e, taps[(11 + 2 * e - 1) as usize]))
        .collect();
    let (h, w) = x.dim();
    let mut rows = Image::zeros((h, 2 * w));
    for (src, mut dst) in x.outer_iter().zip(rows.outer_iter_mut()) {
        for i in 0..w {
            dst[2 * i + off] = src[i];
            let mut acc = 0.0;
            for &(e, t) in &odd {
                acc += t * src[(i as isize + e).rem_euclid(w as isize) as usize];
            }
            dst[(2 * i + off + 1) % (2 * w)] = acc;
        }
    }
    let mut out = Image::zeros((2 * h, 2 * w));
    for i in 0..h {
        out.row_mut(2 * i + off).assign(&rows.row(i));
        let mut acc = out.row_mut((2 * i + off + 1) % (2 * h));
        for &(e, t) in &odd {
            acc.scaled_add(
                t,
                &rows.row((i as isize + e).rem_euclid(h as isize) as usize),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_stays_constant_and_samples_land_on_the_toolbox_phase() {
        let ms = Cube::from_elem((1, 8, 8), 5.0);
        let up = interp23tap(&ms, 4).unwrap();
        // The taps sum to 1 − 4e-10 per phase (rounded coefficients).
        assert!(up.iter().all(|v| (v - 5.0).abs() < 1e-7));
        // CDF23 is interpolating: the zero-inserted samples are reproduced exactly.
        let ms = Cube::from_shape_fn((1, 16, 16), |(_, y, x)| ((y * 7 + x * 3) % 11) as f64);
        for r in [2usize, 4] {
            let up = interp23tap(&ms, r).unwrap();
            for y in 0..16 {
                for x in 0..16 {
                    let got = up[[0, r * y + r / 2, r * x + r / 2]];
                    assert!((got - ms[[0, y, x]]).abs() < 1e-9, "r {r} ({y},{x}): {got}");
                }
            }
        }
        assert!(interp23tap(&ms, 3).is_err());
    }

    #[test]
    fn polyphase_equals_zero_insertion_and_circular_filtering() {
        use crate::dsp::{Border, Output, correlate_separable};
        let x = Image::from_shape_fn((7, 9), |(y, x)| {
            ((y * 5 + x * 3) % 7) as f64 + 0.1 * y as f64
        });
        let taps = interp23_taps();
        for off in [0usize, 1] {
            let mut z = Image::zeros((14, 18));
            z.slice_mut(ndarray::s![off..;2, off..;2]).assign(&x);
            let want = correlate_separable(&z.view(), &taps, &taps, Border::Circular, Output::Same);
            let got = upsample2(&x, off);
            assert!((&got - &want).iter().all(|d| d.abs() < 1e-12), "off {off}");
        }
    }
}
