//! The task-specific half of training: what a batch is, what is minimised, how validation
//! scores and what the contact sheet shows. The loop in [`super::train`] is the same for every
//! task; [`open`] picks the implementation from the preset's [`Task`].

use std::path::Path;

use candle_core::{Device, Tensor};

use ship_edge::imaging::Planes;

use super::TrainOptions;
use super::data::DataRng;
use super::validate::{BaselineSummary, ValMetric, Validation};
use crate::nets::{Ship, ShipConfig, Task};

/// One training batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The network's main stream: visible Y `[B,1,c,c]`, or the upsampled MS `[B,bands,c,c]`.
    pub main: Tensor,
    /// The modulating stream `[B,1,c,c]`: IR, or PAN.
    pub modulator: Tensor,
    /// The reference output where the task has one (pan-sharpening: the original MS).
    pub target: Option<Tensor>,
    /// Saliency masks of the visible crops (IVIF with `mask/`).
    pub mask: Option<Tensor>,
}

/// A task's decoded data set and the task-specific parts of the loop.
pub trait TrainData {
    /// The metrics every validation records, in `metrics.csv` column order.
    fn metrics(&self) -> &[ValMetric];
    /// Names of the training and the validation items (recorded in `config.json`).
    fn train_stems(&self) -> Vec<String>;
    fn val_stems(&self) -> Vec<String>;
    /// Whether the training data has saliency masks.
    fn masks(&self) -> bool {
        false
    }
    /// A batch of `batch` random `crop` x `crop` crops (output-resolution pixels).
    fn batch(
        &self,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<Batch>;
    /// The scalar loss of the network output `out` on `batch`.
    fn loss(&self, out: &Tensor, batch: &Batch) -> anyhow::Result<Tensor>;
    /// What one optimiser step minimises: by default [`TrainData::loss`] of the network on one
    /// [`TrainData::batch`]. A task with more than one kind of batch (pan-sharpening with its
    /// full-resolution term) runs the network on each.
    fn objective(
        &self,
        net: &Ship,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<Tensor> {
        batch_loss(self, net, batch, crop, rng, dev)
    }
    /// The classical baselines on the validation set (None without validation items).
    fn baselines(&self) -> anyhow::Result<Option<BaselineSummary>>;
    /// The network on every validation item, scored.
    fn validate(&self, net: &Ship, dev: &Device) -> anyhow::Result<Validation>;
    /// Writes `contact.png`: the inputs, the best baseline and `ours` per validation item.
    fn contact(
        &self,
        path: &Path,
        baselines: &BaselineSummary,
        ours: &[Planes],
        ours_label: &str,
    ) -> anyhow::Result<()>;
}

/// [`TrainData::loss`] of the network on one [`TrainData::batch`]: the default objective, and
/// the first term of a task's own.
pub fn batch_loss<T: TrainData + ?Sized>(
    data: &T,
    net: &Ship,
    batch: usize,
    crop: usize,
    rng: &mut DataRng,
    dev: &Device,
) -> anyhow::Result<Tensor> {
    let b = data.batch(batch, crop, rng, dev)?;
    let out = net.forward(&b.main, &b.modulator)?;
    data.loss(&out, &b)
}

/// Lists, splits and decodes the data of `opts` (absolute folders) for `cfg`'s task.
pub fn open(cfg: &ShipConfig, opts: &TrainOptions) -> anyhow::Result<Box<dyn TrainData>> {
    Ok(match cfg.task {
        Task::Ivif => Box::new(super::ivif::IvifData::open(opts)?),
        Task::Pan { bands, ratio } => Box::new(super::pan::PanData::open(opts, bands, ratio)?),
    })
}
