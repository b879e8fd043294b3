//! Load-time fusion of `QLinearConv → DequantizeLinear (→ Relu | LeakyRelu (→
//! QuantizeLinear))` into one int8 convolution.
//!
//! A QDQ-quantized model keeps its activations in f32, so every convolution makes up to three
//! more passes over its feature map: u8 → f32, the activation, f32 → u8 (in the `edge` int8
//! model at 640x480 the dequantizations alone took 42 ms). Two forms replace them:
//! - where a `QuantizeLinear` follows the activation, the convolution requantizes straight to
//!   its parameters with the activation inside
//!   ([`Requant::with_activation`](super::simd::Requant::with_activation)): ReLU and LeakyReLU
//!   commute with a positive scale, so one rounding replaces the chain's two, and the result
//!   is nearer the exact value, never further than one step from it;
//! - otherwise the convolution writes the dequantized (and activated) f32 value itself
//!   ([`Requant::dequantized`](super::simd::Requant::dequantized)), without the rounding to
//!   its own step.
//!
//! The rewrite runs on the decoded ONNX graph before tract parses it, and only where the
//! whole chain is private: each intermediate tensor has one consumer and is not a graph
//! output, the dequantization uses the convolution's own output parameters, and our kernel
//! covers the convolution. The file on disk is untouched (onnxruntime still runs it); the
//! fused node, [`FUSED_OP_TYPE`], exists only in memory.

use std::borrow::Cow;
use std::collections::HashMap;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

use super::qlinear_conv::{self, QLinearConvU8};
use super::quantize_linear::{self, QuantizeU8};
use super::takeover;

/// Op type of the fused node (domain [`super::DOMAIN`]), parsed by
/// [`qlinear_conv::parse_fused`].
pub const FUSED_OP_TYPE: &str = "QLinearConvActivation";
/// Attribute of the fused node: the activation's slope below zero (0 for ReLU).
pub const NEGATIVE_SLOPE: &str = "negative_slope";
/// Attribute of the fused node: `[low, high]`, the range of the convolution's own u8 output in
/// steps of the fused node's output scale (its saturation, which the fusion keeps).
pub const PREACTIVATION_RANGE: &str = "preactivation_range";
/// Attribute of the fused node: 1 where it writes f32 (it took over the dequantization; its
/// output scale and zero point are the convolution's own), 0 where it writes u8.
pub const DEQUANTIZE: &str = "dequantize";

/// How many convolutions of a model the load-time fusion took over, by their output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fused {
    /// Convolutions writing f32: the dequantization behind them (and any activation behind
    /// that) is theirs.
    pub dequantizing: usize,
    /// Convolutions writing u8 through their activation: `DequantizeLinear → Relu | LeakyRelu
    /// → QuantizeLinear` is theirs.
    pub requantizing: usize,
}

impl Fused {
    /// The fused nodes of a graph [`fuse_activations`] returned.
    pub fn of(proto: &ModelProto) -> Fused {
        let mut fused = Fused::default();
        let nodes = proto.graph.iter().flat_map(|g| g.node.iter());
        for node in nodes.filter(|n| n.op_type == FUSED_OP_TYPE) {
            let dequantizing = node
                .attribute
                .iter()
                .any(|a| a.name == DEQUANTIZE && a.i != 0);
            if dequantizing {
                fused.dequantizing += 1;
            } else {
                fused.requantizing += 1;
            }
        }
        fused
    }
}

