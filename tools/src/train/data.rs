//! Training pairs: IR / visible images from `DIR/ir` and `DIR/vi` (and optional saliency
//! masks in `DIR/mask`), matched by file stem, decoded once into luminance planes; the
//! train / validation split; random aligned crops with the same flip/rotation on every plane;
//! the data RNG, whose state is a draw count so a checkpoint can restore it exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};

use ship_edge::dsp::Image;
use ship_edge::imaging::{Limits, Planes, color, io};
use ship_edge::metrics::ivif;

use crate::nets::init::Rng;

/// Extensions read as images (case-insensitive); other files (README, .DS_Store) are ignored.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff"];

/// The files of one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairFiles {
    /// The common file stem.
    pub stem: String,
    pub ir: PathBuf,
    pub vis: PathBuf,
    /// Saliency mask of the visible image, when the data set has `mask/`.
    pub mask: Option<PathBuf>,
}

/// One decoded pair, row-major luminance in `[0,1]`.
#[derive(Debug, Clone)]
pub struct Pair {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub ir: Vec<f32>,
    pub vis: Vec<f32>,
    /// Saliency map m in `[0,1]` (SHIP_NETWORK.md §5.1), same size.
    pub mask: Option<Vec<f32>>,
}

/// A validation pair: the planes the network sees plus what scoring needs (the decoded
/// images, their 0–255 grey forms, the visible chroma to merge back).
#[derive(Debug, Clone)]
pub struct ValPair {
    pub pair: Pair,
    /// Decoded IR image, as `ship-edge eval` reads it.
    pub ir_image: Planes,
    /// Decoded visible image (grey or RGB).
    pub vis_image: Planes,
    /// `ivif::grey` of the two sources (the metrics' A and B).
    pub ir_grey: Image,
    pub vis_grey: Image,
    pub chroma: Option<color::Chroma>,
}

fn image_stems(dir: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?;
    for e in entries {
        let p = e
            .with_context(|| format!("{}: cannot list directory", dir.display()))?
            .path();
        let ext = p
            .extension()
            .and_then(|s| s.to_str())
            .map(str::to_ascii_lowercase);
        let is_image = ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
        let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if !is_image || !p.is_file() {
            continue;
        }
        if let Some(other) = out.insert(stem.to_string(), p.clone()) {
            bail!(
                "{} and {} have the same stem: keep one image per name",
                other.display(),
                p.display()
            );
        }
    }
    Ok(out)
}

