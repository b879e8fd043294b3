//! `ship-tools bench-train`: time training steps of a preset or of the issue-13 conv probe.

use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};

use super::device::DeviceArg;

use ship_tools::nets::{ShipConfig, conv_cpu};
use ship_tools::train::bench::{self, BenchOptions, BenchReport, Kernels};
use ship_tools::train::device_name;

/// Arguments of `bench-train`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Network preset: ship, ship++, edge, rt (infrared-visible), pan or pan-edge (pan-sharpening, 6 bands at ratio 2), pan-edge-x4 (4 bands at ratio 4).
    #[arg(long, default_value = "ship", conflicts_with = "probe")]
    preset: String,
    /// Time the 10-layer probe instead: 10 x (Conv2d(16->16, 3x3, pad 1) + LeakyReLU(0.2)).
    #[arg(long)]
    probe: bool,
    /// Conv and LeakyReLU implementation of the probe: ours, or candle's own ("before").
    #[arg(long, value_enum, default_value_t = KernelArg::Ours, requires = "probe")]
    kernels: KernelArg,
    /// Images per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Square input size in pixels.
    #[arg(long, default_value_t = 128)]
    crop: usize,
    /// Timed steps (medians are reported).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed warm-up steps before them.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Where the preset runs: cpu, or cuda (GPU 0; needs a `--features cuda` build). The probe
    /// times our CPU kernels and always runs on the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu, conflicts_with = "probe")]
    device: DeviceArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KernelArg {
    Ours,
    Candle,
}

/// Runs the benchmark and prints one line per phase.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = BenchOptions {
        batch: args.batch,
        crop: args.crop,
        steps: args.steps,
        warmup: args.warmup,
    };
    // Our kernels run only on the CPU; candle's own conv runs everywhere else.
    let ours = || format!("ours, stride-1 conv kernel {}", conv_cpu::stride1_kernel());
    let (what, kernels, report) = if args.probe {
        let (kernels, used) = match args.kernels {
            KernelArg::Ours => (Kernels::Ours, ours()),
            KernelArg::Candle => (Kernels::Candle, "candle's own".to_string()),
        };
        let what = format!(
            "probe {}x (conv3x3 {c}->{c} + LeakyReLU {})",
            bench::PROBE_LAYERS,
            bench::PROBE_SLOPE,
            c = bench::PROBE_CHANNELS
        );
        (
            what,
            used,
            bench::bench_probe(kernels, &opts).context("probe")?,
        )
    } else {
        let cfg = ShipConfig::named(&args.preset)?;
        let dev = args.device.open()?;
        let what = format!("preset {} on {}", args.preset, device_name(&dev));
        let used = if dev.is_cpu() {
            ours()
        } else {
            "candle's own".to_string()
        };
        (
            what,
            used,
            bench::bench_preset(&cfg, &opts, &dev).context("preset")?,
        )
    };
    print_report(&what, &kernels, &opts, &report);
    Ok(())
}

/// The format `tools/scripts/bench_train_torch.py` prints too.
fn print_report(what: &str, kernels: &str, opts: &BenchOptions, r: &BenchReport) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "candle {what}, batch {} crop {}, {} threads, median of {} steps after {} warm-up, \
         kernels: {kernels}",
        opts.batch,
        opts.crop,
        rayon::current_num_threads(),
        opts.steps,
        opts.warmup,
    );
    println!(
        "forward   {:9.1} ms  {:6.1} GMAC/s",
        ms(r.times.forward),
        r.forward_gmacs()
    );
    println!("backward  {:9.1} ms", ms(r.times.backward));
    println!(
        "step      {:9.1} ms  {:6.1} GMAC/s (3x forward MACs)  {:.2} steps/s",
        ms(r.times.step),
        r.step_gmacs(),
        1.0 / r.times.step.as_secs_f64()
    );
}
