//! The graph rewrite: each quantizable `Conv` becomes `QuantizeLinear` (once per tensor) →
//! `QLinearConv` → `DequantizeLinear`. A convolution reading another one's output takes its u8
//! tensor directly (one range per tensor), so back-to-back convolutions never leave int8.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, bail};
use tract_onnx::pb::{self, NodeProto, TensorProto, tensor_proto::DataType};

use super::calibrate::Range;

/// Largest int8 weight magnitude (symmetric, so -128 is unused).
const WEIGHT_LEVELS: f32 = 127.0;

fn initializers(graph: &pb::GraphProto) -> HashMap<&str, &TensorProto> {
    graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect()
}

/// The f32 values of an initializer (raw little-endian or `float_data`).
fn floats(t: &TensorProto) -> anyhow::Result<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        bail!("initializer {} is not float32", t.name);
    }
    if !t.raw_data.is_empty() {
        Ok(t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    } else {
        Ok(t.float_data.clone())
    }
}

/// Indices of the `Conv` nodes with a constant float 4-D kernel (and constant bias, if any),
/// except one that writes a graph output: that is the fused image itself, and in u8 over its
/// calibrated range (wider than [0, 1]) it would keep only ~200 grey levels, which costs the
/// image's entropy and mutual information far more than its PSNR shows.
pub fn quantizable_convs(graph: &pb::GraphProto) -> Vec<usize> {
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let inits = initializers(graph);
    let float_init = |name: &str, rank: usize| {
        inits
            .get(name)
            .is_some_and(|t| t.data_type == DataType::Float as i32 && t.dims.len() == rank)
    };
    graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "Conv" && n.domain.is_empty())
        .filter(|(_, n)| !n.output.iter().any(|o| outputs.contains(o.as_str())))
        .filter(|(_, n)| n.input.len() >= 2 && float_init(&n.input[1], 4))
        .filter(|(_, n)| n.input.len() < 3 || n.input[2].is_empty() || float_init(&n.input[2], 1))
        .map(|(i, _)| i)
        .collect()
}

/// The tensors whose range calibration must measure: each quantized conv's input and output.
pub fn calibrated_tensors(graph: &pb::GraphProto, convs: &[usize]) -> Vec<String> {
    let mut seen = HashSet::new();
    convs
        .iter()
        .flat_map(|&i| [&graph.node[i].input[0], &graph.node[i].output[0]])
        .filter(|t| seen.insert(t.as_str()))
        .cloned()
        .collect()
}

fn tensor(name: String, dims: &[i64], dt: DataType, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name,
        dims: dims.to_vec(),
        data_type: dt as i32,
        raw_data,
        ..Default::default()
    }
}

fn node(op: &str, inputs: Vec<String>, output: String) -> NodeProto {
    NodeProto {
        name: output.clone(),
        op_type: op.into(),
        input: inputs,
        output: vec![output],
        ..Default::default()
    }
}

