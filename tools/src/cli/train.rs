//! `ship-tools train`: flags → `TrainOptions`, a progress bar, Ctrl-C → checkpoint and exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::device::DeviceArg;

use ship_tools::train::record::MetricsRow;
use ship_tools::train::validate::{BaselineSummary, VAL_METRICS};
use ship_tools::train::{self, Events, Start, TrainOptions, ValSource};

/// Exit code of a run stopped by Ctrl-C after its checkpoint was saved (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

/// Arguments of `train`. Options left out take their defaults for a new run and the recorded
/// values for `--resume`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Fusion task (only infrared-visible for now).
    #[arg(long, value_enum, default_value_t = TaskArg::Ivif)]
    task: TaskArg,
    /// Network preset (see `ship-tools info`): ship, ship++, edge, ... [default: edge]
    #[arg(long)]
    preset: Option<String>,
    /// Training folder: ir/ and vi/ with images matched by file name, optionally mask/
    /// (visible saliency maps: adds SHIP's mask loss term).
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Validation folder (ir/ and vi/), scored every --val-every steps.
    #[arg(long, conflicts_with = "holdout")]
    val: Option<PathBuf>,
    /// Keep N pairs of --data aside for validation (chosen by name, independent of --seed;
    /// listed in config.json) and never train on them.
    #[arg(long, value_name = "N")]
    holdout: Option<usize>,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long, required_unless_present = "resume")]
    steps: Option<usize>,
    /// Crops per step. [default: 8]
    #[arg(long)]
    batch: Option<usize>,
    /// Square crop size in pixels. [default: 128]
    #[arg(long)]
    crop: Option<usize>,
    /// Adam learning rate. [default: 1e-4, SHIP's]
    #[arg(long)]
    lr: Option<f64>,
    /// MultiStepLR milestones (steps), comma-separated. [default: 15000,25000]
    #[arg(long, value_delimiter = ',')]
    milestones: Option<Vec<usize>>,
    /// Learning-rate factor at each milestone. [default: 0.75]
    #[arg(long)]
    gamma: Option<f64>,
    /// Adam L2 weight decay. [default: 0]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Weight of the SSIM loss term, 1 − ½(SSIM(F,V) + SSIM(F,I)). [default: 2]
    #[arg(long)]
    ssim_weight: Option<f64>,
    /// Validate and checkpoint (last.safetensors) every K steps. [default: 500]
    #[arg(long, value_name = "K")]
    val_every: Option<usize>,
    /// Keep a ckpt_STEP.safetensors every K steps. [default: 5000]
    #[arg(long, value_name = "K")]
    ckpt_every: Option<usize>,
    /// Seed of initialisation, crops and augmentation. [default: 10]
    #[arg(long)]
    seed: Option<u64>,
    /// Where to train: cpu, or cuda (GPU 0; needs a `--features cuda` build).
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Continue the run in RUN_DIR from its last.safetensors (same options; --steps may grow).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Run directory to create (config.json, checkpoints, metrics.csv, plots, weights).
    #[arg(
        short,
        long,
        value_name = "RUN_DIR",
        required_unless_present = "resume"
    )]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TaskArg {
    Ivif,
}

/// The options of this command line: the recorded ones of `--resume`, or the defaults,
/// overridden by every flag given.
fn options(a: &Args, base: TrainOptions) -> TrainOptions {
    let val = match (&a.val, a.holdout) {
        (Some(d), _) => ValSource::Dir(d.clone()),
        (None, Some(n)) => ValSource::Holdout(n),
        (None, None) => base.val.clone(),
    };
    TrainOptions {
        preset: a.preset.clone().unwrap_or(base.preset),
        data: a.data.clone().unwrap_or(base.data),
        val,
        steps: a.steps.unwrap_or(base.steps),
        batch: a.batch.unwrap_or(base.batch),
        crop: a.crop.unwrap_or(base.crop),
        lr: a.lr.unwrap_or(base.lr),
        milestones: a.milestones.clone().unwrap_or(base.milestones),
        gamma: a.gamma.unwrap_or(base.gamma),
        weight_decay: a.weight_decay.unwrap_or(base.weight_decay),
        ssim_weight: a.ssim_weight.unwrap_or(base.ssim_weight),
        val_every: a.val_every.unwrap_or(base.val_every),
        ckpt_every: a.ckpt_every.unwrap_or(base.ckpt_every),
        seed: a.seed.unwrap_or(base.seed),
    }
}

