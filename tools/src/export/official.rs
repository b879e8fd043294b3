//! Import of the authors' released SHIP-IVIF checkpoint (`SHIP_model.pth`, key `params`).
//!
//! Our `ship` preset names its variables like the official state dict, so the import is a strict
//! name-and-shape check followed by a copy: every one of the 484 tensors must be used, every
//! variable of the preset must be found. The LU 1x1 convs and the CDC convs keep their training
//! parametrisation in the weight file; they are folded by the network modules themselves
//! (`Cdc::folded`, `InvConv::folded`), which the candle forward and the ONNX export share.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};

use super::{ExportError, check_names, save_tensors};
use crate::nets::ShipConfig;

/// The state-dict key the released checkpoint stores its weights under.
pub const CHECKPOINT_KEY: &str = "params";

/// Reads the official checkpoint into our `ship` preset's variable names.
pub fn read_official(pth: &Path) -> Result<HashMap<String, Tensor>, ExportError> {
    let bad = |msg: String| ExportError::Weights {
        path: pth.to_path_buf(),
        msg,
    };
    if !pth.is_file() {
        return Err(bad("no such file".into()));
    }
    let tensors =
        candle_core::pickle::read_all_with_key(pth, Some(CHECKPOINT_KEY)).map_err(|e| {
            bad(format!(
                "not a readable PyTorch checkpoint with key `{CHECKPOINT_KEY}`: {e}"
            ))
        })?;
    // read_all_with_key returns no tensors, without an error, for a pickle lacking the key.
    if tensors.is_empty() {
        return Err(bad(format!("no tensors under key `{CHECKPOINT_KEY}`")));
    }
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(|source| ExportError::Candle {
            path: pth.to_path_buf(),
            source,
        })?;
    check_names(&tensors, &ShipConfig::ship(), pth)?;
    Ok(tensors)
}

/// `ship-tools import-official`: checkpoint in, safetensors for the `ship` preset out.
pub fn import_official(pth: &Path, out: &Path) -> Result<usize, ExportError> {
    let tensors = read_official(pth)?;
    save_tensors(&tensors, out)?;
    Ok(tensors.len())
}
