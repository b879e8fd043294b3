//! Pan-sharpening quality metrics, with the definitions of Vivone's MATLAB toolbox
//! (`shared/notes/METRICS.md` §4; variants of other codes are named there):
//!
//! - reduced resolution ([`reduced`], Wald's protocol: the fused image is compared with a
//!   reference MS of the same size): PSNR, SSIM, SAM, ERGAS, SCC, Q, Q2n;
//! - full resolution ([`full`], no reference; toolbox-1.0 QNR, `flag_orig_paper = 0`):
//!   D_λ, D_s, QNR.
//!
//! Inputs are cubes `[band, row, col]` of digital numbers (DN: 0–255 for 8-bit data, 0–2047 for
//! 11-bit). SAM, ERGAS, SCC, Q, D_λ, D_s and QNR are invariant to a common scale factor; PSNR and
//! SSIM need the peak of the data range ([`ReducedOptions::peak`]); Q2n casts to `uint16` as the
//! toolbox does, so it **needs integer-scaled DN** (values in `[0, 1]` would all round to 0/1).

mod full_res;
mod q2n;
mod reduced_res;

pub use full_res::{d_lambda, d_s, qnr_index, uqi};
pub use q2n::q2n;
pub use reduced_res::{ergas, img_qi, psnr, q_index, sam, scc, ssim};

use ndarray::s;

use super::Better;
use crate::dsp::{Cube, Image};
use crate::pansharpen::{PanError, Sensor, check_cube, check_pair, cube_size, interp23tap};

/// One pan-sharpening metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PanMetric {
    /// Peak signal-to-noise ratio in dB, joint over bands (`[G]` form). Higher is better.
    Psnr,
    /// Mean SSIM over bands (`[G]`: Gaussian 11/1.5, 'valid'). Higher is better (max 1).
    Ssim,
    /// Spectral angle mapper in degrees. Lower is better (0 = identical directions).
    Sam,
    /// ERGAS, `(100/r)·√(mean_b MSE_b / μ_b²)`. Lower is better.
    Ergas,
    /// Spatial correlation coefficient of Sobel gradient magnitudes. Higher is better (max 1).
    Scc,
    /// Mean over bands of the UIQI on 32×32 sliding windows. Higher is better (max 1).
    Q,
    /// Garzelli–Nencini hypercomplex Q (Q4, Q8, …) on 32×32 blocks. Higher is better (max 1).
    Q2n,
    /// Spectral distortion D_λ (0 = none). Lower is better.
    DLambda,
    /// Spatial distortion D_s (0 = none). Lower is better.
    Ds,
    /// Quality with no reference, `(1 − D_λ)(1 − D_s)`. Higher is better (max 1).
    Qnr,
}

impl PanMetric {
    /// Every metric: the reduced-resolution ones, then the full-resolution ones.
    pub const ALL: [PanMetric; 10] = [
        PanMetric::Psnr,
        PanMetric::Ssim,
        PanMetric::Sam,
        PanMetric::Ergas,
        PanMetric::Scc,
        PanMetric::Q,
        PanMetric::Q2n,
        PanMetric::DLambda,
        PanMetric::Ds,
        PanMetric::Qnr,
    ];

    /// `"PSNR"`, `"SSIM"`, `"SAM"`, `"ERGAS"`, `"SCC"`, `"Q"`, `"Q2n"`, `"D_lambda"`, `"D_s"`,
    /// `"QNR"`.
    pub fn name(self) -> &'static str {
        match self {
            PanMetric::Psnr => "PSNR",
            PanMetric::Ssim => "SSIM",
            PanMetric::Sam => "SAM",
            PanMetric::Ergas => "ERGAS",
            PanMetric::Scc => "SCC",
            PanMetric::Q => "Q",
            PanMetric::Q2n => "Q2n",
            PanMetric::DLambda => "D_lambda",
            PanMetric::Ds => "D_s",
            PanMetric::Qnr => "QNR",
        }
    }

    /// The name as papers print it for `bands` bands: Q2n becomes `Q4`, `Q8`, … (the band
    /// count rounded up to a power of two, as Q2n pads it); other metrics keep [`name`].
    ///
    /// [`name`]: PanMetric::name
    pub fn label(self, bands: usize) -> String {
        match self {
            PanMetric::Q2n => format!("Q{}", bands.max(1).next_power_of_two()),
            m => m.name().to_owned(),
        }
    }

    /// Which way the metric improves.
    pub fn better(self) -> Better {
        match self {
            PanMetric::Sam | PanMetric::Ergas | PanMetric::DLambda | PanMetric::Ds => Better::Lower,
            _ => Better::Higher,
        }
    }
}

