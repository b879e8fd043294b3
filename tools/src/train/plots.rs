//! The run directory's pictures: `loss.png` (training and validation loss), `val.png` (the
//! validation metrics against the best classical baseline) and `contact.png` (the task's
//! columns, e.g. IR | visible | best baseline | ours, one row per validation item).
//!
//! plotters draws into an RGB buffer (its `bitmap_backend` without the encoder), the text comes
//! from an embedded DejaVu Sans Mono through `ab_glyph` (no fontconfig/freetype), and the PNG
//! is encoded by the `image` crate and written atomically.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use image::{ExtendedColorType, ImageEncoder, RgbImage, codecs::png::PngEncoder, imageops};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use ship_edge::imaging::Planes;

use super::record::MetricsRow;
use super::validate::{BaselineSummary, ValMetric};

/// DejaVu Sans Mono 2.37, Bitstream Vera license (tools/assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
/// The family name the charts ask for.
const FAMILY: &str = "sans-serif";
/// Height of one contact-sheet row: ten rows of four RoadScene-sized images make a ~1.4 MB PNG.
pub const CONTACT_ROW_HEIGHT: u32 = 128;
/// Curves are drawn from at most this many points (bucket means beyond).
const MAX_POINTS: usize = 2000;

const OURS: RGBColor = RGBColor(31, 119, 180);
const BASELINE: RGBColor = RGBColor(255, 127, 14);
const VAL: RGBColor = RGBColor(214, 39, 40);
const RAW: RGBColor = RGBColor(190, 190, 190);

fn font_ready() -> anyhow::Result<()> {
    static READY: OnceLock<bool> = OnceLock::new();
    let ok = *READY.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| anyhow!("the embedded plot font does not load"))
}

fn draw_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing: {e}")
}

/// Draws on a white `w` x `h` canvas and writes it as PNG to `path`.
fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    font_ready()?;
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    write_png(path, w, h, &buf)
}

fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> anyhow::Result<()> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(rgb, w, h, ExtendedColorType::Rgb8)
        .with_context(|| format!("{}: encoding", path.display()))?;
    ship_edge::imaging::io::write_bytes(path, &png)
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// (x, y) points thinned to at most [`MAX_POINTS`] by averaging consecutive buckets.
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// A range around finite values, never empty.
fn span(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return (if log { 0.1 } else { 0.0 }, 1.0);
    }
    if log {
        (lo / 1.2, hi * 1.2)
    } else {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 1e-3).max(1e-9);
        (lo - pad, hi + pad)
    }
}

/// `loss.png`: the loss of every step (grey, bucket means past 2000 points), the running
/// mean at each row (blue) and the validation loss (red), log scale.
pub fn loss_png(path: &Path, train_losses: &[f32], rows: &[MetricsRow]) -> anyhow::Result<()> {
    let raw: Vec<(f64, f64)> = train_losses
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, f64::from(l)))
        .collect();
    let raw = thin(&raw);
    let mean: Vec<(f64, f64)> = rows.iter().map(|r| (r.step as f64, r.train_loss)).collect();
    let val: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.val.as_ref().map(|v| (r.step as f64, v.loss)))
        .collect();
    let x_max = (train_losses.len().max(1)) as f64;
    let (y0, y1) = span(raw.iter().chain(&mean).chain(&val).map(|p| p.1), true);
    render(path, (900, 520), |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption("loss", (FAMILY, 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, (y0..y1).log_scale())
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FAMILY, 13))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(LineSeries::new(raw, RAW.stroke_width(1)))
            .map_err(draw_err)?
            .label("train (per step)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RAW));
        chart
            .draw_series(LineSeries::new(mean, OURS.stroke_width(2)))
            .map_err(draw_err)?
            .label("train (mean since last row)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], OURS));
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val.clone(), VAL.stroke_width(2)))
                .map_err(draw_err)?
                .label("validation (full images)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], VAL));
            chart
                .draw_series(val.into_iter().map(|p| Circle::new(p, 3, VAL.filled())))
                .map_err(draw_err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// `val.png`: one panel per metric, ours over the steps (blue) and the best baseline (orange).
pub fn val_png(
    path: &Path,
    rows: &[MetricsRow],
    baselines: Option<&BaselineSummary>,
    metrics: &[ValMetric],
) -> anyhow::Result<()> {
    let best = baselines.and_then(|b| b.best_means().map(|m| (b.best.as_str(), m)));
    let x_max = rows.last().map_or(1, |r| r.step.max(1)) as f64;
    let title = match best {
        Some((name, _)) => {
            format!("validation metrics: ours (blue), best baseline {name} (orange)")
        }
        None => "validation metrics".to_string(),
    };
    let cols = metrics.len().clamp(1, 4);
    let grid = (metrics.len().div_ceil(cols).max(1), cols);
    render(path, (1200, 300 * grid.0 as u32), |root| {
        root.fill(&WHITE).map_err(draw_err)?;
        let body = root.titled(&title, (FAMILY, 18)).map_err(draw_err)?;
        for (k, (panel, metric)) in body.split_evenly(grid).iter().zip(metrics).enumerate() {
            let ours: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| {
                    r.val
                        .as_ref()
                        .and_then(|v| v.metrics.get(k).map(|&m| (r.step as f64, m)))
                })
                .filter(|p| p.1.is_finite())
                .collect();
            let base = best
                .and_then(|(_, m)| m.get(k).copied())
                .filter(|v| v.is_finite());
            let (y0, y1) = span(ours.iter().map(|p| p.1).chain(base), false);
            let mut chart = ChartBuilder::on(panel)
                .caption(&metric.name, (FAMILY, 16))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(52)
                .build_cartesian_2d(0f64..x_max, y0..y1)
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .x_labels(4)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_labels(5)
                .label_style((FAMILY, 11))
                .draw()
                .map_err(draw_err)?;
            if let Some(b) = base {
                chart
                    .draw_series(LineSeries::new(
                        [(0.0, b), (x_max, b)],
                        BASELINE.stroke_width(2),
                    ))
                    .map_err(draw_err)?;
            }
            chart
                .draw_series(LineSeries::new(ours.clone(), OURS.stroke_width(2)))
                .map_err(draw_err)?;
            chart
                .draw_series(ours.into_iter().map(|p| Circle::new(p, 3, OURS.filled())))
                .map_err(draw_err)?;
        }
        Ok(())
    })
}

/// An image as 8-bit RGB, scaled to `height` rows.
fn thumbnail(p: &Planes, height: u32) -> RgbImage {
    let (w, h) = (p.width() as u32, p.height() as u32);
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let img = RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        if p.is_rgb() {
            image::Rgb([q(p.channel(0)[i]), q(p.channel(1)[i]), q(p.channel(2)[i])])
        } else {
            let g = q(p.channel(0)[i]);
            image::Rgb([g, g, g])
        }
    });
    let tw = ((u64::from(w) * u64::from(height)) / u64::from(h.max(1))).max(1) as u32;
    imageops::resize(&img, tw, height, imageops::FilterType::Triangle)
}

