//! Pan-sharpening training ([`TrainData`] for `Task::Pan`) by Wald's protocol: each scene's
//! MS is degraded by the model's ratio and its PAN by the data's PAN/MS ratio with the
//! MTF-matched filters of `ship-edge eval --protocol reduced` ([`wald::degrade_ms`],
//! [`wald::degrade_pan`]), and the network learns to restore the original MS. A ratio-4 model
//! trains on ratio-2 data this way (MS degraded by 4, PAN by 2).
//!
//! Samples are DN / the MS file's largest DN, as `ship-edge`'s `PanModel` feeds them; the MS
//! is upsampled with [`upsample_linear`], the twin of the exported graph's `Resize`. Loss: L1
//! against the original MS (SHIP_NETWORK.md §5.2). Validation scores the reduced-resolution
//! metrics of `eval` on the rounded output against GSA and MTF-GLP on the same degraded pair.
//!
//! Augmentation is a random transpose only. Wald's decimation keeps sample ⌊r/2⌋ of each
//! group, so the degraded MS and PAN sit a fixed fraction of a pixel down and right of the
//! upsampler's pixel-area grid; a flip or a 90° turn would reverse that offset and teach the
//! network two contradicting shifts. A transpose keeps it (the offset is the same on both axes).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{Device, Tensor};
use ndarray::Axis;

use ship_edge::baselines::pan::{PanMethod, pansharpen};
use ship_edge::dsp::{Cube, Image};
use ship_edge::eval::pairs::{Pair as FilePair, pair_dirs};
use ship_edge::eval::pan::Protocol;
use ship_edge::imaging::bands::select_bands;
use ship_edge::imaging::multiband::{load_cube, max_dn, quantize_sample, storage_bits};
use ship_edge::imaging::{Limits, Planes};
use ship_edge::metrics::pan::{self as metrics, ReducedOptions};
use ship_edge::pansharpen::tiles;
use ship_edge::pansharpen::upsample::upsample_linear;
use ship_edge::pansharpen::{Sensor, wald};

use super::TrainOptions;
use super::data::{self, DataRng};
use super::plots;
use super::qnr_loss;
use super::task::{self, Batch, TrainData};
use super::validate::{BaselineSummary, ValMetric, Validation};
use crate::nets::Ship;

/// The baselines the model is ranked against (the bar: GSA and MTF-GLP).
pub const BASELINES: [PanMethod; 2] = [PanMethod::Gsa, PanMethod::MtfGlp];

/// Sub-folders of a pan-sharpening data folder.
const MS_DIR: &str = "ms";
const PAN_DIR: &str = "pan";

/// One training scene at output resolution, samples in `[0,1]`.
#[derive(Debug, Clone)]
struct Scene {
    name: String,
    width: usize,
    height: usize,
    /// Degraded MS upsampled back by the ratio, `[bands, height, width]`.
    ms_up: Vec<f32>,
    /// Degraded PAN, `height` x `width`.
    pan: Vec<f32>,
    /// The original MS, `[bands, height, width]`.
    target: Vec<f32>,
}

/// A scene at its original resolution, for the full-resolution loss term: PAN size, samples
/// in `[0,1]`.
#[derive(Debug, Clone)]
struct FullScene {
    width: usize,
    height: usize,
    /// The original MS upsampled by the ratio (the network's main input), `[bands, h, w]`.
    ms_up: Vec<f32>,
    /// The original PAN.
    pan: Vec<f32>,
    /// M̃ and P̃ of the full-resolution indices ([`metrics::qnr_references`]).
    ms_ref: Vec<f32>,
    pan_ref: Vec<f32>,
}

/// The full-resolution term of the loss: its weight and the training scenes in that form.
#[derive(Debug)]
struct FullRes {
    weight: f64,
    scenes: Vec<FullScene>,
}

/// A validation scene: the training form plus what scoring and the contact sheet need.
#[derive(Debug, Clone)]
struct ValScene {
    scene: Scene,
    /// Original MS (DN): the reference.
    ms: Cube,
    /// Original PAN (DN): the full-resolution validation fuses it with `ms`.
    pan: Image,
    /// The degraded pair the baselines fuse (DN).
    ms_lr: Cube,
    pan_lr: Image,
    /// Bits the outputs are stored at (as `ship-edge pansharpen` stores them).
    bits: u8,
    /// Per-band display range of the reference (1st and 99th percentile), RGB bands.
    stretch: Vec<(f64, f64)>,
}

