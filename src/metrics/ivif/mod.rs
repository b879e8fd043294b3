//! Infrared-visible fusion quality metrics in three conventions: the mathematically correct
//! default, and two compatibility modes that reproduce published tables (`cddfuse`: MMIF-CDDFuse
//! `utils/Evaluator.py`; `tang2022`: Linfeng-Tang/Image-Fusion's 2022 MATLAB code, uint8
//! saturation included). Definitions: `shared/notes/METRICS.md` §1-3.
//!
//! Inputs are 2-D grey images on **0–255** ([`grey`] makes them from decoded [`Planes`]):
//! F fused, A infrared, B visible luminance. [`evaluate`] scores one triple in one convention;
//! numbers from different conventions are never comparable.
//!
//! ```
//! use ship_edge::metrics::ivif::{Convention, Metric, evaluate};
//! use ndarray::Array2;
//! let ir = Array2::from_shape_fn((64, 64), |(y, x)| ((x * 7 + y * 3) % 256) as f64);
//! let vis = Array2::from_shape_fn((64, 64), |(y, x)| ((x * x + y * 5) % 256) as f64);
//! let fused = (&ir + &vis) / 2.0;
//! let scores = evaluate(Convention::Default, &fused, &ir, &vis)?;
//! assert_eq!(scores.len(), Convention::Default.metrics().len());
//! assert_eq!(scores[0].0, Metric::En);
//! # Ok::<(), ship_edge::metrics::ivif::IvifMetricsError>(())
//! ```

mod correlation;
mod filter;
mod information;
mod nabf;
mod qabf;
mod ssim;
mod stats;
mod vif;

use std::fmt;
use std::str::FromStr;

use crate::dsp::Image;
use crate::imaging::{BitDepth, Planes};
use crate::metrics::Better;

/// Which definitions to score with. Every table and JSON names the one it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Convention {
    /// ship-edge's own, mathematically correct definitions (METRICS.md §2).
    #[default]
    Default,
    /// MMIF-CDDFuse `utils/Evaluator.py` (METRICS.md §3.1): MI in nats, PSNR peak = max(F),
    /// skimage-0.19 SSIM with `data_range = 2`, NaN VIF-P → 1.0, no Nabf.
    Cddfuse,
    /// Linfeng-Tang/Image-Fusion 2022 MATLAB code (METRICS.md §3.2), with its uint8 saturation
    /// in SD, VIF and the MI joint histogram, and its `[0,1]` scaling of SF, PSNR, MSE, Nabf.
    Tang2022,
}

const DEFAULT_METRICS: &[Metric] = &[
    Metric::En,
    Metric::Sd,
    Metric::Sf,
    Metric::Ag,
    Metric::Mi,
    Metric::Scd,
    Metric::Cc,
    Metric::Vif,
    Metric::Qabf,
    Metric::Nabf,
    Metric::Ssim,
    Metric::Psnr,
];

const CDDFUSE_METRICS: &[Metric] = &[
    Metric::En,
    Metric::Sd,
    Metric::Sf,
    Metric::Ag,
    Metric::Mi,
    Metric::Scd,
    Metric::Cc,
    Metric::Vif,
    Metric::Qabf,
    Metric::Ssim,
    Metric::Psnr,
];

// The order of the authors' spreadsheet (and `metrics_tang2022.csv`), Nabf last.
const TANG2022_METRICS: &[Metric] = &[
    Metric::En,
    Metric::Sd,
    Metric::Sf,
    Metric::Ag,
    Metric::Mi,
    Metric::Scd,
    Metric::Vif,
    Metric::Qabf,
    Metric::Cc,
    Metric::Psnr,
    Metric::Mse,
    Metric::Nabf,
];

impl Convention {
    /// All conventions, default first.
    pub const ALL: [Convention; 3] = [
        Convention::Default,
        Convention::Cddfuse,
        Convention::Tang2022,
    ];

    /// The name used on the command line and in reports: `default`, `cddfuse`, `tang2022`.
    pub fn name(self) -> &'static str {
        match self {
            Convention::Default => "default",
            Convention::Cddfuse => "cddfuse",
            Convention::Tang2022 => "tang2022",
        }
    }

    /// The metrics this convention reports, in the order [`evaluate`] returns them.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Convention::Default => DEFAULT_METRICS,
            Convention::Cddfuse => CDDFUSE_METRICS,
            Convention::Tang2022 => TANG2022_METRICS,
        }
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Convention {
    type Err = IvifMetricsError;

    fn from_str(s: &str) -> Result<Convention, IvifMetricsError> {
        Convention::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| IvifMetricsError::UnknownConvention(s.to_owned()))
    }
}

