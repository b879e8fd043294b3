//! `ship-edge calibrate`: the IR-to-visible homography of a camera pair from point pairs the
//! user picked (the same feature seen in both frames), written as the calibration file
//! `stream --calib` reads.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use ship_edge::imaging::io;
use ship_edge::imaging::warp::{Calibration, Homography};
use ship_edge::stream::source::parse_size;

/// Arguments of `ship-edge calibrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// CSV of point pairs, one per line: `ir_x,ir_y,vis_x,vis_y` in pixels of each frame
    /// (0,0 = centre of the top-left pixel). At least 4, better 8+ spread over the frame and
    /// on the scene's main plane; `#` comments and a header line are allowed.
    #[arg(long, value_name = "CSV")]
    points: PathBuf,
    /// IR frame size, WxH.
    #[arg(long, value_name = "WxH", value_parser = size)]
    ir_size: (usize, usize),
    /// Visible frame size, WxH.
    #[arg(long, value_name = "WxH", value_parser = size)]
    vis_size: (usize, usize),
    /// The calibration file to write.
    #[arg(short, long, value_name = "FILE", default_value = "calib.json")]
    output: PathBuf,
}

fn size(s: &str) -> Result<(usize, usize), String> {
    parse_size(s).ok_or_else(|| format!("`{s}` is not a size WxH, e.g. 640x512"))
}

/// Points in pixel coordinates.
type Points = Vec<(f64, f64)>;

/// Reads `ir_x,ir_y,vis_x,vis_y` lines: (IR points, visible points).
fn read_points(path: &Path) -> anyhow::Result<(Points, Points)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let (mut ir, mut vis) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line
            .split([',', ';', '\t', ' '])
            .filter(|f| !f.is_empty())
            .collect();
        let values: Option<Vec<f64>> = fields
            .iter()
            .map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect();
        match values {
            Some(v) if v.len() == 4 => {
                ir.push((v[0], v[1]));
                vis.push((v[2], v[3]));
            }
            // A header line such as `ir_x,ir_y,vis_x,vis_y` before any point.
            None if ir.is_empty() && fields.len() == 4 => {}
            _ => bail!(
                "{}:{}: expected four numbers `ir_x,ir_y,vis_x,vis_y`, found `{line}`",
                path.display(),
                i + 1
            ),
        }
    }
    Ok((ir, vis))
}

/// Runs `ship-edge calibrate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    io::check_dir(&args.output)?;
    let (ir, vis) = read_points(&args.points)?;
    let inside = |(x, y): (f64, f64), (w, h): (usize, usize)| {
        x >= -0.5 && y >= -0.5 && x <= w as f64 - 0.5 && y <= h as f64 - 0.5
    };
    for (i, (p, q)) in ir.iter().zip(&vis).enumerate() {
        if !inside(*p, args.ir_size) || !inside(*q, args.vis_size) {
            bail!(
                "{}: point pair {} ({}, {}) -> ({}, {}) lies outside the {}x{} IR or {}x{} visible frame",
                args.points.display(),
                i + 1,
                p.0,
                p.1,
                q.0,
                q.1,
                args.ir_size.0,
                args.ir_size.1,
                args.vis_size.0,
                args.vis_size.1
            );
        }
    }
    let h =
        Homography::estimate(&ir, &vis).with_context(|| format!("{}", args.points.display()))?;
    let rms = h.rms_error(&ir, &vis);
    let calib = Calibration {
        ir_size: [args.ir_size.0, args.ir_size.1],
        vis_size: [args.vis_size.0, args.vis_size.1],
        homography: h,
        points: ir.len(),
        rms_px: rms,
    };
    io::write_bytes(&args.output, calib.to_json().as_bytes())?;
    println!(
        "{}: homography from {} point pairs, RMS reprojection error {:.2} px",
        args.output.display(),
        ir.len(),
        rms
    );
    for (i, (p, q)) in ir.iter().zip(&vis).enumerate() {
        let e = h.rms_error(std::slice::from_ref(p), std::slice::from_ref(q));
        if e > 2.0 {
            eprintln!(
                "warning: pair {} is {:.1} px off the fit: a mistyped point, or off the scene's main plane (parallax)",
                i + 1,
                e
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
