//! Frame latency of an IVIF model on this machine, as `ship-edge bench` reports it: warm-up,
//! then per-frame timings through the same path `ship-edge fuse` takes ([`Fuser`]), with the
//! cost of a frame, the kernels tract picked and the machine, in one serialisable report so
//! runs on different boards can be collected and compared.

mod size;
mod stats;
mod system;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use size::{BadFrameSize, FrameSize, SIZE_PRESETS};
pub use stats::LatencyStats;
pub use system::{SystemInfo, current_rss_bytes, peak_rss_bytes};

use crate::model::{PlanCost, meta};
use crate::{FuseOptions, Fuser, Result};

/// Version of the JSON layout of [`BenchReport`]; bump it when a field changes meaning.
pub const SCHEMA: &str = "ship-edge-bench/1";

/// The tract release the runtime is built on (Cargo.toml pins it exactly; a test checks).
pub const TRACT_VERSION: &str = "0.23.9";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Frame size.
    pub size: FrameSize,
    /// Timed frames.
    pub frames: usize,
    /// Untimed frames run first (after the first inference, which plans the graph).
    pub warmup: usize,
    /// Inference threads, as for [`FuseOptions`].
    pub threads: usize,
    /// Frames run after the timed ones with a clock around every op of the plan, for
    /// [`BenchReport::profile`]; 0 skips profiling.
    pub profile_frames: usize,
}

impl Default for BenchOptions {
    fn default() -> BenchOptions {
        BenchOptions {
            size: FrameSize::BOSON,
            frames: 30,
            warmup: 3,
            threads: FuseOptions::default().threads,
            profile_frames: 0,
        }
    }
}

/// One benchmark run: what ran, where, and how fast. Serialises to the `ship-edge bench
/// --json` document (schema [`SCHEMA`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// ship-edge version.
    pub version: &'static str,
    /// Commit the binary was built from (`unknown` outside a git checkout).
    pub git_sha: &'static str,
    /// [`TRACT_VERSION`].
    pub tract_version: &'static str,
    /// The model file as given.
    pub model: PathBuf,
    /// SHA-256 of the model file, hex.
    pub model_sha256: String,
    /// The model's `architecture` metadata, if any.
    pub architecture: Option<String>,
    /// `f32`, `int8` or `mixed`, from where the model's multiply-accumulates run.
    pub precision: &'static str,
    /// Kernel table the custom ops run on this CPU ([`crate::ops::simd::Isa::as_str`]).
    pub op_kernels: &'static str,
    /// Frame size.
    pub size: FrameSize,
    /// Inference threads.
    pub threads: usize,
    /// Warm-up frames.
    pub warmup: usize,
    /// Timed frames.
    pub frames: usize,
    /// Profiled frames (after the timed ones, not in [`latency_ms`](BenchReport::latency_ms)).
    pub profile_frames: usize,
    /// Reading, parsing and checking the model file, ms.
    pub load_ms: f64,
    /// The first frame, which also types, optimises and plans the graph for the size, ms.
    pub first_inference_ms: f64,
    /// Per-frame latency over the timed frames, ms.
    pub latency_ms: LatencyStats,
    /// Frames per second at the mean latency.
    pub fps: f64,
    /// Multiply-accumulates per frame ([`PlanCost::macs`]).
    pub macs_per_frame: u64,
    /// Multiply-accumulates per second at the median latency, in billions.
    pub gmacs_per_s: f64,
    /// Frame cost, plan ops and kernels.
    pub cost: PlanCost,
    /// Time per op type over the profiled frames, slowest first (empty unless asked for).
    pub profile: Vec<OpTime>,
    /// Peak resident memory of the process (`VmHWM`), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The machine.
    pub system: SystemInfo,
    /// When the run ended, UTC, RFC 3339.
    pub timestamp: String,
}

/// Where a frame's time goes: one op type of tract's optimised plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpTime {
    /// tract's op name (`DirectSpatialConv`, `OptMatMul`, `Fft`, ...).
    pub op: String,
    /// Mean time per frame spent in ops of this type, ms.
    pub ms: f64,
    /// Share of the profiled frame time.
    pub share: f64,
}