/// Pairs `root/ir/NAME.*` with `root/vi/NAME.*` (and `root/mask/NAME.*` when `root/mask`
/// exists), sorted by stem. Every IR image needs its visible partner and vice versa, and with
/// a `mask/` folder every pair needs a mask: a silently dropped file would change the data set.
pub fn list_pairs(root: &Path) -> anyhow::Result<Vec<PairFiles>> {
    for sub in ["ir", "vi"] {
        let d = root.join(sub);
        if !d.is_dir() {
            bail!(
                "{}: missing; a data folder holds ir/ and vi/ (and optionally mask/) with images \
                 matched by file name",
                d.display()
            );
        }
    }
    let (irs, vis) = (
        image_stems(&root.join("ir"))?,
        image_stems(&root.join("vi"))?,
    );
    let mask_dir = root.join("mask");
    let masks = if mask_dir.is_dir() {
        Some(image_stems(&mask_dir)?)
    } else {
        None
    };
    let unmatched = |a: &BTreeMap<String, PathBuf>, b: &BTreeMap<String, PathBuf>| {
        a.keys()
            .filter(|k| !b.contains_key(*k))
            .cloned()
            .collect::<Vec<_>>()
    };
    for (from, to, missing) in [
        ("ir", "vi", unmatched(&irs, &vis)),
        ("vi", "ir", unmatched(&vis, &irs)),
    ] {
        if !missing.is_empty() {
            bail!(
                "{}: {} image(s) without a partner in {}/ (e.g. `{}`): add or remove them",
                root.join(from).display(),
                missing.len(),
                to,
                missing[0]
            );
        }
    }
    if irs.is_empty() {
        bail!(
            "{}: no IR/visible pairs (expected ir/NAME.png and vi/NAME.png with matching names; \
             read extensions: {})",
            root.display(),
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    irs.into_iter()
        .map(|(stem, ir)| {
            let mask = match &masks {
                None => None,
                Some(m) => Some(m.get(&stem).cloned().with_context(|| {
                    format!(
                        "{}: no mask for `{stem}` (with a mask/ folder every pair needs one)",
                        mask_dir.display()
                    )
                })?),
            };
            Ok(PairFiles {
                vis: vis[&stem].clone(),
                stem,
                ir,
                mask,
            })
        })
        .collect()
}

/// Something named by a file stem: what the train/validation split keys on.
pub trait Stem {
    fn stem(&self) -> &str;
}

impl Stem for PairFiles {
    fn stem(&self) -> &str {
        &self.stem
    }
}

impl Stem for ship_edge::eval::pairs::Pair {
    fn stem(&self) -> &str {
        &self.stem
    }
}

/// Splits off `n` validation items: those whose stems hash lowest. The choice depends on the
/// names only (not on `--seed`), so runs with different seeds validate on the same items, and
/// it spreads over the set instead of taking one end of a sorted sequence (one scene).
pub fn holdout<T: Stem>(items: Vec<T>, n: usize) -> anyhow::Result<(Vec<T>, Vec<T>)> {
    if n >= items.len() {
        bail!(
            "--holdout {n} leaves nothing to train on: the data set has {} items",
            items.len()
        );
    }
    let mut keyed: Vec<(u64, String)> = items
        .iter()
        .map(|p| (Rng::for_name(0, p.stem()).next_u64(), p.stem().to_string()))
        .collect();
    keyed.sort();
    let held: Vec<String> = keyed.into_iter().take(n).map(|(_, s)| s).collect();
    let (val, train): (Vec<_>, Vec<_>) = items
        .into_iter()
        .partition(|p| held.iter().any(|h| h == p.stem()));
    Ok((train, val))
}

/// The training and validation items of `opts`: `list` reads a folder; validation comes from
/// another folder, a holdout of the training folder, or nowhere.
pub fn split<T: Stem>(
    opts: &super::TrainOptions,
    list: impl Fn(&Path) -> anyhow::Result<Vec<T>>,
) -> anyhow::Result<(Vec<T>, Vec<T>)> {
    let all = list(&opts.data)?;
    match &opts.val {
        super::ValSource::None => Ok((all, Vec::new())),
        super::ValSource::Holdout(n) => holdout(all, *n),
        super::ValSource::Dir(d) => Ok((all, list(d)?)),
    }
}

fn load_image(path: &Path) -> anyhow::Result<Planes> {
    io::load(path, &Limits::default()).with_context(|| format!("{}: cannot read", path.display()))
}

/// Decodes a pair: IR channel 0, visible luminance Y as the runtime computes it, mask channel 0.
fn decode(files: &PairFiles) -> anyhow::Result<(Pair, Planes, Planes)> {
    let ir = load_image(&files.ir)?;
    let vi = load_image(&files.vis)?;
    let (w, h) = (ir.width(), ir.height());
    if (w, h) != (vi.width(), vi.height()) {
        bail!(
            "{}: IR is {w}x{h} but {} is {}x{}: pairs must be registered and the same size",
            files.ir.display(),
            files.vis.display(),
            vi.width(),
            vi.height()
        );
    }
    let mask = match &files.mask {
        None => None,
        Some(p) => {
            let m = load_image(p)?;
            if (m.width(), m.height()) != (w, h) {
                bail!(
                    "{}: mask is {}x{}, its pair is {w}x{h}",
                    p.display(),
                    m.width(),
                    m.height()
                );
            }
            Some(m.channel(0).to_vec())
        }
    };
    let pair = Pair {
        name: files.stem.clone(),
        width: w,
        height: h,
        ir: color::infrared(&ir).to_vec(),
        vis: color::split_visible(&vi).0,
        mask,
    };
    Ok((pair, ir, vi))
}

/// Decodes training pairs and checks that each holds a `crop` x `crop` window.
pub fn load_train(files: &[PairFiles], crop: usize) -> anyhow::Result<Vec<Pair>> {
    files
        .iter()
        .map(|f| {
            let (p, _, _) = decode(f)?;
            if p.width < crop || p.height < crop {
                bail!(
                    "{}: {}x{} is smaller than the {crop}x{crop} crop: pass a smaller --crop or \
                     remove the pair",
                    f.ir.display(),
                    p.width,
                    p.height
                );
            }
            Ok(p)
        })
        .collect()
}

/// Decodes validation pairs, keeping what scoring needs.
pub fn load_val(files: &[PairFiles]) -> anyhow::Result<Vec<ValPair>> {
    files
        .iter()
        .map(|f| {
            let (pair, ir_image, vis_image) = decode(f)?;
            Ok(ValPair {
                ir_grey: ivif::grey(&ir_image),
                vis_grey: ivif::grey(&vis_image),
                chroma: color::split_visible(&vis_image).1,
                pair,
                ir_image,
                vis_image,
            })
        })
        .collect()
}

/// The data RNG: `init::Rng` plus a count of its draws. Restoring replays the draws from the
/// seed, which needs nothing from the generator's internals (a few million draws take
/// milliseconds).
#[derive(Debug, Clone)]
pub struct DataRng {
    rng: Rng,
    draws: u64,
}

/// The named stream of the seed that crops and augmentation draw from.
const DATA_STREAM: &str = "train.data";

impl DataRng {
    /// A fresh stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::for_name(seed, DATA_STREAM),
            draws: 0,
        }
    }

    /// The stream of `seed` after `draws` draws.
    pub fn restore(seed: u64, draws: u64) -> Self {
        let mut r = Self::new(seed);
        for _ in 0..draws {
            r.rng.next_u64();
        }
        r.draws = draws;
        r
    }

    /// Draws so far (the saved state).
    pub fn draws(&self) -> u64 {
        self.draws
    }

    /// Uniform integer in [0, n), one draw.
    pub fn below(&mut self, n: usize) -> usize {
        self.draws += 1;
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (u * n as f64) as usize % n.max(1)
    }
}