/// One infrared-visible quality metric. Its exact definition depends on the [`Convention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Entropy of F's grey-level histogram (bits).
    En,
    /// Standard deviation of F.
    Sd,
    /// Spatial frequency of F.
    Sf,
    /// Average gradient of F.
    Ag,
    /// Mutual information MI(F,A) + MI(F,B).
    Mi,
    /// Sum of the correlations of differences (Aslantas & Bendes).
    Scd,
    /// Mean correlation coefficient of F with A and with B.
    Cc,
    /// VIF-P (pixel-domain visual information fidelity), vifp(A,F) + vifp(B,F).
    Vif,
    /// Xydeas–Petrovic edge-transfer index Q^{AB/F}.
    Qabf,
    /// Shreyamsha Kumar's modified fusion-artifact measure N^{AB/F} (lower is better).
    Nabf,
    /// Structural similarity SSIM(F,A) + SSIM(F,B).
    Ssim,
    /// Peak signal-to-noise ratio of F against A and B (dB).
    Psnr,
    /// Mean squared error of F against A and B (lower is better).
    Mse,
}

impl Metric {
    /// Every metric, in the default convention's order, MSE last.
    pub const ALL: [Metric; 13] = [
        Metric::En,
        Metric::Sd,
        Metric::Sf,
        Metric::Ag,
        Metric::Mi,
        Metric::Scd,
        Metric::Cc,
        Metric::Vif,
        Metric::Qabf,
        Metric::Nabf,
        Metric::Ssim,
        Metric::Psnr,
        Metric::Mse,
    ];

    /// The column name papers use: `EN`, `SD`, `SF`, `AG`, `MI`, `SCD`, `CC`, `VIF`, `Qabf`,
    /// `Nabf`, `SSIM`, `PSNR`, `MSE`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::En => "EN",
            Metric::Sd => "SD",
            Metric::Sf => "SF",
            Metric::Ag => "AG",
            Metric::Mi => "MI",
            Metric::Scd => "SCD",
            Metric::Cc => "CC",
            Metric::Vif => "VIF",
            Metric::Qabf => "Qabf",
            Metric::Nabf => "Nabf",
            Metric::Ssim => "SSIM",
            Metric::Psnr => "PSNR",
            Metric::Mse => "MSE",
        }
    }

    /// Which way the metric improves: lower for Nabf and MSE, higher for the rest.
    pub fn better(self) -> Better {
        match self {
            Metric::Nabf | Metric::Mse => Better::Lower,
            _ => Better::Higher,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = IvifMetricsError;

    fn from_str(s: &str) -> Result<Metric, IvifMetricsError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| IvifMetricsError::UnknownMetric(s.to_owned()))
    }
}

/// Why the metrics could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IvifMetricsError {
    /// An image smaller than 2x2 (gradients and differences need two samples per axis).
    #[error("{image} image is {width}x{height}: IVIF metrics need at least 2x2 pixels")]
    TooSmall {
        /// Which input: "fused", "infrared" or "visible".
        image: &'static str,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
    },
    /// The three images do not have the same size.
    #[error(
        "{image} image is {width}x{height} but the fused image is {fused_width}x{fused_height}: \
         the fused, infrared and visible images must have the same size"
    )]
    SizeMismatch {
        /// Which input differs from the fused image: "infrared" or "visible".
        image: &'static str,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
        /// The fused image's width.
        fused_width: usize,
        /// The fused image's height.
        fused_height: usize,
    },
    /// A NaN or infinite sample.
    #[error(
        "{image} image has a non-finite sample at row {row}, column {col}: expected grey levels 0-255"
    )]
    NonFinite {
        /// Which input.
        image: &'static str,
        /// Row of the first bad sample.
        row: usize,
        /// Column of the first bad sample.
        col: usize,
    },
    /// An unknown convention name.
    #[error("unknown IVIF metric convention '{0}': expected default, cddfuse or tang2022")]
    UnknownConvention(String),
    /// An unknown metric name.
    #[error(
        "unknown IVIF metric '{0}': expected one of EN, SD, SF, AG, MI, SCD, CC, VIF, Qabf, Nabf, SSIM, PSNR, MSE"
    )]
    UnknownMetric(String),
}

