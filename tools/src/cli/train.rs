//! `ship-tools train`: flags → `TrainOptions`, a progress bar, Ctrl-C → checkpoint and exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::device::DeviceArg;

use ship_tools::nets::{ShipConfig, Task};
use ship_tools::train::record::MetricsRow;
use ship_tools::train::validate::{BaselineSummary, ValMetric};
use ship_tools::train::{self, Events, Start, TrainOptions, ValSource};

/// Exit code of a run stopped by Ctrl-C after its checkpoint was saved (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

/// A repeated SIGINT this soon after the first is the same interrupt, not a second Ctrl-C:
/// GNU `timeout` signals its child and then its whole process group, so the trainer gets the
/// signal twice at once, and quitting on the second dropped the checkpoint the first had asked
/// for (5 of 6 runs on an H100 ended so).
const SAME_INTERRUPT: Duration = Duration::from_secs(1);

/// A second Ctrl-C: leave now (every file is written atomically). `_exit` skips the C exit
/// handlers: the CUDA driver's would tear the context down under the training thread, which
/// then hung or failed with `CUDA_ERROR_DEINITIALIZED` instead of exiting.
fn quit_now() -> ! {
    #[cfg(unix)]
    // SAFETY: `_exit` takes no pointers and ends the process.
    unsafe {
        libc::_exit(EXIT_INTERRUPTED)
    }
    #[cfg(not(unix))]
    std::process::exit(EXIT_INTERRUPTED)
}

/// Arguments of `train`. Options left out take their defaults for a new run and the recorded
/// values for `--resume`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Fusion task: ivif (infrared-visible) or pan (pan-sharpening; sets the pan defaults).
    /// [default: ivif, or the resumed run's]
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// Network preset (see `ship-tools info`): ship, ship++, edge, rt for ivif; pan, pan-edge, pan-edge-x4
    /// for pan. [default: edge, or pan-edge with --task pan]
    #[arg(long)]
    preset: Option<String>,
    /// Training folder. ivif: ir/ and vi/ with images matched by file name, optionally mask/
    /// (visible saliency maps: adds SHIP's mask loss term). pan: ms/ (multiband TIFF) and pan/.
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Validation folder laid out like --data, scored every --val-every steps.
    #[arg(long, conflicts_with = "holdout")]
    val: Option<PathBuf>,
    /// Keep N items of --data aside for validation (chosen by name, independent of --seed;
    /// listed in config.json) and never train on them.
    #[arg(long, value_name = "N")]
    holdout: Option<usize>,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long, required_unless_present = "resume")]
    steps: Option<usize>,
    /// Crops per step. [default: 8]
    #[arg(long)]
    batch: Option<usize>,
    /// Square crop size in (output) pixels. [default: 128; pan: 64]
    #[arg(long)]
    crop: Option<usize>,
    /// Adam learning rate. [default: 1e-4, SHIP's; pan: 5e-4]
    #[arg(long)]
    lr: Option<f64>,
    /// MultiStepLR milestones (steps), comma-separated. [default: 15000,25000; pan: none]
    #[arg(long, value_delimiter = ',')]
    milestones: Option<Vec<usize>>,
    /// Learning-rate factor at each milestone. [default: 0.75; pan: 0.1]
    #[arg(long)]
    gamma: Option<f64>,
    /// Adam L2 weight decay. [default: 0]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// ivif: weight of the SSIM loss term, 1 − ½(SSIM(F,V) + SSIM(F,I)). [default: 2]
    #[arg(long)]
    ssim_weight: Option<f64>,
    /// Clip the gradient's global L2 norm to this value. [default: none; pan: 4]
    #[arg(long, value_name = "NORM")]
    grad_clip: Option<f64>,
    /// pan: the sensor whose MTF the Wald degradation matches (landsat7, wv3, qb, ...).
    /// [default: landsat7]
    #[arg(long)]
    sensor: Option<String>,
    /// pan: the MS bands to train on, 1-based, in order (e.g. 1,2,3,4 for Landsat-7's R, G,
    /// B, NIR with a 4-band preset). [default: every band]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    bands: Option<Vec<usize>>,
    /// pan: add W·(D_λ + D_s), the full-resolution distortions of `ship-edge eval --protocol
    /// full`, on as many crops of the original (not degraded) pairs to the loss; validations
    /// then also score D_lambda, D_s and QNR. Needs the model's ratio to be the data's PAN/MS
    /// ratio and a --crop multiple of 32. [default: off]
    #[arg(long, value_name = "W")]
    full_res_weight: Option<f64>,
    /// Start a new run from these weights (weights.safetensors or a checkpoint of the same
    /// preset) instead of the seeded initialisation: fine-tuning.
    #[arg(long, value_name = "WEIGHTS", conflicts_with = "resume")]
    init: Option<PathBuf>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskArg {
    Ivif,
    Pan,
}

impl TaskArg {
    fn of(task: Task) -> TaskArg {
        match task {
            Task::Ivif => TaskArg::Ivif,
            Task::Pan { .. } => TaskArg::Pan,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TaskArg::Ivif => "ivif",
            TaskArg::Pan => "pan",
        }
    }

    /// The defaults of a new run of this task.
    fn defaults(self) -> TrainOptions {
        match self {
            TaskArg::Ivif => TrainOptions::default(),
            TaskArg::Pan => TrainOptions::pan_defaults(),
        }
    }
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
        grad_clip: a.grad_clip.or(base.grad_clip),
        sensor: a.sensor.clone().or(base.sensor),
        bands: a.bands.clone().or(base.bands),
        full_res_weight: a.full_res_weight.or(base.full_res_weight),
        init: a.init.clone().or(base.init),
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
    /// Names of the validation metrics, in column order.
    metrics: Vec<String>,
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
    fn started(&mut self, from: usize, total: usize, metrics: &[ValMetric]) {
        self.metrics = metrics.iter().map(|m| m.name.clone()).collect();
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
            self.metrics.len(),
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
            for (m, x) in self.metrics.iter().zip(&v.metrics) {
                line += &format!(" {m}={x:.3}");
            }
            line += &format!(" ({seconds:.1} s)");
        }
        self.line(line);
    }
}

/// Runs `train`.
pub fn run(a: Args) -> anyhow::Result<()> {
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
            let task = a.task.unwrap_or(TaskArg::Ivif);
            (options(&a, task.defaults()), out, Start::Fresh)
        }
    };
    let preset_task = TaskArg::of(ShipConfig::named(&opts.preset)?.task);
    if let Some(t) = a.task.filter(|t| *t != preset_task) {
        bail!(
            "--task {} does not match preset `{}`, a {} network",
            t.name(),
            opts.preset,
            preset_task.name()
        );
    }
    if preset_task == TaskArg::Pan && a.ssim_weight.is_some() {
        bail!("--ssim-weight is a term of the ivif loss; the pan loss is L1 only");
    }
    let dev = a.device.open()?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let mut first = None;
    ctrlc::set_handler(move || {
        let first_at = *first.get_or_insert_with(Instant::now);
        if !flag.swap(true, Ordering::SeqCst) {
            eprintln!(
                "\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)"
            );
        } else if first_at.elapsed() >= SAME_INTERRUPT {
            quit_now();
        }
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
        metrics: Vec::new(),
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
