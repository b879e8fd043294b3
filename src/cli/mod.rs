//! Command-line front end: the argument structs (clap derive; each field's doc comment is its
//! `--help`) and one file per subcommand. The only place that prints.

mod fuse;
mod inspect;

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
    /// Print a model's inputs, outputs, metadata, op counts and parameter count.
    Inspect(inspect::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Fuse(args) => fuse::run(args),
        Command::Inspect(args) => inspect::run(args),
    }
}