/// Settings of the reduced-resolution metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReducedOptions {
    /// PAN/MS resolution ratio (ERGAS's `100/r`).
    pub ratio: usize,
    /// Peak of the data range for PSNR and SSIM's constants: 255 for 8-bit DN, 2047 for 11-bit.
    pub peak: f64,
    /// Border crop: when > 0, keep 1-based rows/columns `dim_cut ..= end − dim_cut` of both
    /// images, as the toolbox's `flag_cut_bounds` (Vivone uses 21, the DLPan demos 30).
    /// Default 0: every pixel counts and 32-multiple sides tile Q2n's blocks exactly.
    pub dim_cut: usize,
}

impl Default for ReducedOptions {
    /// Ratio 4 (WorldView/QuickBird/GF-2), peak 255 (8-bit DN), no border crop.
    fn default() -> ReducedOptions {
        ReducedOptions {
            ratio: 4,
            peak: 255.0,
            dim_cut: 0,
        }
    }
}

/// Q and Q2n block size (toolbox `Q_blocks_size`, QNR's `S`).
pub const BLOCK: usize = 32;

/// The reduced-resolution metrics of `fused` against `reference` (both `[bands, H, W]` DN, same
/// shape), in the order PSNR, SSIM, SAM, ERGAS, SCC, Q, Q2n.
///
/// Errors: shapes differ, an empty image, a ratio of 0, a non-positive peak, or an image
/// (after the border crop) smaller than 32×32.
pub fn reduced(
    fused: &Cube,
    reference: &Cube,
    opts: &ReducedOptions,
) -> Result<Vec<(PanMetric, f64)>, PanError> {
    check_cube("fused image", fused)?;
    check_cube("reference MS", reference)?;
    if fused.dim().0 != reference.dim().0 {
        return Err(PanError::Bands {
            what: "fused image",
            got: fused.dim().0,
            expected: reference.dim().0,
        });
    }
    if fused.dim() != reference.dim() {
        return Err(PanError::Size {
            what: "fused image",
            got: cube_size(fused),
            expected: format!("{} (the reference MS)", cube_size(reference)),
        });
    }
    if opts.ratio == 0 {
        return Err(PanError::Invalid("ERGAS needs a ratio >= 1".into()));
    }
    if !(opts.peak.is_finite() && opts.peak > 0.0) {
        return Err(PanError::Invalid(format!(
            "the PSNR/SSIM peak must be positive, got {}",
            opts.peak
        )));
    }
    let (_, h, w) = fused.dim();
    let dc = opts.dim_cut;
    let (f, r) = if dc > 0 {
        if h < 2 * dc + BLOCK || w < 2 * dc + BLOCK {
            return Err(PanError::TooSmall {
                what: "fused image",
                metric: "the border crop plus Q's 32x32 window",
                width: w,
                height: h,
                min: 2 * dc + BLOCK,
            });
        }
        let cut = s![.., dc - 1..h - dc, dc - 1..w - dc];
        (fused.slice(cut).to_owned(), reference.slice(cut).to_owned())
    } else {
        (fused.clone(), reference.clone())
    };
    let (_, ch, cw) = f.dim();
    if ch < BLOCK || cw < BLOCK {
        return Err(PanError::TooSmall {
            what: "fused image",
            metric: "Q (32x32 windows)",
            width: cw,
            height: ch,
            min: BLOCK,
        });
    }
    Ok(vec![
        (PanMetric::Psnr, psnr(&f, &r, opts.peak)),
        (PanMetric::Ssim, ssim(&f, &r, opts.peak)),
        (PanMetric::Sam, sam(&r, &f)),
        (PanMetric::Ergas, ergas(&r, &f, opts.ratio as f64)),
        (PanMetric::Scc, scc(&f, &r)),
        (PanMetric::Q, q_index(&r, &f, BLOCK)),
        (PanMetric::Q2n, q2n(&r, &f, BLOCK)),
    ])
}

