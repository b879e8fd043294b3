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
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Minmax => "minmax",
            Method::Percentile => "percentile",
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
    }
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
            Method::Percentile => Range {
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
}
