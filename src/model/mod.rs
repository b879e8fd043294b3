//! ONNX models through tract: loading, the input/output contract, metadata, and run plans
//! built per frame size. Every error names the model file.
//!
//! [`ModelInfo`] reads what a file declares (no graph built; what `inspect` prints).
//! [`Model`] is a file parsed by tract, not yet bound to a task. [`IvifModel`] is a model
//! checked against the IVIF contract (inputs `vis_y` and `ir`, output `fused`, all
//! `[1, 1, H, W]` f32, `task = ivif`) that runs frames, keeping one optimised plan per size.

pub mod contract;
mod cost;
mod info;
mod ivif;
pub mod meta;
mod pan;
mod plan;

use std::path::{Path, PathBuf};

use tract_onnx::pb;
use tract_onnx::prelude::InferenceModel;

use crate::ops::qconv_fusion::Fused;

pub use contract::{Task, UnknownTask};
pub use cost::PlanCost;
pub use info::{Dim, ElemType, ModelInfo, TensorInfo};
pub use ivif::{IvifModel, IvifSession};
pub use pan::PanModel;

/// A boxed error from tract or prost, kept as the `source` of a [`ModelError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a model could not be loaded or run. Every variant names the model file first.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file does not exist.
    #[error("{}: model file not found", path.display())]
    NotFound {
        /// The model file.
        path: PathBuf,
    },
    /// The model file exists but could not be read.
    #[error("{}: cannot read the model file", path.display())]
    Io {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an ONNX protobuf.
    #[error("{}: not an ONNX model", path.display())]
    NotOnnx {
        /// The model file.
        path: PathBuf,
        /// What the decoder found.
        #[source]
        source: BoxError,
    },
    /// A valid ONNX file that tract cannot turn into a graph (unknown op, bad attribute).
    #[error("{}: tract cannot load this model", path.display())]
    Load {
        /// The model file.
        path: PathBuf,
        /// tract's error chain.
        #[source]
        source: BoxError,
    },
    /// The model has no `task` entry in its `metadata_props`.
    #[error(
        "{}: the model has no `{}` in its metadata_props (expected `{expected}`): export it with the SHIP contract",
        path.display(), meta::TASK
    )]
    NoTask {
        /// The model file.
        path: PathBuf,
        /// The task the caller needs.
        expected: Task,
    },
    /// The model was exported for another task.
    #[error("{}: model is for task `{found}`, expected `{expected}`", path.display())]
    WrongTask {
        /// The model file.
        path: PathBuf,
        /// The model's `task` entry.
        found: String,
        /// The task the caller needs.
        expected: Task,
    },
    /// A required input or output is absent.
    #[error(
        "{}: the model has no {kind} `{name}` ({kind}s: {}); {contract}",
        path.display(), if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    MissingTensor {
        /// The model file.
        path: PathBuf,
        /// `input` or `output`.
        kind: &'static str,
        /// The missing name.
        name: &'static str,
        /// The names the model has.
        found: Vec<String>,
        /// The contract, in words.
        contract: String,
    },
    /// An input the contract does not know (it could not be fed).
    #[error("{}: unexpected input `{name}`; {contract}", path.display())]
    UnexpectedInput {
        /// The model file.
        path: PathBuf,
        /// The extra input.
        name: String,
        /// The contract, in words.
        contract: String,
    },
    /// An input or output with the wrong type or shape.
    #[error("{}: {kind} `{tensor}` does not match the contract {expected}", path.display())]
    BadTensor {
        /// The model file.
        path: PathBuf,
        /// `input` or `output`.
        kind: &'static str,
        /// The tensor as declared (`name: type [dims]`).
        tensor: String,
        /// The expected type and shape.
        expected: &'static str,
    },
    /// A `metadata_props` entry the task needs is missing or malformed.
    #[error("{}: metadata `{key}` is {found}, expected {expected}", path.display())]
    BadMetadata {
        /// The model file.
        path: PathBuf,
        /// The entry.
        key: &'static str,
        /// Its value (or `missing`).
        found: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The images do not fit the model (band count, size ratio).
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The model file.
        path: PathBuf,
        /// What does not fit, with both values.
        reason: String,
    },
    /// The model records a fixed input size and the image has another.
    #[error(
        "{}: the model takes a fixed {model_size} (WxH) input but the image is {width}x{height}: resize the images or export the model with symbolic H and W",
        path.display()
    )]
    FixedSize {
        /// The model file.
        path: PathBuf,
        /// The model's size as `WxH` (symbolic parts by name).
        model_size: String,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// tract could not type, optimise or plan the graph for this frame size.
    #[error("{}: cannot build an inference plan for {width}x{height}", path.display())]
    Plan {
        /// The model file.
        path: PathBuf,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// tract's error chain.
        #[source]
        source: BoxError,
    },
    /// Running the plan failed.
    #[error("{}: inference failed", path.display())]
    Run {
        /// The model file.
        path: PathBuf,
        /// tract's error chain.
        #[source]
        source: BoxError,
    },
    /// The model produced an output of the wrong shape or type.
    #[error("{}: output `{name}` is {found}, expected f32 {expected:?}", path.display())]
    BadOutput {
        /// The model file.
        path: PathBuf,
        /// The output name.
        name: &'static str,
        /// What came out (type and shape).
        found: String,
        /// The expected shape.
        expected: Vec<usize>,
    },
}

/// An ONNX file parsed by tract (symbolic shapes kept), with its declared summary.
#[derive(Debug, Clone)]
pub struct Model {
    info: ModelInfo,
    graph: InferenceModel,
    fused: Fused,
}

impl Model {
    /// Reads, decodes and parses the ONNX file at `path`.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let proto = info::read_proto(path)?;
        let info = ModelInfo::from_proto(path, &proto);
        Model::parse(info, &proto)
    }

    /// Parses an already decoded model; `info` must come from the same proto.
    fn parse(info: ModelInfo, proto: &pb::ModelProto) -> Result<Model, ModelError> {
        let load_err = |source: BoxError| ModelError::Load {
            path: info.path.clone(),
            source,
        };
        let dir = info.path.parent().and_then(Path::to_str);
        // Intermediate value_info may carry symbolic dims that would clash with the concrete
        // sizes pinned per frame; tract infers every shape from the inputs anyway.
        let onnx = crate::ops::onnx().with_ignore_value_info(true);
        let proto = crate::ops::qconv_fusion::fuse_activations(&onnx, proto, dir)
            .map_err(|e| load_err(e.into()))?;
        let fused = Fused::of(&proto);
        let parsed = onnx.parse(&proto, dir).map_err(|e| load_err(e.into()))?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(load_err(
                format!(
                    "unresolved graph inputs: {}",
                    parsed.unresolved_inputs.join(", ")
                )
                .into(),
            ));
        }
        Ok(Model {
            info,
            graph: parsed.model,
            fused,
        })
    }

    /// What the file declares.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.info.path
    }

    /// The int8 convolutions that took over the ops behind them at load time
    /// ([`crate::ops::qconv_fusion`]).
    pub fn fused(&self) -> Fused {
        self.fused
    }

    /// tract's inference graph (shapes as declared).
    pub fn graph(&self) -> &InferenceModel {
        &self.graph
    }
}