/// The low-resolution references the full-resolution indices compare against: M̃ =
/// `interp23tap(ms, r)` for D_λ and D_s, and P̃ = `interp23tap(imresize(pan, 1/r, bicubic), r)`
/// for D_s. Both are PAN-sized. (Training's full-resolution loss uses the same pair.)
pub fn qnr_references(ms: &Cube, pan: &Image, ratio: usize) -> Result<(Cube, Image), PanError> {
    let ms_up = interp23tap(ms, ratio)?;
    let pan_lr = crate::pansharpen::resize::imresize(
        pan,
        1.0 / ratio as f64,
        crate::pansharpen::resize::Method::Bicubic,
    );
    let pan_lr = pan_lr.insert_axis(ndarray::Axis(0));
    let pan_filt = interp23tap(&pan_lr, ratio)?.index_axis_move(ndarray::Axis(0), 0);
    Ok((ms_up, pan_filt))
}

/// The full-resolution metrics D_λ, D_s and QNR (toolbox 1.0, `flag_orig_paper = 0`,
/// S = 32, p = q = α = β = 1) of `fused` (`[bands, H, W]`, PAN size) given the original `ms`
/// (`[bands, H/r, W/r]`) and `pan` (`H × W`).
///
/// M̃ = `interp23tap(ms, r)`, P̃ = `interp23tap(imresize(pan, 1/r, bicubic), r)`. The sensor
/// is not used by this QNR (it is by PanCollection's HQNR, not implemented here).
///
/// Errors: sizes or band counts that do not match, fewer than 2 bands, a ratio that is not a
/// power of two, or sides that are not multiples of 32.
pub fn full(
    fused: &Cube,
    ms: &Cube,
    pan: &Image,
    ratio: usize,
    sensor: &Sensor,
) -> Result<Vec<(PanMetric, f64)>, PanError> {
    let _ = sensor;
    check_pair(ms, pan, ratio)?;
    check_cube("fused image", fused)?;
    let bands = ms.dim().0;
    if fused.dim().0 != bands {
        return Err(PanError::Bands {
            what: "fused image",
            got: fused.dim().0,
            expected: bands,
        });
    }
    let (ph, pw) = pan.dim();
    if fused.dim() != (bands, ph, pw) {
        return Err(PanError::Size {
            what: "fused image",
            got: cube_size(fused),
            expected: format!("{pw}x{ph} with {bands} band(s) (the PAN size)"),
        });
    }
    if bands < 2 {
        return Err(PanError::Bands {
            what: "MS",
            got: bands,
            expected: 2,
        });
    }
    if !ph.is_multiple_of(BLOCK) || !pw.is_multiple_of(BLOCK) {
        return Err(PanError::BlockSize {
            what: "PAN",
            metric: "QNR",
            width: pw,
            height: ph,
            block: BLOCK,
        });
    }
    let (ms_up, pan_filt) = qnr_references(ms, pan, ratio)?;
    let dl = d_lambda(fused, &ms_up, BLOCK);
    let ds = d_s(fused, &ms_up, pan, &pan_filt, BLOCK);
    Ok(vec![
        (PanMetric::DLambda, dl),
        (PanMetric::Ds, ds),
        (PanMetric::Qnr, qnr_index(dl, ds)),
    ])
}
