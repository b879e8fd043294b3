//! Pan-sharpening evaluation: every source (baseline or directory of fused images) on every
//! MS + PAN pair, scored at reduced resolution (Wald's protocol) or full resolution (QNR),
//! with [`crate::metrics::pan`] (Vivone toolbox conventions, `shared/notes/METRICS.md` §4).
//!
//! - `reduced`: the MS and PAN images are degraded by the ratio ([`wald::degrade`], MTF-matched
//!   filters of the sensor), each method pan-sharpens the degraded pair, and the result is
//!   scored against the original MS. A `--fused` directory must hold results at MS size,
//!   computed from the same degraded pair. With `ratio` a multiple of the data's PAN/MS ratio
//!   (4 on the ratio-2 Landsat data) the MS is degraded by `ratio` and the PAN by the data's
//!   ratio, so the pair differs by `ratio` and the original MS is still the reference.
//! - `full`: each method runs on the original pair; the result (PAN size) is scored without
//!   a reference by D_λ, D_s and QNR.
//!
//! A model ([`PanSource::Model`]) runs like a baseline, on the same (degraded or original) pair.
//!
//! Baseline and model outputs are scored as `ship-edge pansharpen` would store them: rounded and clamped
//! to the MS file's bit depth (8-bit when every MS value fits 0–255, else 16-bit). Ratio-based
//! methods (Brovey, SFIM, MTF-GLP-HPM) can produce huge values where the low-pass PAN nears
//! zero; a file cannot hold those, and the toolbox's own demos clip them too. Fused directories
//! are read as stored.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::pairs::{Pair, pair_dirs};
use super::{EvalError, Progress, Report, check_sources, fused_file_lists, score_pairs};
use crate::baselines::pan::{PanMethod, pansharpen};
use crate::dsp::{Cube, Image};
use crate::imaging::Limits;
use crate::imaging::bands::select_bands;
use crate::imaging::multiband::{load_cube, max_dn, quantize_sample, storage_bits};
use crate::metrics::pan::{self as metrics, PanMetric, ReducedOptions};
use crate::model::PanModel;
use crate::pansharpen::{Sensor, wald};

/// Resolution protocol of a pan-sharpening evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Wald's protocol: degrade, fuse, compare with the original MS.
    Reduced,
    /// The original pair, no reference: D_λ, D_s, QNR.
    Full,
}

impl Protocol {
    /// `"reduced"` or `"full"`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Reduced => "reduced",
            Protocol::Full => "full",
        }
    }

    /// The metrics this protocol reports, in column order.
    pub fn metrics(self) -> &'static [PanMetric] {
        match self {
            Protocol::Reduced => &[
                PanMetric::Psnr,
                PanMetric::Ssim,
                PanMetric::Sam,
                PanMetric::Ergas,
                PanMetric::Scc,
                PanMetric::Q,
                PanMetric::Q2n,
            ],
            Protocol::Full => &[PanMetric::DLambda, PanMetric::Ds, PanMetric::Qnr],
        }
    }

    /// The scores in `values` of this protocol's metrics, in its column order (NaN where one
    /// is missing).
    pub fn in_order(self, values: &[(PanMetric, f64)]) -> Vec<f64> {
        self.metrics()
            .iter()
            .map(|m| {
                values
                    .iter()
                    .find(|(k, _)| k == m)
                    .map_or(f64::NAN, |(_, v)| *v)
            })
            .collect()
    }
}

/// One pan-sharpening method to score.
#[derive(Debug)]
pub enum PanSource {
    /// A classical baseline, run here.
    Baseline(PanMethod),
    /// A pan-sharpening model, run here (inputs scaled by the MS file's largest DN).
    Model {
        /// The name in the report.
        name: String,
        /// The model.
        model: Box<PanModel>,
    },
    /// Results computed elsewhere, one multiband TIFF per pair, by stem.
    Fused {
        /// The name in the report.
        name: String,
        /// The directory.
        dir: PathBuf,
    },
}

impl PanSource {
    /// The name this source has in the report.
    pub fn name(&self) -> &str {
        match self {
            PanSource::Baseline(m) => m.name(),
            PanSource::Model { name, .. } | PanSource::Fused { name, .. } => name,
        }
    }
}

