//! `ship-tools quantize` on the shipped `rt` model: every convolution becomes QLinearConv, the
//! int8 model runs in ship-edge, and its output stays close to the f32 one.

use std::path::{Path, PathBuf};

use ship_edge::Fuser;
use ship_edge::imaging::{Limits, color, io};
use ship_edge::model::{ModelInfo, meta};
use ship_tools::quantize::{self, Method, QuantizeOptions};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A 96x64 crop of TNO sample 03 (not a calibration pair of this test) as (IR, visible Y).
fn crop() -> (Vec<f32>, Vec<f32>, usize, usize) {
    let load = |k: &str| {
        io::load(
            &repo().join("samples/tno").join(k).join("03.png"),
            &Limits::default(),
        )
        .unwrap()
    };
    let (ir, vis) = (load("ir"), load("vi"));
    let w = vis.width();
    let (iy, vy) = (color::infrared(&ir).to_vec(), color::split_visible(&vis).0);
    let (x0, y0, cw, ch) = (300, 200, 96, 64);
    let cut = |p: &[f32]| -> Vec<f32> {
        (y0..y0 + ch)
            .flat_map(|y| p[y * w + x0..][..cw].to_vec())
            .collect()
    };
    (cut(&iy), cut(&vy), cw, ch)
}

#[test]
fn quantized_rt_model_runs_in_int8_close_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    // Calibration folder: two sample pairs (the test must not need the shared data set).
    for kind in ["ir", "vi"] {
        std::fs::create_dir_all(dir.path().join("calib").join(kind)).unwrap();
        for n in ["01", "05"] {
            std::fs::copy(
                repo()
                    .join("samples/tno")
                    .join(kind)
                    .join(format!("{n}.png")),
                dir.path().join("calib").join(kind).join(format!("{n}.png")),
            )
            .unwrap();
        }
    }
    let f32_model = repo().join("models/ship_rt_ivif.onnx");
    let out = dir.path().join("rt_int8.onnx");
    let opts = QuantizeOptions {
        method: Method::Percentile,
        pairs: 2,
        ..QuantizeOptions::default()
    };
    let report = quantize::quantize(
        &f32_model,
        &dir.path().join("calib"),
        &opts,
        &out,
        &mut |_, _, _| {},
    )
    .unwrap();
    // The output convolution stays f32 (it writes the fused image).
    assert_eq!((report.quantized_convs, report.float_convs), (53, 1));
    assert_eq!(report.calibration, ["01", "05"]);

    let info = ModelInfo::read(&out).unwrap();
    assert_eq!(info.op_counts.get("QLinearConv"), Some(&53));
    assert_eq!(info.op_counts.get("Conv"), Some(&1));
    assert!(
        info.metadata_value(meta::QUANTIZATION)
            .unwrap()
            .contains("53 of 54")
    );

    let (ir, vis, w, h) = crop();
    let reference = Fuser::from_onnx(&f32_model)
        .unwrap()
        .fuse_y_raw(&ir, &vis, w, h)
        .unwrap();
    let int8 = Fuser::from_onnx(&out)
        .unwrap()
        .fuse_y_raw(&ir, &vis, w, h)
        .unwrap();
    let mse = reference
        .iter()
        .zip(&int8)
        .map(|(a, b)| ((a.clamp(0.0, 1.0) - b.clamp(0.0, 1.0)) as f64).powi(2))
        .sum::<f64>()
        / reference.len() as f64;
    let psnr = -10.0 * mse.log10();
    // Measured 35–37 dB on full TNO frames with 16 RoadScene calibration pairs; 28 dB catches a
    // broken scale or zero point (those give < 15 dB) without tuning the test to one crop.
    assert!(psnr > 28.0, "int8 vs f32 PSNR {psnr:.1} dB");

    // Quantizing twice is refused, naming the metadata.
    let err = quantize::quantize(
        &out,
        &dir.path().join("calib"),
        &opts,
        &dir.path().join("x.onnx"),
        &mut |_, _, _| {},
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("already quantized"), "{err:#}");
    assert!(!dir.path().join("x.onnx").exists());
}
