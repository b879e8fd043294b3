//! ship-edge's kernel for the standard ONNX `QuantizeLinear` to u8 with one scale and zero
//! point: the step in front of every int8 convolution of `ship-tools quantize`'s models.
//!
//! tract's own lowering evaluates one value at a time; in the `edge` model at 640x480 its 63
//! quantizations took 268 ms, more than the 81 int8 convolutions (159 ms). This op runs the
//! SIMD table's [`QuantizeU8Fn`](super::simd::QuantizeU8Fn) over chunks on the executor's
//! threads. As with [`super::qlinear_conv`], the file stays standard ONNX: the loader's parser
//! is replaced, and nodes this op does not cover (per-axis or blocked scales, i8 or other
//! outputs, non-constant parameters) go to tract's parser.
//!
//! It computes x / scale, as ONNX defines it; tract multiplies by the reciprocal, so the two
//! may differ by one step where x / scale lies within an f32 rounding of a half step.

use rayon::prelude::*;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::{simd, takeover};

/// The standard op type this kernel takes over.
pub const OP_TYPE: &str = "QuantizeLinear";
/// Key under which [`super::register`] keeps tract's own parser.
pub const TRACT_PARSER_KEY: &str = "ship-edge.tract.QuantizeLinear";
/// Name of the op in a plan.
pub const PLAN_NAME: &str = "ShipQuantizeU8";

/// Input types ONNX allows and this op takes (f16 and i32 through a conversion to f32).
const INPUT_TYPES: [DatumType; 3] = [DatumType::F32, DatumType::F16, DatumType::I32];

/// Values per job: large enough that a job outweighs its scheduling.
const CHUNK: usize = 64 * 1024;

/// f32 → u8 with one scale and zero point.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizeU8 {
    scale: f32,
    zero_point: u8,
    /// ONNX inputs of the node (2 or 3): the scale and zero point are held by the op.
    inputs: usize,
}

impl Eq for QuantizeU8 {}

/// ONNX parser: this op where the node fits it, tract's otherwise.
pub fn parse(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let ours = QuantizeU8::from_node(ctx, node)?.map(|op| inference_wrap(op, 1, rules));
    takeover::parse_or_tract(ctx, node, TRACT_PARSER_KEY, ours)
}

impl QuantizeU8 {
    /// The op for `node`, or `None` when the node is outside what it covers (tract's parser
    /// then takes it).
    pub(crate) fn from_node(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Option<Self>> {
        // opset 21's `output_dtype`: 0 (from the zero point) or 2 (UINT8) only.
        let output_u8 = matches!(
            node.get_attr_opt::<i64>("output_dtype")?,
            None | Some(0 | 2)
        );
        if !matches!(node.input.len(), 2 | 3)
            || node.input[1].is_empty()
            || node.get_attr_opt::<i64>("block_size")?.unwrap_or(0) != 0
            || !output_u8
        {
            return Ok(None);
        }
        let load = |name: &str| takeover::constant(ctx, node, name);
        let Some(scale) = load(&node.input[1])?
            .as_ref()
            .and_then(takeover::scale_value)
        else {
            return Ok(None);
        };
        let zero_point = match node.input.get(2).filter(|n| !n.is_empty()) {
            None => 0,
            Some(name) => match load(name)?.as_ref().and_then(takeover::zero_point_u8) {
                Some(z) => z,
                None => return Ok(None),
            },
        };
        Ok(Some(QuantizeU8 {
            scale,
            zero_point,
            inputs: takeover::given_inputs(node).len(),
        }))
    }

    /// The quantization step.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Quantizes an f32 tensor (f16 and i32, which ONNX also allows, are converted first).
    pub fn run(&self, x: &Tensor) -> TractResult<Tensor> {
        ensure!(
            INPUT_TYPES.contains(&x.datum_type()),
            "{OP_TYPE}: expects an f32, f16 or i32 input, got {:?}",
            x.datum_type()
        );
        let x = x.cast_to::<f32>()?;
        let mut y = Tensor::zero::<u8>(x.shape())?;
        let x = x.try_as_plain_ram()?;
        let x = x.as_slice::<f32>()?;
        let quantize = simd::kernels().quantize_u8;
        let (scale, zp) = (self.scale, i32::from(self.zero_point));
        {
            let mut view = y.try_as_plain_ram_mut()?;
            let out = view.as_slice_mut::<u8>()?;
            let job = |(x, out): (&[f32], &mut [u8])| quantize(x, scale, zp, out);
            let parallel = |out: &mut [u8]| {
                x.par_chunks(CHUNK)
                    .zip(out.par_chunks_mut(CHUNK))
                    .for_each(job)
            };
            super::on_tract_threads(|threads| {
                if threads && x.len() > CHUNK {
                    parallel(out)
                } else {
                    quantize(x, scale, zp, out)
                }
            });
        }
        Ok(y)
    }
}

fn rules<'p>(
    op: &dyn Op,
    s: &mut Solver,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    let op = op
        .downcast_ref::<QuantizeU8>()
        .context("QuantizeLinear rules on another op")?;
    check_input_arity(inputs, op.inputs)?;
    check_output_arity(outputs, 1)?;
    s.equals(&outputs[0].datum_type, u8::datum_type())?;
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    Ok(())
}

