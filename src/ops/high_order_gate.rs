//! `HighOrderGate(f, r, weight, bias) -> y`: one order of SHIP's spatial interaction in one
//! pass, y = (LayerNorm_channels(f) · weight + bias) · r, per pixel over the C channels of
//! `[N, C, H, W]` f32 tensors, with `weight` and `bias` of shape `[C]`.
//!
//! Standard-ONNX twin: `ReduceMean(axis 1)`, `Sub`, `Mul`, `ReduceMean`, `Add(epsilon)`, `Sqrt`,
//! `Div`, `Mul(weight)`, `Add(bias)`, `Mul(r)`: ten passes over memory where this op makes one
//! (it reads f and r once per pixel block and writes y over f). Tolerance against the twin:
//! summation order only, a few f32 ulps.
//!
//! Attribute `epsilon` (f32, default 1e-5): added to the variance.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::simd;

/// ONNX `op_type` (unique: tract looks ops up by type, ignoring the domain).
pub const OP_TYPE: &str = "HighOrderGate";
/// ONNX attribute holding the variance epsilon.
pub const EPSILON_ATTR: &str = "epsilon";
/// Default of [`EPSILON_ATTR`].
pub const DEFAULT_EPSILON: f32 = 1e-5;

/// The op.
#[derive(Debug, Clone, PartialEq)]
pub struct HighOrderGate {
    pub epsilon: f32,
}

impl Eq for HighOrderGate {}

/// ONNX parser.
pub fn parse(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let epsilon = node
        .get_attr_opt::<f32>(EPSILON_ATTR)?
        .unwrap_or(DEFAULT_EPSILON);
    if !(epsilon.is_finite() && epsilon >= 0.0) {
        bail!("{OP_TYPE}: attribute {EPSILON_ATTR} must be finite and >= 0, got {epsilon}");
    }
    Ok((inference_wrap(HighOrderGate { epsilon }, 1, rules), vec![]))
}

fn rules<'p>(
    _op: &dyn Op,
    s: &mut Solver,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 4)?;
    check_output_arity(outputs, 1)?;
    for input in inputs {
        s.equals(&input.datum_type, f32::datum_type())?;
    }
    s.equals(&outputs[0].datum_type, f32::datum_type())?;
    s.equals(&inputs[0].rank, 4)?;
    s.equals(&inputs[0].shape, &inputs[1].shape)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    s.equals(&inputs[2].rank, 1)?;
    s.equals(&inputs[3].rank, 1)?;
    s.equals(&inputs[2].shape[0], &inputs[0].shape[1])?;
    s.equals(&inputs[3].shape[0], &inputs[0].shape[1])?;
    Ok(())
}

impl Op for HighOrderGate {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    op_as_typed_op!();
}

impl EvalOp for HighOrderGate {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (f, r, weight, bias) = args_4!(inputs);
        let shape = f.shape().to_vec();
        ensure!(
            shape.len() == 4 && r.shape() == shape.as_slice(),
            "{OP_TYPE}: f {:?} and r {:?} must be equal [N,C,H,W] shapes",
            f.shape(),
            r.shape()
        );
        let c = shape[1];
        ensure!(
            weight.shape() == [c] && bias.shape() == [c],
            "{OP_TYPE}: weight {:?} and bias {:?} must be [{c}]",
            weight.shape(),
            bias.shape()
        );
        let image = c * shape[2] * shape[3];
        let gate = simd::kernels().gate;
        let (weight, bias) = (weight.try_as_plain_ram()?, bias.try_as_plain_ram()?);
        let (weight, bias) = (weight.as_slice::<f32>()?, bias.as_slice::<f32>()?);
        let r = r.try_as_plain_ram()?;
        let r = r.as_slice::<f32>()?;
        let mut y = f.into_tensor();
        {
            let mut view = y.try_as_plain_ram_mut()?;
            if image > 0 {
                for (x, r) in view
                    .as_slice_mut::<f32>()?
                    .chunks_mut(image)
                    .zip(r.chunks(image))
                {
                    gate(x, r, weight, bias, self.epsilon);
                }
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for HighOrderGate {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 4,
            "{OP_TYPE}: expects 4 inputs (f, r, weight, bias), got {}",
            inputs.len()
        );
        ensure!(
            inputs.iter().all(|i| i.datum_type == f32::datum_type()),
            "{OP_TYPE}: expects f32 inputs"
        );
        let (f, r) = (inputs[0], inputs[1]);
        ensure!(
            f.rank() == 4 && f.shape == r.shape,
            "{OP_TYPE}: f {:?} and r {:?} must be equal [N,C,H,W] shapes",
            f.shape,
            r.shape
        );
        for (name, p) in [("weight", inputs[2]), ("bias", inputs[3])] {
            ensure!(
                p.rank() == 1 && p.shape[0] == f.shape[1],
                "{OP_TYPE}: {name} {:?} must be [C] with C = {:?}",
                p.shape,
                f.shape[1]
            );
        }
        Ok(tvec!(f32::fact(f.shape.clone())))
    }
}