/// A pan-sharpening evaluation.
#[derive(Debug)]
pub struct PanEval {
    /// Directory of multispectral images (multiband TIFF).
    pub ms_dir: PathBuf,
    /// Directory of panchromatic images (one band), paired by stem.
    pub pan_dir: PathBuf,
    /// Reduced or full resolution.
    pub protocol: Protocol,
    /// PAN/MS size ratio; `None` infers it from each pair (it must be an integer).
    pub ratio: Option<usize>,
    /// MS bands to use, 1-based, in order ([`select_bands`]); `None`: all of them.
    pub bands: Option<Vec<usize>>,
    /// The sensor whose MTF the filters match.
    pub sensor: Sensor,
    /// Sensor name as given, for the report.
    pub sensor_name: String,
    /// PSNR/SSIM peak (255 for 8-bit data).
    pub peak: f64,
    /// The methods, in report order.
    pub sources: Vec<PanSource>,
    /// Decoding limits.
    pub limits: Limits,
}

impl PanEval {
    /// Runs every source on every pair and scores it. `progress` is called after each pair.
    pub fn run(&self, progress: Progress<'_>) -> Result<Report, EvalError> {
        check_sources(
            self.sources.iter().map(PanSource::name),
            "--method, --model or --fused",
        )?;
        let pairs = pair_dirs(&[&self.ms_dir, &self.pan_dir])?;
        let fused = fused_file_lists(
            self.sources.iter().map(|s| match s {
                PanSource::Fused { dir, .. } => Some(dir.as_path()),
                PanSource::Baseline(_) | PanSource::Model { .. } => None,
            }),
            &pairs,
        )?;
        let (rows, mut ratios) = score_pairs(&pairs, self.sources.len(), progress, |i, pair| {
            self.score_pair(pair, &fused, i)
        })?;
        let metrics = self
            .protocol
            .metrics()
            .iter()
            .map(|m| (m.name().to_owned(), m.better()))
            .collect();
        let mut report = Report::new(
            "vivone",
            metrics,
            pairs.iter().map(|p| p.stem.clone()).collect(),
        );
        ratios.dedup();
        report.context = vec![
            ("protocol".into(), Value::from(self.protocol.name())),
            (
                "ratio".into(),
                if ratios.len() == 1 {
                    Value::from(ratios[0])
                } else {
                    Value::from(ratios)
                },
            ),
            ("sensor".into(), Value::from(self.sensor_name.clone())),
            ("peak".into(), Value::from(self.peak)),
        ];
        for (source, row) in self.sources.iter().zip(rows) {
            report.push(source.name(), row);
        }
        Ok(report)
    }

    fn score_pair(
        &self,
        pair: &Pair,
        fused: &[Option<Vec<PathBuf>>],
        i: usize,
    ) -> Result<(Vec<Vec<f64>>, usize), EvalError> {
        let (ms_path, pan_path) = (&pair.files[0], &pair.files[1]);
        let mut ms = load_cube(ms_path, &self.limits)?;
        if let Some(list) = &self.bands {
            ms = select_bands(&ms, list).map_err(|e| EvalError::BandCount {
                file: ms_path.clone(),
                got: ms.dim().0,
                expected: format!("the bands of --bands ({e})"),
            })?;
        }
        let pan = single_band(pan_path, load_cube(pan_path, &self.limits)?)?;
        let (ratio, native) = self.pair_ratio(ms_path, &ms, pan_path, &pan)?;
        let method_err = |name: &str, e: &dyn std::fmt::Display| EvalError::Method {
            method: name.to_owned(),
            file: ms_path.clone(),
            message: e.to_string(),
        };
        // The pair each method fuses, and what its output is scored against.
        let (ms_in, pan_in) = match self.protocol {
            Protocol::Reduced if ratio == native => {
                wald::degrade(&ms, &pan, ratio, &self.sensor)
                    .map_err(|e| method_err("Wald degradation", &e))?
            }
            Protocol::Reduced => (
                wald::degrade_ms(&ms, ratio, &self.sensor),
                wald::degrade_pan(&pan, native, &self.sensor),
            ),
            Protocol::Full => (ms.clone(), pan.clone()),
        };
        let want = (ms.dim().0, pan_in.dim().0, pan_in.dim().1);
        let bits = storage_bits(&ms);
        let mut scores = Vec::with_capacity(self.sources.len());
        for (source, files) in self.sources.iter().zip(fused) {
            let out = match source {
                PanSource::Baseline(m) => pansharpen(*m, &ms_in, &pan_in, ratio, &self.sensor)
                    .map_err(|e| method_err(m.name(), &e))?
                    .mapv(|v| quantize_sample(v, bits)),
                PanSource::Model { name, model } => {
                    if model.ratio() != ratio {
                        return Err(method_err(
                            name,
                            &format!("the model's ratio is {}, the pair's {ratio}", model.ratio()),
                        ));
                    }
                    model
                        .sharpen_native(&ms_in, &pan_in, max_dn(bits))
                        .map_err(|e| method_err(name, &e))?
                        .mapv(|v| quantize_sample(v, bits))
                }
                PanSource::Fused { .. } => {
                    let path = &files.as_ref().expect("fused sources have files")[i];
                    let cube = load_cube(path, &self.limits)?;
                    if cube.dim() != want {
                        return Err(EvalError::SizeMismatch {
                            file: path.clone(),
                            got: cube_size(cube.dim()),
                            expected: cube_size(want),
                            reference: ms_path.clone(),
                        });
                    }
                    cube
                }
            };
            let values = match self.protocol {
                Protocol::Reduced => {
                    let opts = ReducedOptions {
                        ratio,
                        peak: self.peak,
                        ..ReducedOptions::default()
                    };
                    metrics::reduced(&out, &ms, &opts)
                }
                Protocol::Full => metrics::full(&out, &ms, &pan, ratio, &self.sensor),
            }
            .map_err(|e| method_err(source.name(), &e))?;
            scores.push(self.protocol.in_order(&values));
        }
        Ok((scores, ratio))
    }

