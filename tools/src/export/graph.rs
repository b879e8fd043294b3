//! A small ONNX graph builder over tract-onnx's protobuf types.
//!
//! Network modules call these helpers from their `emit` methods, so the network is described once
//! (in `nets/`) and the exporter only assembles what the modules emit. Every helper follows the
//! opset in [`OPSET`]: attributes, not inputs, where opset 17 still takes attributes
//! (`ReduceMean` axes, `DFT` axis).

use candle_core::{Result, Tensor};
use ship_edge::model::meta;
use ship_edge::ops;
use tract_onnx::pb::{
    self, AttributeProto, NodeProto, TensorProto, attribute_proto::AttributeType,
    tensor_proto::DataType,
};

/// ONNX opset of every exported model. 17 is the first with `DFT` and the last before `ReduceMean`
/// moved its axes to an input; tract accepts 9..=18 without warnings.
pub const OPSET: i64 = 17;
/// IR version matching [`OPSET`] (what onnx.checker and onnxruntime expect for opset <= 18).
pub const IR_VERSION: i64 = 8;

/// Which operators an export uses for the high-order interaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OpSet {
    /// ship-edge's custom ops (`GlobalInteraction`, `HighOrderGate` in domain `ai.ship-edge`):
    /// the fast form, for ship-edge.
    #[default]
    Custom,
    /// Standard ONNX operators only (`DFT`, `ReduceMean`, ...): the portable form, for
    /// onnxruntime or any other runtime.
    Standard,
}

impl OpSet {
    /// The value of the model's `ops` metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            OpSet::Custom => meta::OPS_CUSTOM,
            OpSet::Standard => meta::OPS_STANDARD,
        }
    }
}

/// Nodes and initializers being assembled into one ONNX graph.
#[derive(Debug, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) initializers: Vec<TensorProto>,
    counter: usize,
    ops: OpSet,
    emitted_custom: bool,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

impl Graph {
    /// An empty graph using ship-edge's custom ops where a module has one.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty graph using the given operator set.
    pub fn with_ops(ops: OpSet) -> Self {
        Self {
            ops,
            ..Self::default()
        }
    }

    /// The operator set modules should emit.
    pub fn ops(&self) -> OpSet {
        self.ops
    }

    /// Whether any node of [`ops::DOMAIN`] was emitted (the model then imports that domain).
    pub fn uses_custom_ops(&self) -> bool {
        self.emitted_custom
    }