/// One training batch, each `[B,1,crop,crop]`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub vis: Tensor,
    pub ir: Tensor,
    pub mask: Option<Tensor>,
}

/// A batch of random crops with a random rotation (k·90°) and mirror, the same on every plane.
pub fn random_batch(
    pairs: &[Pair],
    batch: usize,
    crop: usize,
    rng: &mut DataRng,
    dev: &Device,
) -> anyhow::Result<Batch> {
    let n = batch * crop * crop;
    let with_mask = pairs.iter().all(|p| p.mask.is_some());
    let (mut vis, mut ir) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut mask = Vec::with_capacity(if with_mask { n } else { 0 });
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
                if let (true, Some(m)) = (with_mask, &p.mask) {
                    mask.push(m[i]);
                }
            }
        }
    }
    let shape = (batch, 1, crop, crop);
    Ok(Batch {
        vis: Tensor::from_vec(vis, shape, dev)?,
        ir: Tensor::from_vec(ir, shape, dev)?,
        mask: if with_mask {
            Some(Tensor::from_vec(mask, shape, dev)?)
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize) -> Vec<PairFiles> {
        (0..n)
            .map(|i| PairFiles {
                stem: format!("{i:03}"),
                ir: PathBuf::from(format!("ir/{i:03}.png")),
                vis: PathBuf::from(format!("vi/{i:03}.png")),
                mask: None,
            })
            .collect()
    }

    #[test]
    fn holdout_is_disjoint_deterministic_and_refuses_to_take_everything() {
        let (train, val) = holdout(files(20), 4).unwrap();
        assert_eq!((train.len(), val.len()), (16, 4));
        assert!(val.iter().all(|v| !train.contains(v)));
        assert_eq!(holdout(files(20), 4).unwrap().1, val);
        assert!(holdout(files(3), 3).is_err());
    }

    #[test]
    fn a_restored_rng_continues_the_same_stream() {
        let mut a = DataRng::new(7);
        for _ in 0..100 {
            a.below(13);
        }
        let mut b = DataRng::restore(7, a.draws());
        for _ in 0..50 {
            assert_eq!(a.below(1000), b.below(1000));
        }
    }

    #[test]
    fn crops_move_every_plane_together() {
        // vis = ir = mask = the pixel index: after any rotation/flip they must stay equal.
        let (w, h) = (9, 7);
        let plane: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
        let pairs = vec![Pair {
            name: "a".into(),
            width: w,
            height: h,
            ir: plane.clone(),
            vis: plane.clone(),
            mask: Some(plane),
        }];
        let mut rng = DataRng::new(1);
        let b = random_batch(&pairs, 6, 5, &mut rng, &Device::Cpu).unwrap();
        let v: Vec<f32> = b.vis.flatten_all().unwrap().to_vec1().unwrap();
        let r: Vec<f32> = b.ir.flatten_all().unwrap().to_vec1().unwrap();
        let m: Vec<f32> = b.mask.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, r);
        assert_eq!(v, m);
    }
}
