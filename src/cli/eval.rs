//! `ship-edge eval`: score fusion methods on a dataset and print the comparison table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use ship_edge::baselines::ivif::IvifMethod;
use ship_edge::baselines::pan::PanMethod;
use ship_edge::eval::ivif::{IvifEval, IvifSource};
use ship_edge::eval::pan::{PanEval, PanSource, Protocol};
use ship_edge::eval::{Report, best_index, format_value, metric_columns};
use ship_edge::imaging::{Limits, io};
use ship_edge::metrics::Better;
use ship_edge::metrics::ivif::Convention;
use ship_edge::model::PanModel;
use ship_edge::pansharpen::Sensor;
use ship_edge::{FuseOptions, Fuser};

/// More pairs than this get a progress bar.
const PROGRESS_MIN_PAIRS: usize = 4;

/// Arguments of `ship-edge eval`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ship-edge eval --ir tno/ir --vis tno/vi --method average --method gff \\
      --model models/ship_edge_ivif.onnx --fused SeAFusion=results/SeAFusion
  ship-edge eval --ms landsat/ms --pan landsat/pan --protocol reduced --method gsa --method mtf-glp")]
pub struct Args {
    /// Infrared-visible: directory of infrared images (paired with --vis by file stem).
    #[arg(long, value_name = "DIR", requires = "vis", conflicts_with_all = ["ms", "pan"])]
    ir: Option<PathBuf>,
    /// Infrared-visible: directory of visible images (grey or RGB).
    #[arg(long, value_name = "DIR", requires = "ir")]
    vis: Option<PathBuf>,
    /// Pan-sharpening: directory of multispectral images (multiband TIFF), paired with --pan.
    #[arg(long, value_name = "DIR", requires = "pan")]
    ms: Option<PathBuf>,
    /// Pan-sharpening: directory of panchromatic images (one band).
    #[arg(long, value_name = "DIR", requires = "ms")]
    pan: Option<PathBuf>,
    /// A built-in baseline to score (repeatable). IVIF: average, max, laplacian, gff.
    /// Pan-sharpening: exp, brovey, gihs, gsa, mtf-glp, mtf-glp-hpm, sfim.
    #[arg(long = "method", value_name = "NAME")]
    methods: Vec<String>,
    /// An ONNX model to run and score (repeatable), as FILE or NAME=FILE: an IVIF model with
    /// --ir/--vis, a pan-sharpening model with --ms/--pan.
    #[arg(long = "model", value_name = "[NAME=]FILE")]
    models: Vec<String>,
    /// Images fused elsewhere, one per pair with the same file stem (repeatable), as NAME=DIR.
    #[arg(long = "fused", value_name = "NAME=DIR")]
    fused: Vec<String>,
    /// IVIF metric convention: default (ship-edge's exact definitions), cddfuse
    /// (MMIF-CDDFuse Evaluator.py) or tang2022 (Tang et al.'s 2022 MATLAB code, with its uint8
    /// saturation). Numbers from different conventions are not comparable.
    #[arg(long, value_name = "NAME", default_value = "default")]
    convention: String,
    /// Pan-sharpening protocol: reduced (Wald: degrade by the ratio, score against the
    /// original MS) or full (original pair, D_lambda / D_s / QNR).
    #[arg(long, value_name = "P", default_value = "reduced", value_parser = ["reduced", "full"])]
    protocol: String,
    /// Pan-sharpening: use these MS bands, 1-based and in this order (e.g. 1,2,3,4).
    /// Default: every band.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    bands: Option<Vec<usize>>,
    /// Pan-sharpening PAN/MS ratio (default: inferred from the image sizes).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u16).range(2..))]
    ratio: Option<u16>,
    /// Pan-sharpening sensor whose MTF the filters match: qb, ikonos, geoeye1, wv2, wv3, wv4,
    /// gf2, landsat7 or other.
    #[arg(long, value_name = "NAME", default_value = "other")]
    sensor: String,
    /// Pan-sharpening PSNR/SSIM peak value (255 for 8-bit data, 2047 for 11-bit).
    #[arg(long, value_name = "V", default_value_t = 255.0)]
    peak: f64,
    /// Score and rank over these metrics only, comma-separated in column order (e.g.
    /// EN,SD,SF,MI,SCD,VIF,Qabf,SSIM); the mean rank depends on the set. Default: all.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    metrics: Vec<String>,
    /// Also print every image's scores.
    #[arg(long)]
    per_image: bool,
    /// Write the results as JSON: {"convention", "metrics", "methods": {NAME: {"mean",
    /// "rank", "images"}}}.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the per-image scores as CSV (method,image,metrics...).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the table of means and mean ranks as Markdown (best value per metric in bold).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Inference threads for --model (default: all available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// Runs `ship-edge eval`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for path in args.json.iter().chain(&args.csv).chain(&args.markdown) {
        io::check_dir(path)?;
    }
    let (report, dataset) = match (&args.ir, &args.vis, &args.ms, &args.pan) {
        (Some(ir), Some(vis), None, None) => (
            run_ivif(&args, ir, vis)?,
            format!("{} + {}", ir.display(), vis.display()),
        ),
        (None, None, Some(ms), Some(pan)) => (
            run_pan(&args, ms, pan)?,
            format!("{} + {}", ms.display(), pan.display()),
        ),
        _ => bail!(
            "give a dataset: --ir DIR --vis DIR (infrared-visible) or --ms DIR --pan DIR (pan-sharpening)"
        ),
    };
    print_report(&report, &dataset, args.per_image);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())? + "\n";
        io::write_bytes(path, text.as_bytes())?;
    }
    if let Some(path) = &args.csv {
        io::write_bytes(path, report.to_csv().as_bytes())?;
    }
    if let Some(path) = &args.markdown {
        io::write_bytes(path, report.to_markdown().as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_ivif(args: &Args, ir: &Path, vis: &Path) -> anyhow::Result<Report> {
    let convention: Convention = args.convention.parse()?;
    check_metrics(args, convention.metrics().iter().map(|m| m.name()))?;
    let mut sources = Vec::new();
    for m in &args.methods {
        let method: IvifMethod = m.parse()?;
        sources.push(IvifSource::Baseline(method));
    }
    let options = match args.threads {
        Some(n) => FuseOptions {
            threads: usize::from(n),
        },
        None => FuseOptions::default(),
    };
    for spec in &args.models {
        let (name, path) = model_spec(spec);
        let fuser = Fuser::with_options(&path, options.clone())
            .with_context(|| format!("loading --model {spec}"))?;
        sources.push(IvifSource::Model {
            name,
            fuser: Box::new(fuser),
        });
    }
    for spec in &args.fused {
        let (name, dir) = named_dir(spec)?;
        sources.push(IvifSource::Fused { name, dir });
    }
    let eval = IvifEval {
        ir_dir: ir.to_path_buf(),
        vis_dir: vis.to_path_buf(),
        convention,
        sources,
        limits: Limits::default(),
    };
    let total = eval.pairs()?.0.len();
    let report = with_progress(total, |progress| eval.run(progress))?;
    select_metrics(args, report)
}

fn run_pan(args: &Args, ms: &Path, pan: &Path) -> anyhow::Result<Report> {
    if args.convention != "default" {
        bail!(
            "--convention applies to infrared-visible metrics; pan-sharpening follows the Vivone toolbox"
        );
    }
    let sensor = Sensor::from_name(&args.sensor).with_context(|| {
        format!(
            "unknown --sensor {:?}: use qb, ikonos, geoeye1, wv2, wv3, wv4, gf2, landsat7 or other",
            args.sensor
        )
    })?;
    let mut sources = Vec::new();
    for m in &args.methods {
        let method: PanMethod = m.parse()?;
        sources.push(PanSource::Baseline(method));
    }
    for spec in &args.models {
        let (name, path) = model_spec(spec);
        let threads = args
            .threads
            .map_or_else(|| FuseOptions::default().threads, usize::from);
        let model = PanModel::load(&path)
            .with_context(|| format!("loading --model {spec}"))?
            .with_threads(threads);
        sources.push(PanSource::Model {
            name,
            model: Box::new(model),
        });
    }
    for spec in &args.fused {
        let (name, dir) = named_dir(spec)?;
        sources.push(PanSource::Fused { name, dir });
    }
    if !(args.peak.is_finite() && args.peak > 0.0) {
        bail!("--peak must be a positive number, got {}", args.peak);
    }
    let eval = PanEval {
        ms_dir: ms.to_path_buf(),
        pan_dir: pan.to_path_buf(),
        protocol: if args.protocol == "full" {
            Protocol::Full
        } else {
            Protocol::Reduced
        },
        ratio: args.ratio.map(usize::from),
        bands: args.bands.clone(),
        sensor,
        sensor_name: args.sensor.clone(),
        peak: args.peak,
        sources,
        limits: Limits::default(),
    };
    check_metrics(args, eval.protocol.metrics().iter().map(|m| m.name()))?;
    let total = ship_edge::eval::pairs::pair_dirs(&[ms, pan])?.len();
    let report = with_progress(total, |progress| eval.run(progress))?;
    select_metrics(args, report)
}

/// Fails on an unknown `--metrics` name before any image is read.
fn check_metrics<'a>(args: &Args, available: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    if !args.metrics.is_empty() {
        let available: Vec<&str> = available.collect();
        metric_columns(&available, &args.metrics).map_err(|e| anyhow!("--metrics: {e}"))?;
    }
    Ok(())
}

