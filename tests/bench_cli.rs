//! `ship-edge bench`: the JSON report has every field with sane values, MACs scale with the
//! frame, and bad arguments fail before any work.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::Dir;

fn rt_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/ship_rt_ivif.onnx")
}

fn bench_json(dir: &Dir, size: &str, extra: &[&str]) -> Value {
    let out = dir
        .command()
        .args([
            "bench",
            "--size",
            size,
            "--frames",
            "3",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--json",
        ])
        .arg_pair("--model", rt_model())
        .args(extra)
        .stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn json_report_has_every_field() {
    let dir = Dir::new("bench-json");
    let r = bench_json(&dir, "40x32", &["-o", "report.json", "--profile", "2"]);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(saved, r, "the -o file is the printed report");

    assert_eq!(r["schema"], "ship-edge-bench/1");
    assert_eq!(r["tract_version"], "0.23.9");
    assert_eq!(r["architecture"], "rt");
    assert_eq!(r["precision"], "f32");
    assert_eq!(r["size"], serde_json::json!({"width": 40, "height": 32}));
    assert_eq!(
        (
            r["threads"].as_u64(),
            r["frames"].as_u64(),
            r["warmup"].as_u64()
        ),
        (Some(1), Some(3), Some(1))
    );
    assert_eq!(r["model_sha256"].as_str().unwrap().len(), 64);
    assert!(!r["git_sha"].as_str().unwrap().is_empty());

    let l = &r["latency_ms"];
    let get = |k: &str| {
        l[k].as_f64()
            .unwrap_or_else(|| panic!("latency_ms.{k}: {l}"))
    };
    let order = [get("min"), get("p50"), get("p90"), get("p99"), get("max")];
    assert!(
        order[0] > 0.0 && order.windows(2).all(|w| w[0] <= w[1]),
        "{l}"
    );
    assert!(get("min") <= get("mean") && get("mean") <= get("max") && get("std") >= 0.0);
    let fps = r["fps"].as_f64().unwrap();
    assert!((fps - 1000.0 / get("mean")).abs() < 1e-6 * fps, "{fps}");
    assert!(r["load_ms"].as_f64().unwrap() > 0.0);
    assert!(r["first_inference_ms"].as_f64().unwrap() > 0.0);

    let macs = r["macs_per_frame"].as_u64().unwrap();
    assert_eq!(r["cost"]["macs_float"].as_u64(), Some(macs));
    assert_eq!(r["cost"]["macs_int8"].as_u64(), Some(0));
    let gmacs = r["gmacs_per_s"].as_f64().unwrap();
    assert!((gmacs - macs as f64 / (get("p50") * 1e6)).abs() < 1e-9 * gmacs.max(1.0));
    assert!(
        r["cost"]["plan_ops"].as_object().unwrap().len() > 5,
        "{}",
        r["cost"]
    );
    assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    let kernels = r["op_kernels"].as_str().unwrap();
    assert_eq!(kernels, ship_edge::ops::simd::kernels().isa.as_str());

    // Two profiled frames: time per op type of the plan, slowest first, shares summing to 1.
    assert_eq!(r["profile_frames"].as_u64(), Some(2));
    let profile = r["profile"].as_array().unwrap();
    let ops: Vec<&str> = profile.iter().map(|t| t["op"].as_str().unwrap()).collect();
    // The shipped model's order-1 interaction runs as our custom op, not tract's DFT.
    assert!(ops.contains(&"GlobalInteraction"), "{ops:?}");
    assert!(!ops.contains(&"Fft"), "{ops:?}");
    let ms: Vec<f64> = profile.iter().map(|t| t["ms"].as_f64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "{ms:?}");
    let shares: f64 = profile.iter().map(|t| t["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");

    let sys = &r["system"];
    assert_eq!(sys["arch"], std::env::consts::ARCH);
    assert!(sys["cores"].as_u64().unwrap() >= 1);
    let simd: Vec<&str> = sys["simd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    if cfg!(target_arch = "x86_64") {
        assert!(simd.contains(&"sse4.1"), "{simd:?}");
    }
    if cfg!(target_arch = "aarch64") {
        assert!(simd.contains(&"neon"), "{simd:?}");
    }
    let ts = r["timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
}

#[test]
fn macs_scale_with_the_frame_and_match_the_model_card() {
    let dir = Dir::new("bench-macs");
    let small = bench_json(&dir, "40x32", &[])["macs_per_frame"]
        .as_u64()
        .unwrap();
    let large = bench_json(&dir, "80x64", &[])["macs_per_frame"]
        .as_u64()
        .unwrap();
    // Every conv is "same"-padded at full or a fixed fraction of the resolution; only the
    // channel attention's matmuls on pooled vectors do not grow with the frame.
    let ratio = large as f64 / small as f64;
    assert!((ratio - 4.0).abs() < 4e-3, "{small} -> {large}");
    // models/ship_rt_ivif.md: 5,976 conv MACs per pixel by the exporter's own count of its
    // layers; tract counts the graph it runs (folded convs, matmuls): within a few percent.
    let per_pixel = small as f64 / (40.0 * 32.0);
    assert!((per_pixel - 5976.0).abs() / 5976.0 < 0.03, "{per_pixel}");
}

#[test]
fn human_report_names_latency_and_machine() {
    let dir = Dir::new("bench-text");
    let out = dir
        .command()
        .args([
            "bench", "--size", "lepton", "--frames", "1", "--warmup", "0",
        ])
        .arg_pair("--model", rt_model())
        .stdout();
    for part in [
        "160x120",
        "latency ms: p50",
        "GMAC/frame",
        "peak RSS",
        "kernels:",
        "simd:",
        "tract 0.23.9",
    ] {
        assert!(out.contains(part), "{part:?} not in:\n{out}");
    }
}

#[test]
fn bad_arguments_fail_before_work() {
    let dir = Dir::new("bench-bad");
    let err = dir
        .command()
        .args(["bench", "--size", "640x0"])
        .fails_with(2);
    assert!(
        err.contains("give WxH") && err.contains("boson (640x512)"),
        "{err}"
    );
    let err = dir.command().args(["bench", "--frames", "0"]).fails_with(2);
    assert!(err.contains("--frames"), "{err}");
    let err = dir
        .command()
        .args(["bench", "--model", "missing.onnx"])
        .fails_with(1);
    assert!(
        err.contains("missing.onnx") && err.contains("not found"),
        "{err}"
    );
    let err = dir
        .command()
        .args(["bench", "-o", "no/such/dir/r.json"])
        .arg_pair("--model", rt_model())
        .fails_with(1);
    assert!(err.contains("no/such/dir"), "{err}");
    assert_eq!(dir.files(), Vec::<String>::new());
}
