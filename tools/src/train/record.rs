//! The run directory's text records: `config.json` (what the run is), `metrics.csv` (one row
//! per validation) and `baselines.csv` (the classical baselines on the validation set). Each is
//! rewritten whole through a temp file, so a reader never sees half a file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::TrainOptions;
use super::validate::{BaselineSummary, ValMetric, ValScores};
use crate::nets::ShipConfig;

/// Names of the files in a run directory.
pub const CONFIG_JSON: &str = "config.json";
pub const METRICS_CSV: &str = "metrics.csv";
pub const BASELINES_CSV: &str = "baselines.csv";
pub const LAST_CKPT: &str = "last.safetensors";
pub const WEIGHTS: &str = "weights.safetensors";
pub const LOSS_PNG: &str = "loss.png";
pub const VAL_PNG: &str = "val.png";
pub const CONTACT_PNG: &str = "contact.png";

/// `ckpt_STEP.safetensors`, zero-padded so the files sort by step.
pub fn ckpt_name(step: usize) -> String {
    format!("ckpt_{step:07}.safetensors")
}

/// Written to `config.json`; a run directory without it is not a training run.
pub const RUN_FORMAT: &str = "ship-tools-train-run/1";

/// `config.json`: everything that defines the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub format: String,
    /// `ship-tools` version that started (or last resumed) the run.
    pub tool_version: String,
    pub options: TrainOptions,
    /// The preset's configuration when the run started (a resumed run must build the same).
    pub config: ShipConfig,
    /// Absolute data folders, as resolved when the run started.
    pub data_dir: PathBuf,
    pub val_dir: Option<PathBuf>,
    /// Whether the training data has saliency masks (the mask loss term is on).
    pub masks: bool,
    pub train_stems: Vec<String>,
    pub val_stems: Vec<String>,
    /// Device of the latest session (`cpu` or `cuda:0`).
    pub device: String,
}

impl RunConfig {
    /// Reads `RUN_DIR/config.json`.
    pub fn load(run_dir: &Path) -> anyhow::Result<RunConfig> {
        let path = run_dir.join(CONFIG_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read (is {} a training run directory?)",
                path.display(),
                run_dir.display()
            )
        })?;
        let cfg: RunConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a training run configuration", path.display()))?;
        if cfg.format != RUN_FORMAT {
            bail!(
                "{}: format `{}`, this ship-tools reads `{RUN_FORMAT}`",
                path.display(),
                cfg.format
            );
        }
        Ok(cfg)
    }

    /// Writes `RUN_DIR/config.json`.
    pub fn save(&self, run_dir: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        write_text(&run_dir.join(CONFIG_JSON), &text)
    }
}

/// One `metrics.csv` row.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub step: usize,
    /// Learning rate of this step.
    pub lr: f64,
    /// Mean training loss over the steps since the previous row.
    pub train_loss: f64,
    /// Validation loss and metrics (None when the run has no validation set).
    pub val: Option<ValScores>,
    /// Training wall time so far, all sessions of the run together.
    pub wall_seconds: f64,
}

impl MetricsRow {
    /// `[step, lr, train_loss, wall, val_loss, metrics…]` for a task with `n_metrics` metrics
    /// (checkpoint storage; NaN without validation).
    pub fn to_array(&self, n_metrics: usize) -> Vec<f64> {
        let mut v = vec![
            self.step as f64,
            self.lr,
            self.train_loss,
            self.wall_seconds,
        ];
        match &self.val {
            Some(s) => {
                v.push(s.loss);
                v.extend(&s.metrics);
            }
            None => v.push(f64::NAN),
        }
        v.resize(5 + n_metrics, f64::NAN);
        v
    }

    /// Inverse of [`MetricsRow::to_array`] (the metrics are what follows the first five
    /// values). A row without validation has a NaN loss: the loss of a real validation is
    /// always finite (a non-finite one stops the run).
    pub fn from_array(a: &[f64]) -> MetricsRow {
        let val = (!a[4].is_nan()).then(|| ValScores {
            loss: a[4],
            metrics: a[5..].to_vec(),
        });
        MetricsRow {
            step: a[0] as usize,
            lr: a[1],
            train_loss: a[2],
            wall_seconds: a[3],
            val,
        }
    }
}

/// `metrics.csv` from all rows.
pub fn metrics_csv(rows: &[MetricsRow], metrics: &[ValMetric]) -> String {
    let mut s = String::from("step,lr,train_loss,val_loss");
    for m in metrics {
        let _ = write!(s, ",{}", m.name);
    }
    s.push_str(",wall_s\n");
    for r in rows {
        let _ = write!(s, "{},{:e},{:.6}", r.step, r.lr, r.train_loss);
        match &r.val {
            Some(v) => {
                let _ = write!(s, ",{:.6}", v.loss);
                for x in &v.metrics {
                    let _ = write!(s, ",{x:.6}");
                }
            }
            None => s.push_str(&",".repeat(1 + metrics.len())),
        }
        let _ = writeln!(s, ",{:.1}", r.wall_seconds);
    }
    s
}

/// `baselines.csv`: each classical method's mean metrics and mean rank on the validation set.
pub fn baselines_csv(b: &BaselineSummary, metrics: &[ValMetric]) -> String {
    let mut s = String::from("method");
    for m in metrics {
        let _ = write!(s, ",{}", m.name);
    }
    s.push_str(",mean_rank,best\n");
    for (method, means, rank) in &b.methods {
        let _ = write!(s, "{method}");
        for x in means {
            let _ = write!(s, ",{x:.6}");
        }
        let _ = writeln!(s, ",{rank:.3},{}", u8::from(*method == b.best));
    }
    s
}

/// Writes a text file atomically.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    ship_edge::imaging::io::write_bytes(path, text.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_the_checkpoint_array_form() {
        let with = MetricsRow {
            step: 500,
            lr: 1e-4,
            train_loss: 1.25,
            val: Some(ValScores {
                loss: 0.9,
                metrics: vec![7.0, 40.0, 12.0, 3.0, 1.5, f64::NAN, 0.5, 1.4],
            }),
            wall_seconds: 12.5,
        };
        let back = MetricsRow::from_array(&with.to_array(8));
        assert_eq!(back.step, 500);
        let metrics = &back.val.as_ref().unwrap().metrics;
        assert_eq!(metrics.len(), 8);
        assert!(metrics[5].is_nan());
        assert_eq!(metrics[7], 1.4);
        let without = MetricsRow {
            val: None,
            ..with.clone()
        };
        assert_eq!(without.to_array(8).len(), 13);
        assert_eq!(MetricsRow::from_array(&without.to_array(8)), without);
        let names: Vec<ValMetric> = (0..8)
            .map(|i| ValMetric {
                name: format!("m{i}"),
                better: ship_edge::metrics::Better::Higher,
            })
            .collect();
        let csv = metrics_csv(&[with, without], &names);
        assert_eq!(csv.lines().count(), 3);
        assert!(csv.lines().all(|l| l.split(',').count() == 13), "{csv}");
    }
}
