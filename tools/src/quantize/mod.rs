//! Static post-training int8 quantization of an exported f32 model (`ship-tools quantize`).
//!
//! Every `Conv` with constant weights becomes `QLinearConv`: u8 activations with one scale and
//! zero point per tensor, measured on calibration pairs ([`calibrate`]); int8 symmetric weights,
//! one scale per tensor or per output channel (`--per-channel`: as fast in ship-edge's kernel,
//! and 1–2 dB closer to f32); int32 bias. The convolution writing the output stays f32, and
//! `--min-psnr` leaves the most costly others in f32 ([`mixed`]). Everything else stays f32
//! between `DequantizeLinear` and `QuantizeLinear` ([`rewrite`]): the FFT interaction (global
//! sums need more than 8 bits), the LayerNorms and gates, softmax and the sigmoid attention.

pub mod calibrate;
pub mod mixed;
pub mod rewrite;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use prost::Message;
use ship_edge::model::meta;
use tract_onnx::pb;

pub use calibrate::{Method, Range};

/// What `quantize` was asked to do.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// How activation ranges are taken from the calibration values.
    pub method: Method,
    /// One weight scale per output channel instead of one per tensor.
    pub per_channel: bool,
    /// Calibration pairs used (evenly spread over the folder's pairs).
    pub pairs: usize,
    /// Pairs set aside first, as `train --holdout N` does, so validation images stay unseen.
    pub holdout: usize,
    /// Leave the most sensitive convolutions in f32 until the worst scored pair's output is
    /// within this PSNR (dB) of the f32 model's ([`mixed`]).
    pub min_psnr: Option<f64>,
}

impl Default for QuantizeOptions {
    fn default() -> Self {
        QuantizeOptions {
            method: Method::Minmax,
            per_channel: false,
            pairs: 16,
            holdout: 0,
            min_psnr: None,
        }
    }
}

/// What `quantize` did.
#[derive(Debug, Clone)]
pub struct QuantizeReport {
    /// Convolutions now run as `QLinearConv`.
    pub quantized_convs: usize,
    /// Convolutions left in f32 (weights not constant, not 2-D, or kept by `min_psnr`).
    pub float_convs: usize,
    /// Names of the calibration pairs.
    pub calibration: Vec<String>,
    /// With [`QuantizeOptions::min_psnr`]: worst scored pair's PSNR (dB) against the f32
    /// model, all in int8 and as written.
    pub psnr: Option<(f64, f64)>,
}

/// Reads `model`, calibrates on pairs of `calib` (a folder with `ir/` and `vi/`), writes the
/// int8 model to `out` (atomically) and returns what was done.
pub fn quantize(
    model: &Path,
    calib: &Path,
    opts: &QuantizeOptions,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<QuantizeReport> {
    let bytes =
        std::fs::read(model).with_context(|| format!("{}: cannot read", model.display()))?;
    let proto = pb::ModelProto::decode(bytes.as_slice())
        .with_context(|| format!("{}: not an ONNX model", model.display()))?;
    let metadata = |key: &str| {
        proto
            .metadata_props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.clone())
    };
    if metadata(meta::QUANTIZATION).is_some() {
        bail!(
            "{}: already quantized (metadata `{}`); quantize the f32 export",
            model.display(),
            meta::QUANTIZATION
        );
    }
    if metadata(meta::TASK).as_deref() != Some(meta::TASK_IVIF) {
        bail!(
            "{}: not an infrared-visible fusion model (metadata task = {:?}); quantize \
             calibrates on IR/visible pairs",
            model.display(),
            metadata(meta::TASK)
        );
    }
    if let Some(db) = opts.min_psnr
        && !(db.is_finite() && db > 0.0)
    {
        bail!("--min-psnr must be a positive number of dB, got {db}");
    }
    let pairs = calibration_pairs(calib, opts)?;
    let graph = proto.graph.as_ref().context("the model holds no graph")?;
    let convs = rewrite::quantizable_convs(graph);
    let tensors = rewrite::calibrated_tensors(graph, &convs);
    let ranges = calibrate::ranges(&proto, &tensors, &pairs, opts.method, progress)
        .with_context(|| format!("{}: calibration failed", model.display()))?;
    let (convs, psnr) = match opts.min_psnr {
        None => (convs, None),
        Some(target) => {
            let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
            let step = pairs.len().div_ceil(mixed::SCORED_PAIRS).max(1);
            let search = mixed::Search {
                proto: &proto,
                convs: &convs,
                ranges: &ranges,
                per_channel: opts.per_channel,
                pairs: pairs.iter().step_by(step).collect(),
                scratch: scratch.path(),
            };
            let plan = search.run(target, &mut |line| eprintln!("{line}"))?;
            if plan.quantized.is_empty() {
                bail!(
                    "{}: no convolution can run in int8 within {target} dB of the f32 model",
                    model.display()
                );
            }
            (plan.quantized, Some((plan.psnr_all_int8, plan.psnr)))
        }
    };
    let (quantized, report) = rewrite::rewrite(proto, &convs, &ranges, opts.per_channel)?;
    let description = format!(
        "int8 static: {} of {} Conv as QLinearConv (u8 activations per tensor, {} ranges over {} \
         pairs; int8 weights per {}); the rest f32",
        report.0,
        report.0 + report.1,
        opts.method.as_str(),
        pairs.len(),
        if opts.per_channel {
            "output channel"
        } else {
            "tensor"
        },
    );
    let mut quantized = quantized;
    quantized.metadata_props.push(pb::StringStringEntryProto {
        key: meta::QUANTIZATION.into(),
        value: description,
    });
    let encoded = quantized.encode_to_vec();
    crate::export::write_atomic(out, |tmp| std::fs::write(tmp, &encoded))?;
    Ok(QuantizeReport {
        quantized_convs: report.0,
        float_convs: report.1,
        calibration: pairs.iter().map(|p| p.name.clone()).collect(),
        psnr,
    })
}

/// `opts.pairs` decoded pairs of `dir`, spread evenly over its sorted pairs (after the
/// holdout).
fn calibration_pairs(
    dir: &Path,
    opts: &QuantizeOptions,
) -> anyhow::Result<Vec<crate::train::data::Pair>> {
    use crate::train::data;
    if opts.pairs == 0 {
        bail!("--pairs must be at least 1");
    }
    let mut files = data::list_pairs(dir)?;
    if opts.holdout > 0 {
        files = data::holdout(files, opts.holdout)?.0;
    }
    let n = opts.pairs.min(files.len());
    let picked: Vec<_> = (0..n).map(|i| files[i * files.len() / n].clone()).collect();
    data::load_train(&picked, 1)
}

/// The int8 file name next to an f32 one: `x.onnx` → `x_int8.onnx`.
pub fn default_output(model: &Path) -> PathBuf {
    let stem = model.file_stem().unwrap_or_default().to_string_lossy();
    model.with_file_name(format!("{stem}_int8.onnx"))
}
