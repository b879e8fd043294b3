//! Classical infrared-visible fusion baselines: average, max, Laplacian pyramid and GFF, on
//! grey 0–255 `f64` images (A = infrared, B = visible luminance Y), plus [`fuse_planes`], the
//! whole-image path (`ship-edge fuse --method`, `ship-edge eval --method`): Y/chroma split,
//! fusion of Y, chroma merged back — the same colour handling as a model run by
//! [`Fuser`](crate::Fuser). Definitions: `shared/notes/METRICS.md` §5.

mod gff;
mod guided_filter;
mod laplacian;

use std::fmt;
use std::str::FromStr;

use ndarray::Zip;

use crate::dsp::{self, Image};
use crate::imaging::{Planes, color};

pub use guided_filter::guided_filter;

/// Errors of the IVIF baselines: bad input, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaselineError {
    /// The two sources differ in size.
    #[error(
        "IR is {ir_width}x{ir_height} but visible is {vis_width}x{vis_height}: the pair must be the same size"
    )]
    SizeMismatch {
        /// IR width.
        ir_width: usize,
        /// IR height.
        ir_height: usize,
        /// Visible width.
        vis_width: usize,
        /// Visible height.
        vis_height: usize,
    },
    /// The sources have no pixels.
    #[error("the images are {width}x{height}: expected at least 1x1 pixels")]
    Empty {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
    },
    /// A method name that is not one of [`IvifMethod::ALL`].
    #[error("unknown IVIF method `{name}`: expected one of {}", method_names())]
    UnknownMethod {
        /// The name given.
        name: String,
    },
}

/// A classical infrared-visible fusion method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IvifMethod {
    /// `(A + B) / 2`.
    Average,
    /// `max(A, B)` per pixel.
    Max,
    /// Laplacian pyramid (Burt–Adelson), 4 levels (fewer for images under ~128 px): detail
    /// bands by max-abs, top level averaged.
    Laplacian,
    /// Guided-filter fusion (Li, Kang, Hu, TIP 2013) with the paper's parameters.
    Gff,
}

impl IvifMethod {
    /// Every method, in the order tables list them.
    pub const ALL: [IvifMethod; 4] = [
        IvifMethod::Average,
        IvifMethod::Max,
        IvifMethod::Laplacian,
        IvifMethod::Gff,
    ];

    /// The command-line and table name: `average`, `max`, `laplacian`, `gff`.
    pub fn name(self) -> &'static str {
        match self {
            IvifMethod::Average => "average",
            IvifMethod::Max => "max",
            IvifMethod::Laplacian => "laplacian",
            IvifMethod::Gff => "gff",
        }
    }
}

impl fmt::Display for IvifMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IvifMethod {
    type Err = BaselineError;

    /// Parses a [`name`](IvifMethod::name) (exact, lower case).
    fn from_str(s: &str) -> Result<IvifMethod, BaselineError> {
        IvifMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| BaselineError::UnknownMethod {
                name: s.to_string(),
            })
    }
}

/// `average, max, laplacian, gff`, for error messages.
fn method_names() -> String {
    IvifMethod::ALL.map(IvifMethod::name).join(", ")
}

/// Fuses infrared `ir` with visible luminance `vis_y` (grey, 0–255, same size) by `method`;
/// the result is on 0–255, clamped.
///
/// ```
/// use ship_edge::baselines::ivif::{IvifMethod, fuse};
/// use ship_edge::dsp::Image;
/// let (ir, vis) = (Image::from_elem((2, 3), 200.0), Image::from_elem((2, 3), 100.0));
/// assert_eq!(fuse(IvifMethod::Average, &ir, &vis)?[[1, 2]], 150.0);
/// assert_eq!(fuse(IvifMethod::Max, &ir, &vis)?[[0, 0]], 200.0);
/// # Ok::<(), ship_edge::baselines::ivif::BaselineError>(())
/// ```
pub fn fuse(method: IvifMethod, ir: &Image, vis_y: &Image) -> Result<Image, BaselineError> {
    check_sizes(ir.dim(), vis_y.dim())?;
    let fused = match method {
        IvifMethod::Average => Zip::from(ir).and(vis_y).map_collect(|&a, &b| 0.5 * (a + b)),
        IvifMethod::Max => Zip::from(ir).and(vis_y).map_collect(|&a, &b| a.max(b)),
        IvifMethod::Laplacian => laplacian::fuse(ir, vis_y, laplacian::DEFAULT_LEVELS),
        IvifMethod::Gff => gff::fuse(ir, vis_y),
    };
    Ok(fused.mapv(|v| v.clamp(0.0, 255.0)))
}

