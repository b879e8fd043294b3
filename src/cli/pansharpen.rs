//! `ship-edge pansharpen`: pan-sharpen one MS + PAN pair with a classical method or a model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use ship_edge::FuseOptions;
use ship_edge::baselines::pan::{PanMethod, pansharpen};
use ship_edge::dsp::Image;
use ship_edge::imaging::geotiff::GeoTags;
use ship_edge::imaging::multiband::{load_cube, max_dn, save_cube_geo, storage_bits};
use ship_edge::imaging::{self, Limits};
use ship_edge::model::PanModel;
use ship_edge::pansharpen::{Sensor, wald};

/// MS pixels above which `--model` runs in tiles by default (a 1024x1024 MS at ratio 4 needs
/// about 2 GB of activations for the `pan-edge` network).
const AUTO_TILE_ABOVE: usize = 1024 * 1024;
/// Default tile size (MS pixels) above [`AUTO_TILE_ABOVE`].
const AUTO_TILE: usize = 512;

/// Arguments of `ship-edge pansharpen`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ship-edge pansharpen --ms ms/01.tif --pan pan/01.tif --method gsa -o fused.tif"
)]
pub struct Args {
    /// Multispectral image: TIFF with any number of 8- or 16-bit bands (e.g. Landsat-7's 6).
    #[arg(long, value_name = "MS.tif")]
    ms: PathBuf,
    /// Use these MS bands, 1-based and in this order (e.g. 1,2,3,4 for Landsat-7's R, G, B,
    /// NIR). Default: every band.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    bands: Option<Vec<usize>>,
    /// Panchromatic image (one band), RATIO times the MS size on both axes.
    #[arg(long, value_name = "PAN.tif")]
    pan: PathBuf,
    /// Classical method: exp, brovey, gihs, gsa, mtf-glp, mtf-glp-hpm or sfim.
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "model",
        conflicts_with = "model"
    )]
    method: Option<String>,
    /// Pan-sharpening ONNX model (metadata task = pansharpen; its bands and ratio must match the
    /// images). Samples are scaled by 1/255 (8-bit data) or 1/65535 (16-bit) into the model.
    #[arg(long, value_name = "M")]
    model: Option<PathBuf>,
    /// Output multiband TIFF (.tif/.tiff), PAN size; 8-bit when every MS value fits 0-255,
    /// else 16-bit; values rounded and clamped.
    #[arg(short, long, value_name = "OUT.tif")]
    output: PathBuf,
    /// PAN/MS size ratio, a power of two (default: inferred from the sizes).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u16).range(2..))]
    ratio: Option<u16>,
    /// Sensor whose MTF the MTF-GLP filters match: qb, ikonos, geoeye1, wv2, wv3, wv4, gf2,
    /// landsat7 or other.
    #[arg(long, value_name = "NAME", default_value = "other")]
    sensor: String,
    /// Run --model in tiles of N x N MS pixels blended over --overlap pixels (bounded memory for
    /// large scenes). Default: the model's `tile` metadata (the frame size it was trained on);
    /// for a model without one, the whole scene up to 1024x1024 MS pixels, 512 tiles above.
    #[arg(long, value_name = "N", requires = "model", value_parser = clap::value_parser!(u32).range(8..))]
    tile: Option<u32>,
    /// Overlap of --model tiles, in MS pixels (3 to half a tile). [default: a quarter of the
    /// tile, 3 to 16]
    #[arg(long, value_name = "N", requires = "model")]
    overlap: Option<u32>,
    /// Also write --model's output before rounding to the output's bit depth (clamped to the
    /// data range) as a float32 .npy of shape (bands, H, W), at model scale (DN / 255 for 8-bit
    /// data, DN / 65535 for 16-bit).
    #[arg(long, value_name = "FILE.npy", requires = "model")]
    raw: Option<PathBuf>,
    /// Inference threads for --model (default: all available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), requires = "model")]
    threads: Option<u16>,
    /// Reduced-resolution run (Wald's protocol): degrade MS and PAN by the ratio with the
    /// sensor's MTF filters first and fuse the degraded pair; the output has the MS size and is
    /// scored against the original MS (what `eval --protocol reduced --fused` expects).
    #[arg(long)]
    wald: bool,
}

