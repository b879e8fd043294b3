//! Training pairs: IR / visible images from `DIR/ir` and `DIR/vi`, matched by file stem, decoded
//! once into luminance planes; random aligned crops with the same flip/rotation on both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use ship_edge::imaging::{Limits, color, io};

use crate::nets::init::Rng;

/// One decoded pair, row-major luminance in [0,1].
#[derive(Debug, Clone)]
pub struct Pair {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub ir: Vec<f32>,
    pub vis: Vec<f32>,
}

fn stems(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?
    {
        let p = e?.path();
        if let (Some(stem), true) = (p.file_stem().and_then(|s| s.to_str()), p.is_file()) {
            out.insert(stem.to_string(), p);
        }
    }
    Ok(out)
}

/// Loads every pair of `root/ir` and `root/vi` with the same stem.
pub fn load_pairs(root: &Path) -> anyhow::Result<Vec<Pair>> {
    let (irs, vis) = (stems(&root.join("ir"))?, stems(&root.join("vi"))?);
    let mut pairs = Vec::new();
    for (name, ir_path) in &irs {
        let Some(vi_path) = vis.get(name) else {
            continue;
        };
        let limits = Limits::default();
        let ir = io::load(ir_path, &limits)?;
        let vi = io::load(vi_path, &limits)?;
        let (w, h) = (ir.width(), ir.height());
        if (w, h) != (vi.width(), vi.height()) {
            bail!(
                "{name}: IR is {w}x{h}, visible is {}x{}",
                vi.width(),
                vi.height()
            );
        }
        pairs.push(Pair {
            name: name.clone(),
            width: w,
            height: h,
            ir: color::infrared(&ir).to_vec(),
            vis: color::split_visible(&vi).0,
        });
    }
    if pairs.is_empty() {
        bail!(
            "{}: no IR/visible pairs (expected ir/NAME.* and vi/NAME.* with matching names)",
            root.display()
        );
    }
    Ok(pairs)
}

/// A batch of random crops: (vis_y, ir), each [B,1,crop,crop].
pub fn random_batch(
    pairs: &[Pair],
    batch: usize,
    crop: usize,
    rng: &mut Rng,
    dev: &Device,
) -> anyhow::Result<(Tensor, Tensor)> {
    let (mut vis, mut ir) = (
        Vec::with_capacity(batch * crop * crop),
        Vec::with_capacity(batch * crop * crop),
    );
    for _ in 0..batch {
        let p = &pairs[rng.below(pairs.len())];
        if p.width < crop || p.height < crop {
            bail!(
                "{}: {}x{} is smaller than the {crop}x{crop} crop",
                p.name,
                p.width,
                p.height
            );
        }
        let (x0, y0) = (
            rng.below(p.width - crop + 1),
            rng.below(p.height - crop + 1),
        );
        let (flip, rot) = (rng.below(2) == 1, rng.below(4));
        for y in 0..crop {
            for x in 0..crop {
                // Rotate by rot*90° and optionally mirror, identically for both modalities.
                let (mut sx, sy) = match rot {
                    0 => (x, y),
                    1 => (y, crop - 1 - x),
                    2 => (crop - 1 - x, crop - 1 - y),
                    _ => (crop - 1 - y, x),
                };
                if flip {
                    sx = crop - 1 - sx;
                }
                let i = (y0 + sy) * p.width + x0 + sx;
                vis.push(p.vis[i]);
                ir.push(p.ir[i]);
            }
        }
    }
    Ok((
        Tensor::from_vec(vis, (batch, 1, crop, crop), dev)?,
        Tensor::from_vec(ir, (batch, 1, crop, crop), dev)?,
    ))
}