/// Decoded pan-sharpening scenes.
#[derive(Debug)]
pub struct PanData {
    train: Vec<Scene>,
    val: Vec<ValScene>,
    bands: usize,
    ratio: usize,
    /// MS frame size of the training crops: validation runs the network in tiles of it, as
    /// `ship-edge` runs the exported model (its `tile` metadata).
    tile: usize,
    sensor: Sensor,
    /// With `--full-res-weight`.
    full: Option<FullRes>,
    metrics: Vec<ValMetric>,
}

/// `DIR/ms/NAME.tif` + `DIR/pan/NAME.tif` by stem.
fn list_scenes(dir: &Path) -> anyhow::Result<Vec<FilePair>> {
    for sub in [MS_DIR, PAN_DIR] {
        let d = dir.join(sub);
        if !d.is_dir() {
            bail!(
                "{}: missing; a pan-sharpening data folder holds ms/ (multiband TIFF) and pan/ \
                 (one band) with images matched by file name",
                d.display()
            );
        }
    }
    Ok(pair_dirs(&[&dir.join(MS_DIR), &dir.join(PAN_DIR)])?)
}

fn to_unit(values: impl Iterator<Item = f64>, max: f64) -> Vec<f32> {
    values.map(|v| (v / max) as f32).collect()
}

/// The 1st and 99th percentiles of `values` (the display range), never empty.
fn percentile_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.01), at(0.99));
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// Planes from `[bands, h, w]` DN: bands 0, 1, 2 as R, G, B (Landsat order in the data
/// README), each stretched by `stretch`; one band shows grey.
fn display(cube: &Cube, stretch: &[(f64, f64)]) -> Planes {
    let (bands, h, w) = cube.dim();
    let plane = |b: usize| -> Vec<f32> {
        let (lo, hi) = stretch[b.min(stretch.len() - 1)];
        cube.index_axis(Axis(0), b)
            .iter()
            .map(|&v| ((v - lo) / (hi - lo)).clamp(0.0, 1.0) as f32)
            .collect()
    };
    if bands >= 3 {
        Planes::rgb(w, h, [plane(0), plane(1), plane(2)])
    } else {
        Planes::gray(w, h, plane(0))
    }
}

impl PanData {
    /// Lists, splits and degrades the scenes of `opts` for a `bands`-band, ratio-`ratio` model.
    pub fn open(opts: &TrainOptions, bands: usize, ratio: usize) -> anyhow::Result<Self> {
        let sensor_name = opts.sensor.as_deref().unwrap_or(DEFAULT_SENSOR);
        let sensor = Sensor::from_name(sensor_name).with_context(|| {
            format!("--sensor {sensor_name}: unknown (qb, ikonos, geoeye1, wv2, wv3, wv4, gf2, landsat7, other)")
        })?;
        let min_tile = 2 * tiles::MIN_OVERLAP + 1;
        if opts.crop < min_tile * ratio {
            bail!(
                "--crop {} is below {} PAN pixels: the exported model runs in tiles of crop / \
                 ratio MS pixels, and a tile needs at least {min_tile}",
                opts.crop,
                min_tile * ratio
            );
        }
        let with_full = opts.full_res_weight.is_some();
        if with_full && !opts.crop.is_multiple_of(qnr_loss::BLOCK) {
            bail!(
                "--crop {} with --full-res-weight: the full-resolution indices compare {b}x{b} \
                 blocks, so the crop must be a multiple of {b}",
                opts.crop,
                b = qnr_loss::BLOCK
            );
        }
        let (train_files, val_files) = data::split(opts, list_scenes)?;
        let pick = opts.bands.as_deref();
        let load = |p: &FilePair| load_scene(p, pick, bands, ratio, opts.crop, &sensor, with_full);
        let mut train = Vec::new();
        let mut full_scenes = Vec::new();
        for p in &train_files {
            let v = load(p)?;
            if with_full {
                full_scenes.push(
                    full_scene(&v.ms, &v.pan, ratio, max_dn(v.bits)).with_context(|| {
                        format!("full-resolution references of {}", p.files[0].display())
                    })?,
                );
            }
            train.push(v.scene);
        }
        let val = val_files.iter().map(load).collect::<anyhow::Result<_>>()?;
        let protocols: &[Protocol] = if with_full {
            &[Protocol::Reduced, Protocol::Full]
        } else {
            &[Protocol::Reduced]
        };
        Ok(Self {
            train,
            val,
            bands,
            ratio,
            tile: opts.crop / ratio,
            sensor,
            full: opts.full_res_weight.map(|weight| FullRes {
                weight,
                scenes: full_scenes,
            }),
            metrics: protocols
                .iter()
                .flat_map(|p| p.metrics())
                .map(|m| ValMetric {
                    name: m.name().to_string(),
                    better: m.better(),
                })
                .collect(),
        })
    }
}

