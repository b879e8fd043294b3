//! Pan-sharpening building blocks shared by the metrics ([`crate::metrics::pan`]) and the
//! classical baselines ([`crate::baselines::pan`]): sensor MTF tables ([`Sensor`]), the
//! MTF-matched filters of Vivone's toolbox ([`mtf`]), the toolbox's 23-tap interpolator
//! ([`interp23tap`]), MATLAB `imresize` ([`resize`]), Wald's degradation protocol ([`wald`]) and the
//! bilinear MS upsampling inside pan-sharpening models ([`upsample`]) and the tiling of large
//! scenes for them ([`tiles`]).
//!
//! Conventions (`shared/notes/METRICS.md` §4.1): a multispectral image is a [`Cube`] indexed
//! `[band, row, col]` in digital numbers (DN); the PAN image is an [`Image`] `ratio` times larger
//! on both axes. An MS sample `(i, j)` sits at PAN position `(r·i + r/2, r·j + r/2)` (0-based),
//! the phase of the toolbox's `imresize(…, 'nearest')` decimation and of [`interp23tap`].

pub mod mtf;
pub mod resize;
pub mod tiles;
pub mod upsample;
pub mod wald;

mod interp;

pub use interp::interp23tap;

use crate::dsp::{Cube, Image};

/// Why a pan-sharpening step refused its inputs. Messages say what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PanError {
    /// The ratio is not usable by this step (zero, one, or not a power of two for
    /// [`interp23tap`]).
    #[error("ratio {ratio} is not supported: {expected}")]
    Ratio {
        /// The ratio given.
        ratio: usize,
        /// What the step needs.
        expected: &'static str,
    },
    /// An image has no pixels or no bands.
    #[error(
        "{what} is empty ({bands} bands, {width}x{height}): expected at least one band and one pixel"
    )]
    Empty {
        /// Which input.
        what: &'static str,
        /// Bands.
        bands: usize,
        /// Width.
        width: usize,
        /// Height.
        height: usize,
    },
    /// Two inputs that must agree in size do not.
    #[error("{what} is {got}, expected {expected}")]
    Size {
        /// Which input.
        what: &'static str,
        /// Its size, `WxH` (with bands for cubes).
        got: String,
        /// The size it should have.
        expected: String,
    },
    /// Two cubes that must have the same bands do not.
    #[error("{what} has {got} bands, expected {expected}")]
    Bands {
        /// Which input.
        what: &'static str,
        /// Its band count.
        got: usize,
        /// The band count it should have.
        expected: usize,
    },
    /// A block-based metric needs sides that are multiples of the block size.
    #[error("{what} is {width}x{height}: {metric} needs both sides to be multiples of {block}")]
    BlockSize {
        /// Which input.
        what: &'static str,
        /// The metric.
        metric: &'static str,
        /// Width.
        width: usize,
        /// Height.
        height: usize,
        /// The block size.
        block: usize,
    },
    /// The image is too small for the metric's window (after any border crop).
    #[error("{what} is {width}x{height}: {metric} needs at least {min}x{min} pixels")]
    TooSmall {
        /// Which input.
        what: &'static str,
        /// The metric.
        metric: &'static str,
        /// Width.
        width: usize,
        /// Height.
        height: usize,
        /// The smallest accepted side.
        min: usize,
    },
    /// A method name that is not one of the baselines.
    #[error(
        "unknown pan-sharpening method {0:?}: use exp, brovey, gihs, gsa, mtf-glp, mtf-glp-hpm or sfim"
    )]
    UnknownMethod(String),
    /// A parameter outside its range.
    #[error("{0}")]
    Invalid(String),
}

/// A sensor's MTF gains at the Nyquist frequency (GNyq), one per MS band plus the PAN's,
/// from the toolbox's `genMTF.m` / `MTF_PAN.m` (METRICS.md §4.1 table).
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// The canonical name (`"qb"`, `"wv3"`, `"other"`, ...).
    pub name: &'static str,
    /// Per-band gains; `None` means "the same gain for every band" ([`Sensor::default_gain`]).
    bands: Option<&'static [f64]>,
    /// Gain used for every band when `bands` is `None`, and for bands past the table.
    default_gain: f64,
    /// PAN gain.
    pub pan_gain: f64,
}

