//! What ship-edge's kernels for *standard* ONNX ops (`QLinearConv`, `QuantizeLinear`) share:
//! the loader's parser for such an op is ours, and hands every node our kernel does not cover
//! to tract's own parser, kept under another key by [`super::register`]. Our kernels read their
//! parameters from initializers at load time, so they need no graph rewriting later.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// `ours` when the node fits our kernel, otherwise what tract's parser (under `tract_key`)
/// makes of it.
pub fn parse_or_tract(
    ctx: &ParsingContext,
    node: &NodeProto,
    tract_key: &str,
    ours: Option<Box<dyn InferenceOp>>,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    if let Some(op) = ours {
        return Ok((op, vec![]));
    }
    let Some(tract_parser) = ctx.framework.op_register.0.get(tract_key) else {
        bail!(
            "{} node {:?}: not a form ship-edge's kernel runs, and tract's parser is not \
             registered",
            node.op_type,
            node.name
        );
    };
    tract_parser(ctx, node)
}

/// The node's input names with the empty ones (ONNX's "optional input not given") dropped, as
/// tract drops them when it wires the node.
pub fn given_inputs(node: &NodeProto) -> Vec<&str> {
    node.input
        .iter()
        .map(String::as_str)
        .filter(|n| !n.is_empty())
        .collect()
}

/// The value of input `name` of `node` if it is an initializer of the model's graph or of an
/// enclosing one; `None` if it is computed (our kernels then leave the node to tract).
pub fn constant(ctx: &ParsingContext, node: &NodeProto, name: &str) -> TractResult<Option<Tensor>> {
    let Some(proto) = ctx
        .model
        .graph
        .iter()
        .chain(ctx.parent_graphs.iter().copied())
        .flat_map(|g| g.initializer.iter())
        .find(|t| t.name == name)
    else {
        return Ok(None);
    };
    // Through the context, so that external-data initializers resolve against the model's folder.
    let tensor = ctx
        .load_tensor(proto)
        .with_context(|| format!("{} node {:?}: input {name:?}", node.op_type, node.name))?;
    Ok(Some(tensor))
}

/// A quantization scale: a one-value f32 tensor, finite and positive.
pub fn scale_value(t: &Tensor) -> Option<f32> {
    (t.datum_type() == f32::datum_type() && t.len() == 1)
        .then(|| t.cast_to_scalar::<f32>().ok())
        .flatten()
        .filter(|s| s.is_finite() && *s > 0.0)
}

/// A u8 zero point: a one-value u8 tensor.
pub fn zero_point_u8(t: &Tensor) -> Option<u8> {
    (t.datum_type() == u8::datum_type() && t.len() == 1)
        .then(|| t.cast_to_scalar::<u8>().ok())
        .flatten()
}

/// One-node models for the kernels' tests.
#[cfg(test)]
pub mod test_models {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{self, ModelProto, TensorProto, ValueInfoProto};
    use tract_onnx::prelude::*;

    /// A deterministic xorshift stream, so the kernels' tests replay their failures.
    pub fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        std::iter::repeat_with(move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        })
    }

    /// `n` deterministic bytes.
    pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
        xorshift(seed).take(n).map(|s| (s >> 56) as u8).collect()
    }

    /// An initializer.
    pub fn tensor(name: &str, dt: DataType, dims: &[usize], raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            data_type: dt as i32,
            dims: dims.iter().map(|&d| d as i64).collect(),
            raw_data: raw,
            ..Default::default()
        }
    }

    /// A graph input or output of fixed shape.
    pub fn value_info(name: &str, dt: DataType, dims: &[usize]) -> ValueInfoProto {
        let dim = |d: usize| pb::tensor_shape_proto::Dimension {
            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        };
        ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: dt as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: dims.iter().map(|&d| dim(d)).collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// An opset-17 model of `node` reading input `x` and writing output `y`.
    pub fn model(
        node: pb::NodeProto,
        initializer: Vec<TensorProto>,
        x: ValueInfoProto,
        y: ValueInfoProto,
    ) -> ModelProto {
        let name = node.op_type.clone();
        graph_model(&name, vec![node], initializer, vec![x], vec![y])
    }

    /// An opset-17 model of `nodes` (in topological order).
    pub fn graph_model(
        name: &str,
        nodes: Vec<pb::NodeProto>,
        initializer: Vec<TensorProto>,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> ModelProto {
        ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(pb::GraphProto {
                name: name.into(),
                node: nodes,
                initializer,
                input: inputs,
                output: outputs,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Output `T` values of the model under `onnx`, and the op names of its optimised plan.
    pub fn run<T: Datum + Copy>(
        onnx: tract_onnx::Onnx,
        proto: &ModelProto,
        x: Tensor,
    ) -> (Vec<T>, Vec<String>) {
        let plan = onnx
            .model_for_proto_model(proto)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        let names = plan
            .model()
            .nodes()
            .iter()
            .map(|n| n.op.name().to_string())
            .collect();
        let y = plan.run(tvec!(x.into_tvalue())).unwrap();
        let y = y[0]
            .to_plain_array_view::<T>()
            .unwrap()
            .iter()
            .copied()
            .collect();
        (y, names)
    }
}
