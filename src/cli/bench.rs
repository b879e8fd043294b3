//! `ship-edge bench`: per-frame latency of a model on this machine, as a table or as JSON
//! to collect from several boards.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use ship_edge::bench::{self, BenchOptions, BenchReport, FrameSize};
use ship_edge::imaging::io;

use super::fuse::default_model;

/// Arguments of `ship-edge bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// IVIF ONNX model. Default: models/ship_edge_ivif.onnx of this build.
    #[arg(long, value_name = "M")]
    model: Option<PathBuf>,
    /// Frame size: WxH, or a sensor preset: lepton (160x120), boson320 (320x256), vga
    /// (640x480), boson (640x512), sxga (1280x1024).
    #[arg(long, value_name = "SIZE", default_value = "boson")]
    size: FrameSize,
    /// Timed frames.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    frames: u32,
    /// Untimed frames after the first (planning) one.
    #[arg(long, value_name = "N", default_value_t = 3)]
    warmup: u32,
    /// Inference threads (default: all available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Then run N more frames with a clock around every op and list the time per op type.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
    profile: Option<u32>,
    /// Print the report as JSON (schema ship-edge-bench/1) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(short, long, value_name = "FILE.json")]
    output: Option<PathBuf>,
}

/// Runs `ship-edge bench`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = default_model(args.model.as_deref())?;
    if let Some(out) = &args.output {
        io::check_dir(out)?;
    }
    let mut options = BenchOptions {
        size: args.size,
        frames: args.frames as usize,
        warmup: args.warmup as usize,
        profile_frames: args.profile.unwrap_or(0) as usize,
        ..BenchOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = usize::from(t);
    }

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} frames")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("bench {} at {}", model.display(), options.size));
    let report = bench::run(&model, &options, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();

    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &args.output {
        io::write_bytes(out, format!("{json}\n").as_bytes())?;
    }
    let text = if args.json {
        json + "\n"
    } else {
        render(&report)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The human-readable report.
fn render(r: &BenchReport) -> String {
    let l = &r.latency_ms;
    let sys = &r.system;
    let mut lines = vec![
        format!(
            "model: {} ({}, {}, sha256 {})",
            r.model.display(),
            r.architecture.as_deref().unwrap_or("?"),
            r.precision,
            &r.model_sha256[..12]
        ),
        format!(
            "frame: {} ({} threads), {} timed after {} warm-up",
            r.size, r.threads, r.frames, r.warmup
        ),
        format!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  min {:.2}  max {:.2}  mean {:.2} ± {:.2}",
            l.p50, l.p90, l.p99, l.min, l.max, l.mean, l.std
        ),
        format!(
            "throughput: {:.2} fps, {:.3} GMAC/frame, {:.2} GMAC/s",
            r.fps,
            r.macs_per_frame as f64 / 1e9,
            r.gmacs_per_s
        ),
        format!(
            "load {:.1} ms, first frame (plans the graph) {:.1} ms, peak RSS {}",
            r.load_ms,
            r.first_inference_ms,
            r.peak_rss_bytes.map_or("?".to_string(), |b| format!(
                "{:.1} MiB",
                b as f64 / 1048576.0
            ))
        ),
        format!("kernels: {}", r.cost.kernels.join(", ")),
        format!(
            "cpu: {} ({} cores, {}, governor {})",
            sys.cpu.as_deref().unwrap_or("?"),
            sys.cores,
            sys.arch,
            sys.governor.as_deref().unwrap_or("?")
        ),
        format!("simd: {}", sys.simd.join(" ")),
    ];
    if !r.profile.is_empty() {
        lines.push(format!(
            "time per op type (mean of {} profiled frames):",
            r.profile_frames
        ));
        for t in &r.profile {
            lines.push(format!(
                "  {:>10.2} ms {:>5.1}%  {}",
                t.ms,
                100.0 * t.share,
                t.op
            ));
        }
    }
    if let Some(board) = &sys.board {
        lines.push(format!("board: {board}"));
    }
    lines.push(format!(
        "os: {}, kernel {}; ship-edge {} ({}), tract {}",
        sys.os.as_deref().unwrap_or("?"),
        sys.kernel.as_deref().unwrap_or("?"),
        r.version,
        r.git_sha,
        r.tract_version
    ));
    lines.join("\n") + "\n"
}
