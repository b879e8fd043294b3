//! `ship-edge inspect`: print what an ONNX model declares.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ship_edge::model::{Model, ModelInfo};
use ship_edge::ops::qconv_fusion::Fused;

/// Arguments of `ship-edge inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ONNX model file.
    #[arg(value_name = "MODEL")]
    model: PathBuf,
}

/// Runs `ship-edge inspect`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let info = ModelInfo::read(&args.model)?;
    // What the loader makes of the int8 convolutions (a model tract cannot parse still gets
    // the declared summary, with the reason).
    let fused = if is_int8(&info) {
        Some(
            Model::load(&args.model)
                .map(|m| m.fused())
                .map_err(|e| e.to_string()),
        )
    } else {
        None
    };
    std::io::stdout()
        .lock()
        .write_all(render(&info, fused).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn int8_convolutions(info: &ModelInfo) -> usize {
    let count = |op: &str| info.op_counts.get(op).copied().unwrap_or(0);
    count("QLinearConv") + count("ConvInteger")
}

fn is_int8(info: &ModelInfo) -> bool {
    int8_convolutions(info) > 0
}

fn render(info: &ModelInfo, fused: Option<Result<Fused, String>>) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "model: {}", info.path.display());
    let opsets: Vec<String> = info
        .opsets
        .iter()
        .map(|(d, v)| format!("{d} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "ir_version: {}, opset: {}",
        info.ir_version,
        opsets.join(", ")
    );
    if !info.producer.is_empty() {
        let _ = writeln!(s, "producer: {}", info.producer);
    }
    for (title, tensors) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        let _ = writeln!(s, "{title}:");
        for t in tensors {
            let _ = writeln!(s, "  {t}");
        }
    }
    let _ = writeln!(s, "metadata_props:");
    for (k, v) in &info.metadata {
        let _ = writeln!(s, "  {k} = {v}");
    }
    let _ = writeln!(s, "ops ({} nodes):", info.node_count());
    let kernels = ship_edge::ops::simd::kernels().isa.as_str();
    for (op, n) in &info.op_counts {
        let ours = op
            .strip_prefix(ship_edge::ops::DOMAIN)
            .and_then(|o| o.strip_prefix('.'))
            .is_some_and(|o| ship_edge::ops::OP_TYPES.contains(&o));
        if ours {
            let _ = writeln!(s, "  {op} {n}  (ship-edge custom op, {kernels} kernels)");
        } else {
            let _ = writeln!(s, "  {op} {n}");
        }
    }
    let int8 = int8_convolutions(info);
    if int8 > 0 {
        let convs = int8 + info.op_counts.get("Conv").copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "int8: {int8} of {convs} convolutions (QLinearConv / ConvInteger), the rest of the graph f32"
        );
    }
    match fused {
        Some(Ok(f)) => {
            let _ = writeln!(
                s,
                "at load: {} int8 convolutions write f32 (DequantizeLinear and any Relu/LeakyRelu \
                 behind fused in), {} requantize through their activation (DequantizeLinear → \
                 Relu/LeakyRelu → QuantizeLinear fused in); int8 kernel {}",
                f.dequantizing,
                f.requantizing,
                ship_edge::ops::simd::kernels().isa.as_str()
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(s, "at load: ship-edge cannot load it: {e}");
        }
        None => {}
    }
    let _ = writeln!(s, "parameters: {}", info.parameters);
    s
}