/// `proto` with every fusable chain replaced by one [`FUSED_OP_TYPE`] node; borrowed as is
/// when there is none. `onnx` must be a loader with our ops ([`super::onnx`]): the coverage
/// check is its `QLinearConv` parser's.
pub fn fuse_activations<'a>(
    onnx: &tract_onnx::Onnx,
    proto: &'a ModelProto,
    model_dir: Option<&str>,
) -> TractResult<Cow<'a, ModelProto>> {
    let Some(graph) = proto.graph.as_ref() else {
        return Ok(Cow::Borrowed(proto));
    };
    let ctx = ParsingContext {
        onnx_operator_set_version: proto
            .opset_import
            .iter()
            .find(|import| import.domain.is_empty() || import.domain == "ai.onnx")
            .map_or(0, |op| op.version),
        framework: onnx,
        model: proto,
        parent_graphs: vec![],
        model_dir,
        template: InferenceModel::default(),
    };
    let chains = Chains::of(&graph.node, graph.output.iter().map(|o| o.name.as_str()));
    let mut fused: HashMap<usize, NodeProto> = HashMap::new();
    let mut dropped = vec![false; graph.node.len()];
    for chain in chains.candidates() {
        if let Some((node, replaced)) = chain.fuse(&ctx, &graph.node)? {
            fused.insert(chain.conv, node);
            for i in replaced {
                dropped[i] = true;
            }
        }
    }
    if fused.is_empty() {
        return Ok(Cow::Borrowed(proto));
    }
    let mut out = proto.clone();
    let nodes = &mut out.graph.as_mut().expect("checked above").node;
    // The fused node sits where the convolution was: its inputs are the convolution's, and every
    // reader of its output (the quantization's) comes later in the topological order.
    *nodes = std::mem::take(nodes)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped[*i])
        .map(|(i, node)| fused.remove(&i).unwrap_or(node))
        .collect();
    Ok(Cow::Owned(out))
}

/// Who reads each tensor.
struct Chains<'g> {
    nodes: &'g [NodeProto],
    readers: HashMap<&'g str, Vec<usize>>,
}

/// Node indices of one candidate chain: a convolution whose output only a dequantization
/// reads, then possibly an activation that alone reads that, then possibly a quantization that
/// alone reads the activation.
#[derive(Debug, Clone, Copy)]
struct Chain {
    conv: usize,
    dequantize: usize,
    activation: Option<usize>,
    quantize: Option<usize>,
}

impl<'g> Chains<'g> {
    fn of(nodes: &'g [NodeProto], graph_outputs: impl Iterator<Item = &'g str>) -> Chains<'g> {
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            for input in node.input.iter().filter(|n| !n.is_empty()) {
                readers.entry(input).or_default().push(i);
            }
            // A subgraph (If, Loop, Scan) may read outer tensors without listing them: each
            // name it reads counts as a reader no rewrite can replace.
            let mut subgraph_reads = Vec::new();
            for attribute in &node.attribute {
                for graph in attribute.g.iter().chain(&attribute.graphs) {
                    names_read(graph, &mut subgraph_reads);
                }
            }
            for name in subgraph_reads {
                readers.entry(name).or_default().push(usize::MAX);
            }
        }
        // A graph output counts as a reader no node can replace.
        for name in graph_outputs {
            readers.entry(name).or_default().push(usize::MAX);
        }
        Chains { nodes, readers }
    }

    /// The one node reading `node`'s single output, if it is of one of `op_types` (standard
    /// domain).
    fn sole_reader(&self, node: usize, op_types: &[&str]) -> Option<usize> {
        let [output] = self.nodes[node].output.as_slice() else {
            return None;
        };
        let &[reader] = self.readers.get(output.as_str())?.as_slice() else {
            return None;
        };
        let next = self.nodes.get(reader)?;
        (is_standard(next) && op_types.contains(&next.op_type.as_str())).then_some(reader)
    }

    /// Every chain, longest form first.
    fn candidates(&self) -> Vec<Chain> {
        (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.op_type == qlinear_conv::OP_TYPE && is_standard(n)
            })
            .filter_map(|conv| {
                let dequantize = self.sole_reader(conv, &["DequantizeLinear"])?;
                let activation = self.sole_reader(dequantize, &["Relu", "LeakyRelu"]);
                let quantize =
                    activation.and_then(|a| self.sole_reader(a, &[quantize_linear::OP_TYPE]));
                Some(Chain {
                    conv,
                    dequantize,
                    activation,
                    quantize,
                })
            })
            .collect()
    }
}

/// Whether `node` is of ONNX's own domain (where the op types above are defined).
fn is_standard(node: &NodeProto) -> bool {
    node.domain.is_empty() || node.domain == "ai.onnx"
}

