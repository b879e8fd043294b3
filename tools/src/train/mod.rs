//! `ship-tools train`: seeded training of a fusion network on IR/visible pairs.

pub mod bench;
pub mod data;
pub mod loss;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use crate::nets::{ShipConfig, build_trainable, init::Rng, is_buffer};

/// Settings of one training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub crop: usize,
    pub lr: f64,
    pub seed: u64,
    pub out: PathBuf,
    /// Print progress every this many steps.
    pub log_every: usize,
}

/// What a finished run reports.
#[derive(Debug, Clone, Copy)]
pub struct TrainReport {
    pub first_loss: f32,
    pub final_loss: f32,
    pub steps_per_second: f64,
}

/// Trains `cfg` and writes the weights (safetensors) to `opts.out`.
pub fn train(cfg: &ShipConfig, opts: &TrainOptions, dev: &Device) -> anyhow::Result<TrainReport> {
    let pairs = data::load_pairs(&opts.data)?;
    let (net, varmap) = build_trainable(cfg, opts.seed, dev)?;
    let params: Vec<_> = {
        let data = varmap.data().lock().expect("varmap poisoned");
        let mut named: Vec<_> = data.iter().filter(|(k, _)| !is_buffer(k)).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    };
    // Adam as in the paper: AdamW with no weight decay.
    let mut opt = AdamW::new(
        params,
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = Rng::new(opts.seed);
    let start = Instant::now();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 1..=opts.steps {
        let (vis, ir) = data::random_batch(&pairs, opts.batch, opts.crop, &mut rng, dev)?;
        let fused = net.forward(&vis, &ir)?;
        let (loss, l_max, l_grad) = loss::fusion_loss(&fused, &vis, &ir)?;
        opt.backward_step(&loss)?;
        last = loss.to_scalar()?;
        if step == 1 {
            first = last;
        }
        if !last.is_finite() {
            anyhow::bail!("loss became {last} at step {step}: lower --lr");
        }
        if step % opts.log_every == 0 || step == opts.steps {
            let rate = step as f64 / start.elapsed().as_secs_f64();
            eprintln!(
                "step {step}/{} loss {last:.4} (max {l_max:.4}, grad {l_grad:.4}) {rate:.2} steps/s, ETA {:.0} s",
                opts.steps,
                (opts.steps - step) as f64 / rate
            );
        }
    }
    let tensors = varmap
        .data()
        .lock()
        .expect("varmap poisoned")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    crate::export::save_tensors(&tensors, &opts.out)
        .with_context(|| "saving the trained weights")?;
    Ok(TrainReport {
        first_loss: first,
        final_loss: last,
        steps_per_second: opts.steps as f64 / start.elapsed().as_secs_f64(),
    })
}
