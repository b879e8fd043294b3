//! An ONNX model bound to the IVIF contract: checks it at load, feeds `vis_y` and `ir` by
//! name, pins their size per frame and returns the raw `fused` plane.

use std::path::Path;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

use super::contract::Task;
use super::cost::PlanCost;
use super::info::{Dim, ModelInfo, TensorInfo, read_proto};
use super::meta::{INPUT_IR as IR, INPUT_VIS as VIS_Y, OUTPUT as FUSED};
use super::plan::PlanCache;
use super::{Model, ModelError};

/// The IVIF contract in words, for error messages.
fn contract() -> String {
    format!(
        "an IVIF model takes inputs `{VIS_Y}` and `{IR}` and gives output `{FUSED}`, each {EXPECTED}"
    )
}
const EXPECTED: &str = "f32 [1,1,H,W]";

/// A model checked against the IVIF contract, ready to run frames of any size it allows.
///
/// Plans are built on first use of each frame size (shapes pinned, graph optimised) and
/// cached (the last few sizes), so repeated frames do not re-plan. `Send + Sync`: one
/// instance can serve several threads.
#[derive(Debug)]
pub struct IvifModel {
    model: Model,
    /// Index of `vis_y` / `ir` among tract's inputs, of `fused` among its outputs.
    vis_ix: usize,
    ir_ix: usize,
    fused_ix: usize,
    /// Fixed (H, W) from the declared input shapes, where concrete.
    fixed: (Option<usize>, Option<usize>),
    plans: PlanCache,
}

