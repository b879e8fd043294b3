//! Small ONNX models written with `tract_onnx::pb` + prost, standing in for exported SHIP
//! models: `fused = vis_weight * vis_y + ir_weight * ir + bias`, with the contract's names,
//! symbolic or fixed H/W and a chosen `task`.

use std::path::Path;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};

/// A linear two-input model.
#[derive(Debug, Clone)]
pub struct LinearModel {
    /// `metadata_props` task; `None` leaves it out.
    pub task: Option<&'static str>,
    /// Fixed (H, W); `None` declares symbolic `H` and `W`.
    pub fixed: Option<(i64, i64)>,
    /// Graph inputs in graph order: (name, role) with role `vis` or `ir`.
    pub inputs: Vec<(&'static str, &'static str)>,
    /// Output name.
    pub output: &'static str,
    /// Weight of the visible input.
    pub vis_weight: f32,
    /// Weight of the IR input.
    pub ir_weight: f32,
    /// Constant added.
    pub bias: f32,
}

impl Default for LinearModel {
    /// The average of `vis_y` and `ir`, task `ivif`, symbolic size.
    fn default() -> LinearModel {
        LinearModel {
            task: Some("ivif"),
            fixed: None,
            inputs: vec![("vis_y", "vis"), ("ir", "ir")],
            output: "fused",
            vis_weight: 0.5,
            ir_weight: 0.5,
            bias: 0.0,
        }
    }
}

fn scalar(name: &str, v: f32) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_string(),
        data_type: DataType::Float as i32,
        dims: vec![],
        raw_data: v.to_le_bytes().to_vec(),
        ..Default::default()
    }
}

fn node(op: &str, inputs: [&str; 2], output: &str) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.to_string(),
        name: output.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        ..Default::default()
    }
}

impl LinearModel {
    fn value_info(&self, name: &str) -> pb::ValueInfoProto {
        let dim = |v: dimension::Value| Dimension {
            value: Some(v),
            ..Default::default()
        };
        let (h, w) = match self.fixed {
            Some((h, w)) => (dimension::Value::DimValue(h), dimension::Value::DimValue(w)),
            None => (
                dimension::Value::DimParam("H".into()),
                dimension::Value::DimParam("W".into()),
            ),
        };
        let shape = pb::TensorShapeProto {
            dim: vec![
                dim(dimension::Value::DimValue(1)),
                dim(dimension::Value::DimValue(1)),
                dim(h),
                dim(w),
            ],
        };
        pb::ValueInfoProto {
            name: name.to_string(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(shape),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The model as a protobuf.
    pub fn proto(&self) -> pb::ModelProto {
        let name_of = |role| {
            self.inputs
                .iter()
                .find(|(_, r)| *r == role)
                .map(|(n, _)| *n)
                .unwrap()
        };
        let graph = pb::GraphProto {
            name: "linear".into(),
            node: vec![
                node("Mul", [name_of("vis"), "w_vis"], "a"),
                node("Mul", [name_of("ir"), "w_ir"], "b"),
                node("Add", ["a", "b"], "s"),
                node("Add", ["s", "bias"], self.output),
            ],
            initializer: vec![
                scalar("w_vis", self.vis_weight),
                scalar("w_ir", self.ir_weight),
                scalar("bias", self.bias),
            ],
            input: self
                .inputs
                .iter()
                .map(|(n, _)| self.value_info(n))
                .collect(),
            output: vec![self.value_info(self.output)],
            ..Default::default()
        };
        let mut metadata = vec![];
        if let Some(task) = self.task {
            metadata.push(pb::StringStringEntryProto {
                key: "task".into(),
                value: task.into(),
            });
        }
        metadata.push(pb::StringStringEntryProto {
            key: "architecture".into(),
            value: "linear-test".into(),
        });
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            producer_name: "ship-edge-tests".into(),
            graph: Some(graph),
            metadata_props: metadata,
            ..Default::default()
        }
    }

    /// Writes the model to `path` and returns it.
    pub fn write(&self, path: impl AsRef<Path>) -> std::path::PathBuf {
        std::fs::write(path.as_ref(), self.proto().encode_to_vec()).unwrap();
        path.as_ref().to_path_buf()
    }
}

/// A pan-sharpening model: `fused = Resize(ms, ratio; linear, half-pixel) + pan_weight · pan`,
/// with `bands` / `scale_ratio` metadata (overridable, to test the checks).
#[derive(Debug, Clone)]
pub struct PanLinearModel {
    /// MS bands the graph declares.
    pub bands: usize,
    /// Upsampling ratio of the graph.
    pub ratio: usize,
    /// Weight of the PAN added to every band.
    pub pan_weight: f32,
    /// `bands` metadata; `None` leaves it out.
    pub bands_meta: Option<String>,
    /// `scale_ratio` metadata.
    pub ratio_meta: Option<String>,
}

impl PanLinearModel {
    /// A model of `bands` bands at `ratio` with matching metadata.
    pub fn new(bands: usize, ratio: usize, pan_weight: f32) -> PanLinearModel {
        PanLinearModel {
            bands,
            ratio,
            pan_weight,
            bands_meta: Some(bands.to_string()),
            ratio_meta: Some(ratio.to_string()),
        }
    }

    /// Writes the model to `path` and returns it.
    pub fn write(&self, path: impl AsRef<Path>) -> std::path::PathBuf {
        let dim = |v: dimension::Value| Dimension {
            value: Some(v),
            ..Default::default()
        };
        let info = |name: &str, c: usize, h: &str, w: &str| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: vec![
                            dim(dimension::Value::DimValue(1)),
                            dim(dimension::Value::DimValue(c as i64)),
                            dim(dimension::Value::DimParam(h.into())),
                            dim(dimension::Value::DimParam(w.into())),
                        ],
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = |name: &str, s: &str| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::String as i32,
            s: s.as_bytes().to_vec(),
            ..Default::default()
        };
        let r = self.ratio as f32;
        let scales = pb::TensorProto {
            name: "scales".into(),
            data_type: DataType::Float as i32,
            dims: vec![4],
            raw_data: [1.0f32, 1.0, r, r]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            ..Default::default()
        };
        let resize = pb::NodeProto {
            op_type: "Resize".into(),
            name: "up".into(),
            input: vec!["ms".into(), String::new(), "scales".into()],
            output: vec!["up".into()],
            attribute: vec![
                text("mode", "linear"),
                text("coordinate_transformation_mode", "half_pixel"),
            ],
            ..Default::default()
        };
        let graph = pb::GraphProto {
            name: "pan-linear".into(),
            node: vec![
                resize,
                node("Mul", ["pan", "w_pan"], "p"),
                node("Add", ["up", "p"], "fused"),
            ],
            initializer: vec![scales, scalar("w_pan", self.pan_weight)],
            input: vec![info("ms", self.bands, "h", "w"), info("pan", 1, "H", "W")],
            output: vec![info("fused", self.bands, "H", "W")],
            ..Default::default()
        };
        let mut metadata = vec![("task", "pansharpen".to_string())];
        if let Some(b) = &self.bands_meta {
            metadata.push(("bands", b.clone()));
        }
        if let Some(r) = &self.ratio_meta {
            metadata.push(("scale_ratio", r.clone()));
        }
        let proto = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            producer_name: "ship-edge-tests".into(),
            graph: Some(graph),
            metadata_props: metadata
                .into_iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.into(),
                    value: v,
                })
                .collect(),
            ..Default::default()
        };
        std::fs::write(path.as_ref(), proto.encode_to_vec()).unwrap();
        path.as_ref().to_path_buf()
    }
}
