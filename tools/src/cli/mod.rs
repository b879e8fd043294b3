//! Subcommands of `ship-tools`, one struct each, converted once into library calls.

mod bench_train;
mod device;
mod train;

use std::path::PathBuf;

use candle_core::Device;
use clap::{Parser, Subcommand};

use ship_tools::export::{self, ModelInfo, OpSet};
use ship_tools::nets::{self, ShipConfig};
use ship_tools::quantize::{self, Method, QuantizeOptions};

/// Offline tools for ship-edge: SHIP / SHIP++ networks in candle, training, import, ONNX export.
#[derive(Debug, Parser)]
#[command(name = "ship-tools", version)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print parameters and multiply-accumulates per pixel of a preset.
    Info {
        /// Network preset: ship, ship++, edge, rt (infrared-visible), pan or pan-edge (pan-sharpening, 6 bands at ratio 2), pan-edge-x4 (4 bands at ratio 4).
        #[arg(long, default_value = "ship")]
        preset: String,
    },
    /// Convert the authors' SHIP checkpoint (SHIP_model.pth) into a weight file of our `ship` preset.
    ImportOfficial {
        /// The released PyTorch checkpoint.
        pth: PathBuf,
        /// Output weights (safetensors).
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Export weights of a preset to an ONNX model (symbolic H and W).
    Export {
        /// Weights (safetensors) from `train` or `import-official`.
        #[arg(long)]
        weights: PathBuf,
        /// Network preset the weights belong to: ship, ship++, edge, rt, pan, pan-edge or pan-edge-x4.
        #[arg(long)]
        preset: String,
        /// Output ONNX file.
        #[arg(short, long)]
        out: PathBuf,
        /// Text for the model's `training_data` metadata.
        #[arg(long, default_value = "unspecified")]
        training_data: String,
        /// Operators of the high-order interaction: `custom` (ship-edge's fused FFT and gate
        /// ops, the fast form for ship-edge) or `standard` (plain ONNX, for onnxruntime and any
        /// other runtime).
        #[arg(long, value_enum, default_value_t = OpSet::Custom)]
        ops: OpSet,
        /// Pan-sharpening: the MS frame size (pixels) the network was trained on, written as
        /// the `tile` metadata: ship-edge then runs the model in tiles of that size. Default:
        /// the training crop / ratio when --weights lies in a run directory.
        #[arg(long, value_name = "N")]
        tile: Option<usize>,
    },
    /// Quantize an exported f32 model to int8 (QLinearConv) with calibration pairs.
    Quantize {
        /// The f32 ONNX model (custom or standard ops).
        #[arg(long)]
        model: PathBuf,
        /// Calibration pairs: a folder with ir/ and vi/ (the training set).
        #[arg(long)]
        calib: PathBuf,
        /// How activation ranges are taken from the calibration values. minmax is the
        /// default: percentile ranges clip bright regions of scenes unlike the calibration
        /// pairs (31.7 dB against f32 on one TNO image for `edge`, against 39.9 dB).
        #[arg(long, value_enum, default_value_t = Method::Minmax)]
        method: Method,
        /// One weight scale per output channel (default: per tensor, tract's fast int8 path).
        #[arg(long)]
        per_channel: bool,
        /// Calibration pairs to use, spread evenly over the folder.
        #[arg(long, default_value_t = 16)]
        pairs: usize,
        /// Set aside N pairs first, as `train --holdout N` does (keeps validation unseen).
        #[arg(long, default_value_t = 0)]
        holdout: usize,
        /// Mixed precision: leave the convolutions whose int8 form costs the most in f32, until
        /// the output on 4 calibration pairs is within this PSNR (dB) of the f32 model's
        /// (one model run per convolution to rank them).
        #[arg(long, value_name = "DB")]
        min_psnr: Option<f64>,
        /// Output model [default: MODEL with `_int8` before `.onnx`].
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Train a fusion network on IR/visible pairs into a run directory (resumable).
    Train(Box<train::Args>),
    /// Time training steps (forward, backward, SGD) of a preset or of the 10-layer conv probe.
    BenchTrain(bench_train::Args),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Info { preset: name } => {
            let cfg = ShipConfig::named(&name)?;
            let (net, varmap) = nets::build_trainable(&cfg, 0, &Device::Cpu)?;
            let (params, buffers) = nets::count_parameters(&varmap);
            let macs = export::macs_per_pixel(&net)?;
            println!("preset      {name}");
            println!("config      {}", serde_json::to_string(&cfg)?);
            println!("parameters  {params} learnable (+{buffers} fixed buffer values)");
            println!(
                "MACs/pixel  {macs} ({:.4} MMAC; convolutions only, FFT excluded)",
                macs as f64 / 1e6
            );
            println!(
                "at 640x480  {:.1} GMAC per frame",
                macs as f64 * 640.0 * 480.0 / 1e9
            );
        }
        Cmd::ImportOfficial { pth, out } => {
            let n = export::official::import_official(&pth, &out)?;
            println!(
                "imported {n} tensors from {} into {}",
                pth.display(),
                out.display()
            );
        }
        Cmd::Export {
            weights,
            preset: name,
            out,
            training_data,
            ops,
            tile,
        } => {
            let cfg = ShipConfig::named(&name)?;
            let net = export::load_weights(&weights, &cfg, &Device::Cpu)?;
            let tile = match (tile, cfg.task) {
                (Some(_), ship_tools::nets::Task::Ivif) => {
                    anyhow::bail!("--tile is for pan-sharpening models; `{name}` is an ivif preset")
                }
                (None, ship_tools::nets::Task::Ivif) => None,
                (Some(t), _) => Some(t),
                (None, task) => run_tile(&weights, task.ratio()),
            };
            let info = ModelInfo {
                architecture: name,
                training_data,
                ops,
                tile,
            };
            export::export_onnx(&net, &info, &out)?;
            println!("wrote {}", out.display());
        }
        Cmd::Quantize {
            model,
            calib,
            method,
            per_channel,
            pairs,
            holdout,
            min_psnr,
            out,
        } => {
            let out = out.unwrap_or_else(|| quantize::default_output(&model));
            let opts = QuantizeOptions {
                method,
                per_channel,
                pairs,
                holdout,
                min_psnr,
            };
            let report = quantize::quantize(&model, &calib, &opts, &out, &mut |i, n, name| {
                if i < n {
                    eprintln!("calibrating {}/{n}: {name}", i + 1);
                }
            })?;
            println!(
                "wrote {}: {} convolutions in int8, {} in f32; calibrated on {} pairs",
                out.display(),
                report.quantized_convs,
                report.float_convs,
                report.calibration.len()
            );
            if let Some((all, kept)) = report.psnr {
                println!(
                    "PSNR against the f32 model (worst scored pair): {all:.2} dB all in int8, \
                     {kept:.2} dB as written"
                );
            }
        }
        Cmd::Train(args) => train::run(*args)?,
        Cmd::BenchTrain(args) => bench_train::run(args)?,
    }
    Ok(())
}

/// The MS frame size a pan-sharpening run in the directory holding `weights` trained on:
/// its crop / `ratio`. None when `weights` is not in a run directory.
fn run_tile(weights: &std::path::Path, ratio: usize) -> Option<usize> {
    let dir = weights.parent()?;
    let run = ship_tools::train::record::RunConfig::load(dir).ok()?;
    Some(run.options.crop / ratio)
}
