//! An ONNX model bound to the pan-sharpening contract: `ms` `[1,B,h,w]` and `pan`
//! `[1,1,r·h,r·w]` in, `fused` `[1,B,r·h,r·w]` out, `bands` = B and `scale_ratio` = r in its
//! metadata. The graph upsamples the MS itself.

use std::path::Path;

use tract_linalg::multithread::{Executor, multithread_tract_scope};
use tract_onnx::prelude::*;

use super::contract::Task;
use super::info::{Dim, ModelInfo, read_proto};
use super::meta::{BANDS, INPUT_MS as MS, INPUT_PAN as PAN, OUTPUT as FUSED, SCALE_RATIO, TILE};
use super::plan::PlanCache;
use super::{Model, ModelError};
use crate::dsp::{Cube, Image};

/// The contract in words, for error messages.
fn contract() -> String {
    format!(
        "a pan-sharpening model takes inputs `{MS}` f32 [1,B,h,w] and `{PAN}` f32 [1,1,r*h,r*w] and gives `{FUSED}` f32 [1,B,r*h,r*w]"
    )
}

/// A model checked against the pan-sharpening contract. Plans are cached per MS size.
#[derive(Debug)]
pub struct PanModel {
    model: Model,
    ms_ix: usize,
    pan_ix: usize,
    fused_ix: usize,
    bands: usize,
    ratio: usize,
    tile: Option<usize>,
    plans: PlanCache,
    executor: Executor,
    /// Worker threads of `executor` (1: the calling thread): tiled runs spread tiles over them.
    threads: usize,
}

impl PanModel {
    /// Runs tract's kernels on `threads` worker threads (1 or 0: the calling thread only, the
    /// default of [`load`](PanModel::load)).
    pub fn with_threads(mut self, threads: usize) -> PanModel {
        self.threads = threads.max(1);
        self.executor = if threads > 1 {
            Executor::multithread_with_name(threads, "ship-edge-pan")
        } else {
            Executor::SingleThread
        };
        self
    }

    /// Loads the model at `path` and checks the contract: `task = pansharpen`, `bands` and
    /// `scale_ratio` metadata (>= 1 and >= 2) that agree with the declared input shapes, inputs
    /// `ms` and `pan`, output `fused`.
    pub fn load(path: &Path) -> Result<PanModel, ModelError> {
        let proto = read_proto(path)?;
        let info = ModelInfo::from_proto(path, &proto);
        info.check_task(Task::Pansharpen)?;
        let number = |key: &'static str, min: usize, expected: &'static str| {
            let found = info.metadata_value(key);
            found
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|&v| v >= min)
                .ok_or_else(|| ModelError::BadMetadata {
                    path: path.to_path_buf(),
                    key,
                    found: found.map_or("missing".into(), |v| format!("`{v}`")),
                    expected,
                })
        };
        let bands = number(BANDS, 1, "the number of MS bands (>= 1)")?;
        let ratio = number(SCALE_RATIO, 2, "the PAN/MS size ratio (>= 2)")?;
        let min_tile = 2 * crate::pansharpen::tiles::MIN_OVERLAP + 1;
        let tile = match info.metadata_value(TILE) {
            None => None,
            Some(_) => Some(number(
                TILE,
                min_tile,
                "the MS frame size the network was trained on (>= 7 pixels)",
            )?),
        };
        check_declared(&info, bands)?;
        let model = Model::parse(info, &proto)?;
        drop(proto);

