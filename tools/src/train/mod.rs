//! `ship-tools train`: seeded, resumable training of a fusion network, writing a run
//! directory. The loop is the same for every task; the task's data, loss, validation and
//! contact sheet come from a [`task::TrainData`] ([`ivif`]: IR/visible pairs, [`pan`]:
//! pan-sharpening scenes by Wald's protocol).
//!
//! A run directory holds `config.json` (preset, options, data folders, train/validation
//! stems), `last.safetensors` and `ckpt_STEP.safetensors` checkpoints (weights, Adam state,
//! step, data-RNG state, the loss and metrics history: [`checkpoint`]), `metrics.csv`,
//! `baselines.csv`, `loss.png`, `val.png`, and at the end `weights.safetensors` (what
//! `ship-tools export --weights` reads) and `contact.png`. Every file is written through a temp
//! file and renamed. A checkpoint holds the whole state, so a resumed run continues exactly:
//! the weights after N straight steps equal, bit for bit, those after N/2 steps plus a resume
//! (`tests/train_run.rs`, on tiny crops). At full batch/crop sizes two straight CPU runs
//! themselves differ in the low bits (the conv weight gradient is summed by a rayon
//! fold/reduce whose order depends on work stealing), and a resumed run matches to the same
//! degree.
//!
//! The library never prints: progress goes to an [`Events`] implementation, and a stop flag
//! (set by the CLI's Ctrl-C handler) ends the run with a checkpoint after the current step.

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod ivif;
pub mod loss;
pub mod optim;
pub mod pan;
pub mod plots;
pub mod qnr_loss;
pub mod record;
pub mod task;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::nets::{ShipConfig, build_trainable, is_buffer};
use anyhow::{Context, bail};
use candle_core::{Device, Var};
use data::DataRng;
use optim::{Adam, AdamConfig, MultiStepLr};
use record::{MetricsRow, RunConfig};
use serde::{Deserialize, Serialize};
use validate::{BaselineSummary, ValMetric};

/// Where validation pairs come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValSource {
    /// No validation: no metrics, `val.png` or `contact.png`.
    None,
    /// Another folder laid out like the training folder.
    Dir(PathBuf),
    /// Keep this many items of the training folder aside ([`data::holdout`]).
    Holdout(usize),
}

/// Settings of one training run (all of them are recorded in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Network preset name (`ShipConfig::preset`); it decides the task.
    pub preset: String,
    /// Training folder: `ir/`, `vi/` and optionally `mask/` (IVIF), or `ms/` and `pan/`.
    pub data: PathBuf,
    pub val: ValSource,
    /// Total optimiser steps of the run (a resumed run may raise it).
    pub steps: usize,
    /// Crops per step.
    pub batch: usize,
    /// Square crop size in pixels.
    pub crop: usize,
    /// Base learning rate.
    pub lr: f64,
    /// MultiStepLR milestones (steps) and factor.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// Adam's L2 weight decay (0 in SHIP).
    pub weight_decay: f64,
    /// Weight of the SSIM term of the IVIF loss ([`loss::DEFAULT_SSIM_WEIGHT`]).
    pub ssim_weight: f64,
    /// Clip the gradient to this global L2 norm before each update (pan-sharpening: 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// Pan-sharpening: the sensor whose MTF the Wald degradation matches
    /// ([`pan::DEFAULT_SENSOR`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// Pan-sharpening: the MS bands to train on, 1-based, in order (all when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<usize>>,
    /// Pan-sharpening: weight of the full-resolution term D_λ + D_s ([`qnr_loss`]) on crops
    /// of the original pair, added to the reduced-resolution L1 (none when unset). Its
    /// validations also score D_λ, D_s and QNR at full resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_res_weight: Option<f64>,
    /// Start from these weights (a `weights.safetensors` or a checkpoint of the same preset)
    /// instead of the seeded initialisation: fine-tuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    /// Validate, write the records and `last.safetensors` every this many steps.
    pub val_every: usize,
    /// Keep a `ckpt_STEP.safetensors` every this many steps.
    pub ckpt_every: usize,
    /// Seed of initialisation, crops and augmentation.
    pub seed: u64,
}