    /// Appends one node of ship-edge's custom domain and returns its output's name.
    pub fn custom(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        debug_assert!(ops::OP_TYPES.contains(&op), "{op} is not a ship-edge op");
        let out = self.node(op, inputs, attribute);
        self.nodes.last_mut().expect("just pushed").domain = ops::DOMAIN.into();
        self.emitted_custom = true;
        out
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Adds an f32 initializer with the given shape.
    pub fn init_f32(&mut self, hint: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        let raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data,
            ..Default::default()
        });
        name
    }

    /// Adds an i64 initializer (shapes, axes, slice bounds).
    pub fn init_i64(&mut self, hint: &str, data: &[i64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds a candle tensor as an f32 initializer, keeping its shape.
    pub fn init_tensor(&mut self, hint: &str, t: &Tensor) -> Result<String> {
        let dims = t.dims().to_vec();
        let data = t
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        Ok(self.init_f32(hint, &dims, &data))
    }

    /// Adds a candle tensor reshaped to `dims` (e.g. a per-channel vector as `[1,C,1,1]`).
    pub fn init_tensor_as(&mut self, hint: &str, t: &Tensor, dims: &[usize]) -> Result<String> {
        let data = t
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        if data.len() != dims.iter().product::<usize>() {
            candle_core::bail!("{hint}: {} values do not fill shape {dims:?}", data.len());
        }
        Ok(self.init_f32(hint, dims, &data))
    }

    /// A scalar f32 constant (broadcasts against anything).
    pub fn scalar(&mut self, v: f32) -> String {
        self.init_f32("c", &[], &[v])
    }

    /// Appends one node with a single output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.nodes.push(NodeProto {
            name: out.clone(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute,
            ..Default::default()
        });
        out
    }

    /// Renames the output of the node that produced `from` (used for the graph's named outputs).
    pub fn rename_output(&mut self, from: &str, to: &str) -> Result<()> {
        for n in self.nodes.iter_mut().rev() {
            if let Some(o) = n.output.iter_mut().find(|o| o.as_str() == from) {
                *o = to.into();
                for later in self.nodes.iter_mut() {
                    for i in later.input.iter_mut().filter(|i| i.as_str() == from) {
                        *i = to.into();
                    }
                }
                return Ok(());
            }
        }
        candle_core::bail!("no node produces {from}")
    }

    /// `Conv` with square "same" padding `pad`, stride 1.
    pub fn conv(&mut self, x: &str, w: &str, b: Option<&str>, pad: usize, groups: usize) -> String {
        let p = pad as i64;
        let mut inputs = vec![x, w];
        if let Some(b) = b {
            inputs.push(b);
        }
        self.node(
            "Conv",
            &inputs,
            vec![
                attr_ints("pads", &[p, p, p, p]),
                attr_int("group", groups as i64),
            ],
        )
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![])
    }

    pub fn leaky_relu(&mut self, x: &str, alpha: f32) -> String {
        self.node("LeakyRelu", &[x], vec![attr_float("alpha", alpha)])
    }

    pub fn sigmoid(&mut self, x: &str) -> String {
        self.node("Sigmoid", &[x], vec![])
    }

    pub fn exp(&mut self, x: &str) -> String {
        self.node("Exp", &[x], vec![])
    }

    pub fn sqrt(&mut self, x: &str) -> String {
        self.node("Sqrt", &[x], vec![])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], vec![])
    }

    pub fn sub(&mut self, a: &str, b: &str) -> String {
        self.node("Sub", &[a, b], vec![])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.node("Mul", &[a, b], vec![])
    }

    pub fn div(&mut self, a: &str, b: &str) -> String {
        self.node("Div", &[a, b], vec![])
    }

    /// `Softmax` over one axis (opset >= 13 semantics).
    pub fn softmax(&mut self, x: &str, axis: i64) -> String {
        self.node("Softmax", &[x], vec![attr_int("axis", axis)])
    }

    /// `ReduceMean` keeping dims.
    pub fn reduce_mean(&mut self, x: &str, axes: &[i64]) -> String {
        self.node(
            "ReduceMean",
            &[x],
            vec![attr_ints("axes", axes), attr_int("keepdims", 1)],
        )
    }

    /// Mean over H and W (axes 2, 3), keeping dims, with one correction pass:
    /// μ = μ₁ + mean(x − μ₁). Runtimes sum a whole frame in a few f32 accumulators (tract also
    /// merges staged reductions back into one); on a 768x576 plane whose mean is 100x its spread
    /// μ₁ alone was off by 2e-4 spread in tract, the corrected mean by 1e-6.
    pub fn spatial_mean(&mut self, x: &str) -> String {
        let first = self.reduce_mean(x, &[2, 3]);
        let residual = self.sub(x, &first);
        let correction = self.reduce_mean(&residual, &[2, 3]);
        self.add(&first, &correction)
    }

    /// H·W of an NCHW tensor as an f32 scalar tensor of shape `[1]` (works with symbolic sizes).
    pub fn spatial_size(&mut self, x: &str) -> String {
        let shape = self.node("Shape", &[x], vec![]);
        let idx = self.init_i64("hw", &[2, 3]);
        let hw = self.node("Gather", &[&shape, &idx], vec![]);
        let n = self.node("ReduceProd", &[&hw], vec![attr_int("keepdims", 1)]);
        self.node("Cast", &[&n], vec![attr_int("to", DataType::Float as i64)])
    }

    /// Bilinear upsampling of an NCHW tensor by `ratio` on H and W (`Resize`, linear,
    /// half-pixel): the runtime twin is [`ship_edge::pansharpen::upsample::upsample_linear`].
    pub fn resize_linear(&mut self, x: &str, ratio: usize) -> String {
        let r = ratio as f32;
        let scales = self.init_f32("scales", &[4], &[1.0, 1.0, r, r]);
        self.node(
            "Resize",
            &[x, "", &scales],
            vec![
                attr_str("mode", "linear"),
                attr_str("coordinate_transformation_mode", "half_pixel"),
            ],
        )
    }

    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.node("Concat", xs, vec![attr_int("axis", axis)])
    }

    /// `Slice` of `[start, end)` along one axis.
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64) -> String {
        let s = self.init_i64("starts", &[start]);
        let e = self.init_i64("ends", &[end]);
        let a = self.init_i64("axes", &[axis]);
        self.node("Slice", &[x, &s, &e, &a], vec![])
    }

    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.init_i64("axes", axes);
        self.node("Unsqueeze", &[x, &a], vec![])
    }

    pub fn squeeze(&mut self, x: &str, axes: &[i64]) -> String {
        let a = self.init_i64("axes", axes);
        self.node("Squeeze", &[x, &a], vec![])
    }

    /// Full complex `DFT` (onesided = 0) along `axis` of a [..., 1 or 2] tensor.
    pub fn dft(&mut self, x: &str, axis: i64, inverse: bool) -> String {
        self.node(
            "DFT",
            &[x],
            vec![
                attr_int("axis", axis),
                attr_int("inverse", inverse as i64),
                attr_int("onesided", 0),
            ],
        )
    }

    /// Assembles the graph with typed f32 inputs/outputs of the given (possibly symbolic) shapes.
    pub fn into_proto(
        self,
        name: &str,
        inputs: &[(&str, Vec<Dim>)],
        outputs: &[(&str, Vec<Dim>)],
    ) -> pb::GraphProto {
        pb::GraphProto {
            name: name.into(),
            node: self.nodes,
            initializer: self.initializers,
            input: inputs.iter().map(|(n, d)| value_info(n, d)).collect(),
            output: outputs.iter().map(|(n, d)| value_info(n, d)).collect(),
            ..Default::default()
        }
    }

    /// Conv multiply-accumulates per output pixel, from the emitted `Conv` weights: the MAC
    /// count the `info` command reports comes from the same graph that ships.
    pub fn conv_macs_per_pixel(&self) -> u64 {
        let dims: std::collections::HashMap<&str, &[i64]> = self
            .initializers
            .iter()
            .map(|t| (t.name.as_str(), t.dims.as_slice()))
            .collect();
        self.nodes
            .iter()
            .filter(|n| n.op_type == "Conv")
            .filter_map(|n| dims.get(n.input[1].as_str()))
            .map(|d| d.iter().product::<i64>() as u64)
            .sum()
    }
}

/// One input/output dimension: fixed or symbolic.
#[derive(Debug, Clone)]
pub enum Dim {
    Fixed(usize),
    Symbol(&'static str),
}

fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(v) => Value::DimValue(*v as i64),
                Dim::Symbol(s) => Value::DimParam((*s).into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