impl IvifModel {
    /// Loads the model at `path` and checks the IVIF contract: `task = ivif`, inputs `vis_y`
    /// and `ir` (any order) and output `fused`, each f32 `[1, 1, H, W]`.
    pub fn load(path: &Path) -> Result<IvifModel, ModelError> {
        let proto = read_proto(path)?;
        let info = ModelInfo::from_proto(path, &proto);
        info.check_task(Task::Ivif)?;
        let fixed = check_contract(&info)?;
        let model = Model::parse(info, &proto)?;
        drop(proto);

        let graph = model.graph();
        let path = model.path();
        let load_err = |e: TractError| ModelError::Load {
            path: path.to_path_buf(),
            source: e.into(),
        };
        let input_names = graph
            .input_outlets()
            .map_err(load_err)?
            .iter()
            .map(|o| graph.node(o.node).name.clone())
            .collect::<Vec<_>>();
        let index = |name: &'static str| {
            input_names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| ModelError::MissingTensor {
                    path: path.to_path_buf(),
                    kind: "input",
                    name,
                    found: input_names.clone(),
                    contract: contract(),
                })
        };
        let (vis_ix, ir_ix) = (index(VIS_Y)?, index(IR)?);
        let fused_ix = model
            .info()
            .outputs
            .iter()
            .position(|t| t.name == FUSED)
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.to_path_buf(),
                kind: "output",
                name: FUSED,
                found: model
                    .info()
                    .outputs
                    .iter()
                    .map(|t| t.name.clone())
                    .collect(),
                contract: contract(),
            })?;
        Ok(IvifModel {
            vis_ix,
            ir_ix,
            fused_ix,
            fixed,
            plans: PlanCache::default(),
            model,
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

    /// Frame sizes (width, height) with a cached plan, most recently used first.
    pub fn planned_sizes(&self) -> Vec<(usize, usize)> {
        self.plans.sizes()
    }

    /// Checks that the model accepts a `width` x `height` frame (fixed-size models accept
    /// only their size).
    pub fn check_size(&self, width: usize, height: usize) -> Result<(), ModelError> {
        let (fh, fw) = self.fixed;
        if fh.is_some_and(|h| h != height) || fw.is_some_and(|w| w != width) {
            let show = |d: Option<usize>, sym: &str| d.map_or(sym.to_string(), |v| v.to_string());
            return Err(ModelError::FixedSize {
                path: self.path().to_path_buf(),
                model_size: format!("{}x{}", show(fw, "W"), show(fh, "H")),
                width,
                height,
            });
        }
        Ok(())
    }

    /// The optimised plan for `width` x `height` frames, built on first use.
    pub fn plan(&self, width: usize, height: usize) -> Result<Arc<TypedRunnableModel>, ModelError> {
        self.check_size(width, height)?;
        self.plans.get_or_build((width, height), || {
            self.pinned(width, height)?
                .into_optimized()
                .and_then(|m| m.into_runnable())
                .map_err(|e| self.plan_error(width, height, e))
        })
    }

    /// What a `width` x `height` frame costs: multiply-accumulates of the decluttered graph
    /// and the ops and matmul kernels of the optimised plan (built and cached as by
    /// [`plan`](IvifModel::plan)).
    pub fn cost(&self, width: usize, height: usize) -> Result<PlanCost, ModelError> {
        let plan = self.plan(width, height)?;
        let decluttered = self
            .pinned(width, height)?
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .map_err(|e| self.plan_error(width, height, e))?;
        PlanCost::of(&decluttered, plan.model()).map_err(|e| self.plan_error(width, height, e))
    }

    /// The graph with both inputs pinned to `[1, 1, height, width]`.
    fn pinned(&self, width: usize, height: usize) -> Result<InferenceModel, ModelError> {
        self.check_size(width, height)?;
        let fact: InferenceFact = f32::fact([1, 1, height, width]).into();
        let mut graph = self.model.graph().clone();
        for ix in [self.vis_ix, self.ir_ix] {
            graph = graph
                .with_input_fact(ix, fact.clone())
                .map_err(|e| self.plan_error(width, height, e))?;
        }
        Ok(graph)
    }

    fn plan_error(&self, width: usize, height: usize, e: TractError) -> ModelError {
        ModelError::Plan {
            path: self.path().to_path_buf(),
            width,
            height,
            source: e.into(),
        }
    }

    /// Runs one frame: `vis_y` and `ir` are `width * height` samples, row-major, in `[0, 1]`.
    /// Returns the raw `fused` plane (not clamped).
    pub fn run(
        &self,
        vis_y: &[f32],
        ir: &[f32],
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let plan = self.plan(width, height)?;
        let inputs = self.inputs(vis_y, ir, width, height)?;
        let outputs = plan.run(inputs).map_err(|e| self.run_error(e))?;
        self.fused(outputs, width, height)
    }

    /// A session for a stream of `width` x `height` frames: the plan and one tract state
    /// (with the custom ops' FFT plans and scratch) are built here once and reused by every
    /// [`IvifSession::run`], where [`run`](IvifModel::run) spawns a fresh state per call.
    pub fn session(&self, width: usize, height: usize) -> Result<IvifSession<'_>, ModelError> {
        let plan = self.plan(width, height)?;
        let state = plan.spawn().map_err(|e| self.run_error(e))?;
        Ok(IvifSession {
            model: self,
            state,
            width,
            height,
        })
    }

    /// Runs one frame like [`run`](IvifModel::run) and adds the time spent in each op of the
    /// optimised plan to `times`, summed per op name (new names appended in plan order), so
    /// calls over several frames accumulate.
    pub fn profile(
        &self,
        vis_y: &[f32],
        ir: &[f32],
        width: usize,
        height: usize,
        times: &mut Vec<(String, Duration)>,
    ) -> Result<(), ModelError> {
        let plan = self.plan(width, height)?;
        let inputs = self.inputs(vis_y, ir, width, height)?;
        let mut state = plan.spawn().map_err(|e| self.run_error(e))?;
        let outputs = state
            .run_plan_with_eval(inputs, |ctx, op_state, node, inputs| {
                let start = Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                let name = node.op.name();
                match times.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, t)) => *t += start.elapsed(),
                    None => times.push((name.to_string(), start.elapsed())),
                }
                out
            })
            .map_err(|e| self.run_error(e))?;
        self.fused(outputs, width, height)?;
        Ok(())
    }

    fn run_error(&self, e: TractError) -> ModelError {
        ModelError::Run {
            path: self.path().to_path_buf(),
            source: e.into(),
        }
    }

    /// The two planes as tract inputs, in the graph's input order.
    fn inputs(
        &self,
        vis_y: &[f32],
        ir: &[f32],
        width: usize,
        height: usize,
    ) -> Result<TVec<TValue>, ModelError> {
        let shape = [1, 1, height, width];
        let mut slots: [Option<TValue>; 2] = [None, None];
        for (ix, plane) in [(self.vis_ix, vis_y), (self.ir_ix, ir)] {
            let tensor = Tensor::from_shape(&shape, plane).map_err(|e| self.run_error(e))?;
            slots[ix] = Some(tensor.into_tvalue());
        }
        Ok(slots.into_iter().flatten().collect())
    }

    /// The `fused` plane of the plan's outputs, checked against the contract.
    fn fused(
        &self,
        outputs: TVec<TValue>,
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let mut plane = Vec::with_capacity(width * height);
        self.fused_into(outputs, width, height, &mut plane)?;
        Ok(plane)
    }

    /// [`fused`](IvifModel::fused) into a caller's buffer (cleared first).
    fn fused_into(
        &self,
        outputs: TVec<TValue>,
        width: usize,
        height: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let shape = [1, 1, height, width];
        let bad_output = |found: String| ModelError::BadOutput {
            path: self.path().to_path_buf(),
            name: FUSED,
            found,
            expected: shape.to_vec(),
        };
        let fused = outputs
            .get(self.fused_ix)
            .ok_or_else(|| bad_output("missing".to_string()))?;
        if fused.shape() != &shape[..] || fused.datum_type() != f32::datum_type() {
            return Err(bad_output(format!(
                "{:?} {:?}",
                fused.datum_type(),
                fused.shape()
            )));
        }
        let view = fused
            .to_plain_array_view::<f32>()
            .map_err(|e| self.run_error(e))?;
        out.clear();
        out.extend(view.iter().copied());
        Ok(())
    }
}