impl Default for TrainOptions {
    /// SHIP_NETWORK.md §5.1 where it applies (lr, milestones, γ, seed, crop), batch 8.
    fn default() -> Self {
        Self {
            preset: "edge".into(),
            data: PathBuf::new(),
            val: ValSource::None,
            steps: 1000,
            batch: 8,
            crop: 128,
            lr: 1e-4,
            milestones: vec![15_000, 25_000],
            gamma: 0.75,
            weight_decay: 0.0,
            ssim_weight: loss::DEFAULT_SSIM_WEIGHT,
            grad_clip: None,
            sensor: None,
            bands: None,
            full_res_weight: None,
            init: None,
            val_every: 500,
            ckpt_every: 5000,
            seed: 10,
        }
    }
}

/// The preset `train --task pan` uses when none is given.
pub const DEFAULT_PAN_PRESET: &str = "pan-edge";

impl TrainOptions {
    /// Pan-sharpening defaults: SHIP_NETWORK.md §5.2 (L1, Adam lr 5e-4, gradient clip 4, no
    /// decay within the run), the `pan-edge` preset, batch 8 of 64x64 crops (output pixels)
    /// and the Landsat-7 MTF.
    pub fn pan_defaults() -> Self {
        Self {
            preset: DEFAULT_PAN_PRESET.into(),
            crop: 64,
            lr: 5e-4,
            milestones: Vec::new(),
            gamma: 0.1,
            ssim_weight: 0.0,
            grad_clip: Some(4.0),
            sensor: Some(pan::DEFAULT_SENSOR.into()),
            ..Self::default()
        }
    }

    /// Options that may differ when a run is resumed: its length and how often it reports.
    fn without_schedule_of_reports(&self) -> TrainOptions {
        TrainOptions {
            steps: 0,
            val_every: 0,
            ckpt_every: 0,
            ..self.clone()
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("--steps", self.steps),
            ("--batch", self.batch),
            ("--val-every", self.val_every),
            ("--ckpt-every", self.ckpt_every),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            bail!("{flag} must be at least 1");
        }
        if self.crop < loss::SSIM_WINDOW {
            bail!(
                "--crop {} is smaller than the {}x{} SSIM window",
                self.crop,
                loss::SSIM_WINDOW,
                loss::SSIM_WINDOW
            );
        }
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        if !finite_pos(self.lr) || !finite_pos(self.gamma) {
            bail!("--lr and --gamma must be positive");
        }
        if !(self.weight_decay >= 0.0 && self.ssim_weight >= 0.0) {
            bail!("--weight-decay and --ssim-weight must be >= 0");
        }
        if self.grad_clip.is_some_and(|c| !finite_pos(c)) {
            bail!("--grad-clip must be positive");
        }
        if self.full_res_weight.is_some_and(|w| !finite_pos(w)) {
            bail!("--full-res-weight must be positive");
        }
        if self.milestones.windows(2).any(|w| w[0] >= w[1]) {
            bail!("--milestones must increase: {:?}", self.milestones);
        }
        Ok(())
    }
}

/// Progress of a run, for a progress bar or a log. Every method has a no-op default.
pub trait Events {
    /// Training starts at step `from` (0, or the resumed step) of `total`; validations record
    /// `metrics`.
    fn started(&mut self, _from: usize, _total: usize, _metrics: &[ValMetric]) {}
    /// The classical baselines were scored on the validation set.
    fn baselines(&mut self, _summary: &BaselineSummary) {}
    /// A step finished with this loss at this learning rate.
    fn step(&mut self, _step: usize, _loss: f32, _lr: f64) {}
    /// A `metrics.csv` row was written; the validation pass took `seconds` (0 without).
    fn validated(&mut self, _row: &MetricsRow, _seconds: f64) {}
    /// A checkpoint was written.
    fn saved(&mut self, _path: &Path) {}
}

/// Events that go nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;
impl Events for Silent {}

