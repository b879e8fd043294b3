//! Infrared-visible training ([`TrainData`] for `Task::Ivif`): IR/visible crops, the IVIF loss,
//! and validation scored the way `ship-edge eval` scores a model (fused Y clamped, visible
//! chroma merged back, rounded to 8 bits as a saved PNG, then `ivif::grey` and the
//! default-convention metrics) against the four classical baselines.

use std::path::Path;

use anyhow::Context;
use candle_core::{Device, Tensor};

use ship_edge::baselines::ivif::{IvifMethod, fuse_planes};
use ship_edge::eval::ivif::quantize_8bit;
use ship_edge::imaging::{Planes, color};
use ship_edge::metrics::ivif::{self, Convention, Metric};

use super::TrainOptions;
use super::data::{self, DataRng, Pair, ValPair};
use super::loss::{LossWeights, ivif_loss};
use super::plots;
use super::task::{Batch, TrainData};
use super::validate::{BaselineSummary, ValMetric, Validation};
use crate::nets::Ship;

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

/// Decoded IR/visible training and validation pairs.
#[derive(Debug)]
pub struct IvifData {
    train: Vec<Pair>,
    val: Vec<ValPair>,
    weights: LossWeights,
    metrics: Vec<ValMetric>,
}

impl IvifData {
    /// Lists `ir/` + `vi/` (+ `mask/`) pairs of `opts.data` and of the validation source,
    /// splits and decodes them.
    pub fn open(opts: &TrainOptions) -> anyhow::Result<Self> {
        let (train_files, val_files) = data::split(opts, data::list_pairs)?;
        Ok(Self {
            train: data::load_train(&train_files, opts.crop)?,
            val: data::load_val(&val_files)?,
            weights: LossWeights {
                ssim: opts.ssim_weight,
                ..LossWeights::default()
            },
            metrics: VAL_METRICS
                .iter()
                .map(|m| ValMetric {
                    name: m.name().to_string(),
                    better: m.better(),
                })
                .collect(),
        })
    }
}

/// [`VAL_METRICS`] of one fused image against its pair.
fn score(fused: &Planes, pair: &ValPair) -> anyhow::Result<Vec<f64>> {
    let all = ivif::evaluate(
        Convention::Default,
        &ivif::grey(fused),
        &pair.ir_grey,
        &pair.vis_grey,
    )
    .with_context(|| format!("scoring validation pair `{}`", pair.pair.name))?;
    Ok(VAL_METRICS
        .iter()
        .map(|m| all.iter().find(|(k, _)| k == m).map_or(f64::NAN, |x| x.1))
        .collect())
}

impl TrainData for IvifData {
    fn metrics(&self) -> &[ValMetric] {
        &self.metrics
    }

    fn train_stems(&self) -> Vec<String> {
        self.train.iter().map(|p| p.name.clone()).collect()
    }

    fn val_stems(&self) -> Vec<String> {
        self.val.iter().map(|p| p.pair.name.clone()).collect()
    }

    fn masks(&self) -> bool {
        self.train.iter().all(|p| p.mask.is_some())
    }

    fn batch(
        &self,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<Batch> {
        let b = data::random_batch(&self.train, batch, crop, rng, dev)?;
        Ok(Batch {
            main: b.vis,
            modulator: b.ir,
            target: None,
            mask: b.mask,
        })
    }

    fn loss(&self, out: &Tensor, b: &Batch) -> anyhow::Result<Tensor> {
        Ok(ivif_loss(out, &b.main, &b.modulator, b.mask.as_ref(), &self.weights)?.total)
    }

    fn baselines(&self) -> anyhow::Result<Option<BaselineSummary>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let mut scored = Vec::new();
        for m in IvifMethod::ALL {
            let (mut rows, mut shown) = (Vec::new(), Vec::new());
            for vp in &self.val {
                let image = fuse_planes(m, &vp.ir_image, &vp.vis_image)
                    .with_context(|| format!("baseline {m} on `{}`", vp.pair.name))?;
                let image = quantize_8bit(image);
                rows.push(score(&image, vp)?);
                shown.push(image);
            }
            scored.push((m.name().to_string(), rows, shown));
        }
        Ok(Some(BaselineSummary::rank(&self.metrics, scored)))
    }

    fn validate(&self, net: &Ship, dev: &Device) -> anyhow::Result<Validation> {
        let mut items = Vec::with_capacity(self.val.len());
        for vp in &self.val {
            let p = &vp.pair;
            let plane = |v: &[f32]| Tensor::from_vec(v.to_vec(), (1, 1, p.height, p.width), dev);
            let (vis, ir) = (plane(&p.vis)?, plane(&p.ir)?);
            let mask = p.mask.as_deref().map(plane).transpose()?;
            let out = net
                .forward(&vis, &ir)
                .with_context(|| format!("network on validation pair `{}`", p.name))?;
            let parts = ivif_loss(&out, &vis, &ir, mask.as_ref(), &self.weights)?;
            let loss = f64::from(parts.total.to_scalar::<f32>()?);
            let y: Vec<f32> = out.flatten_all()?.to_device(&Device::Cpu)?.to_vec1()?;
            let image = color::merge(&y, vp.chroma.as_ref(), p.width, p.height)
                .with_bit_depth(vp.vis_image.bit_depth());
            let image = quantize_8bit(image);
            items.push((loss, score(&image, vp)?, image));
        }
        Ok(Validation::from_items(items))
    }

    fn contact(
        &self,
        path: &Path,
        b: &BaselineSummary,
        ours: &[Planes],
        ours_label: &str,
    ) -> anyhow::Result<()> {
        let rows: Vec<plots::ContactRow<'_>> = self
            .val
            .iter()
            .zip(&b.best_shown)
            .zip(ours)
            .map(|((vp, base), ours)| plots::ContactRow {
                name: &vp.pair.name,
                images: vec![&vp.ir_image, &vp.vis_image, base, ours],
            })
            .collect();
        let labels = [
            "IR".to_string(),
            "visible".to_string(),
            format!("best baseline: {}", b.best),
            ours_label.to_string(),
        ];
        plots::contact_png(path, &labels, &rows)
    }
}
