//! `ship-edge fuse`: fuse one infrared + visible pair with an IVIF model or a classical
//! baseline (`--method`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use ship_edge::baselines::ivif::{self, IvifMethod};
use ship_edge::imaging::{self, Limits, Planes};
use ship_edge::{FuseOptions, Fuser};

/// The model used when `--model` is not given.
const DEFAULT_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/ship_edge_ivif.onnx");

/// Arguments of `ship-edge fuse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Infrared image (PNG, TIFF or JPEG, 8- or 16-bit; channel 0 is used if it has several).
    #[arg(long, value_name = "IR")]
    ir: PathBuf,
    /// Visible image (grey or RGB, same size as the IR image); an RGB image keeps its colour.
    #[arg(long, value_name = "VIS")]
    vis: PathBuf,
    /// Output image; the format follows the extension (.png, .tif/.tiff, .jpg/.jpeg).
    #[arg(short, long, value_name = "OUT", default_value = "fused.png")]
    output: PathBuf,
    /// Also write the network's raw fused Y (before clamping and colour) as a float32 .npy file.
    #[arg(long, value_name = "FILE.npy")]
    raw: Option<PathBuf>,
    /// IVIF ONNX model (metadata task = ivif). Default: models/ship_edge_ivif.onnx of this build.
    #[arg(long, value_name = "M")]
    model: Option<PathBuf>,
    /// Fuse with a classical baseline instead of a model: average, max, laplacian (4-level
    /// Laplacian pyramid) or gff (guided-filter fusion). Like a model, it fuses the IR with the
    /// visible luminance and keeps the visible colour.
    #[arg(
        long,
        value_name = "NAME",
        value_parser = parse_method,
        conflicts_with_all = ["model", "raw", "threads"]
    )]
    method: Option<IvifMethod>,
    /// Inference threads (default: all available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

impl Args {
    fn options(&self) -> FuseOptions {
        match self.threads {
            Some(n) => FuseOptions {
                threads: usize::from(n),
            },
            None => FuseOptions::default(),
        }
    }

    fn model_path(&self) -> anyhow::Result<PathBuf> {
        default_model(self.model.as_deref())
    }
}

/// `model`, or the default model of this build when none is given.
pub(super) fn default_model(model: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m.to_path_buf());
    }
    let default = Path::new(DEFAULT_MODEL);
    if !default.is_file() {
        bail!(
            "no model given and the default model {} is missing: pass --model FILE",
            default.display()
        );
    }
    Ok(default.to_path_buf())
}

/// `--method NAME` (the error lists the valid names).
fn parse_method(name: &str) -> Result<IvifMethod, ivif::BaselineError> {
    name.parse()
}

/// Runs `ship-edge fuse`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Cheap checks first: a typo in the output name must not cost a model load.
    imaging::io::check_output(&args.output)?;
    if let Some(raw) = &args.raw {
        imaging::npy::check_output(raw)?;
    }
    if let Some(method) = args.method {
        return run_baseline(&args, method);
    }
    let model = args.model_path()?;
    let fuser = Fuser::with_options(&model, args.options())?;
    let limits = Limits::default();
    let ir = imaging::io::load(&args.ir, &limits)?;
    let vis = imaging::io::load(&args.vis, &limits)?;

    let start = Instant::now();
    let (fused, raw) = fuser
        .fuse_with_raw(&ir, &vis)
        .with_context(|| format!("fusing {} with {}", args.ir.display(), args.vis.display()))?;
    let elapsed = start.elapsed();
    imaging::io::save(&args.output, &fused)?;
    if let Some(path) = &args.raw {
        imaging::npy::save_f32(path, fused.width(), fused.height(), &raw)?;
    }

    print_done(
        &args.output,
        &fused,
        &model.display().to_string(),
        elapsed.as_millis(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `ship-edge fuse --method NAME`: the same inputs, colour handling and output as a model run.
fn run_baseline(args: &Args, method: IvifMethod) -> anyhow::Result<ExitCode> {
    let limits = Limits::default();
    let ir = imaging::io::load(&args.ir, &limits)?;
    let vis = imaging::io::load(&args.vis, &limits)?;

    let start = Instant::now();
    let fused = ivif::fuse_planes(method, &ir, &vis)
        .with_context(|| format!("fusing {} with {}", args.ir.display(), args.vis.display()))?;
    let elapsed = start.elapsed();
    imaging::io::save(&args.output, &fused)?;
    print_done(
        &args.output,
        &fused,
        &format!("the {method} baseline"),
        elapsed.as_millis(),
    );
    Ok(ExitCode::SUCCESS)
}

/// The one line a successful run prints.
fn print_done(output: &Path, fused: &Planes, by: &str, millis: u128) {
    println!(
        "{}: {}x{} {} fused with {by} in {millis} ms",
        output.display(),
        fused.width(),
        fused.height(),
        if fused.is_rgb() { "RGB" } else { "grey" },
    );
}
