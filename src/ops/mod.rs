//! Custom tract operators for SHIP's high-order interaction, and their SIMD kernels.
//!
//! Each op is one file holding the op, its facts, its eval and its ONNX parser; [`register`] is
//! the one list of op types. Every op has a standard-ONNX twin the exporter emits instead with
//! `ship-tools export --ops standard`, so each model also exists in a form any ONNX runtime
//! loads; `tests/ops_parity.rs` holds the two forms to each other.

pub mod fft2;
pub mod global_interaction;
pub mod high_order_gate;
pub mod qlinear_conv;
pub mod simd;

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
    // Our int8 convolution takes the standard op over; tract's parser stays, under another key,
    // for the nodes ours does not cover. Registering twice must not lose it.
    let ops = &mut onnx.op_register.0;
    if !ops.contains_key(qlinear_conv::TRACT_PARSER_KEY)
        && let Some(tract_parser) = ops.get(qlinear_conv::OP_TYPE).copied()
    {
        ops.insert(qlinear_conv::TRACT_PARSER_KEY.to_string(), tract_parser);
    }
    onnx.op_register
        .insert(qlinear_conv::OP_TYPE, qlinear_conv::parse);
}

/// tract-onnx's loader with the built-in ops and ours.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    register(&mut onnx);
    onnx
}
