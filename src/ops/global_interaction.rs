//! `GlobalInteraction(v, r) -> a`: SHIP's order-1 spatial interaction, the per-channel global
//! circular convolution a = irfft2(rfft2(v) · rfft2(r)) of two `[N, C, H, W]` f32 tensors.
//!
//! Standard-ONNX twin (what `ship-tools export --ops standard` emits instead): mean removal,
//! four `DFT` nodes, the complex product and the DC term added back. Tolerance against it: the
//! two differ by f32 FFT rounding only (a few 1e-7 relative to the fluctuation term).
//!
//! FFT plans and scratch are built at the first frame of a plan's state and reused for every
//! frame of that size; planes are spread over the tract executor's threads.

use rayon::prelude::*;
use tract_linalg::multithread::{Executor, current_tract_executor};
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::fft2::{self, Plan, Workspace};
use super::simd::{self, Kernels};

/// ONNX `op_type` (unique: tract looks ops up by type, ignoring the domain).
pub const OP_TYPE: &str = "GlobalInteraction";

/// The op (no attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalInteraction;

/// ONNX parser.
pub fn parse(
    _ctx: &ParsingContext,
    _node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((inference_wrap(GlobalInteraction, 1, rules), vec![]))
}

fn rules<'p>(
    _op: &dyn Op,
    s: &mut Solver,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 2)?;
    check_output_arity(outputs, 1)?;
    s.equals(&inputs[0].datum_type, f32::datum_type())?;
    s.equals(&inputs[0].datum_type, &inputs[1].datum_type)?;
    s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
    s.equals(&inputs[0].rank, 4)?;
    s.equals(&inputs[0].shape, &inputs[1].shape)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    Ok(())
}

impl Op for GlobalInteraction {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    op_as_typed_op!();
}

impl EvalOp for GlobalInteraction {
    op_out_of_plan!();

    /// Out of a plan (constant folding, tests): a throw-away state.
    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        GlobalInteractionState::default().run(inputs)
    }

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::<GlobalInteractionState>::default()))
    }
}

impl TypedOp for GlobalInteraction {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 2,
            "{OP_TYPE}: expects 2 inputs (v, r), got {}",
            inputs.len()
        );
        let (v, r) = (inputs[0], inputs[1]);
        ensure!(
            v.datum_type == f32::datum_type() && r.datum_type == f32::datum_type(),
            "{OP_TYPE}: expects f32 inputs, got {:?} and {:?}",
            v.datum_type,
            r.datum_type
        );
        ensure!(
            v.rank() == 4,
            "{OP_TYPE}: expects [N,C,H,W] inputs, got {:?}",
            v.shape
        );
        ensure!(
            v.shape == r.shape,
            "{OP_TYPE}: v {:?} and r {:?} differ in shape",
            v.shape,
            r.shape
        );
        Ok(tvec!(f32::fact(v.shape.clone())))
    }
}

/// Plans and scratch of one plan state (one stream): built at the first frame, kept while the
/// frame size and thread count stay.
#[derive(Debug, Clone)]
pub struct GlobalInteractionState {
    plan: Option<Plan>,
    /// One per thread that works on planes.
    workspaces: Vec<Workspace>,
    kernels: &'static Kernels,
}

impl Default for GlobalInteractionState {
    fn default() -> Self {
        GlobalInteractionState {
            plan: None,
            workspaces: vec![],
            kernels: simd::kernels(),
        }
    }
}

fn executor_threads(executor: &Executor) -> usize {
    match executor {
        Executor::SingleThread => 1,
        Executor::MultiThread(pool) => pool.current_num_threads(),
        Executor::RayonGlobal => rayon::current_num_threads(),
    }
}

