//! `ship-edge inspect`: print what an ONNX model declares.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ship_edge::model::ModelInfo;

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
    std::io::stdout()
        .lock()
        .write_all(render(&info).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn render(info: &ModelInfo) -> String {
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
    let count = |op: &str| info.op_counts.get(op).copied().unwrap_or(0);
    let int8 = count("QLinearConv") + count("ConvInteger");
    if int8 > 0 {
        let _ = writeln!(
            s,
            "int8: {int8} of {} convolutions (QLinearConv / ConvInteger), the rest of the graph f32",
            int8 + count("Conv")
        );
    }
    let _ = writeln!(s, "parameters: {}", info.parameters);
    s
}