/// Fuses a decoded infrared + visible pair (`[0, 1]` planes, as [`crate::imaging::io::load`]
/// returns them) by `method`, exactly as a model run does around the network: the IR's
/// channel 0 and the visible luminance Y (an RGB visible image is split into Y + chroma) are
/// fused on 0–255, and the result goes back to `[0, 1]` with the visible chroma merged in. The
/// output is grey for a grey visible image, RGB for an RGB one, and carries the visible image's
/// bit depth (so a 16-bit visible input is written back as 16-bit).
///
/// ```
/// use ship_edge::baselines::ivif::{IvifMethod, fuse_planes};
/// use ship_edge::imaging::Planes;
/// let ir = Planes::gray(2, 1, vec![1.0, 0.0]);
/// let vis = Planes::gray(2, 1, vec![0.5, 0.5]);
/// let fused = fuse_planes(IvifMethod::Max, &ir, &vis)?;
/// assert_eq!(fused.channel(0), &[1.0, 0.5]);
/// # Ok::<(), ship_edge::baselines::ivif::BaselineError>(())
/// ```
pub fn fuse_planes(method: IvifMethod, ir: &Planes, vis: &Planes) -> Result<Planes, BaselineError> {
    let (width, height) = (vis.width(), vis.height());
    check_sizes((ir.height(), ir.width()), (height, width))?;
    let (vis_y, chroma) = color::split_visible(vis);
    let to_image = |plane: &[f32]| dsp::from_plane(width, height, plane) * 255.0;
    let fused = fuse(method, &to_image(color::infrared(ir)), &to_image(&vis_y))?;
    let fused_y = dsp::to_plane(&(fused / 255.0).view());
    Ok(color::merge(&fused_y, chroma.as_ref(), width, height).with_bit_depth(vis.bit_depth()))
}

/// Same non-empty `(rows, cols)` for both sources.
fn check_sizes((ih, iw): (usize, usize), (vh, vw): (usize, usize)) -> Result<(), BaselineError> {
    if (ih, iw) != (vh, vw) {
        return Err(BaselineError::SizeMismatch {
            ir_width: iw,
            ir_height: ih,
            vis_width: vw,
            vis_height: vh,
        });
    }
    if ih == 0 || iw == 0 {
        return Err(BaselineError::Empty {
            width: iw,
            height: ih,
        });
    }
    Ok(())
}

/// Test images shared by the baselines' unit tests.
#[cfg(test)]
mod testing {
    use crate::dsp::Image;

    /// A deterministic 0-255 texture; `seed` shifts the pattern.
    pub fn texture(h: usize, w: usize, seed: usize) -> Image {
        Image::from_shape_fn((h, w), |(y, x)| {
            ((y * 37 + x * 101 + seed * 53) % 256) as f64
        })
    }

