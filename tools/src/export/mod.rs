//! ONNX export and weight files: the network's emitted graph wrapped into a model that follows the
//! ONNX contract of DESIGN.md (inputs `vis_y`, `ir`; output `fused`; metadata), and the
//! safetensors weight files that training, import and export exchange.

pub mod graph;
pub mod official;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use prost::Message;
use ship_edge::model::meta;
use tract_onnx::pb;

use crate::nets::{Ship, ShipConfig, Task};
pub use graph::OpSet;
use graph::{Dim, Graph, IR_VERSION, OPSET};

/// Errors of weight files and export, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Candle {
        path: PathBuf,
        source: candle_core::Error,
    },
    #[error("{path}: {msg}")]
    Weights { path: PathBuf, msg: String },
    #[error("{path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn candle_err(path: &Path) -> impl FnOnce(candle_core::Error) -> ExportError + '_ {
    move |source| ExportError::Candle {
        path: path.to_path_buf(),
        source,
    }
}

/// What the exported model says about itself (`metadata_props`).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Preset name, or "custom".
    pub architecture: String,
    /// Where the weights come from (data set, steps), written to the model card too.
    pub training_data: String,
    /// Operators of the high-order interaction: custom (fast, ship-edge) or standard (portable).
    pub ops: OpSet,
    /// Pan-sharpening: the MS frame size the network was trained on (metadata `tile`: the
    /// runtime runs tiles of it).
    pub tile: Option<usize>,
}

/// Names and shapes of every variable a configuration has, from a zero-initialised build.
pub fn expected_shapes(cfg: &ShipConfig) -> candle_core::Result<BTreeMap<String, Vec<usize>>> {
    let varmap = VarMap::new();
    Ship::new(
        cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )?;
    let data = varmap.data().lock().expect("varmap poisoned");
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().dims().to_vec()))
        .collect())
}

/// Checks that `tensors` holds exactly the variables of `cfg`, with their shapes.
pub fn check_names(
    tensors: &HashMap<String, Tensor>,
    cfg: &ShipConfig,
    path: &Path,
) -> Result<(), ExportError> {
    let expected = expected_shapes(cfg).map_err(candle_err(path))?;
    let bad = |msg: String| ExportError::Weights {
        path: path.to_path_buf(),
        msg,
    };
    for (name, dims) in &expected {
        match tensors.get(name) {
            None => {
                return Err(bad(format!(
                    "missing tensor `{name}` (is this the right --preset?)"
                )));
            }
            Some(t) if t.dims() != dims.as_slice() => {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, the preset expects {dims:?} (is this the right --preset?)",
                    t.dims()
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !expected.contains_key(*k)) {
        return Err(bad(format!(
            "unexpected tensor `{extra}` (is this the right --preset?)"
        )));
    }
    Ok(())
}

/// Prefix of the network's tensors inside a training checkpoint (`ckpt_STEP.safetensors`).
pub const CHECKPOINT_WEIGHTS_PREFIX: &str = "weights/";

/// Loads a network from a weight file or a training checkpoint, strictly (every name, every
/// shape).
pub fn load_weights(path: &Path, cfg: &ShipConfig, dev: &Device) -> Result<Ship, ExportError> {
    let tensors = read_weights(path, cfg, dev)?;
    Ship::new(cfg, VarBuilder::from_tensors(tensors, DType::F32, dev)).map_err(candle_err(path))
}

/// The network tensors (f32, by variable name) of a weight file or a training checkpoint,
/// checked against `cfg`'s variables and shapes.
pub fn read_weights(
    path: &Path,
    cfg: &ShipConfig,
    dev: &Device,
) -> Result<HashMap<String, Tensor>, ExportError> {
    let mut tensors = candle_core::safetensors::load(path, dev).map_err(candle_err(path))?;
    if tensors
        .keys()
        .any(|k| k.starts_with(CHECKPOINT_WEIGHTS_PREFIX))
    {
        // A checkpoint: keep the network, drop the optimiser state and the history.
        tensors = tensors
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(CHECKPOINT_WEIGHTS_PREFIX)?.to_string(), v)))
            .collect();
    }
    check_names(&tensors, cfg, path)?;
    tensors
        .into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(DType::F32)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(candle_err(path))
}