/// The report over `--metrics` (all metrics when it is not given).
fn select_metrics(args: &Args, report: Report) -> anyhow::Result<Report> {
    if args.metrics.is_empty() {
        return Ok(report);
    }
    report
        .select(&args.metrics)
        .map_err(|e| anyhow!("--metrics: {e}"))
}

/// Runs `work` with a progress bar on stderr when there are more than a few pairs.
fn with_progress<T>(total: usize, work: impl FnOnce(&mut dyn FnMut(usize, usize)) -> T) -> T {
    if total <= PROGRESS_MIN_PAIRS {
        return work(&mut |_, _| {});
    }
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} pairs {pos}/{len} [{bar:30}] {elapsed} (ETA {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let out = work(&mut |done, _| bar.set_position(done as u64));
    bar.finish_and_clear();
    out
}

/// `NAME=FILE` or `FILE` (named after the file stem).
fn model_spec(spec: &str) -> (String, PathBuf) {
    if let Some((name, path)) = spec.split_once('=')
        && !name.is_empty()
        && !name.contains('/')
    {
        return (name.to_owned(), PathBuf::from(path));
    }
    let path = PathBuf::from(spec);
    let name = path
        .file_stem()
        .map_or_else(|| spec.to_owned(), |s| s.to_string_lossy().into_owned());
    (name, path)
}

/// `NAME=DIR`, required for --fused.
fn named_dir(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(dir)))
        }
        _ => bail!("--fused {spec:?}: expected NAME=DIR, e.g. --fused SeAFusion=results/SeAFusion"),
    }
}

