//! What every task's validation produces: scores (loss and metric means), the images the
//! contact sheet shows, and the classical baselines ranked once on the same set. The task
//! modules ([`super::ivif`], [`super::pan`]) score their outputs the way `ship-edge eval` does.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use ship_edge::imaging::Planes;
use ship_edge::metrics::{Better, rank};

use crate::nets::{Ship, ShipConfig};

/// A validation metric: its `metrics.csv` column and which way is better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValMetric {
    pub name: String,
    pub better: Better,
}

/// Means over the validation set.
#[derive(Debug, Clone, PartialEq)]
pub struct ValScores {
    /// Training loss of the raw network output on the full images.
    pub loss: f64,
    /// The task's metrics ([`super::task::TrainData::metrics`]) in order.
    pub metrics: Vec<f64>,
}

/// What one validation pass produced.
#[derive(Debug, Clone)]
pub struct Validation {
    pub scores: ValScores,
    /// The outputs as the contact sheet shows them, one per validation item.
    pub shown: Vec<Planes>,
}

/// One validation item's results: the loss, the metric row and the image the contact sheet
/// shows.
pub type ItemScores = (f64, Vec<f64>, Planes);

impl Validation {
    /// Means over the items of a validation pass.
    pub fn from_items(items: Vec<ItemScores>) -> Validation {
        let n = items.len().max(1) as f64;
        let (mut loss, mut rows, mut shown) = (0.0, Vec::new(), Vec::new());
        for (l, row, image) in items {
            loss += l / n;
            rows.push(row);
            shown.push(image);
        }
        Validation {
            scores: ValScores {
                loss,
                metrics: mean_rows(&rows),
            },
            shown,
        }
    }
}

/// The classical baselines on the validation set.
#[derive(Debug, Clone)]
pub struct BaselineSummary {
    /// (method, mean metrics, mean rank among the baselines), in the task's method order.
    pub methods: Vec<(String, Vec<f64>, f64)>,
    /// The method with the best (lowest) mean rank.
    pub best: String,
    /// Its outputs as the contact sheet shows them.
    pub best_shown: Vec<Planes>,
}

impl BaselineSummary {
    /// Ranks `scored` (method, per-item metric rows, shown images) by mean rank over the means.
    pub fn rank(metrics: &[ValMetric], scored: Vec<(String, Vec<Vec<f64>>, Vec<Planes>)>) -> Self {
        let mut methods = Vec::new();
        let mut images = Vec::new();
        for (name, rows, shown) in scored {
            methods.push((name, mean_rows(&rows), f64::NAN));
            images.push(shown);
        }
        let means: Vec<Vec<f64>> = methods.iter().map(|m| m.1.clone()).collect();
        let better: Vec<Better> = metrics.iter().map(|m| m.better).collect();
        let ranks = rank::mean_ranks(&means, &better);
        for (row, r) in methods.iter_mut().zip(&ranks) {
            row.2 = *r;
        }
        let best_i = (0..ranks.len())
            .min_by(|&a, &b| ranks[a].total_cmp(&ranks[b]))
            .unwrap_or(0);
        BaselineSummary {
            best: methods[best_i].0.clone(),
            methods,
            best_shown: images.swap_remove(best_i),
        }
    }

    /// The best method's mean metrics.
    pub fn best_means(&self) -> Option<&[f64]> {
        self.methods
            .iter()
            .find(|m| m.0 == self.best)
            .map(|m| m.1.as_slice())
    }
}

/// Column means of per-item metric rows.
pub fn mean_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let width = rows.first().map_or(0, Vec::len);
    let mut m = vec![0.0; width];
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
