//! Command-line front end: the argument structs (clap derive; each field's doc comment is its
//! `--help`) and one file per subcommand. The only place that prints.

mod bench;
mod calibrate;
mod eval;
mod fuse;
mod inspect;
mod pansharpen;
mod stream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Edge runtime for SHIP image fusion networks (infrared + visible) on tract.
#[derive(Debug, Parser)]
#[command(name = "ship-edge", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fuse an infrared + visible pair into one image.
    Fuse(fuse::Args),
    /// Score fusion methods (baselines, models, published outputs) on a dataset: metric
    /// means, mean ranks, JSON and CSV.
    Eval(Box<eval::Args>),
    /// Measure a model's per-frame latency on this machine (p50/p90/p99, fps, MACs, peak
    /// memory, CPU features), as a table or JSON.
    Bench(bench::Args),
    /// Print a model's inputs, outputs, metadata, op counts and parameter count.
    Inspect(inspect::Args),
    /// Pan-sharpen a multispectral + panchromatic pair with a classical method.
    Pansharpen(pansharpen::Args),
    /// Fuse two live sources (V4L2 cameras, Y4M pipes, raw Y16, image folders) frame by
    /// frame, with bounded queues, a drop policy, fault handling and per-second stats.
    Stream(Box<stream::Args>),
    /// Estimate the IR-to-visible homography of a camera pair from point pairs (for
    /// `stream --calib`).
    Calibrate(calibrate::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Eval(args) => eval::run(*args),
        Command::Fuse(args) => fuse::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Pansharpen(args) => pansharpen::run(args),
        Command::Stream(args) => stream::run(*args),
        Command::Calibrate(args) => calibrate::run(args),
    }
}