/// Scores the fused image `fused` (F) against the infrared `ir` (A) and visible luminance `vis`
/// (B), all grey on 0–255 and of the same size, in `convention`. Values come in
/// `convention.metrics()` order.
///
/// - `tang2022` first quantises the three images to uint8 (round half away from zero, clamp to
///   0–255), as its MATLAB code reads 8-bit files; the other conventions use the values as
///   given (EN and MI bin round(v) clamped to 0–255).
/// - Degenerate inputs give what the formulas give: PSNR is +∞ when F equals both sources,
///   VIF is NaN for a constant source in `default` and `tang2022` (1.0 in `cddfuse`), CC/SCD are
///   NaN for constant images.
///
/// The heavy metrics run on two threads (one 640x480 triple takes about 60 ms on two cores in
/// release).
///
/// # Errors
/// Images smaller than 2x2, of different sizes, or with non-finite samples.
pub fn evaluate(
    convention: Convention,
    fused: &Image,
    ir: &Image,
    vis: &Image,
) -> Result<Vec<(Metric, f64)>, IvifMetricsError> {
    check_inputs(fused, ir, vis)?;
    let values = match convention {
        Convention::Default => default_metrics(fused, ir, vis),
        Convention::Cddfuse => cddfuse_metrics(fused, ir, vis),
        Convention::Tang2022 => {
            let (f, a, b) = (to_uint8(fused), to_uint8(ir), to_uint8(vis));
            tang2022_metrics(&f, &a, &b)
        }
    };
    debug_assert_eq!(values.len(), convention.metrics().len());
    Ok(convention.metrics().iter().copied().zip(values).collect())
}

fn check_inputs(f: &Image, a: &Image, b: &Image) -> Result<(), IvifMetricsError> {
    let (h, w) = f.dim();
    for (name, img) in [("fused", f), ("infrared", a), ("visible", b)] {
        let (ih, iw) = img.dim();
        if name != "fused" && (ih, iw) != (h, w) {
            return Err(IvifMetricsError::SizeMismatch {
                image: name,
                width: iw,
                height: ih,
                fused_width: w,
                fused_height: h,
            });
        }
        if ih < 2 || iw < 2 {
            return Err(IvifMetricsError::TooSmall {
                image: name,
                width: iw,
                height: ih,
            });
        }
        if let Some(((row, col), _)) = img.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(IvifMetricsError::NonFinite {
                image: name,
                row,
                col,
            });
        }
    }
    Ok(())
}

/// MATLAB `uint8(x)`: round half away from zero, saturate to 0–255.
fn to_uint8(img: &Image) -> Image {
    img.mapv(|v| v.round().clamp(0.0, 255.0))
}

/// Runs two independent groups of metrics on two threads. VIF, SSIM, Qabf and Nabf are the
/// heavy ones; the groups are balanced for the default convention.
fn in_parallel<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|s| {
        let hb = s.spawn(b);
        let ra = a();
        (
            ra,
            hb.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    })
}

fn default_metrics(f: &Image, a: &Image, b: &Image) -> Vec<f64> {
    let ((vif, ssim), (qabf, nabf, cheap)) = in_parallel(
        || {
            let vif = vif::vifp_pair(a, b, f, false).iter().sum();
            (vif, ssim::wang_sum(f, a, b))
        },
        || {
            let mse = stats::mse(f, a, b);
            let cheap = [
                stats::entropy(f),
                stats::sd(f),
                stats::sf(f),
                stats::ag(f, false),
                information::mi_sum(f, a, b, false) / std::f64::consts::LN_2,
                correlation::scd(f, a, b),
                correlation::cc(f, a, b),
                10.0 * (255.0 * 255.0 / mse).log10(),
            ];
            (qabf::qabf(f, a, b), nabf::nabf(f, a, b), cheap)
        },
    );
    let [en, sd, sf, ag, mi, scd, cc, psnr] = cheap;
    vec![en, sd, sf, ag, mi, scd, cc, vif, qabf, nabf, ssim, psnr]
}

