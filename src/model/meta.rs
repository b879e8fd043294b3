//! The ONNX contract shared by the exporter (`ship-tools`) and the runtime: graph input and
//! output names and the `metadata_props` keys. Spelled here once.

/// Visible luminance input, `[1,1,H,W]` f32 in `[0,1]`.
pub const INPUT_VIS: &str = "vis_y";
/// Infrared input, `[1,1,H,W]` f32 in `[0,1]`.
pub const INPUT_IR: &str = "ir";
/// Pan-sharpening: multispectral input at its own resolution, `[1,B,h,w]` f32 in `[0,1]`.
pub const INPUT_MS: &str = "ms";
/// Pan-sharpening: panchromatic input, `[1,1,r·h,r·w]` f32 in `[0,1]`.
pub const INPUT_PAN: &str = "pan";
/// Fused output, `[1,C,H,W]` f32 (raw: the runtime clamps).
pub const OUTPUT: &str = "fused";

/// `metadata_props` key: the task (`ivif` or `pansharpen`).
pub const TASK: &str = "task";
/// Task value of infrared-visible fusion models.
pub const TASK_IVIF: &str = "ivif";
/// Task value of pan-sharpening models.
pub const TASK_PANSHARPEN: &str = "pansharpen";
/// `metadata_props` key: architecture / preset name (`ship`, `ship++`, `edge`, `custom`).
pub const ARCHITECTURE: &str = "architecture";
/// `metadata_props` key: the full network configuration as JSON.
pub const CONFIG: &str = "config";
/// `metadata_props` key: feature width.
pub const WIDTH: &str = "width";
/// `metadata_props` key: number of SHIP blocks.
pub const BLOCKS: &str = "blocks";
/// `metadata_props` key: interaction orders.
pub const ORDERS: &str = "orders";
/// `metadata_props` key: output bands.
pub const BANDS: &str = "bands";
/// `metadata_props` key: spatial scale ratio between the inputs (1 for IVIF).
pub const SCALE_RATIO: &str = "scale_ratio";
/// `metadata_props` key, pan-sharpening (optional): the MS frame size in pixels the network was
/// trained on. SHIP's order-1 interaction is a circular convolution over the whole frame, so a
/// network trained on small crops is run in tiles of that size ([`crate::model::PanModel`]).
pub const TILE: &str = "tile";
/// `metadata_props` key: value range of inputs and output, "lo,hi".
pub const VALUE_RANGE: &str = "value_range";
/// `metadata_props` key: what the weights were trained on.
pub const TRAINING_DATA: &str = "training_data";
/// `metadata_props` key: version of the tool that wrote the model.
pub const VERSION: &str = "version";
/// `metadata_props` key: which operators carry the high-order interaction.
pub const OPS: &str = "ops";
/// [`OPS`] value: ship-edge's custom ops (domain [`crate::ops::DOMAIN`]), the fast form.
pub const OPS_CUSTOM: &str = "custom";
/// [`OPS`] value: standard ONNX operators only, the portable form (onnxruntime and others).
pub const OPS_STANDARD: &str = "standard";
/// `metadata_props` key: how the model was quantized (absent on f32 models).
pub const QUANTIZATION: &str = "quantization";