/// Writes `bytes` to `path` through a temp file in the same directory, then renames it.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    write(tmp.path()).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Temp files are created 0600; a model or weight file is an ordinary output file.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Saves named tensors as safetensors (atomically).
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), ExportError> {
    write_atomic(path, |tmp| {
        candle_core::safetensors::save(tensors, tmp)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// The ONNX model proto of a network in the operator set `info.ops`, with symbolic H and W.
/// IVIF models read `vis_y` and `ir`; pan-sharpening models read `ms` (`[1,B,h,w]`) and `pan`
/// (`[1,1,r·h,r·w]`) and upsample the MS in the graph ([`ship_edge::pansharpen::upsample`]).
pub fn model_proto(net: &Ship, info: &ModelInfo) -> candle_core::Result<pb::ModelProto> {
    let cfg = net.config();
    let mut g = Graph::with_ops(info.ops);
    let plane = |c: usize, h: &'static str, w: &'static str| {
        vec![Dim::Fixed(1), Dim::Fixed(c), Dim::Symbol(h), Dim::Symbol(w)]
    };
    let (inputs, out) = match cfg.task {
        Task::Ivif => {
            let out = net.emit(&mut g, meta::INPUT_VIS, meta::INPUT_IR)?;
            (
                vec![
                    (meta::INPUT_VIS, plane(1, "H", "W")),
                    (meta::INPUT_IR, plane(1, "H", "W")),
                ],
                out,
            )
        }
        Task::Pan { bands, ratio } => {
            let ms_up = g.resize_linear(meta::INPUT_MS, ratio);
            let out = net.emit(&mut g, &ms_up, meta::INPUT_PAN)?;
            (
                vec![
                    (meta::INPUT_MS, plane(bands, "h", "w")),
                    (meta::INPUT_PAN, plane(1, "H", "W")),
                ],
                out,
            )
        }
    };
    g.rename_output(&out, meta::OUTPUT)?;
    let mut opset_import = vec![pb::OperatorSetIdProto {
        domain: String::new(),
        version: OPSET,
    }];
    if g.uses_custom_ops() {
        opset_import.push(pb::OperatorSetIdProto {
            domain: ship_edge::ops::DOMAIN.into(),
            version: ship_edge::ops::DOMAIN_VERSION,
        });
    }
    let graph = g.into_proto(
        "ship",
        &inputs,
        &[(meta::OUTPUT, plane(cfg.task.bands(), "H", "W"))],
    );
    let mut props = vec![
        (meta::TASK, cfg.task.as_str().to_string()),
        (meta::ARCHITECTURE, info.architecture.clone()),
        (
            meta::CONFIG,
            serde_json::to_string(cfg).expect("config serialises"),
        ),
        (meta::WIDTH, cfg.width.to_string()),
        (meta::BLOCKS, cfg.blocks.to_string()),
        (meta::ORDERS, cfg.orders.to_string()),
        (meta::BANDS, cfg.task.bands().to_string()),
        (meta::SCALE_RATIO, cfg.task.ratio().to_string()),
        (meta::VALUE_RANGE, "0,1".into()),
        (meta::TRAINING_DATA, info.training_data.clone()),
        (meta::OPS, info.ops.as_str().into()),
        (meta::VERSION, env!("CARGO_PKG_VERSION").into()),
    ];
    if let Some(t) = info.tile {
        props.push((meta::TILE, t.to_string()));
    }
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import,
        producer_name: "ship-tools".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: props
            .into_iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
        ..Default::default()
    })
}

/// Exports a network to an ONNX file (atomically).
pub fn export_onnx(net: &Ship, info: &ModelInfo, path: &Path) -> Result<(), ExportError> {
    let proto = model_proto(net, info).map_err(candle_err(path))?;
    let bytes = proto.encode_to_vec();
    write_atomic(path, |tmp| std::fs::write(tmp, &bytes))
}

/// Conv MACs per output pixel of a network, counted on its emitted graph (FFT not included).
pub fn macs_per_pixel(net: &Ship) -> candle_core::Result<u64> {
    let mut g = Graph::new();
    net.emit(&mut g, meta::INPUT_VIS, meta::INPUT_IR)?;
    Ok(g.conv_macs_per_pixel())
}