fn cddfuse_metrics(f: &Image, a: &Image, b: &Image) -> Vec<f64> {
    let ((vif, ssim), (qabf, cheap)) = in_parallel(
        || {
            // `compare_viff` returns 1.0 for a NaN vifp.
            let pair = vif::vifp_pair(a, b, f, false);
            let vif = pair.iter().map(|&v| if v.is_nan() { 1.0 } else { v }).sum();
            (vif, ssim::skimage019_sum(f, a, b))
        },
        || {
            let peak = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let cheap = [
                stats::entropy(f),
                stats::sd(f),
                stats::sf(f),
                stats::ag(f, false),
                information::mi_sum(f, a, b, false),
                correlation::scd(f, a, b),
                correlation::cc(f, a, b),
                10.0 * (peak * peak / stats::mse(f, a, b)).log10(),
            ];
            (qabf::qabf(f, a, b), cheap)
        },
    );
    let [en, sd, sf, ag, mi, scd, cc, psnr] = cheap;
    vec![en, sd, sf, ag, mi, scd, cc, vif, qabf, ssim, psnr]
}

/// `f`, `a`, `b` are already uint8-valued.
fn tang2022_metrics(f: &Image, a: &Image, b: &Image) -> Vec<f64> {
    // MATLAB `im2double`: the [0,1] images behind SF, SCD, CC, Qabf, PSNR, MSE and Nabf.
    let unit = |x: &Image| x.mapv(|v| v / 255.0);
    let (f1, a1, b1) = (unit(f), unit(a), unit(b));
    let ((vif, cheap), (qabf, nabf)) = in_parallel(
        || {
            let vif: f64 = vif::vifp_pair(a, b, f, true).iter().sum();
            let mse = stats::mse(&f1, &a1, &b1);
            let cheap = [
                stats::entropy(f),
                stats::sd_uint8(f),
                stats::sf(&f1),
                stats::ag(f, true),
                information::mi_sum(f, a, b, true) / std::f64::consts::LN_2,
                correlation::scd(&f1, &a1, &b1),
                correlation::cc(&f1, &a1, &b1),
                20.0 * (255.0 / mse.sqrt()).log10(),
                mse,
            ];
            (vif, cheap)
        },
        || (qabf::qabf(&f1, &a1, &b1), nabf::nabf(&f1, &a1, &b1)),
    );
    let [en, sd, sf, ag, mi, scd, cc, psnr, mse] = cheap;
    vec![en, sd, sf, ag, mi, scd, vif, qabf, cc, psnr, mse, nabf]
}