/// What a finished (or interrupted) session of a run reports.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Loss of this session's first and last step (NaN if it did none).
    pub first_loss: f32,
    pub final_loss: f32,
    /// The step the session started from (0 for a new run) and ended at.
    pub start_step: usize,
    pub final_step: usize,
    /// Training steps per second of this session, validation and checkpoints excluded.
    pub steps_per_second: f64,
    /// Stopped by the stop flag before `steps`.
    pub interrupted: bool,
    /// The best classical baseline on the validation set.
    pub best_baseline: Option<String>,
    /// The last `metrics.csv` row.
    pub last_row: Option<MetricsRow>,
    /// Duration of the last validation pass.
    pub validation_seconds: Option<f64>,
}

/// Whether [`train`] starts a run or continues the one in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run; the directory must not hold one.
    Fresh,
    /// Continue from `last.safetensors` with the same options (only `steps`, `val_every` and
    /// `ckpt_every` may change).
    Resume,
}

/// The options of the run in `run_dir`, to resume it (possibly with a new `steps`).
pub fn run_options(run_dir: &Path) -> anyhow::Result<TrainOptions> {
    Ok(RunConfig::load(run_dir)?.options)
}

/// How run records and reports name a device (`cpu`, `cuda:0`).
pub fn device_name(dev: &Device) -> String {
    if dev.is_cuda() {
        "cuda:0".into()
    } else if dev.is_metal() {
        "metal".into()
    } else {
        "cpu".into()
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}: cannot resolve", p.display()))
}

/// Explains how `now` differs from the options `run_dir` was started with.
fn check_same_run(run_dir: &Path, saved: &RunConfig, now: &RunConfig) -> anyhow::Result<()> {
    let a = serde_json::to_value(saved.options.without_schedule_of_reports())?;
    let b = serde_json::to_value(now.options.without_schedule_of_reports())?;
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object())
        && let Some((k, was)) = a.iter().find(|(k, v)| b.get(*k) != Some(*v))
    {
        bail!(
            "{} was started with {k} = {was}, not {}: a resumed run keeps its options \
             (only --steps, --val-every and --ckpt-every may change)",
            run_dir.display(),
            b.get(k).map_or("nothing".to_string(), ToString::to_string)
        );
    }
    if saved.config != now.config {
        bail!(
            "preset `{}` has changed since {} was started ({} then, {} now)",
            now.options.preset,
            run_dir.display(),
            serde_json::to_string(&saved.config)?,
            serde_json::to_string(&now.config)?
        );
    }
    if saved.train_stems != now.train_stems || saved.val_stems != now.val_stems {
        bail!(
            "the data changed since {} was started: it trained on {} pairs and validated on {}, \
             the folders now give {} and {}",
            run_dir.display(),
            saved.train_stems.len(),
            saved.val_stems.len(),
            now.train_stems.len(),
            now.val_stems.len()
        );
    }
    Ok(())
}

/// Everything the loop writes besides checkpoints: `metrics.csv`, `loss.png`, `val.png`.
fn write_records(
    out: &Path,
    losses: &[f32],
    history: &[MetricsRow],
    baselines: Option<&BaselineSummary>,
    metrics: &[ValMetric],
) -> anyhow::Result<()> {
    record::write_text(
        &out.join(record::METRICS_CSV),
        &record::metrics_csv(history, metrics),
    )?;
    plots::loss_png(&out.join(record::LOSS_PNG), losses, history)?;
    if history.iter().any(|r| r.val.is_some()) {
        plots::val_png(&out.join(record::VAL_PNG), history, baselines, metrics)?;
    }
    Ok(())
}

