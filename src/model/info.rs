//! What an ONNX file declares, read from its protobuf without building a graph: inputs and
//! outputs with their (possibly symbolic) shapes, `metadata_props`, op counts, parameters.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
use tract_onnx::prelude::Framework;

use super::ModelError;
use super::contract::Task;
use super::meta;

/// One dimension of a declared tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A concrete size (`dim_value`).
    Fixed(i64),
    /// A named symbolic size (`dim_param`), e.g. `H`.
    Symbolic(String),
    /// Neither value nor name given.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// An ONNX element type (`TensorProto.DataType` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElemType(pub i32);

impl ElemType {
    /// True for 32-bit float.
    pub fn is_f32(self) -> bool {
        self.0 == pb::tensor_proto::DataType::Float as i32
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use pb::tensor_proto::DataType;
        match DataType::try_from(self.0) {
            Ok(DataType::Float) => f.write_str("f32"),
            Ok(DataType::Float16) => f.write_str("f16"),
            Ok(DataType::Double) => f.write_str("f64"),
            Ok(DataType::Undefined) | Err(_) => write!(f, "type#{}", self.0),
            Ok(other) => f.write_str(&other.as_str_name().to_ascii_lowercase()),
        }
    }
}

/// A graph input or output as the file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub elem_type: ElemType,
    /// Declared shape; `None` when the file gives no shape.
    pub dims: Option<Vec<Dim>>,
}

impl TensorInfo {
    /// The shape as text, e.g. `[1,1,H,W]` (`[?]` when not declared).
    pub fn shape_string(&self) -> String {
        match &self.dims {
            Some(d) => format!(
                "[{}]",
                d.iter().map(Dim::to_string).collect::<Vec<_>>().join(",")
            ),
            None => "[?]".to_string(),
        }
    }

    fn from_proto(v: &pb::ValueInfoProto) -> TensorInfo {
        let tensor = v
            .r#type
            .as_ref()
            .and_then(|t| t.value.as_ref())
            .map(|value| {
                let pb::type_proto::Value::TensorType(t) = value;
                t
            });
        let dims = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(v)) => Dim::Fixed(*v),
                    Some(DimValue::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                    _ => Dim::Unknown,
                })
                .collect()
        });
        TensorInfo {
            name: v.name.clone(),
            elem_type: ElemType(tensor.map_or(0, |t| t.elem_type)),
            dims,
        }
    }
}

impl fmt::Display for TensorInfo {
    /// `name: f32 [1,1,H,W]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}",
            self.name,
            self.elem_type,
            self.shape_string()
        )
    }
}

/// Summary of an ONNX model file, for `inspect` and for the contract checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The file it was read from.
    pub path: PathBuf,
    /// `ir_version`.
    pub ir_version: i64,
    /// `opset_import` as (domain, version); the default domain is shown as `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// `producer_name` and `producer_version`, space-separated (may be empty).
    pub producer: String,
    /// Graph inputs that are fed at run time (initializer-backed inputs excluded).
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
    /// All `metadata_props` entries, in file order.
    pub metadata: Vec<(String, String)>,
    /// Node count per op type of the main graph (custom domains shown as `domain.Op`).
    pub op_counts: BTreeMap<String, usize>,
    /// Total number of initializer elements.
    pub parameters: u64,
}

impl ModelInfo {
    /// Reads and summarises the ONNX file at `path` (no graph is built).
    pub fn read(path: &Path) -> Result<ModelInfo, ModelError> {
        let proto = read_proto(path)?;
        Ok(ModelInfo::from_proto(path, &proto))
    }

    /// The summary of an already decoded model.
    pub fn from_proto(path: &Path, proto: &pb::ModelProto) -> ModelInfo {
        let empty = pb::GraphProto::default();
        let graph = proto.graph.as_ref().unwrap_or(&empty);
        let initialized: HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let mut op_counts = BTreeMap::new();
        for node in &graph.node {
            let op = match node.domain.as_str() {
                "" | "ai.onnx" => node.op_type.clone(),
                domain => format!("{domain}.{}", node.op_type),
            };
            *op_counts.entry(op).or_insert(0) += 1;
        }
        let parameters = graph
            .initializer
            .iter()
            .map(|t| {
                t.dims
                    .iter()
                    .map(|&d| u64::try_from(d).unwrap_or(0))
                    .fold(1u64, u64::saturating_mul)
            })
            .fold(0u64, u64::saturating_add);
        ModelInfo {
            path: path.to_path_buf(),
            ir_version: proto.ir_version,
            opsets: proto
                .opset_import
                .iter()
                .map(|o| {
                    let domain = if o.domain.is_empty() {
                        "ai.onnx"
                    } else {
                        o.domain.as_str()
                    };
                    (domain.to_string(), o.version)
                })
                .collect(),
            producer: format!("{} {}", proto.producer_name, proto.producer_version)
                .trim()
                .to_string(),
            inputs: graph
                .input
                .iter()
                .filter(|i| !initialized.contains(i.name.as_str()))
                .map(TensorInfo::from_proto)
                .collect(),
            outputs: graph.output.iter().map(TensorInfo::from_proto).collect(),
            metadata: proto
                .metadata_props
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect(),
            op_counts,
            parameters,
        }
    }

    /// The value of a `metadata_props` entry (the last one if the key repeats).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The declared task, checked against `expected`.
    pub fn check_task(&self, expected: Task) -> Result<(), ModelError> {
        let path = self.path.clone();
        match self.metadata_value(meta::TASK) {
            None => Err(ModelError::NoTask { path, expected }),
            Some(found) if found == expected.as_str() => Ok(()),
            Some(found) => Err(ModelError::WrongTask {
                path,
                found: found.to_string(),
                expected,
            }),
        }
    }

    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|t| t.name == name)
    }

    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|t| t.name == name)
    }

    /// Total node count of the main graph.
    pub fn node_count(&self) -> usize {
        self.op_counts.values().sum()
    }
}

/// Reads and decodes the protobuf at `path`, sorting failures into missing / unreadable /
/// not ONNX.
pub(crate) fn read_proto(path: &Path) -> Result<pb::ModelProto, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ModelError::NotFound {
            path: path.to_path_buf(),
        },
        _ => ModelError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let not_onnx = |source: Box<dyn std::error::Error + Send + Sync>| ModelError::NotOnnx {
        path: path.to_path_buf(),
        source,
    };
    let proto = tract_onnx::Onnx::default()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| not_onnx(e.into()))?;
    if proto.graph.is_none() {
        return Err(not_onnx("the protobuf holds no graph".into()));
    }
    Ok(proto)
}
