//! Activation ranges for quantization: run the f32 model (with ship-edge's ops, in tract) on
//! calibration pairs and record the range of every tensor a quantized convolution reads or
//! writes.

use std::collections::HashMap;

use anyhow::Context;
use ship_edge::model::meta;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::train::data::Pair;

/// How a tensor's range is taken from its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The smallest and largest value over all pairs: nothing clips, outliers cost resolution.
    Minmax,
    /// The 0.01% and 99.99% percentiles of each pair, averaged over pairs: a few outliers clip,
    /// the bulk keeps its resolution.
    Percentile,
    /// The clipping threshold that keeps each pair's value distribution closest (least KL
    /// divergence) to its quantized form, TensorRT's entropy calibration, averaged over pairs:
    /// long tails clip hardest.
    Entropy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Minmax => "minmax",
            Method::Percentile => "percentile",
            Method::Entropy => "entropy",
        }
    }
}

/// Share of values [`Method::Percentile`] lets clip at each end.
const PERCENTILE_TAIL: f64 = 1e-4;

/// A tensor's calibrated range, widened to hold 0 (zero padding must be exact in u8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f32,
    pub hi: f32,
}

impl Range {
    /// u8 asymmetric parameters: (scale, zero point).
    pub fn u8_params(self) -> (f32, u8) {
        let (lo, hi) = (self.lo.min(0.0), self.hi.max(0.0));
        // A constant-zero tensor still needs a usable scale (and a finite bias scale).
        let scale = if hi - lo > 1e-8 {
            (hi - lo) / 255.0
        } else {
            1.0 / 255.0
        };
        let zero = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        (scale, zero)
    }
}

fn tensor_range(values: &[f32], method: Method) -> (f32, f32) {
    match method {
        Method::Minmax => values
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v))),
        Method::Percentile => {
            let mut v = values.to_vec();
            let k = ((v.len() as f64 * PERCENTILE_TAIL) as usize).min(v.len() - 1);
            let top = v.len() - 1 - k;
            let lo = *v.select_nth_unstable_by(k, f32::total_cmp).1;
            let hi = *v.select_nth_unstable_by(top, f32::total_cmp).1;
            (lo, hi)
        }
        Method::Entropy => entropy_range(values),
    }
}

/// Histogram bins of |x| the entropy search runs over.
const ENTROPY_BINS: usize = 2048;
/// Candidate thresholds are tried every this many bins (the divergence varies smoothly).
const ENTROPY_STRIDE: usize = 16;

/// The range clipped at the threshold T on |x| whose quantization loses the least
/// information: for each candidate T, P is the histogram of |x| up to T with everything beyond
/// folded into its last bin, Q is the histogram up to T without that tail, merged into the
/// levels one side of the u8 range gets (255 for a non-negative tensor, 128 for a signed one)
/// and spread back over its non-empty bins, and T minimises KL(P‖Q) (Migacz, "8-bit Inference
/// with TensorRT", GTC 2017).
fn entropy_range(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = tensor_range(values, Method::Minmax);
    let top = lo.abs().max(hi.abs());
    if !(top.is_finite() && top > 0.0) {
        return (lo, hi);
    }
    let levels = if lo >= 0.0 { 255 } else { 128 };
    let width = top / ENTROPY_BINS as f32;
    let mut histogram = vec![0f64; ENTROPY_BINS];
    for v in values.iter().filter(|v| v.is_finite()) {
        histogram[((v.abs() / width) as usize).min(ENTROPY_BINS - 1)] += 1.0;
    }
    let mut best = (f64::INFINITY, ENTROPY_BINS);
    for bins in (levels..=ENTROPY_BINS)
        .step_by(ENTROPY_STRIDE)
        .chain([ENTROPY_BINS])
    {
        let kept = &histogram[..bins];
        let mut p = kept.to_vec();
        p[bins - 1] += histogram[bins..].iter().sum::<f64>();
        // Q is built from the kept bins alone: the folded tail is what clipping loses.
        let mut q = vec![0f64; bins];
        for level in 0..levels {
            let (a, b) = (level * bins / levels, (level + 1) * bins / levels);
            let mass: f64 = kept[a..b].iter().sum();
            let filled = kept[a..b].iter().filter(|c| **c > 0.0).count();
            for (q, c) in q[a..b].iter_mut().zip(&kept[a..b]) {
                if *c > 0.0 {
                    *q = mass / filled as f64;
                }
            }
        }
        let (p_total, q_total) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
        let divergence: f64 = p
            .iter()
            .zip(&q)
            .filter(|(p, _)| **p > 0.0)
            .map(|(p, q)| {
                let (p, q) = (p / p_total, q / q_total);
                // Mass where Q has none: this threshold cannot represent it.
                if q > 0.0 {
                    p * (p / q).ln()
                } else {
                    f64::INFINITY
                }
            })
            .sum();
        if divergence < best.0 {
            best = (divergence, bins);
        }
    }
    let threshold = best.1 as f32 * width;
    (lo.max(-threshold), hi.min(threshold))
}