/// Checks names, types and shapes of the declared inputs and output; returns the fixed
/// (H, W) the inputs declare, where concrete.
fn check_contract(info: &ModelInfo) -> Result<(Option<usize>, Option<usize>), ModelError> {
    let path = || info.path.clone();
    let missing = |kind, name, found: &[TensorInfo]| ModelError::MissingTensor {
        path: path(),
        kind,
        name,
        found: found.iter().map(|t| t.name.clone()).collect(),
        contract: contract(),
    };
    let mut fixed = (None, None);
    for name in [VIS_Y, IR] {
        let t = info
            .input(name)
            .ok_or_else(|| missing("input", name, &info.inputs))?;
        let (h, w) = check_plane(info, "input", t, false)?;
        for (slot, d) in [(&mut fixed.0, h), (&mut fixed.1, w)] {
            match (*slot, d) {
                (Some(a), Some(b)) if a != b => {
                    return Err(ModelError::BadTensor {
                        path: path(),
                        kind: "input",
                        tensor: t.to_string(),
                        expected: "the same [1,1,H,W] for `vis_y` and `ir`",
                    });
                }
                (None, d) => *slot = d,
                _ => {}
            }
        }
    }
    if let Some(extra) = info.inputs.iter().find(|t| t.name != VIS_Y && t.name != IR) {
        return Err(ModelError::UnexpectedInput {
            path: path(),
            name: extra.name.clone(),
            contract: contract(),
        });
    }
    let fused = info
        .output(FUSED)
        .ok_or_else(|| missing("output", FUSED, &info.outputs))?;
    check_plane(info, "output", fused, true)?;
    Ok(fixed)
}

/// One `[1, 1, H, W]` f32 plane; returns its concrete (H, W), if any. An output may leave
/// its type undeclared.
fn check_plane(
    info: &ModelInfo,
    kind: &'static str,
    t: &TensorInfo,
    untyped_ok: bool,
) -> Result<(Option<usize>, Option<usize>), ModelError> {
    let bad = || ModelError::BadTensor {
        path: info.path.clone(),
        kind,
        tensor: t.to_string(),
        expected: EXPECTED,
    };
    if !(t.elem_type.is_f32() || untyped_ok && t.elem_type.0 == 0) {
        return Err(bad());
    }
    let Some(dims) = &t.dims else {
        return Ok((None, None));
    };
    let [n, c, h, w] = dims.as_slice() else {
        return Err(bad());
    };
    let size = |d: &Dim| match d {
        Dim::Fixed(v) => usize::try_from(*v)
            .ok()
            .filter(|&v| v > 0)
            .map(Some)
            .ok_or_else(bad),
        _ => Ok(None),
    };
    for unit in [n, c] {
        if size(unit)?.is_some_and(|v| v != 1) {
            return Err(bad());
        }
    }
    Ok((size(h)?, size(w)?))
}

/// One stream's reusable inference state (see [`IvifModel::session`]). Not `Send`: build it
/// on the thread that runs the frames.
#[derive(Debug)]
pub struct IvifSession<'m> {
    model: &'m IvifModel,
    state: TypedSimpleState,
    width: usize,
    height: usize,
}

impl IvifSession<'_> {
    /// The frame size this session was planned for, (width, height).
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Runs one frame like [`IvifModel::run`], writing the raw `fused` plane into `out`
    /// (resized to `width * height`, so a reused buffer is not reallocated).
    pub fn run(&mut self, vis_y: &[f32], ir: &[f32], out: &mut Vec<f32>) -> Result<(), ModelError> {
        let (m, w, h) = (self.model, self.width, self.height);
        let inputs = m.inputs(vis_y, ir, w, h)?;
        let outputs = self.state.run(inputs).map_err(|e| m.run_error(e))?;
        m.fused_into(outputs, w, h, out)
    }
}