/// The sensor whose MTF the degradation matches when the run names none.
pub const DEFAULT_SENSOR: &str = "landsat7";

fn load_scene(
    files: &FilePair,
    pick: Option<&[usize]>,
    bands: usize,
    ratio: usize,
    crop: usize,
    sensor: &Sensor,
    with_full: bool,
) -> anyhow::Result<ValScene> {
    let (ms_path, pan_path): (&PathBuf, &PathBuf) = (&files.files[0], &files.files[1]);
    let limits = Limits::default();
    let mut ms = load_cube(ms_path, &limits).with_context(|| format!("{}", ms_path.display()))?;
    if let Some(list) = pick {
        ms = select_bands(&ms, list).with_context(|| format!("{}: --bands", ms_path.display()))?;
    }
    let pan = load_cube(pan_path, &limits).with_context(|| format!("{}", pan_path.display()))?;
    let (b, h, w) = ms.dim();
    if b != bands {
        bail!(
            "{}: {b} bands{}, the preset's network takes {bands} (pick bands with --bands)",
            ms_path.display(),
            if pick.is_some() { " selected" } else { "" }
        );
    }
    if pan.dim().0 != 1 {
        bail!(
            "{}: {} bands, a panchromatic image has 1",
            pan_path.display(),
            pan.dim().0
        );
    }
    let pan = pan.index_axis_move(Axis(0), 0);
    let (ph, pw) = pan.dim();
    let pan_ratio = ph / h.max(1);
    if pan_ratio < 2 || (ph, pw) != (h * pan_ratio, w * pan_ratio) {
        bail!(
            "{}: {pw}x{ph} is not an integer multiple (>= 2) of the MS size {w}x{h} of {}",
            pan_path.display(),
            ms_path.display()
        );
    }
    if !h.is_multiple_of(ratio) || !w.is_multiple_of(ratio) || h.min(w) < crop {
        bail!(
            "{}: {w}x{h} must be at least the {crop}x{crop} crop with sides that are multiples \
             of the ratio {ratio}",
            ms_path.display()
        );
    }
    if with_full && pan_ratio != ratio {
        bail!(
            "{}: PAN/MS ratio {pan_ratio}, the model's is {ratio}: --full-res-weight fuses the \
             original pair, so the two must match",
            pan_path.display()
        );
    }
    let bits = storage_bits(&ms);
    let max = max_dn(bits);
    let ms_lr = wald::degrade_ms(&ms, ratio, sensor);
    let pan_lr = wald::degrade_pan(&pan, pan_ratio, sensor);
    let ms_up = upsample_unit(&ms_lr, ratio, max);
    let stretch = (0..b.min(3))
        .map(|k| percentile_range(ms.index_axis(Axis(0), k).iter().copied()))
        .collect();
    Ok(ValScene {
        scene: Scene {
            name: files.stem.clone(),
            width: w,
            height: h,
            ms_up,
            pan: to_unit(pan_lr.iter().copied(), max),
            target: to_unit(ms.iter().copied(), max),
        },
        ms,
        pan,
        ms_lr,
        pan_lr,
        bits,
        stretch,
    })
}

/// Each band of `ms` (DN) at unit scale, upsampled by `ratio` as the exported graph does.
fn upsample_unit(ms: &Cube, ratio: usize, max: f64) -> Vec<f32> {
    let (b, h, w) = ms.dim();
    let mut up = Vec::with_capacity(b * h * w * ratio * ratio);
    for band in ms.outer_iter() {
        up.extend(upsample_linear(
            &to_unit(band.iter().copied(), max),
            w,
            h,
            ratio,
        ));
    }
    up
}