/// A decoded image as a 0–255 grey [`Image`] (METRICS.md §1):
/// - 8-bit grey: the exact integers `round(v·255)`;
/// - 8-bit RGB: `round(0.299 R + 0.587 G + 0.114 B)` (BT.601 luma, round half away from zero)
///   of the 0–255 integer channels, i.e. cv2 `COLOR_BGR2GRAY` on float input + rounding as
///   MMIF-CDDFuse reads images. MATLAB `rgb2gray` (0.2989/0.5870/0.1140) gives the same grey
///   levels on all the shared data;
/// - 16-bit grey or RGB: `v·255` (or its luma) **unrounded**, so no precision is thrown away;
///   EN and MI bin `round(v)` anyway.
pub fn grey(img: &Planes) -> Image {
    let (w, h) = (img.width(), img.height());
    let eight = img.bit_depth() == BitDepth::Eight;
    let level = |v: f32| {
        let x = f64::from(v) * 255.0;
        if eight { x.round() } else { x }
    };
    if img.is_rgb() {
        let (r, g, b) = (img.channel(0), img.channel(1), img.channel(2));
        Image::from_shape_fn((h, w), |(y, x)| {
            let i = y * w + x;
            let luma = 0.299 * level(r[i]) + 0.587 * level(g[i]) + 0.114 * level(b[i]);
            if eight { luma.round() } else { luma }
        })
    } else {
        let c = img.channel(0);
        Image::from_shape_fn((h, w), |(y, x)| level(c[y * w + x]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize, k: usize) -> Image {
        Image::from_shape_fn((h, w), |(y, x)| {
            ((x * k + y * 13 + (x * y) % 7) % 256) as f64
        })
    }

    #[test]
    fn names_round_trip() {
        for c in Convention::ALL {
            assert_eq!(c.name().parse::<Convention>().unwrap(), c);
        }
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        assert!(matches!(
            "cdd".parse::<Convention>(),
            Err(IvifMetricsError::UnknownConvention(_))
        ));
        assert_eq!(Metric::Nabf.better(), Better::Lower);
        assert_eq!(Metric::Ssim.better(), Better::Higher);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let a = ramp(50, 60, 3);
        let small = ramp(50, 59, 3);
        let err = evaluate(Convention::Default, &a, &small, &a).unwrap_err();
        assert!(err.to_string().contains("infrared image is 59x50"), "{err}");
        let empty = Image::zeros((0, 0));
        assert!(matches!(
            evaluate(Convention::Tang2022, &empty, &empty, &empty),
            Err(IvifMetricsError::TooSmall { .. })
        ));
        let mut nan = a.clone();
        nan[[3, 4]] = f64::NAN;
        assert_eq!(
            evaluate(Convention::Cddfuse, &a, &a, &nan).unwrap_err(),
            IvifMetricsError::NonFinite {
                image: "visible",
                row: 3,
                col: 4
            }
        );
    }

    #[test]
    fn identical_images_are_perfect() {
        let a = ramp(48, 64, 5);
        let got: std::collections::HashMap<_, _> = evaluate(Convention::Default, &a, &a, &a)
            .unwrap()
            .into_iter()
            .collect();
        assert!((got[&Metric::Ssim] - 2.0).abs() < 1e-12);
        assert!((got[&Metric::Cc] - 1.0).abs() < 1e-12);
        assert!((got[&Metric::Vif] - 2.0).abs() < 1e-9);
        assert_eq!(got[&Metric::Psnr], f64::INFINITY);
        assert_eq!(got[&Metric::Nabf], 0.0);
        // MI(F,F) = H(F), twice.
        assert!((got[&Metric::Mi] - 2.0 * got[&Metric::En]).abs() < 1e-12);
    }

    #[test]
    fn grey_rounds_8bit_luma() {
        let p = Planes::rgb(2, 1, [vec![1.0, 0.5], vec![0.0, 0.5], vec![0.0, 0.5]]);
        // 0.299 · 255 = 76.245; 0.5·255 = 127.5 → 128 per channel.
        assert_eq!(grey(&p).into_raw_vec_and_offset().0, vec![76.0, 128.0]);
        let g = Planes::gray(1, 1, vec![0.5]).with_bit_depth(BitDepth::Sixteen);
        assert_eq!(grey(&g)[[0, 0]], 127.5);
    }

    #[test]
    #[ignore]
    fn timing() {
        use std::time::Instant;
        let load = |p: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
            grey(&crate::imaging::io::load(&path, &crate::imaging::Limits::default()).unwrap())
                .slice(ndarray::s![..480, ..640])
                .to_owned()
        };
        let a = load("samples/tno/ir/01.png");
        let b = load("samples/tno/vi/01.png");
        let f = ((&a + &b) / 2.0).mapv(f64::floor);
        macro_rules! t {
            ($name:expr, $e:expr) => {{
                let mut best = f64::INFINITY;
                let mut v = 0.0;
                for _ in 0..7 {
                    let t0 = Instant::now();
                    v = std::hint::black_box($e);
                    best = best.min(t0.elapsed().as_secs_f64() * 1e3);
                }
                eprintln!("{:10} {:7.2} ms (min of 7)  {v}", $name, best);
            }};
        }
        t!("vif", vif::vifp_pair(&a, &b, &f, false).iter().sum::<f64>());
        t!("ssim_wang", ssim::wang_sum(&f, &a, &b));
        t!("ssim_sk", ssim::skimage019_sum(&f, &a, &b));
        t!("qabf", qabf::qabf(&f, &a, &b));
        t!("nabf", nabf::nabf(&f, &a, &b));
        t!("en", stats::entropy(&f));
        t!("sd", stats::sd(&f));
        t!("sf", stats::sf(&f));
        t!("ag", stats::ag(&f, false));
        t!("mi", information::mi_sum(&f, &a, &b, false));
        t!("scd", correlation::scd(&f, &a, &b));
        t!("cc", correlation::cc(&f, &a, &b));
        t!("mse", stats::mse(&f, &a, &b));
        for c in Convention::ALL {
            t!(c.name(), evaluate(c, &f, &a, &b).unwrap()[0].1);
        }
    }
}