/// Every tensor name the nodes of `graph` and of its own subgraphs read.
fn names_read<'g>(graph: &'g GraphProto, names: &mut Vec<&'g str>) {
    for node in &graph.node {
        names.extend(
            node.input
                .iter()
                .map(String::as_str)
                .filter(|n| !n.is_empty()),
        );
        for attribute in &node.attribute {
            for sub in attribute.g.iter().chain(&attribute.graphs) {
                names_read(sub, names);
            }
        }
    }
}

/// The activation's slope below zero, if it is one the requantization can take.
fn negative_slope(activation: &NodeProto) -> TractResult<Option<f32>> {
    let slope = match activation.op_type.as_str() {
        "Relu" => 0.0,
        _ => activation.get_attr_opt::<f32>("alpha")?.unwrap_or(0.01),
    };
    Ok((0.0..=1.0).contains(&slope).then_some(slope))
}

impl Chain {
    /// The fused node for the longest form of the chain the parameters allow, with the
    /// indices of the nodes it replaces besides the convolution; `None` where no form fits.
    fn fuse(
        &self,
        ctx: &ParsingContext,
        nodes: &[NodeProto],
    ) -> TractResult<Option<(NodeProto, Vec<usize>)>> {
        let (conv, dequantize) = (&nodes[self.conv], &nodes[self.dequantize]);
        // The convolution's output scale and zero point (inputs 6 and 7), and the
        // dequantization's, must be the same values.
        let (Some(conv_scale), Some(conv_zp)) = (conv.input.get(6), conv.input.get(7)) else {
            return Ok(None);
        };
        let (Some(scale), Some(zero_point)) = (
            scale_input(ctx, conv, conv_scale)?,
            zero_point_input(ctx, conv, conv_zp)?,
        ) else {
            return Ok(None);
        };
        let (Some(dq_scale), Some(dq_zp)) = (dequantize.input.get(1), dequantize.input.get(2))
        else {
            return Ok(None);
        };
        if scale_input(ctx, dequantize, dq_scale)? != Some(scale)
            || zero_point_input(ctx, dequantize, dq_zp)? != Some(zero_point)
        {
            return Ok(None);
        }
        // DequantizeLinear-23 may write another float type; a blocked scale is not this one.
        if !matches!(
            dequantize.get_attr_opt::<i64>("output_dtype")?,
            None | Some(0 | 1)
        ) || dequantize.get_attr_opt::<i64>("block_size")?.unwrap_or(0) != 0
        {
            return Ok(None);
        }
        let activation = match self.activation {
            Some(a) => negative_slope(&nodes[a])?.map(|slope| (a, slope)),
            None => None,
        };
        // The convolution's u8 output spans [-zp, 255 - zp] of its own steps.
        let own_range = [0.0 - f32::from(zero_point), 255.0 - f32::from(zero_point)];
        let mut dropped = vec![self.dequantize];
        if let (Some((a, slope)), Some(q)) = (activation, self.quantize)
            && let Some(node) = requantizing(ctx, conv, &nodes[q], scale, own_range, slope)?
        {
            dropped.extend([a, q]);
            return Ok(Some((node, dropped)));
        }
        // Otherwise the convolution writes f32, in its own output's scale.
        let (last, slope) = match activation {
            Some((a, slope)) => {
                dropped.push(a);
                (&nodes[a], slope)
            }
            None => (dequantize, 1.0),
        };
        let node = fused_node(
            conv,
            conv.input.clone(),
            last.output.clone(),
            slope,
            own_range,
            true,
        );
        // Our kernel must run it: tract has no parser for the fused node.
        Ok(QLinearConvU8::from_node(ctx, &node)?.map(|_| (node, dropped)))
    }
}

