//! `ship-edge stream`: fuse two live sources (cameras, or files and pipes standing in for
//! them) frame by frame, with a per-second status line on stderr and a summary at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use ship_edge::imaging::agc::Agc;
use ship_edge::imaging::warp::Calibration;
use ship_edge::stream::{self, Observer, SinkSpec, SourceOptions, SourceSpec, StreamConfig, Tick};
use ship_edge::{FuseOptions, Fuser};

use super::fuse::default_model;

/// Arguments of `ship-edge stream`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Infrared source: dir:PATH (images sorted by name), y4m:PATH or y4m:- (stdin),
    /// y16:PATH:WxH[:BITS] (raw 16-bit thermal frames), or
    /// v4l2:/dev/videoN[,size=WxH][,format=grey|y16|yuyv|mjpeg][,fps=N].
    #[arg(long, value_name = "SRC")]
    ir: SourceSpec,
    /// Visible source, in the same forms as --ir; an RGB source keeps its colour.
    #[arg(long, value_name = "SRC")]
    vis: SourceSpec,
    /// Output: y4m:PATH, y4m:- (stdout, e.g. `| ffplay -`), or png:DIR (one PNG per frame).
    #[arg(long, value_name = "SINK")]
    out: SinkSpec,
    /// IVIF ONNX model. Default: models/ship_edge_ivif.onnx of this build.
    #[arg(long, value_name = "M")]
    model: Option<PathBuf>,
    /// Inference threads (default: all available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Calibration file from `ship-edge calibrate`: the homography that registers the IR frame
    /// onto the visible one. Without it an IR frame of another size is only resized.
    #[arg(long, value_name = "FILE")]
    calib: Option<PathBuf>,
    /// Frame rate of dir: and y16: sources (Y4M streams carry their own).
    #[arg(long, value_name = "FPS", default_value_t = 30.0, value_parser = positive)]
    fps: f64,
    /// Play file sources in real time at their frame rate, like cameras: frames that arrive
    /// while inference is busy are dropped (oldest first). The clock starts after the first
    /// pair has planned the model. Without it every file frame is fused.
    #[arg(long)]
    pace: bool,
    /// Gain control of 14/16-bit thermal frames: percentile (1-99 % stretch, smoothed over
    /// frames), clahe (contrast-limited adaptive equalisation) or linear.
    #[arg(long, value_name = "AGC", default_value = "percentile")]
    agc: Agc,
    /// Largest capture-time difference of an IR/visible pair, in ms; frames without a
    /// partner that close are dropped and counted.
    #[arg(long, value_name = "MS", default_value_t = 20.0, value_parser = non_negative)]
    tolerance_ms: f64,
    /// Report a source as stalled after this many seconds without a frame.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = positive)]
    stall_timeout: f64,
    /// Frames queued per source before the oldest is dropped (live sources).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..))]
    queue: u16,
    /// Write [IR | visible | fused] side by side instead of the fused frame.
    #[arg(long)]
    preview: bool,
    /// Stop after this many fused frames.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_frames: Option<u64>,
    /// Also write the summary (rates, latency percentiles, drops, memory) as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No per-second status lines (the summary is still printed).
    #[arg(long, short)]
    quiet: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}

/// Prints ticks and notices on stderr.
struct Stderr {
    quiet: bool,
}

impl Observer for Stderr {
    fn tick(&mut self, tick: &Tick) {
        if !self.quiet {
            eprintln!("{}", tick.line());
        }
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

/// Runs `ship-edge stream`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(p) = &args.summary_json {
        ship_edge::imaging::io::check_dir(p)?;
    }
    let calibration = match &args.calib {
        Some(path) => Some((path.clone(), Calibration::load(path)?)),
        None => None,
    };
    let model = default_model(args.model.as_deref())?;
    let options = args
        .threads
        .map_or_else(FuseOptions::default, |n| FuseOptions {
            threads: usize::from(n),
        });
    let fuser = Fuser::with_options(&model, options)?;

    let open = |spec: &SourceSpec, name: &str, grey: bool| {
        let opts = SourceOptions {
            fps: args.fps,
            agc: args.agc,
            grey,
        };
        stream::source::open(spec, name, &opts).map_err(anyhow::Error::from)
    };
    let ir = open(&args.ir, "ir", true)?;
    let vis = open(&args.vis, "vis", false)?;
    let out_fps = vis.fps().unwrap_or(args.fps);
    let sink = stream::sink::open(&args.out, out_fps)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: the user wants out now.
                std::process::exit(130);
            }
        })
        .context("installing the Ctrl-C handler")?;
    }
    let cfg = StreamConfig {
        pace: args.pace,
        tolerance: Duration::from_secs_f64(args.tolerance_ms / 1e3),
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        queue: usize::from(args.queue),
        calibration,
        preview: args.preview,
        max_frames: args.max_frames,
        report_every: Duration::from_secs(1),
    };
    eprintln!(
        "streaming {} + {} -> {} with {} ({} threads){}",
        args.ir,
        args.vis,
        args.out,
        model.display(),
        fuser.options().threads,
        if args.pace { ", paced" } else { "" }
    );
    let summary = stream::run(
        &fuser,
        &cfg,
        [ir, vis],
        sink,
        stop,
        &mut Stderr { quiet: args.quiet },
    )?;
    eprintln!("{}", summary.text());
    if let Some(p) = &args.summary_json {
        let json = serde_json::to_string_pretty(&summary)? + "\n";
        ship_edge::imaging::io::write_bytes(p, json.as_bytes())?;
    }
    if !summary.errors.is_empty() {
        bail!("a source failed: {}", summary.errors.join("; "));
    }
    if summary.written == 0 {
        bail!(
            "no frame pairs were fused: the sources gave {} IR and {} visible frames ({} and {} \
             unpaired; check --tolerance-ms and the frame rates)",
            summary.ir.captured,
            summary.vis.captured,
            summary.ir.unpaired,
            summary.vis.unpaired
        );
    }
    Ok(ExitCode::SUCCESS)
}
