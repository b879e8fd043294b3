//! Training checkpoints: one safetensors file holding everything a run needs to continue
//! exactly where it stopped.
//!
//! Tensors: `weights/NAME` (every variable of the network, buffers included), `adam.m/NAME` and
//! `adam.v/NAME` (Adam moments of each learnable parameter), `train_loss` (f32, the loss of every
//! step so far: the loss curve and the running means), `history` (f64 [rows, 13], the
//! `metrics.csv` rows; f64 so NaN metrics survive). Metadata: format, step, data-RNG draws,
//! preset and its configuration. Written through a temp file and renamed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::{SafeTensors, serialize_to_file};

use super::optim::Adam;
use super::record::MetricsRow;
use crate::export::{CHECKPOINT_WEIGHTS_PREFIX, write_atomic};
use crate::nets::ShipConfig;

/// Written to the metadata; a file without it is not a training checkpoint.
const FORMAT: &str = "ship-tools-train-checkpoint/1";

/// The scalar state of a run at a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Optimiser steps done.
    pub step: usize,
    /// Draws of the data RNG so far.
    pub data_draws: u64,
    pub preset: String,
    pub config: ShipConfig,
    /// Wall time of the run so far, all sessions together.
    pub wall_seconds: f64,
}

/// A checkpoint read back.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub state: State,
    pub train_losses: Vec<f32>,
    pub history: Vec<MetricsRow>,
    /// name → (shape, values) of every stored tensor.
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

fn cpu_values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()
}

fn le_bytes<T: Copy>(values: &[T], to: fn(T) -> Vec<u8>) -> Vec<u8> {
    values.iter().flat_map(|&v| to(v)).collect()
}

/// Writes a checkpoint of `varmap`, `adam` and the run's records to `path` (atomically).
pub fn save(
    path: &Path,
    state: &State,
    varmap: &VarMap,
    adam: &Adam,
    train_losses: &[f32],
    history: &[MetricsRow],
    n_metrics: usize,
) -> anyhow::Result<()> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let f32_bytes = |v: &[f32]| le_bytes(v, |x: f32| x.to_le_bytes().to_vec());
    {
        let data = varmap.data().lock().expect("varmap poisoned");
        for (name, var) in data.iter() {
            let t = var.as_tensor();
            owned.push((
                format!("{CHECKPOINT_WEIGHTS_PREFIX}{name}"),
                Dtype::F32,
                t.dims().to_vec(),
                f32_bytes(&cpu_values(t)?),
            ));
        }
    }
    for (name, m, v) in adam.moments() {
        for (kind, t) in [("m", m), ("v", v)] {
            owned.push((
                format!("adam.{kind}/{name}"),
                Dtype::F32,
                t.dims().to_vec(),
                f32_bytes(&cpu_values(t)?),
            ));
        }
    }
    owned.push((
        "train_loss".into(),
        Dtype::F32,
        vec![train_losses.len()],
        f32_bytes(train_losses),
    ));
    let width = 5 + n_metrics;
    let rows: Vec<f64> = history.iter().flat_map(|r| r.to_array(n_metrics)).collect();
    owned.push((
        "history".into(),
        Dtype::F64,
        vec![history.len(), width],
        le_bytes(&rows, |x: f64| x.to_le_bytes().to_vec()),
    ));
    let views = owned
        .iter()
        .map(|(n, dt, shape, bytes)| Ok((n.as_str(), TensorView::new(*dt, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), state.step.to_string()),
        ("data_draws".to_string(), state.data_draws.to_string()),
        ("preset".to_string(), state.preset.clone()),
        ("config".to_string(), serde_json::to_string(&state.config)?),
        // Display of an f64 is its shortest exact form.
        ("wall_seconds".to_string(), state.wall_seconds.to_string()),
    ]);
    write_atomic(path, |tmp| {
        serialize_to_file(views, Some(meta), tmp).map_err(std::io::Error::other)
    })
    .with_context(|| format!("{}: writing the checkpoint", path.display()))?;
    Ok(())
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let what = || format!("{}: not a ship-tools training checkpoint", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes).with_context(what)?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!("{} (format {:?})", what(), meta.get("format"));
    }
    let field = |k: &str| meta.get(k).with_context(|| format!("{}: no `{k}`", what()));
    let state = State {
        step: field("step")?.parse().with_context(what)?,
        data_draws: field("data_draws")?.parse().with_context(what)?,
        preset: field("preset")?.clone(),
        config: serde_json::from_str(field("config")?).with_context(what)?,
        wall_seconds: field("wall_seconds")?.parse().with_context(what)?,
    };
    let st = SafeTensors::deserialize(&bytes).with_context(what)?;
    let mut tensors = HashMap::new();
    let (mut train_losses, mut history) = (Vec::new(), Vec::new());
    for (name, view) in st.tensors() {
        let data = view.data();
        match (name.as_str(), view.dtype()) {
            ("history", Dtype::F64) => {
                let width = match view.shape() {
                    [_, w] if *w >= 5 => *w,
                    shape => bail!("{}: `history` has shape {shape:?}", what()),
                };
                let v: Vec<f64> = data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                history = v.chunks_exact(width).map(MetricsRow::from_array).collect();
            }
            (_, Dtype::F32) => {
                let v: Vec<f32> = data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect();
                if name == "train_loss" {
                    train_losses = v;
                } else {
                    tensors.insert(name, (view.shape().to_vec(), v));
                }
            }
            (_, dt) => bail!("{}: tensor `{name}` has dtype {dt:?}", what()),
        }
    }
    if train_losses.len() != state.step {
        bail!(
            "{}: {} step losses for step {}",
            what(),
            train_losses.len(),
            state.step
        );
    }
    Ok(Loaded {
        state,
        train_losses,
        history,
        tensors,
    })
}

impl Loaded {
    fn tensor(&self, key: &str, dims: &[usize], dev: &Device) -> anyhow::Result<Tensor> {
        let (shape, v) = self
            .tensors
            .get(key)
            .with_context(|| format!("the checkpoint has no `{key}` (a different preset?)"))?;
        if shape != dims {
            bail!("the checkpoint's `{key}` is {shape:?}, the network's {dims:?}");
        }
        Ok(Tensor::from_vec(v.clone(), dims, dev)?)
    }

    /// Copies the stored weights into `varmap` and the moments into `adam`.
    pub fn restore(&self, varmap: &VarMap, adam: &mut Adam, dev: &Device) -> anyhow::Result<()> {
        let data = varmap.data().lock().expect("varmap poisoned");
        let n_weights = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(CHECKPOINT_WEIGHTS_PREFIX))
            .count();
        if n_weights != data.len() {
            bail!(
                "the checkpoint holds {n_weights} weight tensors, the network {}",
                data.len()
            );
        }
        for (name, var) in data.iter() {
            var.set(&self.tensor(
                &format!("{CHECKPOINT_WEIGHTS_PREFIX}{name}"),
                var.dims(),
                dev,
            )?)?;
        }
        drop(data);
        adam.restore(self.state.step, |name, dims| {
            let get = |kind: &str| {
                self.tensor(&format!("adam.{kind}/{name}"), dims, dev)
                    .map_err(|e| candle_core::Error::Msg(format!("{e:#}")))
            };
            Ok((get("m")?, get("v")?))
        })?;
        Ok(())
    }
}
