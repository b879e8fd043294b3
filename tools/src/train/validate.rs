//! Validation: the network on every full-size validation pair, scored the way `ship-edge eval`
//! scores a model (fused Y clamped, visible chroma merged back, rounded to 8 bits as a saved
//! PNG, then `ivif::grey` and the default-convention metrics), and the classical baselines on
//! the same pairs, ranked once to pick the one the contact sheet shows.

use std::collections::HashMap;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use ship_edge::baselines::ivif::{IvifMethod, fuse_planes};
use ship_edge::eval::ivif::quantize_8bit;
use ship_edge::imaging::{Planes, color};
use ship_edge::metrics::ivif::{self, Convention, Metric};
use ship_edge::metrics::rank;

use super::data::ValPair;
use super::loss::{LossWeights, ivif_loss};
use crate::nets::{Ship, ShipConfig};

/// The metrics recorded at each validation (default convention), in column order.
pub const VAL_METRICS: [Metric; 8] = [
    Metric::En,
    Metric::Sd,
    Metric::Sf,
    Metric::Mi,
    Metric::Scd,
    Metric::Vif,
    Metric::Qabf,
    Metric::Ssim,
];

/// Means over the validation pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValScores {
    /// Training loss of the raw network output on the full images.
    pub loss: f64,
    /// [`VAL_METRICS`] in order.
    pub metrics: [f64; 8],
}

/// What one validation pass produced.
#[derive(Debug, Clone)]
pub struct Validation {
    pub scores: ValScores,
    /// The fused images as scored (8-bit values, chroma merged), one per pair.
    pub fused: Vec<Planes>,
}

/// The classical baselines on the validation set.
#[derive(Debug, Clone)]
pub struct BaselineSummary {
    /// (method, mean [`VAL_METRICS`], mean rank among the four), in `IvifMethod::ALL` order.
    pub methods: Vec<(IvifMethod, [f64; 8], f64)>,
    /// The method with the best (lowest) mean rank.
    pub best: IvifMethod,
    /// Its fused images, one per pair.
    pub best_fused: Vec<Planes>,
}

/// [`VAL_METRICS`] of one fused image against its pair.
fn score(fused: &Planes, pair: &ValPair) -> anyhow::Result<[f64; 8]> {
    let all = ivif::evaluate(
        Convention::Default,
        &ivif::grey(fused),
        &pair.ir_grey,
        &pair.vis_grey,
    )
    .with_context(|| format!("scoring validation pair `{}`", pair.pair.name))?;
    let mut out = [f64::NAN; 8];
    for (o, m) in out.iter_mut().zip(VAL_METRICS) {
        *o = all.iter().find(|(k, _)| *k == m).map_or(f64::NAN, |x| x.1);
    }
    Ok(out)
}

fn mean_rows(rows: &[[f64; 8]]) -> [f64; 8] {
    let mut m = [0.0; 8];
    for r in rows {
        for (a, b) in m.iter_mut().zip(r) {
            *a += b / rows.len() as f64;
        }
    }
    m
}

/// A network that shares the weights of `varmap` as plain tensors: its forward builds no
/// gradient graph, so full-size intermediates are freed as it goes.
pub fn inference_net(cfg: &ShipConfig, varmap: &VarMap, dev: &Device) -> candle_core::Result<Ship> {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .expect("varmap poisoned")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    Ship::new(cfg, VarBuilder::from_tensors(tensors, DType::F32, dev))
}

/// Runs `net` on every validation pair and scores it.
pub fn validate(
    net: &Ship,
    pairs: &[ValPair],
    weights: &LossWeights,
    dev: &Device,
) -> anyhow::Result<Validation> {
    let (mut loss, mut rows, mut fused) = (0.0, Vec::new(), Vec::new());
    for vp in pairs {
        let p = &vp.pair;
        let plane = |v: &[f32]| Tensor::from_vec(v.to_vec(), (1, 1, p.height, p.width), dev);
        let (vis, ir) = (plane(&p.vis)?, plane(&p.ir)?);
        let mask = p.mask.as_deref().map(plane).transpose()?;
        let out = net
            .forward(&vis, &ir)
            .with_context(|| format!("network on validation pair `{}`", p.name))?;
        let parts = ivif_loss(&out, &vis, &ir, mask.as_ref(), weights)?;
        loss += f64::from(parts.total.to_scalar::<f32>()?) / pairs.len() as f64;
        let y: Vec<f32> = out.flatten_all()?.to_device(&Device::Cpu)?.to_vec1()?;
        let image = color::merge(&y, vp.chroma.as_ref(), p.width, p.height)
            .with_bit_depth(vp.vis_image.bit_depth());
        let image = quantize_8bit(image);
        rows.push(score(&image, vp)?);
        fused.push(image);
    }
    Ok(Validation {
        scores: ValScores {
            loss,
            metrics: mean_rows(&rows),
        },
        fused,
    })
}

/// Scores the four classical baselines on the validation pairs and picks the best by mean
/// rank over [`VAL_METRICS`].
pub fn baselines(pairs: &[ValPair]) -> anyhow::Result<BaselineSummary> {
    let mut methods = Vec::new();
    let mut images = Vec::new();
    for m in IvifMethod::ALL {
        let mut rows = Vec::new();
        let mut fused = Vec::new();
        for vp in pairs {
            let image = fuse_planes(m, &vp.ir_image, &vp.vis_image)
                .with_context(|| format!("baseline {m} on `{}`", vp.pair.name))?;
            let image = quantize_8bit(image);
            rows.push(score(&image, vp)?);
            fused.push(image);
        }
        methods.push((m, mean_rows(&rows), f64::NAN));
        images.push(fused);
    }
    let means: Vec<Vec<f64>> = methods.iter().map(|(_, v, _)| v.to_vec()).collect();
    let better: Vec<_> = VAL_METRICS.iter().map(|m| m.better()).collect();
    let ranks = rank::mean_ranks(&means, &better);
    for (row, r) in methods.iter_mut().zip(&ranks) {
        row.2 = *r;
    }
    let best_i = (0..ranks.len())
        .min_by(|&a, &b| ranks[a].total_cmp(&ranks[b]))
        .unwrap_or(0);
    Ok(BaselineSummary {
        best: methods[best_i].0,
        methods,
        best_fused: images.swap_remove(best_i),
    })
}
