//! Wald's reduced-resolution protocol (METRICS.md §4.1, the 2021 protocol / PanCollection
//! default): degrade the MS and PAN images by the ratio with MTF-matched filters, so that a
//! method fusing the degraded pair can be scored against the original MS.

use ndarray::Axis;

use super::mtf::{SeparableKernel, mtf_filter_cube, mtf_kernel};
use super::{PanError, Sensor, check_pair};
use crate::dsp::{Border, Cube, Image, decimate};

/// 0-based offset of the sample MATLAB `imresize(x, 1/r, 'nearest')` keeps in each group of
/// `r`: `⌊r/2⌋` (input position `r·u + ½(1 − r)` rounded per its half-open nearest kernel;
/// r = 4 → 2, 6, 10, …; r = 2 → 1, 3, 5, …).
pub fn nearest_offset(ratio: usize) -> usize {
    ratio / 2
}

/// `imresize(x, 1/ratio, 'nearest')` for a side that is a multiple of `ratio`.
pub fn decimate_nearest(img: &Image, ratio: usize) -> Image {
    decimate(&img.view(), nearest_offset(ratio), ratio)
}

/// The reduced-resolution pair: each MS band filtered with its sensor MTF (`MTF.m`,
/// replicate borders) and decimated by `imresize(…, 1/r, 'nearest')`; the PAN filtered with
/// the sensor's PAN MTF (`MTF_PAN.m`) and decimated the same way.
///
/// `ms` is `[bands, H, W]`, `pan` is `ratio·H × ratio·W`; `H` and `W` must be multiples of
/// `ratio`. Returns `(MS of H/r × W/r, PAN of H × W)`.
pub fn degrade(
    ms: &Cube,
    pan: &Image,
    ratio: usize,
    sensor: &Sensor,
) -> Result<(Cube, Image), PanError> {
    check_pair(ms, pan, ratio)?;
    let (_, h, w) = ms.dim();
    if !h.is_multiple_of(ratio) || !w.is_multiple_of(ratio) {
        return Err(PanError::Size {
            what: "MS",
            got: format!("{w}x{h}"),
            expected: format!(
                "sides that are multiples of the ratio {ratio} (Wald's protocol decimates it by {ratio})"
            ),
        });
    }
    if h < ratio || w < ratio {
        return Err(PanError::TooSmall {
            what: "MS",
            metric: "Wald's protocol",
            width: w,
            height: h,
            min: 2 * ratio,
        });
    }
    Ok((
        degrade_ms(ms, ratio, sensor),
        degrade_pan(pan, ratio, sensor),
    ))
}

/// The MS half of [`degrade`]: each band filtered with its sensor MTF for `ratio` and
/// decimated by `imresize(…, 1/r, 'nearest')`. Sides must be multiples of `ratio` (checked by
/// [`degrade`]; here the remainder is dropped). Training degrades MS and PAN by different
/// ratios to make a ratio-4 set from ratio-2 data.
pub fn degrade_ms(ms: &Cube, ratio: usize, sensor: &Sensor) -> Cube {
    let (bands, h, w) = ms.dim();
    let filtered = mtf_filter_cube(ms, &sensor.gnyq(bands), ratio);
    let mut ms_lr = Cube::zeros((bands, h / ratio, w / ratio));
    for (b, band) in filtered.axis_iter(Axis(0)).enumerate() {
        ms_lr
            .index_axis_mut(Axis(0), b)
            .assign(&decimate_nearest(&band.to_owned(), ratio));
    }
    ms_lr
}

/// The PAN half of [`degrade`]: filtered with the sensor's PAN MTF for `ratio` and decimated
/// the same way.
pub fn degrade_pan(pan: &Image, ratio: usize, sensor: &Sensor) -> Image {
    let pan_lp =
        SeparableKernel::new(&mtf_kernel(sensor.pan_gain, ratio)).apply(pan, Border::Replicate);
    decimate_nearest(&pan_lp, ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrade_shapes_and_errors() {
        let ms = Cube::from_elem((3, 8, 8), 10.0);
        let pan = Image::from_elem((16, 16), 20.0);
        let (m, p) = degrade(&ms, &pan, 2, &Sensor::other()).unwrap();
        assert_eq!(m.dim(), (3, 4, 4));
        assert_eq!(p.dim(), (8, 8));
        // DC gain of the unnormalised fwind1 filter.
        assert!((m[[0, 0, 0]] - 10.0 * mtf_kernel(0.3, 2).sum()).abs() < 1e-6);
        assert!(degrade(&ms, &Image::zeros((15, 16)), 2, &Sensor::other()).is_err());
        let odd = Cube::zeros((3, 7, 8));
        assert!(degrade(&odd, &Image::zeros((14, 16)), 2, &Sensor::other()).is_err());
    }
}