/// Benchmarks the IVIF model at `model`: loads it, runs one planning frame, `warmup` frames,
/// then `frames` timed ones. `progress(done, total)` is called after every frame.
pub fn run(
    model: &Path,
    options: &BenchOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BenchReport> {
    let start = Instant::now();
    let fuser = Fuser::with_options(
        model,
        FuseOptions {
            threads: options.threads,
        },
    )?;
    let load_ms = ms(start.elapsed());
    let model_sha256 = sha256_file(model)?;

    let FrameSize { width, height } = options.size;
    let (ir, vis_y) = synthetic_pair(options.size);
    let frame = || fuser.fuse_y_raw(&ir, &vis_y, width, height);
    let total = 1 + options.warmup + options.frames + options.profile_frames;

    let start = Instant::now();
    frame()?;
    let first_inference_ms = ms(start.elapsed());
    progress(1, total);
    for i in 0..options.warmup {
        frame()?;
        progress(2 + i, total);
    }
    let mut samples = Vec::with_capacity(options.frames);
    for i in 0..options.frames {
        let start = Instant::now();
        frame()?;
        samples.push(ms(start.elapsed()));
        progress(2 + options.warmup + i, total);
    }
    let mut per_op: Vec<(String, Duration)> = Vec::new();
    for i in 0..options.profile_frames {
        fuser.profile_y(&ir, &vis_y, width, height, &mut per_op)?;
        progress(total - options.profile_frames + i + 1, total);
    }
    let profile = op_times(&per_op, options.profile_frames);

    // With no timed frames (a library caller's choice), the planning frame is all there is.
    let latency_ms = LatencyStats::from_samples(&samples)
        .or_else(|| LatencyStats::from_samples(&[first_inference_ms]))
        .expect("one sample");

    let cost = fuser.model().cost(width, height)?;
    let precision = match (cost.macs_float, cost.macs_int8) {
        (_, 0) => "f32",
        (0, _) => "int8",
        _ => "mixed",
    };
    Ok(BenchReport {
        schema: SCHEMA,
        version: env!("CARGO_PKG_VERSION"),
        git_sha: env!("SHIP_EDGE_GIT_SHA"),
        tract_version: TRACT_VERSION,
        model: model.to_path_buf(),
        model_sha256,
        architecture: fuser
            .info()
            .metadata_value(meta::ARCHITECTURE)
            .map(str::to_string),
        precision,
        op_kernels: crate::ops::simd::kernels().isa.as_str(),
        size: options.size,
        threads: options.threads,
        warmup: options.warmup,
        frames: options.frames,
        profile_frames: options.profile_frames,
        load_ms,
        first_inference_ms,
        fps: 1000.0 / latency_ms.mean,
        macs_per_frame: cost.macs(),
        gmacs_per_s: cost.macs() as f64 / (latency_ms.p50 * 1e6),
        latency_ms,
        cost,
        profile,
        peak_rss_bytes: peak_rss_bytes(),
        system: SystemInfo::probe(),
        timestamp: rfc3339_utc(SystemTime::now()),
    })
}

/// Per-op sums over `frames` frames as mean ms per frame and shares, slowest first.
fn op_times(sums: &[(String, Duration)], frames: usize) -> Vec<OpTime> {
    let total: f64 = sums.iter().map(|(_, t)| ms(*t)).sum();
    let mut times: Vec<OpTime> = sums
        .iter()
        .map(|(op, t)| OpTime {
            op: op.clone(),
            ms: ms(*t) / frames as f64,
            share: if total > 0.0 { ms(*t) / total } else { 0.0 },
        })
        .collect();
    times.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A reproducible IR + visible pair in `[0, 1]`: smooth gradients with a hot blob and
/// hash noise. tract's run time does not depend on pixel values, so a real image would time
/// the same; this keeps the benchmark free of data files.
pub fn synthetic_pair(size: FrameSize) -> (Vec<f32>, Vec<f32>) {
    let FrameSize { width, height } = size;
    let (w, h) = (width as f32, height as f32);
    let mut ir = Vec::with_capacity(size.pixels());
    let mut vis = Vec::with_capacity(size.pixels());
    for y in 0..height {
        for x in 0..width {
            let i = (y * width + x) as u32;
            let noise = (i.wrapping_mul(2_654_435_761) >> 24) as f32 / 255.0;
            let (u, v) = (x as f32 / w, y as f32 / h);
            let blob = (-((u - 0.6).powi(2) + (v - 0.4).powi(2)) * 40.0).exp();
            ir.push((0.2 + 0.7 * blob + 0.05 * noise).min(1.0));
            vis.push(0.3 + 0.4 * u * v + 0.2 * noise);
        }
    }
    (ir, vis)
}

/// SHA-256 of a file, lower-case hex.
fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| crate::model::ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time after 1970.
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64| rfc3339_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        // date -u -d @1795656789 +%FT%TZ
        assert_eq!(at(1_795_656_789), "2026-11-26T01:33:09Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn tract_version_is_the_pinned_one() {
        let manifest = include_str!("../../Cargo.toml");
        let pin = format!("tract-onnx = {{ version = \"={TRACT_VERSION}\"");
        assert!(manifest.contains(&pin), "Cargo.toml does not pin {pin}");
    }

    #[test]
    fn synthetic_frames_are_in_range_and_reproducible() {
        let size = FrameSize {
            width: 40,
            height: 30,
        };
        let (ir, vis) = synthetic_pair(size);
        assert_eq!((ir.len(), vis.len()), (1200, 1200));
        assert!(ir.iter().chain(&vis).all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(synthetic_pair(size), (ir, vis));
    }
}
