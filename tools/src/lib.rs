//! ship-tools: SHIP / SHIP++ fusion networks in candle, their training, the import of the
//! authors' checkpoint and ONNX export for the `ship-edge` runtime.

pub mod export;
pub mod nets;
pub mod quantize;
pub mod train;