/// Trains (or resumes) the run in `out` on `dev`. `stop` is polled before every step; when set,
/// the run saves a checkpoint and the weights and returns with `interrupted`.
pub fn train(
    opts: &TrainOptions,
    out: &Path,
    start: Start,
    dev: &Device,
    events: &mut dyn Events,
    stop: &AtomicBool,
) -> anyhow::Result<TrainReport> {
    opts.check()?;
    let cfg = ShipConfig::named(&opts.preset)?;
    // Absolute folders in config.json, so a run resumes from any working directory.
    let mut opts = opts.clone();
    opts.data = absolute(&opts.data)?;
    if let ValSource::Dir(d) = &mut opts.val {
        *d = absolute(d)?;
        if *d == opts.data {
            bail!(
                "--val {} is the training folder: pass --holdout N to keep items aside",
                d.display()
            );
        }
    }
    // Decode everything before the run directory is touched: a bad image fails the start
    // without leaving a half-made run behind.
    let data = task::open(&cfg, &opts)?;
    if let Some(p) = &mut opts.init {
        *p = absolute(p)?;
    }
    // A resumed run restores its own weights; only a new one starts from --init.
    let init = match (&start, &opts.init) {
        (Start::Fresh, Some(p)) => Some(
            crate::export::read_weights(p, &cfg, dev)
                .with_context(|| format!("--init {}", p.display()))?,
        ),
        _ => None,
    };
    let run = RunConfig {
        format: record::RUN_FORMAT.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        config: cfg,
        data_dir: opts.data.clone(),
        val_dir: match &opts.val {
            ValSource::Dir(d) => Some(d.clone()),
            ValSource::Holdout(_) => Some(opts.data.clone()),
            ValSource::None => None,
        },
        masks: data.masks(),
        train_stems: data.train_stems(),
        val_stems: data.val_stems(),
        device: device_name(dev),
        options: opts.clone(),
    };
    let last_path = out.join(record::LAST_CKPT);
    let resumed = match start {
        Start::Fresh => {
            if out.join(record::CONFIG_JSON).exists() || last_path.exists() {
                bail!(
                    "{} already holds a training run: continue it with --resume {}, or choose \
                     another --out",
                    out.display(),
                    out.display()
                );
            }
            None
        }
        Start::Resume => {
            let saved = RunConfig::load(out)?;
            check_same_run(out, &saved, &run)?;
            if !last_path.exists() {
                bail!(
                    "{}: missing, so {} cannot be resumed (it was stopped before its first \
                     checkpoint; start it again)",
                    last_path.display(),
                    out.display()
                );
            }
            let ckpt = checkpoint::load(&last_path)?;
            if ckpt.state.preset != opts.preset || ckpt.state.config != cfg {
                bail!(
                    "{}: a checkpoint of preset `{}`, the run is `{}`",
                    last_path.display(),
                    ckpt.state.preset,
                    opts.preset
                );
            }
            if opts.steps <= ckpt.state.step {
                bail!(
                    "{} is already at step {}: pass --steps larger than that to continue",
                    out.display(),
                    ckpt.state.step
                );
            }
            Some(ckpt)
        }
    };
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    run.save(out)?;

    let (net, varmap) = build_trainable(&cfg, opts.seed, dev)?;
    if let Some(weights) = &init {
        for (name, var) in varmap.data().lock().expect("varmap poisoned").iter() {
            // read_weights checked that every variable is there with its shape.
            var.set(&weights[name])?;
        }
    }
    let params: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap poisoned")
        .iter()
        .filter(|(k, _)| !is_buffer(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let adam_cfg = AdamConfig {
        weight_decay: opts.weight_decay,
        max_grad_norm: opts.grad_clip,
        ..AdamConfig::default()
    };
    let mut adam = Adam::new(params, adam_cfg)?;
    let schedule = MultiStepLr {
        base: opts.lr,
        milestones: opts.milestones.clone(),
        gamma: opts.gamma,
    };
    let (mut rng, mut losses, mut history, first_step, wall_before) = match resumed {
        Some(c) => {
            c.restore(&varmap, &mut adam, dev)
                .with_context(|| format!("{}: restoring", last_path.display()))?;
            let rng = DataRng::restore(opts.seed, c.state.data_draws);
            (
                rng,
                c.train_losses,
                c.history,
                c.state.step,
                c.state.wall_seconds,
            )
        }
        None => (DataRng::new(opts.seed), Vec::new(), Vec::new(), 0, 0.0),
    };

    let metrics = data.metrics().to_vec();
    events.started(first_step, opts.steps, &metrics);
    let baselines = data.baselines()?;
    if let Some(b) = &baselines {
        record::write_text(
            &out.join(record::BASELINES_CSV),
            &record::baselines_csv(b, &metrics),
        )?;
        events.baselines(b);
    }
    let session = Instant::now();
    let wall = || wall_before + session.elapsed().as_secs_f64();
    let save_ckpt = |step: usize,
                     rng: &DataRng,
                     adam: &Adam,
                     losses: &[f32],
                     history: &[MetricsRow],
                     keep: bool,
                     events: &mut dyn Events|
     -> anyhow::Result<()> {
        let state = checkpoint::State {
            step,
            data_draws: rng.draws(),
            preset: opts.preset.clone(),
            config: cfg,
            wall_seconds: wall(),
        };
        let n = metrics.len();
        checkpoint::save(&last_path, &state, &varmap, adam, losses, history, n)?;
        events.saved(&last_path);
        if keep {
            let p = out.join(record::ckpt_name(step));
            checkpoint::save(&p, &state, &varmap, adam, losses, history, n)?;
            events.saved(&p);
        }
        Ok(())
    };

    let mut step = first_step;
    let (mut first_loss, mut final_loss) = (f32::NAN, f32::NAN);
    let mut train_seconds = 0.0;
    let mut last_fused = None;
    let mut validation_seconds = None;
    let mut interrupted = false;
    while step < opts.steps {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let s = step + 1;
        let lr = schedule.lr(s);
        let total = data.objective(&net, opts.batch, opts.crop, &mut rng, dev)?;
        let l: f32 = total.to_scalar()?;
        if !l.is_finite() {
            bail!(
                "the loss became {l} at step {s}: lower --lr (the last checkpoint in {} is intact)",
                out.display()
            );
        }
        adam.step(&total.backward()?, lr)?;
        train_seconds += t0.elapsed().as_secs_f64();
        step = s;
        losses.push(l);
        if first_loss.is_nan() {
            first_loss = l;
        }
        final_loss = l;
        events.step(step, l, lr);

        let at_row = step % opts.val_every == 0 || step == opts.steps;
        let keep = step % opts.ckpt_every == 0 || step == opts.steps;
        if at_row {
            let since = history.last().map_or(0, |r: &MetricsRow| r.step);
            let window = &losses[since..step];
            let train_loss =
                window.iter().map(|&x| f64::from(x)).sum::<f64>() / window.len() as f64;
            let (val, seconds) = if baselines.is_none() {
                (None, 0.0)
            } else {
                let t = Instant::now();
                let inet = validate::inference_net(&cfg, &varmap, dev)?;
                let v = data.validate(&inet, dev)?;
                last_fused = Some(v.shown);
                let seconds = t.elapsed().as_secs_f64();
                validation_seconds = Some(seconds);
                (Some(v.scores), seconds)
            };
            let row = MetricsRow {
                step,
                lr,
                train_loss,
                val,
                wall_seconds: wall(),
            };
            events.validated(&row, seconds);
            history.push(row);
            write_records(out, &losses, &history, baselines.as_ref(), &metrics)?;
        }
        if at_row || keep {
            save_ckpt(step, &rng, &adam, &losses, &history, keep, events)?;
        }
    }
    if interrupted {
        save_ckpt(step, &rng, &adam, &losses, &history, true, events)?;
        write_records(out, &losses, &history, baselines.as_ref(), &metrics)?;
    }

    let tensors = varmap
        .data()
        .lock()
        .expect("varmap poisoned")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    crate::export::save_tensors(&tensors, &out.join(record::WEIGHTS))
        .context("saving the trained weights")?;
    if let (false, Some(b), Some(ours)) = (interrupted, &baselines, &last_fused) {
        let label = format!("ours, step {step}");
        data.contact(&out.join(record::CONTACT_PNG), b, ours, &label)?;
    }
    let done = step - first_step;
    Ok(TrainReport {
        first_loss,
        final_loss,
        start_step: first_step,
        final_step: step,
        steps_per_second: if train_seconds > 0.0 {
            done as f64 / train_seconds
        } else {
            0.0
        },
        interrupted,
        best_baseline: baselines.as_ref().map(|b| b.best.clone()),
        last_row: history.last().cloned(),
        validation_seconds,
    })
}