/// The fused node for `conv → … → quantize`, requantizing to the quantization's parameters;
/// `None` where the quantization is not one our kernel's u8 output can take.
fn requantizing(
    ctx: &ParsingContext,
    conv: &NodeProto,
    quantize: &NodeProto,
    conv_scale: f32,
    own_range: [f32; 2],
    slope: f32,
) -> TractResult<Option<NodeProto>> {
    let Some(requantize) = QuantizeU8::from_node(ctx, quantize)? else {
        return Ok(None);
    };
    // A zero point left implicit (0) has no tensor to wire into the convolution.
    let (Some(q_scale), Some(q_zp)) = (
        quantize.input.get(1).filter(|n| !n.is_empty()),
        quantize.input.get(2).filter(|n| !n.is_empty()),
    ) else {
        return Ok(None);
    };
    let ratio = f64::from(conv_scale) / f64::from(requantize.scale());
    let range = own_range.map(|v| (f64::from(v) * ratio) as f32);
    let mut input = conv.input.clone();
    input[6] = q_scale.clone();
    input[7] = q_zp.clone();
    let node = fused_node(conv, input, quantize.output.clone(), slope, range, false);
    Ok(QLinearConvU8::from_node(ctx, &node)?.map(|_| node))
}

/// `conv` as a [`FUSED_OP_TYPE`] node.
fn fused_node(
    conv: &NodeProto,
    input: Vec<String>,
    output: Vec<String>,
    slope: f32,
    range: [f32; 2],
    dequantize: bool,
) -> NodeProto {
    let mut attribute = conv.attribute.clone();
    attribute.push(AttributeProto {
        name: NEGATIVE_SLOPE.into(),
        r#type: AttributeType::Float as i32,
        f: slope,
        ..Default::default()
    });
    attribute.push(AttributeProto {
        name: PREACTIVATION_RANGE.into(),
        r#type: AttributeType::Floats as i32,
        floats: range.to_vec(),
        ..Default::default()
    });
    attribute.push(AttributeProto {
        name: DEQUANTIZE.into(),
        r#type: AttributeType::Int as i32,
        i: i64::from(dequantize),
        ..Default::default()
    });
    NodeProto {
        name: conv.name.clone(),
        op_type: FUSED_OP_TYPE.into(),
        domain: super::DOMAIN.into(),
        input,
        output,
        attribute,
        ..Default::default()
    }
}

/// Input `name` of `node` as a quantization scale, if it is a constant one.
fn scale_input(ctx: &ParsingContext, node: &NodeProto, name: &str) -> TractResult<Option<f32>> {
    Ok(takeover::constant(ctx, node, name)?
        .as_ref()
        .and_then(takeover::scale_value))
}