/// One contact-sheet row: the item's name and one image per column.
#[derive(Debug)]
pub struct ContactRow<'a> {
    pub name: &'a str,
    pub images: Vec<&'a Planes>,
}

/// Font size of the contact sheet's column labels, and the smallest a long one shrinks to.
const LABEL_SIZE: f64 = 16.0;
const MIN_LABEL_SIZE: f64 = 9.0;

/// `contact.png`: a header with the column names, then one row per pair, each image scaled to
/// [`CONTACT_ROW_HEIGHT`].
pub fn contact_png(path: &Path, labels: &[String], rows: &[ContactRow<'_>]) -> anyhow::Result<()> {
    const GAP: u32 = 4;
    const HEADER: u32 = 26;
    let thumbs: Vec<Vec<RgbImage>> = rows
        .iter()
        .map(|r| {
            r.images
                .iter()
                .map(|p| thumbnail(p, CONTACT_ROW_HEIGHT))
                .collect()
        })
        .collect();
    // Columns as wide as their widest thumbnail, so every column lines up.
    let col_w: Vec<u32> = (0..labels.len())
        .map(|c| {
            thumbs
                .iter()
                .filter_map(|t| t.get(c).map(RgbImage::width))
                .max()
                .unwrap_or(CONTACT_ROW_HEIGHT)
        })
        .collect();
    let width = col_w.iter().sum::<u32>() + GAP * (labels.len() as u32 + 1);
    let height = HEADER + (CONTACT_ROW_HEIGHT + GAP) * rows.len().max(1) as u32;
    let mut sheet = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let col_x: Vec<u32> = col_w
        .iter()
        .scan(GAP, |x, w| {
            let at = *x;
            *x += w + GAP;
            Some(at)
        })
        .collect();
    for (r, row) in thumbs.iter().enumerate() {
        let y = HEADER + r as u32 * (CONTACT_ROW_HEIGHT + GAP);
        for (c, t) in row.iter().enumerate().take(labels.len()) {
            imageops::replace(&mut sheet, t, i64::from(col_x[c]), i64::from(y));
        }
    }
    font_ready()?;
    let mut buf = sheet.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        for (c, label) in labels.iter().enumerate() {
            // A long label ("ours, step 12000") shrinks to its column instead of running into
            // the next one.
            let mut size = LABEL_SIZE;
            while size > MIN_LABEL_SIZE {
                let font = (FAMILY, size).into_font().color(&BLACK);
                let (w, _) = root.estimate_text_size(label, &font).map_err(draw_err)?;
                if w <= col_w[c] {
                    break;
                }
                size -= 1.0;
            }
            root.draw_text(
                label,
                &(FAMILY, size).into_font().color(&BLACK),
                (col_x[c] as i32, 5),
            )
            .map_err(draw_err)?;
        }
        let style = (FAMILY, 13).into_font().color(&YELLOW);
        for (r, row) in rows.iter().enumerate() {
            let y = HEADER + r as u32 * (CONTACT_ROW_HEIGHT + GAP) + 3;
            root.draw_text(row.name, &style, (col_x[0] as i32 + 4, y as i32))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    write_png(path, width, height, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_column_label_shrinks_into_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contact.png");
        let side = CONTACT_ROW_HEIGHT as usize;
        let grey = Planes::gray(side, side, vec![0.5; side * side]);
        let row = ContactRow {
            name: "x",
            images: vec![&grey, &grey],
        };
        let labels = ["ours, step 12000".to_string(), String::new()];
        contact_png(&path, &labels, &[row]).unwrap();
        let sheet = image::open(&path).unwrap().to_rgb8();
        // The header above the second column (x >= GAP + side + GAP) stays blank.
        let second = 4 + CONTACT_ROW_HEIGHT + 4;
        let dark =
            |x0: u32, x1: u32| (0..20).any(|y| (x0..x1).any(|x| sheet.get_pixel(x, y).0[0] < 128));
        assert!(dark(4, second), "the label is drawn");
        assert!(
            !dark(second - 2, sheet.width()),
            "the label runs into the next column"
        );
    }
}