impl Op for QuantizeU8 {
    fn name(&self) -> StaticName {
        PLAN_NAME.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "scale {}, zero point {}",
            self.scale, self.zero_point
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for QuantizeU8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(!inputs.is_empty(), "{OP_TYPE}: no input");
        Ok(tvec!(self.run(&inputs[0])?.into_tvalue()))
    }
}

impl TypedOp for QuantizeU8 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == self.inputs && INPUT_TYPES.contains(&inputs[0].datum_type),
            "{OP_TYPE}: expects an f32, f16 or i32 input and {} inputs, got {inputs:?}",
            self.inputs
        );
        Ok(tvec!(u8::fact(inputs[0].shape.clone())))
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{self, ModelProto};
    use tract_onnx::prelude::*;

    use super::super::takeover::test_models::{self, tensor, value_info};
    use super::*;

    /// A one-node model quantizing an `[n]` f32 input with `scale` and a u8 `zero_point`
    /// (`dims` of the scale: `[]` per tensor).
    fn model(n: usize, scale: &[f32], dims: &[usize], zero_point: u8) -> ModelProto {
        let initializer = vec![
            tensor(
                "s",
                DataType::Float,
                dims,
                scale.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            tensor("z", DataType::Uint8, dims, vec![zero_point; scale.len()]),
        ];
        let node = NodeProto {
            op_type: OP_TYPE.into(),
            name: "q".into(),
            input: vec!["x".into(), "s".into(), "z".into()],
            output: vec!["y".into()],
            // The scale's axis (the only one of a 1-D input); ignored per tensor.
            attribute: vec![pb::AttributeProto {
                name: "axis".into(),
                r#type: pb::attribute_proto::AttributeType::Int as i32,
                i: 0,
                ..Default::default()
            }],
            ..Default::default()
        };
        test_models::model(
            node,
            initializer,
            value_info("x", DataType::Float, &[n]),
            value_info("y", DataType::Uint8, &[n]),
        )
    }

    fn run(onnx: tract_onnx::Onnx, proto: &ModelProto, x: &[f32]) -> (Vec<u8>, Vec<String>) {
        test_models::run::<u8>(onnx, proto, tensor1(x))
    }

    /// The ONNX definition, checked value by value: half steps round to even, saturation at
    /// both ends, NaN to the low end; and tract's lowering agrees within one step.
    #[test]
    fn follows_the_onnx_definition() {
        let scale = 0.25f32;
        let mut x: Vec<f32> = (0..200_000)
            .map(|i| (i as f32 - 100_000.0) * 0.0013)
            .collect();
        x.extend([0.125, 0.375, -0.125, 1e30, -1e30, f32::NAN, f32::INFINITY]);
        let proto = model(x.len(), &[scale], &[], 100);
        let (ours, names) = run(crate::ops::onnx(), &proto, &x);
        assert!(names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        for (v, q) in x.iter().zip(&ours) {
            let want = if v.is_nan() {
                0.0
            } else {
                ((*v as f64 / scale as f64).round_ties_even() + 100.0).clamp(0.0, 255.0)
            };
            assert_eq!(f64::from(*q), want, "x = {v}");
        }
        let finite = &x[..200_000];
        let (tracts, _) = run(
            tract_onnx::onnx(),
            &model(finite.len(), &[scale], &[], 100),
            finite,
        );
        let off = ours.iter().zip(&tracts).filter(|(a, b)| a != b).count();
        assert!(
            ours.iter().zip(&tracts).all(|(a, b)| a.abs_diff(*b) <= 1) && off * 1000 < x.len(),
            "{off} values differ from tract's"
        );
    }

    /// `["x", "s", ""]`: the zero point not given is 0 (u8), and the node still loads.
    #[test]
    fn an_empty_zero_point_name_means_zero() {
        let mut proto = model(4, &[0.5], &[], 0);
        let graph = proto.graph.as_mut().unwrap();
        graph.node[0].input[2] = String::new();
        graph.initializer.retain(|t| t.name != "z");
        let (got, names) = run(crate::ops::onnx(), &proto, &[-1.0, 0.2, 1.0, 200.0]);
        assert!(names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        assert_eq!(got, [0, 0, 2, 255]);
    }

    #[test]
    fn per_axis_scales_go_to_tract() {
        let proto = model(4, &[0.5, 0.25, 0.125, 1.0], &[4], 10);
        let (ours, names) = run(crate::ops::onnx(), &proto, &[1.0, 1.0, 1.0, 1.0]);
        assert!(!names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        assert_eq!(ours.len(), 4);
    }

    #[test]
    fn kernel_variants_match_the_reference() {
        let x: Vec<f32> = (0..1000)
            .map(|i| (i as f32 * 0.7371).sin() * 200.0)
            .chain([f32::NAN, 0.5, 1.5, -0.5, 2.5, 1e9, -1e9])
            .collect();
        let mut expected = vec![0u8; x.len()];
        simd::scalar::quantize_u8(&x, 0.5, 128, &mut expected);
        for kernels in simd::available() {
            for n in [0, 1, 7, 8, 9, 31, x.len()] {
                let mut got = vec![0u8; n];
                (kernels.quantize_u8)(&x[..n], 0.5, 128, &mut got);
                assert_eq!(got, expected[..n], "{:?} n={n}", kernels.isa);
            }
        }
    }
}