/// Rewrites `proto`; returns the new model and (quantized, left f32) conv counts.
pub fn rewrite(
    mut proto: pb::ModelProto,
    convs: &[usize],
    ranges: &HashMap<String, Range>,
    per_channel: bool,
) -> anyhow::Result<(pb::ModelProto, (usize, usize))> {
    let graph = proto.graph.as_mut().context("no graph")?;
    let total_convs = graph.node.iter().filter(|n| n.op_type == "Conv").count();
    let inits: HashMap<String, TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    let conv_set: HashSet<usize> = convs.iter().copied().collect();
    let mut new_init: Vec<TensorProto> = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len() + 3 * convs.len());
    // Tensors that exist in u8, and the scale / zero-point initializers made per tensor.
    let mut as_u8: HashSet<String> = HashSet::new();
    let mut params: HashMap<String, (f32, u8)> = HashMap::new();
    let mut param_inits =
        |t: &str, new_init: &mut Vec<TensorProto>| -> anyhow::Result<(String, String, f32)> {
            let (scale, _) = match params.get(t) {
                Some(p) => *p,
                None => {
                    let range = ranges
                        .get(t)
                        .with_context(|| format!("no calibrated range for tensor {t}"))?;
                    let p = range.u8_params();
                    new_init.push(tensor(
                        format!("{t}__scale"),
                        &[],
                        DataType::Float,
                        p.0.to_le_bytes().to_vec(),
                    ));
                    new_init.push(tensor(
                        format!("{t}__zero"),
                        &[],
                        DataType::Uint8,
                        vec![p.1],
                    ));
                    params.insert(t.to_string(), p);
                    p
                }
            };
            Ok((format!("{t}__scale"), format!("{t}__zero"), scale))
        };
    for (i, n) in graph.node.iter().enumerate() {
        if !conv_set.contains(&i) {
            nodes.push(n.clone());
            continue;
        }
        let (x, y) = (n.input[0].clone(), n.output[0].clone());
        let (sx, zx, x_scale) = param_inits(&x, &mut new_init)?;
        let (sy, zy, _) = param_inits(&y, &mut new_init)?;
        let xq = format!("{x}__u8");
        if as_u8.insert(x.clone()) {
            nodes.push(node(
                "QuantizeLinear",
                vec![x.clone(), sx.clone(), zx.clone()],
                xq.clone(),
            ));
        }
        let w_init = &inits[&n.input[1]];
        let w = floats(w_init)?;
        let m = w_init.dims[0] as usize;
        let per_out = w.len() / m.max(1);
        let w_scales: Vec<f32> = if per_channel {
            w.chunks(per_out)
                .map(|c| c.iter().fold(0f32, |a, v| a.max(v.abs())) / WEIGHT_LEVELS)
                .collect()
        } else {
            vec![w.iter().fold(0f32, |a, v| a.max(v.abs())) / WEIGHT_LEVELS]
        };
        let w_scales: Vec<f32> = w_scales
            .into_iter()
            .map(|s| if s > 0.0 { s } else { 1.0 })
            .collect();
        let scale_of = |o: usize| w_scales[if per_channel { o } else { 0 }];
        let wq: Vec<u8> = w
            .iter()
            .enumerate()
            .map(|(k, v)| {
                (v / scale_of(k / per_out))
                    .round()
                    .clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i8 as u8
            })
            .collect();
        let wname = format!("{y}__w");
        new_init.push(tensor(wname.clone(), &w_init.dims, DataType::Int8, wq));
        let scale_dims: &[i64] = if per_channel { &[m as i64] } else { &[] };
        new_init.push(tensor(
            format!("{y}__w_scale"),
            scale_dims,
            DataType::Float,
            w_scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
        ));
        new_init.push(tensor(
            format!("{y}__w_zero"),
            scale_dims,
            DataType::Int8,
            vec![0; w_scales.len()],
        ));
        let mut inputs = vec![
            xq,
            sx,
            zx,
            wname,
            format!("{y}__w_scale"),
            format!("{y}__w_zero"),
            sy.clone(),
            zy.clone(),
        ];
        if let Some(b) = n.input.get(2).filter(|b| !b.is_empty()) {
            let bias = floats(&inits[b])?;
            let bq: Vec<u8> = bias
                .iter()
                .enumerate()
                .flat_map(|(o, v)| {
                    let q = (*v as f64 / (x_scale as f64 * scale_of(o) as f64)).round();
                    (q.clamp(i32::MIN as f64, i32::MAX as f64) as i32).to_le_bytes()
                })
                .collect();
            new_init.push(tensor(format!("{y}__b"), &[m as i64], DataType::Int32, bq));
            inputs.push(format!("{y}__b"));
        }
        let yq = format!("{y}__u8");
        let mut conv = node("QLinearConv", inputs, yq.clone());
        conv.attribute = n.attribute.clone();
        nodes.push(conv);
        as_u8.insert(y.clone());
        nodes.push(node("DequantizeLinear", vec![yq, sy, zy], y));
    }
    // Drop the f32 kernels and biases nothing reads any more.
    let used: HashSet<&str> = nodes
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let mut kept: Vec<TensorProto> = graph
        .initializer
        .iter()
        .filter(|t| used.contains(t.name.as_str()))
        .cloned()
        .collect();
    kept.extend(new_init);
    graph.initializer = kept;
    graph.node = nodes;
    Ok((proto, (convs.len(), total_convs - convs.len())))
}
