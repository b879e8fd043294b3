//! Band selection of multiband images: a list of 1-based band numbers (GDAL's `-b` numbering),
//! e.g. `1,2,3,4` for the R, G, B and NIR bands of the Landsat-7 data, in the order given.

use ndarray::{Axis, stack};

use crate::dsp::Cube;

/// A band list that does not fit the image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BandError {
    /// No band was named.
    #[error("the band list is empty")]
    Empty,
    /// A band number outside `1..=count`.
    #[error("band {band} requested, the image has {count} bands (bands are numbered from 1)")]
    OutOfRange {
        /// The requested band number.
        band: usize,
        /// Bands of the image.
        count: usize,
    },
}

/// The bands `numbers` (1-based) of `cube` (`[bands, H, W]`), in that order; repeats allowed.
///
/// ```
/// use ship_edge::dsp::Cube;
/// use ship_edge::imaging::bands::select_bands;
/// let cube = Cube::from_shape_fn((3, 1, 2), |(b, _, x)| (10 * b + x) as f64);
/// let picked = select_bands(&cube, &[3, 1]).unwrap();
/// assert_eq!(picked.as_slice().unwrap(), &[20.0, 21.0, 0.0, 1.0]);
/// assert!(select_bands(&cube, &[0]).is_err());
/// ```
pub fn select_bands(cube: &Cube, numbers: &[usize]) -> Result<Cube, BandError> {
    let count = cube.dim().0;
    if numbers.is_empty() {
        return Err(BandError::Empty);
    }
    if let Some(&band) = numbers.iter().find(|&&b| b == 0 || b > count) {
        return Err(BandError::OutOfRange { band, count });
    }
    let views: Vec<_> = numbers
        .iter()
        .map(|&b| cube.index_axis(Axis(0), b - 1))
        .collect();
    Ok(stack(Axis(0), &views).expect("bands of one cube have one shape"))
}
