//! Mixed precision: which convolutions to leave in f32 so that the int8 model stays within a
//! PSNR of the f32 one.
//!
//! The error of an int8 model is not spread evenly: a few convolutions (thin ones feeding a
//! product or a normalisation, say) cost most of it. The search measures, for every
//! convolution, how much the whole model's PSNR against the f32 output rises when that one
//! alone stays f32, then leaves convolutions in f32 in that order until the model reaches the
//! target. It costs one model run per convolution plus one per step, on a few pairs.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use prost::Message;
use ship_edge::Fuser;
use tract_onnx::pb;

use super::calibrate::Range;
use super::rewrite;
use crate::train::data::Pair;

/// Pairs the search scores on (spread over the calibration pairs): enough to see a
/// convolution's effect, few enough that ~100 model runs stay in minutes.
pub const SCORED_PAIRS: usize = 4;

/// What the search found.
#[derive(Debug, Clone)]
pub struct MixedPlan {
    /// Conv node indices to quantize (the rest stay f32).
    pub quantized: Vec<usize>,
    /// Worst pair's PSNR (dB) against the f32 model with everything in int8, and with the plan.
    pub psnr_all_int8: f64,
    pub psnr: f64,
}

/// Everything a model run needs, so candidates can be scored alike.
pub struct Search<'a> {
    pub proto: &'a pb::ModelProto,
    pub convs: &'a [usize],
    pub ranges: &'a std::collections::HashMap<String, Range>,
    pub per_channel: bool,
    pub pairs: Vec<&'a Pair>,
    pub scratch: &'a Path,
}

impl Search<'_> {
    /// Raw fused Y of `proto` on every scored pair.
    fn outputs(&self, proto: &pb::ModelProto) -> anyhow::Result<Vec<Vec<f32>>> {
        let path = self.scratch.join("candidate.onnx");
        std::fs::write(&path, proto.encode_to_vec())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        let fuser = Fuser::from_onnx(&path)?;
        self.pairs
            .iter()
            .map(|p| Ok(fuser.fuse_y_raw(&p.ir, &p.vis, p.width, p.height)?))
            .collect()
    }

    /// Worst pair's PSNR (outputs clamped to [0, 1]) of the model quantizing `quantized`.
    fn score(&self, reference: &[Vec<f32>], quantized: &[usize]) -> anyhow::Result<f64> {
        let (candidate, _) =
            rewrite::rewrite(self.proto.clone(), quantized, self.ranges, self.per_channel)?;
        let outputs = self.outputs(&candidate)?;
        Ok(reference
            .iter()
            .zip(&outputs)
            .map(|(a, b)| psnr(a, b))
            .fold(f64::INFINITY, f64::min))
    }

    /// The convolutions to quantize for a worst-pair PSNR of at least `target` dB.
    pub fn run(&self, target: f64, progress: &mut dyn FnMut(&str)) -> anyhow::Result<MixedPlan> {
        let reference = self.outputs(self.proto)?;
        let all = self.score(&reference, self.convs)?;
        progress(&format!(
            "all {} convolutions in int8: {all:.2} dB",
            self.convs.len()
        ));
        let mut plan = MixedPlan {
            quantized: self.convs.to_vec(),
            psnr_all_int8: all,
            psnr: all,
        };
        if all >= target {
            return Ok(plan);
        }
        let mut gains = Vec::with_capacity(self.convs.len());
        for (i, &conv) in self.convs.iter().enumerate() {
            let others: Vec<usize> = self.convs.iter().copied().filter(|&c| c != conv).collect();
            let gain = self.score(&reference, &others)? - all;
            progress(&format!(
                "sensitivity {}/{}: node {conv} in f32: {gain:+.2} dB",
                i + 1,
                self.convs.len()
            ));
            gains.push((gain, conv));
        }
        gains.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut float = HashSet::new();
        for (_, conv) in gains {
            float.insert(conv);
            plan.quantized = self
                .convs
                .iter()
                .copied()
                .filter(|c| !float.contains(c))
                .collect();
            plan.psnr = self.score(&reference, &plan.quantized)?;
            progress(&format!("{} in f32: {:.2} dB", float.len(), plan.psnr));
            if plan.psnr >= target {
                break;
            }
        }
        Ok(plan)
    }
}

/// PSNR (dB, peak 1) of `b` against `a`, both clamped to [0, 1] as the fused image is.
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.clamp(0.0, 1.0) - y.clamp(0.0, 1.0)).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    -10.0 * mse.log10()
}