impl Sensor {
    /// The sensor named `name` (case-insensitive): `qb` (QuickBird), `ikonos`, `geoeye1`, `wv2`,
    /// `wv3`, `wv4`, `gf2`, `landsat7` or `other`. GF-2 and Landsat-7 have no tabulated MTF and
    /// use the "other" row (0.3 for every MS band, 0.15 for PAN), as the toolbox does.
    ///
    /// ```
    /// use ship_edge::pansharpen::Sensor;
    /// assert_eq!(Sensor::from_name("QB").unwrap().gnyq(4), vec![0.34, 0.32, 0.30, 0.22]);
    /// assert_eq!(Sensor::from_name("landsat7").unwrap().gnyq(6), vec![0.3; 6]);
    /// assert!(Sensor::from_name("spot").is_none());
    /// ```
    pub fn from_name(name: &str) -> Option<Sensor> {
        let s = |name, bands, default_gain, pan_gain| Sensor {
            name,
            bands,
            default_gain,
            pan_gain,
        };
        Some(match name.to_ascii_lowercase().as_str() {
            "qb" | "quickbird" => s("qb", Some(&[0.34, 0.32, 0.30, 0.22][..]), 0.3, 0.15),
            "ikonos" => s("ikonos", Some(&[0.26, 0.28, 0.29, 0.28][..]), 0.3, 0.17),
            "geoeye1" => s("geoeye1", None, 0.23, 0.16),
            "wv4" => s("wv4", None, 0.23, 0.16),
            // The toolbox's `[0.35 .* ones(1,7), 0.27]` (PanCollection's Python line is buggy).
            "wv2" => s(
                "wv2",
                Some(&[0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.27][..]),
                0.3,
                0.11,
            ),
            "wv3" => s(
                "wv3",
                Some(&[0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315][..]),
                0.3,
                0.14,
            ),
            "gf2" => s("gf2", None, 0.3, 0.15),
            "landsat7" | "landsat" => s("landsat7", None, 0.3, 0.15),
            "other" | "none" => s("other", None, 0.3, 0.15),
            _ => return None,
        })
    }

    /// The "other" sensor: GNyq 0.3 for every MS band, 0.15 for PAN.
    pub fn other() -> Sensor {
        Sensor::from_name("other").expect("built-in sensor")
    }

    /// GNyq of each of `bands` MS bands. A sensor table shorter than `bands` (e.g. a 4-band
    /// table on an 8-band image) falls back to 0.3 for the missing bands, which is what
    /// `genMTF.m`'s `otherwise` row gives.
    pub fn gnyq(&self, bands: usize) -> Vec<f64> {
        (0..bands)
            .map(|b| match self.bands {
                Some(t) if t.len() == bands => t[b],
                Some(_) => 0.3,
                None => self.default_gain,
            })
            .collect()
    }
}

impl Default for Sensor {
    fn default() -> Sensor {
        Sensor::other()
    }
}

/// `WxH` (and the band count) of a cube, for messages.
pub(crate) fn cube_size(c: &Cube) -> String {
    let (b, h, w) = c.dim();
    format!("{w}x{h} with {b} band(s)")
}

/// `WxH` of an image, for messages.
pub(crate) fn image_size(i: &Image) -> String {
    let (h, w) = i.dim();
    format!("{w}x{h}")
}

/// Errors if `c` has no band or no pixel.
pub(crate) fn check_cube(what: &'static str, c: &Cube) -> Result<(), PanError> {
    let (bands, height, width) = c.dim();
    if c.is_empty() {
        return Err(PanError::Empty {
            what,
            bands,
            width,
            height,
        });
    }
    Ok(())
}

/// Errors if `i` has no pixel.
pub(crate) fn check_image(what: &'static str, i: &Image) -> Result<(), PanError> {
    let (height, width) = i.dim();
    if i.is_empty() {
        return Err(PanError::Empty {
            what,
            bands: 1,
            width,
            height,
        });
    }
    Ok(())
}

/// Checks an (MS, PAN) pair: non-empty, PAN exactly `ratio` times the MS size, `ratio >= 1`.
pub(crate) fn check_pair(ms: &Cube, pan: &Image, ratio: usize) -> Result<(), PanError> {
    check_cube("MS", ms)?;
    check_image("PAN", pan)?;
    if ratio < 2 {
        return Err(PanError::Ratio {
            ratio,
            expected: "the PAN/MS size ratio must be an integer >= 2",
        });
    }
    let (_, h, w) = ms.dim();
    if pan.dim() != (h * ratio, w * ratio) {
        return Err(PanError::Size {
            what: "PAN",
            got: image_size(pan),
            expected: format!(
                "{}x{} (ratio {ratio} times the MS size {w}x{h})",
                w * ratio,
                h * ratio
            ),
        });
    }
    Ok(())
}