    /// Largest absolute difference between two images of the same size.
    pub fn max_abs_diff(a: &Image, b: &Image) -> f64 {
        (a - b).iter().fold(0.0f64, |m, d| m.max(d.abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testing::{max_abs_diff, texture};

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for m in IvifMethod::ALL {
            assert_eq!(m.name().parse::<IvifMethod>(), Ok(m));
            assert_eq!(m.to_string(), m.name());
        }
        let err = "pyramid".parse::<IvifMethod>().unwrap_err().to_string();
        assert!(
            err.contains("pyramid") && err.contains("average, max, laplacian, gff"),
            "{err}"
        );
    }

    #[test]
    fn average_and_max_are_exact() {
        let (a, b) = (
            Image::from_elem((3, 4), 40.0),
            Image::from_elem((3, 4), 100.0),
        );
        assert!(
            fuse(IvifMethod::Average, &a, &b)
                .unwrap()
                .iter()
                .all(|&v| v == 70.0)
        );
        let (a, b) = (texture(5, 7, 1), texture(5, 7, 2));
        let max = fuse(IvifMethod::Max, &a, &b).unwrap();
        assert!(
            Zip::from(&max)
                .and(&a)
                .and(&b)
                .all(|&m, &x, &y| m == x.max(y) && (m == x || m == y))
        );
    }

    #[test]
    fn identical_inputs_come_back() {
        let x = texture(37, 53, 3);
        for (method, tol) in [
            (IvifMethod::Average, 0.0),
            (IvifMethod::Max, 0.0),
            (IvifMethod::Laplacian, 1e-9),
            (IvifMethod::Gff, 1e-6),
        ] {
            let f = fuse(method, &x, &x).unwrap();
            assert!(
                max_abs_diff(&f, &x) <= tol,
                "{method}: {}",
                max_abs_diff(&f, &x)
            );
        }
    }

    #[test]
    fn output_is_clamped_and_sized_for_odd_and_tiny_images() {
        for (h, w) in [(1, 1), (2, 3), (3, 2), (37, 53), (8, 200)] {
            // Extreme contrast makes the pyramid and GFF overshoot before clamping.
            let a =
                Image::from_shape_fn((h, w), |(y, x)| if (x + y) % 2 == 0 { 255.0 } else { 0.0 });
            let b = Image::from_shape_fn(
                (h, w),
                |(y, x)| if x % 3 == 0 { 0.0 } else { 255.0 - y as f64 },
            );
            for method in IvifMethod::ALL {
                let f = fuse(method, &a, &b).unwrap();
                assert_eq!(f.dim(), (h, w), "{method}");
                assert!(
                    f.iter().all(|v| (0.0..=255.0).contains(v)),
                    "{method} {h}x{w}"
                );
            }
        }
    }

    #[test]
    fn bad_sizes_are_errors() {
        let err = fuse(
            IvifMethod::Gff,
            &Image::zeros((4, 6)),
            &Image::zeros((4, 5)),
        )
        .unwrap_err();
        assert_eq!(
            err,
            BaselineError::SizeMismatch {
                ir_width: 6,
                ir_height: 4,
                vis_width: 5,
                vis_height: 4
            }
        );
        assert!(err.to_string().contains("6x4") && err.to_string().contains("5x4"));
        for method in IvifMethod::ALL {
            let err = fuse(method, &Image::zeros((0, 3)), &Image::zeros((0, 3))).unwrap_err();
            assert_eq!(
                err,
                BaselineError::Empty {
                    width: 3,
                    height: 0
                }
            );
        }
        let (ir, vis) = (
            Planes::gray(2, 2, vec![0.0; 4]),
            Planes::gray(2, 1, vec![0.0; 2]),
        );
        assert!(matches!(
            fuse_planes(IvifMethod::Max, &ir, &vis),
            Err(BaselineError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn planes_keep_colour_and_bit_depth() {
        use crate::imaging::BitDepth;
        let vis = Planes::rgb(2, 1, [vec![0.8, 0.2], vec![0.4, 0.2], vec![0.1, 0.2]])
            .with_bit_depth(BitDepth::Sixteen);
        let ir = Planes::gray(2, 1, vec![0.0, 0.6]);
        let out = fuse_planes(IvifMethod::Average, &ir, &vis).unwrap();
        assert!(out.is_rgb());
        assert_eq!(out.bit_depth(), BitDepth::Sixteen);
        // Expected: Y averaged with the IR, chroma kept.
        let (y, chroma) = color::split_visible(&vis);
        let chroma = chroma.unwrap();
        for (i, ir0) in [0.0f32, 0.6].into_iter().enumerate() {
            let fy = 0.5 * (y[i] + ir0);
            let want =
                color::ycrcb_to_rgb([fy, chroma.cr[i], chroma.cb[i]]).map(|v| v.clamp(0.0, 1.0));
            for (c, want) in want.into_iter().enumerate() {
                assert!(
                    (out.channel(c)[i] - want).abs() < 1e-5,
                    "pixel {i} channel {c}"
                );
            }
        }
        // Grey visible in, grey out.
        let grey = fuse_planes(IvifMethod::Gff, &ir, &Planes::gray(2, 1, vec![0.3, 0.3])).unwrap();
        assert_eq!(grey.channel_count(), 1);
    }
}