        let graph = model.graph();
        let load_err = |e: TractError| ModelError::Load {
            path: path.to_path_buf(),
            source: e.into(),
        };
        let names: Vec<String> = graph
            .input_outlets()
            .map_err(load_err)?
            .iter()
            .map(|o| graph.node(o.node).name.clone())
            .collect();
        let missing = |kind, name, found: Vec<String>| ModelError::MissingTensor {
            path: path.to_path_buf(),
            kind,
            name,
            found,
            contract: contract(),
        };
        let index = |name: &'static str| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| missing("input", name, names.clone()))
        };
        let (ms_ix, pan_ix) = (index(MS)?, index(PAN)?);
        if let Some(extra) = names.iter().find(|n| *n != MS && *n != PAN) {
            return Err(ModelError::UnexpectedInput {
                path: path.to_path_buf(),
                name: extra.clone(),
                contract: contract(),
            });
        }
        let outputs: Vec<String> = model
            .info()
            .outputs
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let fused_ix = outputs
            .iter()
            .position(|n| n == FUSED)
            .ok_or_else(|| missing("output", FUSED, outputs.clone()))?;
        Ok(PanModel {
            model,
            ms_ix,
            pan_ix,
            fused_ix,
            bands,
            ratio,
            tile,
            plans: PlanCache::default(),
            executor: Executor::SingleThread,
            threads: 1,
        })
    }

    /// What the file declares.
    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        self.model.path()
    }

    /// MS bands in and out.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// PAN / MS size ratio.
    pub fn ratio(&self) -> usize {
        self.ratio
    }

    /// The MS frame size the network was trained on (metadata `tile`), if the model says.
    pub fn tile(&self) -> Option<usize> {
        self.tile
    }

    /// Pan-sharpens as the model is meant to run: in tiles of its [`tile`](PanModel::tile)
    /// with [`default_overlap`](crate::pansharpen::tiles::default_overlap) when it has one,
    /// else the whole scene at once.
    pub fn sharpen_native(&self, ms: &Cube, pan: &Image, max_dn: f64) -> Result<Cube, ModelError> {
        match self.tile {
            Some(t) => {
                let overlap = crate::pansharpen::tiles::default_overlap(t);
                self.sharpen_tiled(ms, pan, max_dn, t, overlap)
            }
            None => self.sharpen(ms, pan, max_dn),
        }
    }

    /// Checks an MS of `bands` x `w` x `h` and a PAN of `pw` x `ph` against the model.
    pub fn check_inputs(
        &self,
        bands: usize,
        (w, h): (usize, usize),
        (pw, ph): (usize, usize),
    ) -> Result<(), ModelError> {
        let mismatch = |reason: String| ModelError::Mismatch {
            path: self.path().to_path_buf(),
            reason,
        };
        if bands != self.bands {
            return Err(mismatch(format!(
                "the model takes {} MS bands, the image has {bands}",
                self.bands
            )));
        }
        if (pw, ph) != (w * self.ratio, h * self.ratio) {
            return Err(mismatch(format!(
                "the model's PAN/MS ratio is {}: a {w}x{h} MS needs a {}x{} PAN, not {pw}x{ph}",
                self.ratio,
                w * self.ratio,
                h * self.ratio
            )));
        }
        Ok(())
    }

    /// Pan-sharpens one pair: `ms` is `bands` planes of `w * h` (band-major, `[0, 1]`), `pan`
    /// one plane of `(r·w) * (r·h)`. Returns `bands` planes at PAN size, raw (not clamped).
    pub fn run(&self, ms: &[f32], pan: &[f32], w: usize, h: usize) -> Result<Vec<f32>, ModelError> {
        self.run_on(&self.executor, ms, pan, w, h)
    }

    /// [`run`](PanModel::run) on `executor`.
    fn run_on(
        &self,
        executor: &Executor,
        ms: &[f32],
        pan: &[f32],
        w: usize,
        h: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let (r, b) = (self.ratio, self.bands);
        let (pw, ph) = (w * r, h * r);
        if ms.len() != b * w * h || pan.len() != pw * ph {
            return Err(ModelError::Mismatch {
                path: self.path().to_path_buf(),
                reason: format!(
                    "buffers of {} MS and {} PAN samples for {b} bands of {w}x{h} at ratio {r}",
                    ms.len(),
                    pan.len()
                ),
            });
        }
        let plan = self.plan(w, h)?;
        let run_err = |e: TractError| ModelError::Run {
            path: self.path().to_path_buf(),
            source: e.into(),
        };
        let mut slots: [Option<TValue>; 2] = [None, None];
        slots[self.ms_ix] = Some(
            Tensor::from_shape(&[1, b, h, w], ms)
                .map_err(run_err)?
                .into_tvalue(),
        );
        slots[self.pan_ix] = Some(
            Tensor::from_shape(&[1, 1, ph, pw], pan)
                .map_err(run_err)?
                .into_tvalue(),
        );
        let inputs = slots.into_iter().flatten().collect();
        let outputs =
            multithread_tract_scope(executor.clone(), || plan.run(inputs)).map_err(run_err)?;
        let shape = [1, b, ph, pw];
        let fused = outputs
            .get(self.fused_ix)
            .ok_or_else(|| ModelError::BadOutput {
                path: self.path().to_path_buf(),
                name: FUSED,
                found: "missing".into(),
                expected: shape.to_vec(),
            })?;
        if fused.shape() != &shape[..] || fused.datum_type() != f32::datum_type() {
            return Err(ModelError::BadOutput {
                path: self.path().to_path_buf(),
                name: FUSED,
                found: format!("{:?} {:?}", fused.datum_type(), fused.shape()),
                expected: shape.to_vec(),
            });
        }
        Ok(fused
            .to_plain_array_view::<f32>()
            .map_err(run_err)?
            .iter()
            .copied()
            .collect())
    }

    /// Pan-sharpens cubes of digital numbers: inputs scaled by `1 / max_dn` into `[0, 1]`
    /// (255 for 8-bit data), the output scaled back and clamped to `[0, max_dn]`.
    pub fn sharpen(&self, ms: &Cube, pan: &Image, max_dn: f64) -> Result<Cube, ModelError> {
        self.sharpen_on(&self.executor, ms, pan, max_dn)
    }

    /// [`sharpen`](PanModel::sharpen) on `executor`.
    fn sharpen_on(
        &self,
        executor: &Executor,
        ms: &Cube,
        pan: &Image,
        max_dn: f64,
    ) -> Result<Cube, ModelError> {
        let (b, h, w) = ms.dim();
        let (ph, pw) = pan.dim();
        self.check_inputs(b, (w, h), (pw, ph))?;
        let scale = |v: &f64| (v / max_dn) as f32;
        let ms_planes: Vec<f32> = ms.iter().map(scale).collect();
        let pan_plane: Vec<f32> = pan.iter().map(scale).collect();
        let out = self.run_on(executor, &ms_planes, &pan_plane, w, h)?;
        Ok(Cube::from_shape_vec(
            (b, ph, pw),
            out.iter()
                .map(|&v| (f64::from(v) * max_dn).clamp(0.0, max_dn))
                .collect(),
        )
        .expect("the output has the checked shape"))
    }

    /// [`sharpen`](PanModel::sharpen) in overlapping tiles of `tile` x `tile` MS pixels (the tiles
    /// of a row run in parallel, one per worker thread),
    /// blended across `overlap` MS pixels ([`crate::pansharpen::tiles`]): bounded memory for
    /// any scene size. A scene no larger than one tile is run whole.
    pub fn sharpen_tiled(
        &self,
        ms: &Cube,
        pan: &Image,
        max_dn: f64,
        tile: usize,
        overlap: usize,
    ) -> Result<Cube, ModelError> {
        use crate::pansharpen::tiles::{Blend, MIN_OVERLAP, spans};
        use ndarray::s;

        let (b, h, w) = ms.dim();
        let (ph, pw) = pan.dim();
        self.check_inputs(b, (w, h), (pw, ph))?;
        if h <= tile && w <= tile {
            return self.sharpen(ms, pan, max_dn);
        }
        if overlap < MIN_OVERLAP || 2 * overlap >= tile {
            return Err(ModelError::Mismatch {
                path: self.path().to_path_buf(),
                reason: format!(
                    "tiles of {tile} MS pixels need an overlap of {MIN_OVERLAP} to {} pixels, not {overlap}",
                    tile.div_ceil(2) - 1
                ),
            });
        }
        let r = self.ratio;
        let mut blend = Blend::new(b, (h, w), r, overlap);
        let (rows, cols) = (spans(h, tile, overlap), spans(w, tile, overlap));
        let run_tile = |ys: &std::ops::Range<usize>, xs: &std::ops::Range<usize>, ex: &Executor| {
            let ms_tile = ms.slice(s![.., ys.clone(), xs.clone()]).to_owned();
            let pan_tile = pan
                .slice(s![ys.start * r..ys.end * r, xs.start * r..xs.end * r])
                .to_owned();
            self.sharpen_on(ex, &ms_tile, &pan_tile, max_dn)
        };
        for ys in &rows {
            // Tiles of one row in parallel, one tile per worker on its own thread: a small
            // tile keeps tract's pool busy for too short a time to gain from it.
            let outs: Vec<Result<Cube, ModelError>> = if self.threads > 1 && cols.len() > 1 {
                let per = cols.len().div_ceil(self.threads);
                std::thread::scope(|scope| {
                    let workers: Vec<_> = cols
                        .chunks(per)
                        .map(|chunk| {
                            scope.spawn(|| {
                                chunk
                                    .iter()
                                    .map(|xs| run_tile(ys, xs, &Executor::SingleThread))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    workers
                        .into_iter()
                        .flat_map(|w| w.join().expect("a tile worker panicked"))
                        .collect()
                })
            } else {
                cols.iter()
                    .map(|xs| run_tile(ys, xs, &self.executor))
                    .collect()
            };
            for (xs, out) in cols.iter().zip(outs) {
                let out = out?;
                blend.add(ys, xs, |band, i, j| out[[band, i, j]]);
            }
        }
        Ok(Cube::from_shape_vec((b, ph, pw), blend.finish())
            .expect("the blend has the scene shape"))
    }

    /// The optimised plan for an MS of `w` x `h`, built on first use.
    fn plan(&self, w: usize, h: usize) -> Result<Arc<TypedRunnableModel>, ModelError> {
        self.plans.get_or_build((w, h), || {
            let plan_err = |e: TractError| ModelError::Plan {
                path: self.path().to_path_buf(),
                width: w * self.ratio,
                height: h * self.ratio,
                source: e.into(),
            };
            let r = self.ratio;
            self.model
                .graph()
                .clone()
                .with_input_fact(self.ms_ix, f32::fact([1, self.bands, h, w]).into())
                .and_then(|m| {
                    m.with_input_fact(self.pan_ix, f32::fact([1, 1, h * r, w * r]).into())
                })
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
                .map_err(plan_err)
        })
    }
}

/// Checks the declared `ms` channel count against the `bands` metadata where it is concrete.
fn check_declared(info: &ModelInfo, bands: usize) -> Result<(), ModelError> {
    let Some(ms) = info.input(MS) else {
        return Ok(()); // reported as a missing input with the graph's names
    };
    let declared = ms.dims.as_ref().and_then(|d| match d.get(1) {
        Some(Dim::Fixed(c)) => Some(*c),
        _ => None,
    });
    if !ms.elem_type.is_f32()
        || declared.is_some_and(|c| c != bands as i64)
        || ms.dims.as_ref().is_some_and(|d| d.len() != 4)
    {
        return Err(ModelError::BadTensor {
            path: info.path.clone(),
            kind: "input",
            tensor: ms.to_string(),
            expected: "f32 [1,B,h,w] with B the `bands` metadata",
        });
    }
    Ok(())
}