/// The original pair in the full-resolution loss's form.
fn full_scene(ms: &Cube, pan: &Image, ratio: usize, max: f64) -> anyhow::Result<FullScene> {
    let (ms_ref, pan_ref) = metrics::qnr_references(ms, pan, ratio)?;
    let (height, width) = pan.dim();
    Ok(FullScene {
        width,
        height,
        ms_up: upsample_unit(ms, ratio, max),
        pan: to_unit(pan.iter().copied(), max),
        ms_ref: to_unit(ms_ref.iter().copied(), max),
        pan_ref: to_unit(pan_ref.iter().copied(), max),
    })
}

/// A random `crop` x `crop` window of a `width` x `height` scene: its top-left corner and
/// whether to transpose it (the only augmentation, see the module docs).
fn draw_crop(
    rng: &mut DataRng,
    width: usize,
    height: usize,
    crop: usize,
) -> ((usize, usize), bool) {
    let at = (rng.below(width - crop + 1), rng.below(height - crop + 1));
    (at, rng.below(2) == 1)
}

/// Appends the `crop` x `crop` window at (`x0`, `y0`) of each `width`-wide plane of `src`
/// to `dst`, transposed if asked.
fn crop_planes(
    src: &[f32],
    width: usize,
    height: usize,
    (x0, y0): (usize, usize),
    crop: usize,
    transpose: bool,
    dst: &mut Vec<f32>,
) {
    for plane in src.chunks_exact(width * height) {
        for y in 0..crop {
            for x in 0..crop {
                let (sx, sy) = if transpose { (y, x) } else { (x, y) };
                dst.push(plane[(y0 + sy) * width + x0 + sx]);
            }
        }
    }
}

impl PanData {
    /// The network on the pair `ms`, `pan` (DN) as `ship-edge` runs the exported model: MS
    /// tiles of [`PanData::tile`] pixels, each upsampled on its own, blended with the runtime's
    /// ramps ([`tiles`]). `[bands, r·h, r·w]` at unit scale, unclamped.
    fn forward_tiled(
        &self,
        net: &Ship,
        (ms, pan): (&Cube, &Image),
        bits: u8,
        dev: &Device,
    ) -> anyhow::Result<Vec<f32>> {
        let (r, nb) = (self.ratio, self.bands);
        let (lh, lw) = (ms.dim().1, ms.dim().2);
        let max = max_dn(bits);
        let overlap = tiles::default_overlap(self.tile);
        let mut blend = tiles::Blend::new(nb, (lh, lw), r, overlap);
        for ys in &tiles::spans(lh, self.tile, overlap) {
            for xs in &tiles::spans(lw, self.tile, overlap) {
                let (th, tw) = (ys.len(), xs.len());
                let mut up = Vec::with_capacity(nb * th * tw * r * r);
                for band in ms.outer_iter() {
                    let tile = band.slice(ndarray::s![ys.clone(), xs.clone()]);
                    up.extend(upsample_linear(
                        &to_unit(tile.iter().copied(), max),
                        tw,
                        th,
                        r,
                    ));
                }
                let pan_tile = pan.slice(ndarray::s![
                    ys.start * r..ys.end * r,
                    xs.start * r..xs.end * r
                ]);
                let pan = to_unit(pan_tile.iter().copied(), max);
                let out = net.forward(
                    &Tensor::from_vec(up, (1, nb, th * r, tw * r), dev)?,
                    &Tensor::from_vec(pan, (1, 1, th * r, tw * r), dev)?,
                )?;
                let out: Vec<f32> = out.flatten_all()?.to_device(&Device::Cpu)?.to_vec1()?;
                let (oh, ow) = (th * r, tw * r);
                blend.add(ys, xs, |b, i, j| f64::from(out[(b * oh + i) * ow + j]));
            }
        }
        Ok(blend.finish().into_iter().map(|v| v as f32).collect())
    }

    /// The network's reduced-resolution (and with the full-resolution term, full-resolution)
    /// output of `v`: unit-scale samples at reference size, and the scores.
    fn fuse_and_score(
        &self,
        net: &Ship,
        v: &ValScene,
        dev: &Device,
    ) -> anyhow::Result<(Vec<f32>, Cube, Vec<f64>)> {
        let max = max_dn(v.bits);
        let to_cube = |out: &[f32], h: usize, w: usize| {
            Cube::from_shape_vec(
                (self.bands, h, w),
                out.iter()
                    .map(|&x| quantize_sample((f64::from(x) * max).clamp(0.0, max), v.bits))
                    .collect(),
            )
        };
        let s = &v.scene;
        let out = self.forward_tiled(net, (&v.ms_lr, &v.pan_lr), v.bits, dev)?;
        let cube = to_cube(&out, s.height, s.width)?;
        let mut scores = self.score(&cube, v)?;
        if self.full.is_some() {
            let (h, w) = v.pan.dim();
            let sharp = self.forward_tiled(net, (&v.ms, &v.pan), v.bits, dev)?;
            scores.extend(self.score_full(&to_cube(&sharp, h, w)?, v)?);
        }
        Ok((out, cube, scores))
    }