/// Input `name` of `node` as a u8 zero point, if it is a constant one.
fn zero_point_input(ctx: &ParsingContext, node: &NodeProto, name: &str) -> TractResult<Option<u8>> {
    Ok(takeover::constant(ctx, node, name)?
        .as_ref()
        .and_then(takeover::zero_point_u8))
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{AttributeProto, ModelProto};
    use tract_onnx::prelude::*;

    use super::super::takeover::test_models::{bytes, graph_model, run, tensor, value_info};
    use super::*;

    const CIN: usize = 5;
    const COUT: usize = 6;
    const H: usize = 9;
    const W: usize = 21;
    /// The convolution's own output step, and the quantization's behind the activation.
    const CONV_STEP: f32 = 0.05;
    const OUT_STEP: f32 = 0.03;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn node(op_type: &str, input: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op_type.into(),
            name: output.into(),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    /// `x → QLinearConv (3x3, pads 1) → DequantizeLinear → activation [→ QuantizeLinear]`,
    /// with the tensor `extra_output` also a graph output when given.
    fn chain_model(
        activation: &str,
        alpha: f32,
        quantize: bool,
        extra_output: Option<&str>,
    ) -> ModelProto {
        let w_scales: Vec<f32> = (0..COUT).map(|o| 0.004 + 0.001 * o as f32).collect();
        let bias: Vec<u8> = (0..COUT as i32)
            .flat_map(|o| ((o - 2) * 1500).to_le_bytes())
            .collect();
        let initializer = vec![
            tensor("x_scale", DataType::Float, &[], f32s(&[0.02])),
            tensor("x_zp", DataType::Uint8, &[], vec![117]),
            tensor(
                "w",
                DataType::Int8,
                &[COUT, CIN, 3, 3],
                bytes(COUT * CIN * 9, 11),
            ),
            tensor("w_scale", DataType::Float, &[COUT], f32s(&w_scales)),
            tensor("w_zp", DataType::Int8, &[], vec![0]),
            tensor("c_scale", DataType::Float, &[], f32s(&[CONV_STEP])),
            tensor("c_zp", DataType::Uint8, &[], vec![131]),
            tensor("b", DataType::Int32, &[COUT], bias),
            tensor("q_scale", DataType::Float, &[], f32s(&[OUT_STEP])),
            tensor("q_zp", DataType::Uint8, &[], vec![40]),
        ];
        let mut conv = node(
            "QLinearConv",
            &[
                "x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "c_scale", "c_zp", "b",
            ],
            "c",
        );
        conv.attribute = vec![AttributeProto {
            name: "pads".into(),
            r#type: AttributeType::Ints as i32,
            ints: vec![1; 4],
            ..Default::default()
        }];
        let mut act = node(activation, &["d"], "a");
        if activation == "LeakyRelu" {
            act.attribute = vec![AttributeProto {
                name: "alpha".into(),
                r#type: AttributeType::Float as i32,
                f: alpha,
                ..Default::default()
            }];
        }
        let mut nodes = vec![
            conv,
            node("DequantizeLinear", &["c", "c_scale", "c_zp"], "d"),
            act,
        ];
        let shape = [1, COUT, H, W];
        let mut outputs = vec![if quantize {
            nodes.push(node("QuantizeLinear", &["a", "q_scale", "q_zp"], "y"));
            value_info("y", DataType::Uint8, &shape)
        } else {
            value_info("a", DataType::Float, &shape)
        }];
        if let Some(name) = extra_output {
            let dt = if name == "c" {
                DataType::Uint8
            } else {
                DataType::Float
            };
            outputs.push(value_info(name, dt, &shape));
        }
        graph_model(
            "chain",
            nodes,
            initializer,
            vec![value_info("x", DataType::Uint8, &[1, CIN, H, W])],
            outputs,
        )
    }

    fn input() -> Tensor {
        Tensor::from_shape(&[1, CIN, H, W], &bytes(CIN * H * W, 12)).unwrap()
    }

    /// The model's first output and plan op names, as loaded: fused, and as written.
    fn fused_and_not<T: Datum + Copy>(proto: &ModelProto) -> ((Vec<T>, Vec<String>), Vec<T>) {
        let onnx = crate::ops::onnx();
        let fused = fuse_activations(&onnx, proto, None).unwrap();
        let got = run::<T>(crate::ops::onnx(), &fused, input());
        let (unfused, _) = run::<T>(crate::ops::onnx(), proto, input());
        (got, unfused)
    }

    /// The plan's computing ops (not its inputs and the convolution's constant parameters).
    fn ops(names: &[String]) -> Vec<&str> {
        names
            .iter()
            .map(String::as_str)
            .filter(|n| !matches!(*n, "Source" | "Const"))
            .collect()
    }

    /// The chain with a u8 output becomes one convolution. The chain rounds twice (to the
    /// convolution's step, then to the output's) and the fused op once, so the two differ by
    /// at most half a convolution step plus one rounding: 0.5 · 0.05 / 0.03 + 1 < 2 output
    /// steps, and most values agree.
    #[test]
    fn requantizing_chains_become_one_convolution() {
        for (activation, alpha) in [("Relu", 0.0), ("LeakyRelu", 0.1)] {
            let ((got, names), chain) =
                fused_and_not::<u8>(&chain_model(activation, alpha, true, None));
            assert_eq!(ops(&names), [qlinear_conv::PLAN_NAME], "{activation}");
            let off = got.iter().zip(&chain).filter(|(a, b)| a != b).count();
            assert!(
                got.iter().zip(&chain).all(|(a, b)| a.abs_diff(*b) <= 1) && off * 4 < got.len(),
                "{activation}: {off} of {} differ",
                got.len()
            );
            // The activation took effect: ReLU leaves nothing below the zero point (40);
            // LeakyReLU keeps values below it, shrunk.
            let below = got.iter().filter(|v| **v < 40).count();
            assert_eq!(
                below == 0,
                activation == "Relu",
                "{activation}: {below} below"
            );
            assert!(
                got.iter().any(|v| *v > 60),
                "{activation}: no positive value"
            );
        }
    }

    /// Without a quantization behind, the convolution writes the activation's f32 values: the
    /// chain's, less its rounding to the convolution's step (at most half a step apart).
    #[test]
    fn dequantizing_chains_write_f32() {
        for (activation, alpha) in [("Relu", 0.0), ("LeakyRelu", 0.2)] {
            let ((got, names), chain) =
                fused_and_not::<f32>(&chain_model(activation, alpha, false, None));
            assert_eq!(ops(&names), [qlinear_conv::PLAN_NAME], "{activation}");
            let worst = got
                .iter()
                .zip(&chain)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst <= 0.5 * CONV_STEP * 1.001, "{activation}: {worst}");
            // Not the chain's values to the step: the rounding is gone (ReLU's zeros and the
            // clamped ends stay on the grid).
            let off_grid = got
                .iter()
                .filter(|v| ((*v / CONV_STEP) - (*v / CONV_STEP).round()).abs() > 0.01)
                .count();
            assert!(
                off_grid * 4 > got.len(),
                "{activation}: {off_grid} off the grid"
            );
        }
    }

    /// A convolution whose u8 output something else reads stays as written; a dequantized
    /// value read twice keeps its activation separate.
    #[test]
    fn shared_tensors_are_not_fused_away() {
        let ((got, names), chain) = fused_and_not::<u8>(&chain_model("Relu", 0.0, true, Some("c")));
        assert!(ops(&names).len() > 1, "{names:?}");
        assert_eq!(got, chain);

        let ((got, names), chain) = fused_and_not::<u8>(&chain_model("Relu", 0.0, true, Some("d")));
        let names = ops(&names);
        assert!(names.contains(&qlinear_conv::PLAN_NAME), "{names:?}");
        assert!(
            names.len() > 1 && !names.iter().any(|n| n.contains("Dequantize")),
            "{names:?}"
        );
        let off = got.iter().zip(&chain).filter(|(a, b)| a != b).count();
        assert!(off * 4 < got.len(), "{off} of {} differ", got.len());
    }

    /// A LeakyReLU with a slope above 1 is not max(v, slope·v), the form the kernel computes:
    /// only the dequantization is fused, and the activation runs as written.
    #[test]
    fn slopes_outside_0_1_keep_their_activation() {
        let ((got, names), chain) = fused_and_not::<u8>(&chain_model("LeakyRelu", 1.5, true, None));
        let names = ops(&names);
        assert!(
            names.len() > 1 && names.contains(&qlinear_conv::PLAN_NAME),
            "{names:?}"
        );
        let off = got.iter().zip(&chain).filter(|(a, b)| a != b).count();
        assert!(off * 4 < got.len(), "{off} of {} differ", got.len());
    }

    /// A tensor a subgraph reads (without listing it as an input of its node) is a reader too.
    #[test]
    fn subgraph_reads_keep_their_tensors() {
        let mut proto = chain_model("Relu", 0.0, true, None);
        let body = GraphProto {
            node: vec![node("Identity", &["c"], "inner")],
            ..Default::default()
        };
        let mut branch = node("If", &["cond"], "branch");
        branch.attribute = vec![AttributeProto {
            name: "then_branch".into(),
            r#type: AttributeType::Graph as i32,
            g: Some(body),
            ..Default::default()
        }];
        proto.graph.as_mut().unwrap().node.push(branch);
        let onnx = crate::ops::onnx();
        assert!(matches!(
            fuse_activations(&onnx, &proto, None).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    /// Models without a chain come back borrowed, unchanged.
    #[test]
    fn models_without_chains_are_borrowed() {
        let mut proto = chain_model("Relu", 0.0, true, None);
        proto.graph.as_mut().unwrap().node[1].op_type = "Identity".into();
        let onnx = crate::ops::onnx();
        assert!(matches!(
            fuse_activations(&onnx, &proto, None).unwrap(),
            Cow::Borrowed(_)
        ));
    }
}