/// Prints the table of means (best per metric marked with *), and per image if asked.
fn print_report(report: &Report, dataset: &str, per_image: bool) {
    let context: Vec<String> = report
        .context
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect();
    println!(
        "{} images from {dataset}; convention {}{}{}",
        report.images.len(),
        report.convention,
        if context.is_empty() { "" } else { ", " },
        context.join(", ")
    );
    let arrows: Vec<String> = report
        .metrics
        .iter()
        .zip(&report.better)
        .map(|(m, b)| format!("{m}{}", b.arrow()))
        .collect();
    let means: Vec<(&str, &[f64], Option<f64>)> = report
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.mean.as_slice(), Some(m.rank)))
        .collect();
    print_table(&arrows, &report.better, &means);
    if per_image {
        for (i, stem) in report.images.iter().enumerate() {
            println!("\n{stem}");
            let rows: Vec<(&str, &[f64], Option<f64>)> = report
                .methods
                .iter()
                .map(|m| (m.name.as_str(), m.images[i].as_slice(), None))
                .collect();
            print_table(&arrows, &report.better, &rows);
        }
    }
}

fn print_table(headers: &[String], better: &[Better], rows: &[(&str, &[f64], Option<f64>)]) {
    let name_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max("method".len());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.1.iter().map(|&v| format_value(v)).collect())
        .collect();
    let best: Vec<Option<usize>> = (0..headers.len())
        .map(|k| best_index(rows.iter().map(|r| r.1[k]), better[k]))
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|k| {
            cells
                .iter()
                .map(|c| c[k].len() + 1)
                .chain([headers[k].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = format!("{:<name_w$}", "method");
    for (h, w) in headers.iter().zip(&widths) {
        line += &format!("  {:>w$}", h, w = *w);
    }
    if rows.iter().any(|r| r.2.is_some()) {
        line += "   rank";
    }
    println!("{line}");
    for (i, (name, _, rank)) in rows.iter().enumerate() {
        let mut line = format!("{name:<name_w$}");
        for (k, w) in widths.iter().enumerate() {
            let mark = if best[k] == Some(i) { "*" } else { " " };
            line += &format!("  {:>w$}", format!("{}{mark}", cells[i][k]), w = *w);
        }
        if let Some(r) = rank {
            line += &format!("  {r:>5.2}");
        }
        println!("{line}");
    }
}