    /// D_λ, D_s and QNR of `sharp`, a fusion of the original pair of `v`.
    fn score_full(&self, sharp: &Cube, v: &ValScene) -> anyhow::Result<Vec<f64>> {
        let values = metrics::full(sharp, &v.ms, &v.pan, self.ratio, &self.sensor)
            .with_context(|| format!("full-resolution scores of `{}`", v.scene.name))?;
        Ok(Protocol::Full.in_order(&values))
    }

    /// The reduced-resolution metrics of `out` against the scene's original MS.
    fn score(&self, out: &Cube, v: &ValScene) -> anyhow::Result<Vec<f64>> {
        let opts = ReducedOptions {
            ratio: self.ratio,
            peak: max_dn(v.bits),
            ..ReducedOptions::default()
        };
        let values = metrics::reduced(out, &v.ms, &opts)
            .with_context(|| format!("scoring validation scene `{}`", v.scene.name))?;
        Ok(Protocol::Reduced.in_order(&values))
    }

    /// A batch of the full-resolution term: `(ms_up, pan, ms_ref, pan_ref)` crops.
    fn full_batch(
        &self,
        full: &FullRes,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<[Tensor; 4]> {
        let nb = self.bands;
        let mut bufs: [Vec<f32>; 4] = Default::default();
        for _ in 0..batch {
            let s = &full.scenes[rng.below(full.scenes.len())];
            let (at, transpose) = draw_crop(rng, s.width, s.height, crop);
            for (src, dst) in [&s.ms_up, &s.pan, &s.ms_ref, &s.pan_ref]
                .into_iter()
                .zip(bufs.iter_mut())
            {
                crop_planes(src, s.width, s.height, at, crop, transpose, dst);
            }
        }
        let [ms_up, pan, ms_ref, pan_ref] = bufs;
        let t = |v: Vec<f32>, c: usize| Tensor::from_vec(v, (batch, c, crop, crop), dev);
        Ok([t(ms_up, nb)?, t(pan, 1)?, t(ms_ref, nb)?, t(pan_ref, 1)?])
    }
}

impl TrainData for PanData {
    fn metrics(&self) -> &[ValMetric] {
        &self.metrics
    }

    fn train_stems(&self) -> Vec<String> {
        self.train.iter().map(|s| s.name.clone()).collect()
    }

    fn val_stems(&self) -> Vec<String> {
        self.val.iter().map(|s| s.scene.name.clone()).collect()
    }

