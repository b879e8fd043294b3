//! `ship-edge fuse`: fuse one infrared + visible pair with an IVIF model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use ship_edge::imaging::{self, Limits};
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
        if let Some(m) = &self.model {
            return Ok(m.clone());
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
}

/// Runs `ship-edge fuse`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Cheap checks first: a typo in the output name must not cost a model load.
    imaging::io::check_output(&args.output)?;
    if let Some(raw) = &args.raw {
        imaging::npy::check_output(raw)?;
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

    println!(
        "{}: {}x{} {} fused with {} in {} ms",
        args.output.display(),
        fused.width(),
        fused.height(),
        if fused.is_rgb() { "RGB" } else { "grey" },
        model.display(),
        elapsed.as_millis()
    );
    Ok(ExitCode::SUCCESS)
}