    /// The pair's ratios: (the fusion ratio, the data's PAN/MS size ratio). The data ratio is
    /// an integer on both axes. The fusion ratio is `self.ratio` or the data's; a larger
    /// multiple of the data's is allowed at reduced resolution, where the MS is degraded by the
    /// fusion ratio and the PAN by the data's (a ratio-4 set from ratio-2 data).
    fn pair_ratio(
        &self,
        ms_path: &Path,
        ms: &Cube,
        pan_path: &Path,
        pan: &Image,
    ) -> Result<(usize, usize), EvalError> {
        let (_, mh, mw) = ms.dim();
        let (ph, pw) = pan.dim();
        let mismatch = |expected: String| EvalError::SizeMismatch {
            file: pan_path.to_path_buf(),
            got: format!("{pw}x{ph}"),
            expected,
            reference: ms_path.to_path_buf(),
        };
        let native = if mh > 0 && ph.is_multiple_of(mh) {
            ph / mh
        } else {
            0
        };
        if native < 2 || (ph, pw) != (mh * native, mw * native) {
            let expected = match self.ratio {
                Some(r) => format!(
                    "{}x{} (ratio {r} times the MS size {mw}x{mh})",
                    mw * r,
                    mh * r
                ),
                None => format!("an integer multiple (>= 2) of the MS size {mw}x{mh}"),
            };
            return Err(mismatch(expected));
        }
        let ratio = self.ratio.unwrap_or(native);
        if ratio != native {
            let simulated = self.protocol == Protocol::Reduced
                && ratio > native
                && ratio.is_multiple_of(native)
                && mh.is_multiple_of(ratio)
                && mw.is_multiple_of(ratio);
            if !simulated {
                return Err(mismatch(format!(
                    "{}x{} (ratio {ratio} times the MS size {mw}x{mh}; a larger ratio than the \
                     data's {native} is simulated only at reduced resolution, by a multiple of \
                     it that divides the MS sides)",
                    mw * ratio,
                    mh * ratio
                )));
            }
        }
        Ok((ratio, native))
    }
}

fn single_band(path: &Path, cube: Cube) -> Result<Image, EvalError> {
    if cube.dim().0 != 1 {
        return Err(EvalError::BandCount {
            file: path.to_path_buf(),
            got: cube.dim().0,
            expected: "1 (a panchromatic image)".into(),
        });
    }
    Ok(cube.index_axis_move(ndarray::Axis(0), 0))
}

fn cube_size((bands, h, w): (usize, usize, usize)) -> String {
    format!("{w}x{h} with {bands} bands")
}