    fn batch(
        &self,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<Batch> {
        let nb = self.bands;
        let plane = crop * crop;
        let mut main = Vec::with_capacity(batch * nb * plane);
        let mut target = Vec::with_capacity(batch * nb * plane);
        let mut pan = Vec::with_capacity(batch * plane);
        for _ in 0..batch {
            let s = &self.train[rng.below(self.train.len())];
            let (at, transpose) = draw_crop(rng, s.width, s.height, crop);
            let (w, h) = (s.width, s.height);
            crop_planes(&s.ms_up, w, h, at, crop, transpose, &mut main);
            crop_planes(&s.target, w, h, at, crop, transpose, &mut target);
            crop_planes(&s.pan, w, h, at, crop, transpose, &mut pan);
        }
        Ok(Batch {
            main: Tensor::from_vec(main, (batch, nb, crop, crop), dev)?,
            modulator: Tensor::from_vec(pan, (batch, 1, crop, crop), dev)?,
            target: Some(Tensor::from_vec(target, (batch, nb, crop, crop), dev)?),
            mask: None,
        })
    }

    fn loss(&self, out: &Tensor, b: &Batch) -> anyhow::Result<Tensor> {
        let target = b.target.as_ref().context("a pan batch has its target")?;
        Ok((out - target)?.abs()?.mean_all()?)
    }

    /// L1 at reduced resolution, plus with `--full-res-weight` w: w·(D_λ + D_s) of the network
    /// on as many crops of the original pairs.
    fn objective(
        &self,
        net: &Ship,
        batch: usize,
        crop: usize,
        rng: &mut DataRng,
        dev: &Device,
    ) -> anyhow::Result<Tensor> {
        let l1 = task::batch_loss(self, net, batch, crop, rng, dev)?;
        let Some(full) = &self.full else {
            return Ok(l1);
        };
        let [ms_up, pan, ms_ref, pan_ref] = self.full_batch(full, batch, crop, rng, dev)?;
        let sharp = net.forward(&ms_up, &pan)?;
        let block = qnr_loss::BLOCK;
        let distortion = (qnr_loss::d_lambda(&sharp, &ms_ref, block)?
            + qnr_loss::d_s(&sharp, &ms_ref, &pan, &pan_ref, block)?)?;
        Ok((l1 + (distortion * full.weight)?)?)
    }

    fn baselines(&self) -> anyhow::Result<Option<BaselineSummary>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let mut scored = Vec::new();
        for m in BASELINES {
            let (mut rows, mut shown) = (Vec::new(), Vec::new());
            for v in &self.val {
                let fuse = |ms: &Cube, pan: &Image| -> anyhow::Result<Cube> {
                    Ok(pansharpen(m, ms, pan, self.ratio, &self.sensor)
                        .with_context(|| format!("baseline {} on `{}`", m.name(), v.scene.name))?
                        .mapv(|x| quantize_sample(x, v.bits)))
                };
                let out = fuse(&v.ms_lr, &v.pan_lr)?;
                let mut row = self.score(&out, v)?;
                if self.full.is_some() {
                    row.extend(self.score_full(&fuse(&v.ms, &v.pan)?, v)?);
                }
                rows.push(row);
                shown.push(display(&out, &v.stretch));
            }
            scored.push((m.name().to_string(), rows, shown));
        }
        Ok(Some(BaselineSummary::rank(&self.metrics, scored)))
    }

    fn validate(&self, net: &Ship, dev: &Device) -> anyhow::Result<Validation> {
        let mut items = Vec::with_capacity(self.val.len());
        for v in &self.val {
            let s = &v.scene;
            let (out, cube, scores) = self
                .fuse_and_score(net, v, dev)
                .with_context(|| format!("network on validation scene `{}`", s.name))?;
            let l1 = out
                .iter()
                .zip(&s.target)
                .map(|(a, b)| f64::from((a - b).abs()))
                .sum::<f64>()
                / out.len() as f64;
            items.push((l1, scores, display(&cube, &v.stretch)));
        }
        Ok(Validation::from_items(items))
    }

    fn contact(
        &self,
        path: &Path,
        b: &BaselineSummary,
        ours: &[Planes],
        ours_label: &str,
    ) -> anyhow::Result<()> {
        // Owned inputs first: the rows borrow them.
        let inputs: Vec<(Planes, Planes, Planes)> = self
            .val
            .iter()
            .map(|v| {
                let s = &v.scene;
                let max = max_dn(v.bits);
                let pan_dn = Image::from_shape_fn((s.height, s.width), |(y, x)| {
                    f64::from(s.pan[y * s.width + x]) * max
                });
                let pan_range = percentile_range(pan_dn.iter().copied());
                let up = Cube::from_shape_fn((self.bands, s.height, s.width), |(k, y, x)| {
                    f64::from(s.ms_up[(k * s.height + y) * s.width + x]) * max
                });
                let pan_cube = pan_dn.insert_axis(Axis(0));
                (
                    display(&pan_cube, &[pan_range]),
                    display(&up, &v.stretch),
                    display(&v.ms, &v.stretch),
                )
            })
            .collect();
        let rows: Vec<plots::ContactRow<'_>> = self
            .val
            .iter()
            .zip(&inputs)
            .zip(b.best_shown.iter().zip(ours))
            .map(
                |((v, (pan, up, reference)), (base, ours))| plots::ContactRow {
                    name: &v.scene.name,
                    images: vec![pan, up, base, ours, reference],
                },
            )
            .collect();
        // Short labels: a column is one 128-pixel thumbnail wide.
        let labels = [
            "PAN".to_string(),
            "MS up".to_string(),
            b.best.clone(),
            ours_label.to_string(),
            "reference".to_string(),
        ];
        plots::contact_png(path, &labels, &rows)
    }
}