impl GlobalInteractionState {
    fn run(&mut self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (v, r) = args_2!(inputs);
        ensure!(
            v.shape() == r.shape() && v.rank() == 4,
            "{OP_TYPE}: v {:?} and r {:?} must be equal [N,C,H,W] shapes",
            v.shape(),
            r.shape()
        );
        let (h, w) = (v.shape()[2], v.shape()[3]);
        let (planes, hw) = (v.shape()[0] * v.shape()[1], h * w);
        let mut out = v.into_tensor();
        if planes == 0 || hw == 0 {
            return Ok(tvec!(out.into_tvalue()));
        }
        let executor = current_tract_executor();
        let groups = executor_threads(&executor).clamp(1, planes);
        if self.plan.as_ref().map(Plan::size) != Some((h, w)) {
            self.plan = Some(Plan::new(h, w));
            self.workspaces.clear();
        }
        let plan = self.plan.as_ref().expect("planned just above");
        self.workspaces.resize_with(groups, || Workspace::new(plan));
        let per_group = planes.div_ceil(groups);
        let complex_mul = self.kernels.complex_mul;
        let r = r.try_as_plain_ram()?;
        let r = r.as_slice::<f32>()?;
        {
            let mut out_view = out.try_as_plain_ram_mut()?;
            let out_slice = out_view.as_slice_mut::<f32>()?;
            let work = |(g, (chunk, ws)): (usize, (&mut [f32], &mut Workspace))| {
                for (i, plane) in chunk.chunks_mut(hw).enumerate() {
                    let p = g * per_group + i;
                    fft2::circular_conv(plan, ws, plane, &r[p * hw..(p + 1) * hw], complex_mul);
                }
            };
            let jobs = out_slice
                .chunks_mut(per_group * hw)
                .zip(self.workspaces.iter_mut());
            match executor {
                Executor::MultiThread(pool) if groups > 1 => pool.install(|| {
                    par_jobs(jobs.collect()).for_each(work);
                }),
                Executor::RayonGlobal if groups > 1 => par_jobs(jobs.collect()).for_each(work),
                _ => jobs.enumerate().for_each(work),
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

/// The (plane group, workspace) jobs as an indexed parallel iterator.
fn par_jobs<'a>(
    jobs: Vec<(&'a mut [f32], &'a mut Workspace)>,
) -> impl IndexedParallelIterator<Item = (usize, (&'a mut [f32], &'a mut Workspace))> {
    jobs.into_par_iter().enumerate()
}

impl OpState for GlobalInteractionState {
    fn eval(
        &mut self,
        _ctx: &EvalContext,
        _op: &dyn Op,
        inputs: TVec<TValue>,
    ) -> TractResult<TVec<TValue>> {
        self.run(inputs)
    }

    /// Scratch only: nothing of one frame carries to the next.
    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: [usize; 4], seed: usize) -> Tensor {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0)
            .collect();
        Tensor::from_shape(&shape, &data).unwrap()
    }

    /// The op on several planes and threads equals the plane-by-plane algorithm.
    #[test]
    fn planes_and_threads_agree_with_the_single_plane_algorithm() {
        let shape = [2, 3, 6, 10];
        let (v, r) = (tensor(shape, 1), tensor(shape, 2));
        let plan = Plan::new(6, 10);
        let mut ws = Workspace::new(&plan);
        let mut expect = v
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>();
        let r_data: Vec<f32> = r
            .to_plain_array_view::<f32>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        for (p, plane) in expect.chunks_mut(60).enumerate() {
            fft2::circular_conv(
                &plan,
                &mut ws,
                plane,
                &r_data[p * 60..(p + 1) * 60],
                simd::kernels().complex_mul,
            );
        }
        for threads in [1, 2, 4] {
            let executor = Executor::multithread(threads);
            let mut state = GlobalInteractionState::default();
            let out = tract_linalg::multithread::multithread_tract_scope(executor, || {
                state.run(tvec!(v.clone().into_tvalue(), r.clone().into_tvalue()))
            })
            .unwrap();
            let got: Vec<f32> = out[0]
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect();
            assert_eq!(got, expect, "{threads} threads");
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error_not_a_panic() {
        let mut state = GlobalInteractionState::default();
        let err = state
            .run(tvec!(
                tensor([1, 2, 4, 4], 1).into_tvalue(),
                tensor([1, 2, 4, 5], 2).into_tvalue()
            ))
            .unwrap_err();
        assert!(err.to_string().contains(OP_TYPE), "{err}");
    }
}
