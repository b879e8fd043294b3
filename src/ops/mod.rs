//! Custom tract operators for SHIP's high-order interaction, and their SIMD kernels.
//!
//! Each op is one file holding the op, its facts, its eval and its ONNX parser; [`register`] is
//! the one list of op types. Every op has a standard-ONNX twin the exporter emits instead with
//! `ship-tools export --ops standard`, so each model also exists in a form any ONNX runtime
//! loads; `tests/ops_parity.rs` holds the two forms to each other.

pub mod fft2;
pub mod global_interaction;
pub mod high_order_gate;
pub mod qconv_fusion;
pub mod qlinear_conv;
pub mod quantize_linear;
pub mod simd;
pub mod takeover;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::{InferenceOp, TractResult};

/// A raw pointer that parallel jobs share, each writing a region no other job writes (the
/// caller's argument, at every dereference). Also used by `ship-tools`' training kernels.
#[derive(Debug)]
pub struct SendPtr<T>(pub *mut T);

impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: the wrapper only carries the address; every write through it is the caller's, to a
// region no other job touches.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer `offset` elements on. Taking `self` makes closures capture the whole
    /// (`Sync`) wrapper, not the raw field. Computing it is safe; writing through it is not.
    pub fn at(self, offset: usize) -> *mut T {
        self.0.wrapping_add(offset)
    }
}

/// Runs `work` on the tract executor's threads: `work(true)` inside its rayon pool (or rayon's
/// global one), `work(false)` when the executor is single-threaded, so that our kernels use the
/// threads the caller gave tract and no others.
pub(crate) fn on_tract_threads<R: Send>(work: impl FnOnce(bool) -> R + Send) -> R {
    use tract_linalg::multithread::{Executor, current_tract_executor};
    match current_tract_executor() {
        Executor::MultiThread(pool) => pool.install(|| work(true)),
        Executor::RayonGlobal => work(true),
        Executor::SingleThread => work(false),
    }
}

/// An ONNX node parser, as tract-onnx's register holds them (its alias is private).
type Parser = fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// ONNX domain of our ops (tract ignores domains; onnxruntime needs one per `opset_import`).
pub const DOMAIN: &str = "ai.ship-edge";
/// Version of [`DOMAIN`] the ops here implement.
pub const DOMAIN_VERSION: i64 = 1;
/// Every op type of [`DOMAIN`].
pub const OP_TYPES: [&str; 2] = [global_interaction::OP_TYPE, high_order_gate::OP_TYPE];

/// Registers the parser of every custom op with a tract-onnx loader.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register
        .insert(global_interaction::OP_TYPE, global_interaction::parse);
    onnx.op_register
        .insert(high_order_gate::OP_TYPE, high_order_gate::parse);
    onnx.op_register
        .insert(qconv_fusion::FUSED_OP_TYPE, qlinear_conv::parse_fused);
    // Our int8 kernels take standard ops over; tract's parsers stay, under other keys, for the
    // nodes ours do not cover. Registering twice must not lose them.
    for (op_type, tract_key, ours) in [
        (
            qlinear_conv::OP_TYPE,
            qlinear_conv::TRACT_PARSER_KEY,
            qlinear_conv::parse as Parser,
        ),
        (
            quantize_linear::OP_TYPE,
            quantize_linear::TRACT_PARSER_KEY,
            quantize_linear::parse,
        ),
    ] {
        let ops = &mut onnx.op_register.0;
        if !ops.contains_key(tract_key)
            && let Some(tract_parser) = ops.get(op_type).copied()
        {
            ops.insert(tract_key.to_string(), tract_parser);
        }
        onnx.op_register.insert(op_type, ours);
    }
}

/// tract-onnx's loader with the built-in ops and ours.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    register(&mut onnx);
    onnx
}