/// Runs `ship-edge pansharpen`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Cheap checks first: a typo must not cost a decode.
    let method: Option<PanMethod> = args.method.as_deref().map(str::parse).transpose()?;
    let sensor = Sensor::from_name(&args.sensor).with_context(|| {
        format!(
            "unknown --sensor {:?}: use qb, ikonos, geoeye1, wv2, wv3, wv4, gf2, landsat7 or other",
            args.sensor
        )
    })?;
    let format = imaging::io::check_output(&args.output)?;
    if format != imaging::OutputFormat::Tiff {
        bail!(
            "{}: pan-sharpened images are multiband: name the output .tif or .tiff",
            args.output.display()
        );
    }
    if let Some(raw) = &args.raw {
        imaging::npy::check_output(raw)?;
    }
    let threads = args
        .threads
        .map_or_else(|| FuseOptions::default().threads, usize::from);
    let model = args
        .model
        .as_deref()
        .map(|m| PanModel::load(m).map(|m| m.with_threads(threads)))
        .transpose()?;
    let limits = Limits::default();
    let mut ms = load_cube(&args.ms, &limits)?;
    if let Some(list) = &args.bands {
        ms = imaging::bands::select_bands(&ms, list)
            .with_context(|| format!("{}: --bands", args.ms.display()))?;
    }
    let pan_cube = load_cube(&args.pan, &limits)?;
    if pan_cube.dim().0 != 1 {
        bail!(
            "{}: the PAN image has {} bands, expected 1",
            args.pan.display(),
            pan_cube.dim().0
        );
    }
    let pan: Image = pan_cube.index_axis_move(ndarray::Axis(0), 0);
    let (bands, mh, mw) = ms.dim();
    let (ph, pw) = pan.dim();
    if let Some(m) = &model
        && m.bands() != bands
    {
        bail!(
            "{}: the MS has {bands} bands, the model {} takes {}",
            args.ms.display(),
            m.path().display(),
            m.bands()
        );
    }
    let ratio = match (args.ratio, &model) {
        (Some(r), Some(m)) if usize::from(r) != m.ratio() => bail!(
            "--ratio {r} differs from the model's ratio {} ({})",
            m.ratio(),
            m.path().display()
        ),
        (_, Some(m)) => m.ratio(),
        (Some(r), None) => usize::from(r),
        (None, None) => {
            if mh == 0
                || mw == 0
                || !ph.is_multiple_of(mh)
                || !pw.is_multiple_of(mw)
                || ph / mh != pw / mw
            {
                bail!(
                    "{}: PAN is {pw}x{ph}, MS ({}) is {mw}x{mh}: the PAN must be an integer multiple of the MS size on both axes (or pass --ratio)",
                    args.pan.display(),
                    args.ms.display()
                );
            }
            ph / mh
        }
    };
    if (ph, pw) != (mh * ratio, mw * ratio) {
        bail!(
            "{}: PAN is {pw}x{ph}, expected {}x{} (ratio {ratio} times the MS {}, {mw}x{mh})",
            args.pan.display(),
            mw * ratio,
            mh * ratio,
            args.ms.display()
        );
    }
    let bits = storage_bits(&ms);

    let start = Instant::now();
    let (ms, pan) = if args.wald {
        wald::degrade(&ms, &pan, ratio, &sensor).with_context(|| {
            format!(
                "degrading {} and {} (--wald)",
                args.ms.display(),
                args.pan.display()
            )
        })?
    } else {
        (ms, pan)
    };
    let (ph, pw) = pan.dim();
    let context = || {
        format!(
            "pan-sharpening {} with {}",
            args.ms.display(),
            args.pan.display()
        )
    };
    let (fused, by) = match (&model, method) {
        (Some(m), _) => {
            let (_, h, w) = ms.dim();
            let tile = match (args.tile, m.tile()) {
                (Some(t), _) => t as usize,
                (None, Some(t)) => t,
                (None, None) if h * w > AUTO_TILE_ABOVE => AUTO_TILE,
                (None, None) => h.max(w),
            };
            let overlap = args.overlap.map_or_else(
                || ship_edge::pansharpen::tiles::default_overlap(tile),
                |o| o as usize,
            );
            let fused = m
                .sharpen_tiled(&ms, &pan, max_dn(bits), tile, overlap)
                .with_context(context)?;
            (fused, format!("model {}", m.path().display()))
        }
        (None, Some(method)) => (
            pansharpen(method, &ms, &pan, ratio, &sensor).with_context(context)?,
            method.name().to_string(),
        ),
        (None, None) => bail!("pass --method NAME or --model FILE"),
    };
    let elapsed = start.elapsed();
    // The output lies on the PAN grid (the MS grid with --wald): keep the inputs'
    // georeferencing, from the PAN, else from the MS refined by the ratio.
    let (ms_geo, pan_geo) = (GeoTags::read(&args.ms)?, GeoTags::read(&args.pan)?);
    let geo = match (args.wald, pan_geo.is_empty()) {
        (true, _) => ms_geo,
        (false, false) => pan_geo,
        (false, true) => ms_geo.refined(ratio),
    };
    save_cube_geo(&args.output, &fused, bits, &geo)?;
    if let Some(raw) = &args.raw {
        let max = max_dn(bits);
        let values: Vec<f32> = fused.iter().map(|&v| (v / max) as f32).collect();
        let (b, h, w) = fused.dim();
        imaging::npy::save_f32_shaped(raw, &[b, h, w], &values)?;
    }
    println!(
        "{}: {pw}x{ph} with {bands} bands ({bits}-bit{}), {by}{} with ratio {ratio}, sensor {}, in {} ms",
        args.output.display(),
        if geo.is_empty() {
            ""
        } else {
            ", georeferenced"
        },
        if args.wald {
            " on the Wald-degraded pair"
        } else {
            ""
        },
        sensor.name,
        elapsed.as_millis()
    );
    Ok(ExitCode::SUCCESS)
}
