//! Infrared-visible evaluation: every source (baseline, model, or directory of fused images)
//! on every IR + visible pair, scored with [`crate::metrics::ivif`] in one convention.
//!
//! What is scored is what a user would get on disk: baseline and model outputs are rounded
//! to 8 bits per channel (as `ship-edge fuse` writes a PNG), and every fused image, IR and
//! visible image becomes 0–255 grey by [`ivif::grey`] (BT.601 luma for colour), as the
//! reference metric codes read saved files.

use std::path::{Path, PathBuf};

use super::pairs::{Pair, pair_dirs};
use super::{
    EvalError, FusedFiles, Progress, Report, check_sources, fused_file_lists, score_pairs,
};
use crate::Fuser;
use crate::baselines::ivif::{IvifMethod, fuse_planes};
use crate::dsp::Image;
use crate::imaging::{Limits, Planes, io};
use crate::metrics::ivif::{self, Convention};

/// One method to score.
#[derive(Debug)]
pub enum IvifSource {
    /// A classical baseline, run here.
    Baseline(IvifMethod),
    /// An IVIF ONNX model, run here.
    Model {
        /// The name in the report.
        name: String,
        /// The loaded model (boxed: it is large next to the other variants).
        fuser: Box<Fuser>,
    },
    /// Images fused elsewhere (e.g. a paper's published outputs), one per pair, by stem.
    Fused {
        /// The name in the report.
        name: String,
        /// The directory.
        dir: PathBuf,
    },
}

impl IvifSource {
    /// The name this source has in the report.
    pub fn name(&self) -> &str {
        match self {
            IvifSource::Baseline(m) => m.name(),
            IvifSource::Model { name, .. } | IvifSource::Fused { name, .. } => name,
        }
    }
}

/// An infrared-visible evaluation: the dataset, the convention and the methods.
#[derive(Debug)]
pub struct IvifEval {
    /// Directory of infrared images.
    pub ir_dir: PathBuf,
    /// Directory of visible images (grey or RGB), paired with the IR images by stem.
    pub vis_dir: PathBuf,
    /// The metric convention.
    pub convention: Convention,
    /// The methods, in report order.
    pub sources: Vec<IvifSource>,
    /// Decoding limits for every image read.
    pub limits: Limits,
}

impl IvifEval {
    /// Checks the dataset and the sources and pairs the files, without decoding any image:
    /// a missing file fails here, before any model runs.
    pub fn pairs(&self) -> Result<(Vec<Pair>, FusedFiles), EvalError> {
        check_sources(
            self.sources.iter().map(IvifSource::name),
            "--method, --model or --fused",
        )?;
        let pairs = pair_dirs(&[&self.ir_dir, &self.vis_dir])?;
        let fused = fused_file_lists(
            self.sources.iter().map(|s| match s {
                IvifSource::Fused { dir, .. } => Some(dir.as_path()),
                _ => None,
            }),
            &pairs,
        )?;
        Ok((pairs, fused))
    }

    /// Runs every source on every pair and scores it. `progress` is called after each pair.
    pub fn run(&self, progress: Progress<'_>) -> Result<Report, EvalError> {
        let (pairs, fused_dirs) = self.pairs()?;
        let metrics = self
            .convention
            .metrics()
            .iter()
            .map(|m| (m.name().to_owned(), m.better()))
            .collect();
        let stems = pairs.iter().map(|p| p.stem.clone()).collect();
        let (rows, _) = score_pairs(&pairs, self.sources.len(), progress, |i, pair| {
            Ok((self.score_pair(pair, &fused_dirs, i)?, ()))
        })?;
        let mut report = Report::new(self.convention.name(), metrics, stems);
        for (source, row) in self.sources.iter().zip(rows) {
            report.push(source.name(), row);
        }
        Ok(report)
    }

    /// Scores of every source on one pair (index `i` into the fused-file lists).
    fn score_pair(
        &self,
        pair: &Pair,
        fused_dirs: &FusedFiles,
        i: usize,
    ) -> Result<Vec<Vec<f64>>, EvalError> {
        let (ir_path, vis_path) = (&pair.files[0], &pair.files[1]);
        let ir = io::load(ir_path, &self.limits)?;
        let vis = io::load(vis_path, &self.limits)?;
        check_size(ir_path, &ir, vis_path, &vis)?;
        let method_err = |name: &str, e: &dyn std::fmt::Display| EvalError::Method {
            method: name.to_owned(),
            file: ir_path.clone(),
            message: e.to_string(),
        };
        let mut fused = Vec::with_capacity(self.sources.len());
        for (source, files) in self.sources.iter().zip(fused_dirs) {
            let image = match source {
                IvifSource::Baseline(m) => {
                    quantize_8bit(fuse_planes(*m, &ir, &vis).map_err(|e| method_err(m.name(), &e))?)
                }
                IvifSource::Model { name, fuser } => {
                    quantize_8bit(fuser.fuse(&ir, &vis).map_err(|e| method_err(name, &e))?)
                }
                IvifSource::Fused { .. } => {
                    let path = &files.as_ref().expect("fused sources have files")[i];
                    let image = io::load(path, &self.limits)?;
                    check_size(path, &image, vis_path, &vis)?;
                    image
                }
            };
            fused.push(ivif::grey(&image));
        }
        let (a, b) = (ivif::grey(&ir), ivif::grey(&vis));
        let scored = score_all(self.convention, &fused, &a, &b);
        scored
            .into_iter()
            .zip(&self.sources)
            .map(|(r, s)| r.map_err(|e| method_err(s.name(), &e)))
            .collect()
    }
}

/// Scores each fused image against (a, b), spread over the available cores.
fn score_all(
    convention: Convention,
    fused: &[Image],
    a: &Image,
    b: &Image,
) -> Vec<Result<Vec<f64>, ivif::IvifMetricsError>> {
    let score = |f: &Image| {
        ivif::evaluate(convention, f, a, b).map(|v| v.into_iter().map(|(_, x)| x).collect())
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || fused.len() < 2 {
        return fused.iter().map(score).collect();
    }
    let chunk = fused.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = fused
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(score).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("metric threads do not panic"))
            .collect()
    })
}

/// The image as an 8-bit file would hold it: each sample clamped to `[0,1]` and rounded to a
/// multiple of 1/255 (how model outputs are scored, here and in training validation).
pub fn quantize_8bit(image: Planes) -> Planes {
    let (w, h, depth) = (image.width(), image.height(), image.bit_depth());
    let q = |c: Vec<f32>| -> Vec<f32> {
        c.into_iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() / 255.0)
            .collect()
    };
    let mut channels = image.into_channels().into_iter().map(q);
    let out = match (channels.next(), channels.next(), channels.next()) {
        (Some(r), Some(g), Some(b)) => Planes::rgb(w, h, [r, g, b]),
        (Some(y), _, _) => Planes::gray(w, h, y),
        _ => unreachable!("Planes has one or three channels"),
    };
    out.with_bit_depth(depth)
}

fn check_size(
    path: &Path,
    image: &Planes,
    reference: &Path,
    want: &Planes,
) -> Result<(), EvalError> {
    if (image.width(), image.height()) == (want.width(), want.height()) {
        return Ok(());
    }
    Err(EvalError::SizeMismatch {
        file: path.to_path_buf(),
        got: format!("{}x{}", image.width(), image.height()),
        expected: format!("{}x{}", want.width(), want.height()),
        reference: reference.to_path_buf(),
    })
}