/// A progress bar for the steps and one log line per validation. When stderr is not a
/// terminal (a run under nohup, in CI, piped to a file) indicatif draws nothing and drops its
/// `println` lines, so the lines go to stderr directly, with a plain progress line now and then.
struct Bar {
    bar: ProgressBar,
    last_plain: Instant,
}

/// Seconds between plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY_S: u64 = 60;

impl Bar {
    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

impl Events for Bar {
    fn started(&mut self, from: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(from as u64);
        // Rate and ETA count this session's steps only.
        self.bar.reset_eta();
    }

    fn baselines(&mut self, b: &BaselineSummary) {
        let ranks: Vec<String> = b
            .methods
            .iter()
            .map(|(m, _, r)| format!("{m} {r:.2}"))
            .collect();
        self.line(format!(
            "validation baselines (mean rank over {} metrics): {}; best: {}",
            VAL_METRICS.len(),
            ranks.join(", "),
            b.best
        ));
    }

    fn step(&mut self, step: usize, loss: f32, lr: f64) {
        self.bar.set_position(step as u64);
        self.bar.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
        if self.bar.is_hidden() && self.last_plain.elapsed().as_secs() >= PLAIN_PROGRESS_EVERY_S {
            self.last_plain = Instant::now();
            let len = self.bar.length().unwrap_or(0);
            let eta = self.bar.eta().as_secs();
            eprintln!(
                "step {step}/{len} loss {loss:.4} lr {lr:.2e} {:.2} steps/s ETA {}m{:02}s",
                self.bar.per_sec(),
                eta / 60,
                eta % 60
            );
        }
    }

    fn validated(&mut self, r: &MetricsRow, seconds: f64) {
        let mut line = format!("step {} train_loss {:.4}", r.step, r.train_loss);
        if let Some(v) = &r.val {
            line += &format!(" val_loss {:.4}", v.loss);
            for (m, x) in VAL_METRICS.iter().zip(v.metrics) {
                line += &format!(" {}={x:.3}", m.name());
            }
            line += &format!(" ({seconds:.1} s)");
        }
        self.line(line);
    }
}

/// Runs `train`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let TaskArg::Ivif = a.task;
    let (opts, out, start) = match &a.resume {
        Some(dir) => {
            if let Some(o) = a.out.as_ref().filter(|o| *o != dir) {
                bail!(
                    "--out {} differs from --resume {}: a resumed run stays in its directory",
                    o.display(),
                    dir.display()
                );
            }
            let base = train::run_options(dir)?;
            (options(&a, base), dir.clone(), Start::Resume)
        }
        None => {
            let out = a.out.clone().context("--out RUN_DIR is required")?;
            (options(&a, TrainOptions::default()), out, Start::Fresh)
        }
    };
    let dev = a.device.open()?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: leave now (every file is written atomically).
            std::process::exit(EXIT_INTERRUPTED);
        }
        eprintln!("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;

    let bar = ProgressBar::new(opts.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} {per_sec} ETA {eta} ({elapsed})")
            .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let mut events = Bar {
        bar: bar.clone(),
        last_plain: Instant::now(),
    };
    let result = train::train(&opts, &out, start, &dev, &mut events, &stop);
    bar.finish_and_clear();
    let report = result.with_context(|| format!("training into {}", out.display()))?;
    summarise(&out, &report);
    if report.interrupted {
        eprintln!(
            "stopped at step {}; continue with: ship-tools train --resume {} --steps {}",
            report.final_step,
            out.display(),
            opts.steps
        );
        std::process::exit(EXIT_INTERRUPTED);
    }
    Ok(())
}

fn summarise(out: &Path, r: &train::TrainReport) {
    println!(
        "{} steps {}..{} at {:.2} steps/s: loss {:.4} -> {:.4}",
        if r.interrupted {
            "interrupted after"
        } else {
            "trained"
        },
        r.start_step,
        r.final_step,
        r.steps_per_second,
        r.first_loss,
        r.final_loss
    );
    if let Some(s) = r.validation_seconds {
        println!("last validation pass: {s:.1} s");
    }
    println!("run directory: {}", out.display());
}