/// The range of each tensor in `tensors` over `pairs`. Graph inputs get the contract's [0, 1].
pub fn ranges(
    proto: &pb::ModelProto,
    tensors: &[String],
    pairs: &[Pair],
    method: Method,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<HashMap<String, Range>> {
    let graph = proto.graph.as_ref().context("no graph")?;
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    let mut out: HashMap<String, Range> = HashMap::new();
    let measured: Vec<&String> = tensors
        .iter()
        .filter(|t| {
            let is_input = inputs.contains(&t.as_str());
            if is_input {
                out.insert(t.to_string(), Range { lo: 0.0, hi: 1.0 });
            }
            !is_input
        })
        .collect();
    if measured.is_empty() {
        return Ok(out);
    }
    let model = ship_edge::ops::onnx()
        .with_ignore_value_info(true)
        .model_for_proto_model(proto)?;
    let vis_at = inputs
        .iter()
        .position(|n| *n == meta::INPUT_VIS)
        .context("no vis_y input")?;
    let mut sums: HashMap<&String, (f64, f64, f32, f32)> = HashMap::new();
    for (i, pair) in pairs.iter().enumerate() {
        progress(i, pairs.len(), &pair.name);
        let (w, h) = (pair.width, pair.height);
        let mut m = model.clone();
        m.select_outputs_by_name(measured.iter().map(|s| s.as_str()))?;
        for ix in 0..inputs.len() {
            m = m.with_input_fact(ix, f32::fact([1, 1, h, w]).into())?;
        }
        let plan = m.into_optimized()?.into_runnable()?;
        let plane = |v: &[f32]| -> TractResult<TValue> {
            Ok(Tensor::from_shape(&[1, 1, h, w], v)?.into_tvalue())
        };
        let feeds = if vis_at == 0 {
            tvec!(plane(&pair.vis)?, plane(&pair.ir)?)
        } else {
            tvec!(plane(&pair.ir)?, plane(&pair.vis)?)
        };
        let values = plan.run(feeds)?;
        for (name, value) in measured.iter().zip(values.iter()) {
            let view = value.try_as_plain_ram()?;
            let (lo, hi) = tensor_range(view.as_slice::<f32>()?, method);
            let e = sums.entry(name).or_insert((0.0, 0.0, f32::MAX, f32::MIN));
            *e = (e.0 + lo as f64, e.1 + hi as f64, e.2.min(lo), e.3.max(hi));
        }
    }
    progress(pairs.len(), pairs.len(), "");
    let n = pairs.len().max(1) as f64;
    for (name, (lo_sum, hi_sum, lo, hi)) in sums {
        let range = match method {
            Method::Minmax => Range { lo, hi },
            Method::Percentile | Method::Entropy => Range {
                lo: (lo_sum / n) as f32,
                hi: (hi_sum / n) as f32,
            },
        };
        out.insert(name.clone(), range);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_parameters_hold_zero_exactly_and_span_the_range() {
        let (s, z) = Range { lo: -1.0, hi: 3.0 }.u8_params();
        assert!((s - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(z, 64);
        // A positive-only range is widened to 0.
        let (s, z) = Range { lo: 0.5, hi: 2.0 }.u8_params();
        assert_eq!(z, 0);
        assert!((s - 2.0 / 255.0).abs() < 1e-7);
    }

    #[test]
    fn percentile_clips_outliers_minmax_does_not() {
        let mut v: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).collect();
        v[7] = 1000.0;
        assert_eq!(tensor_range(&v, Method::Minmax).1, 1000.0);
        assert!(tensor_range(&v, Method::Percentile).1 < 1.0);
    }

    #[test]
    fn entropy_clips_a_long_tail_and_keeps_a_bounded_bulk() {
        // A uniform bulk quantizes without loss of shape: nothing to clip.
        let u: Vec<f32> = (0..100_000).map(|i| (i as f32 + 0.5) / 100_000.0).collect();
        let (lo, hi) = tensor_range(&u, Method::Entropy);
        assert!(lo > 0.0 && hi > 0.95, "{lo} {hi}");
        // An exponential bulk (mean 0.2, largest 2.3) and five values at 10: the threshold
        // lands near the end of the bulk, not at the tail (nor below the search's floor, 255
        // of 2048 bins: 1.25 here).
        let bulk: Vec<f32> = u.iter().map(|u| -(1.0 - u).ln() / 5.0).collect();
        let mut tail = bulk.clone();
        tail[..5].fill(10.0);
        let (_, hi) = tensor_range(&tail, Method::Entropy);
        assert!((1.2..3.0).contains(&hi), "{hi}");
        // Signed (the same bulk on both sides) with three values at −10: one threshold for both
        // ends.
        let mut signed: Vec<f32> = bulk
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 2 == 0 { *v } else { -v })
            .collect();
        signed[..3].fill(-10.0);
        let (lo, hi) = tensor_range(&signed, Method::Entropy);
        assert!(lo > -3.0 && lo < -0.6 && hi > 0.6 && hi <= 2.4, "{lo} {hi}");
    }
}
