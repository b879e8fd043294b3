//! The exported ONNX model computes what the candle network computes, through the runtime's own
//! `Fuser` (tract), for every preset's structure; training runs and its weights export.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use ship_edge::Fuser;
use ship_edge::imaging::{Limits, color, io};
use ship_tools::export::{self, ModelInfo, OpSet};
use ship_tools::nets::{self, ShipConfig};
use ship_tools::train::{self, TrainOptions};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/tno")
}

/// A `w x h` crop of sample pair 05 (visible Y, IR), starting at (x0, y0).
fn crop(x0: usize, y0: usize, w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let vis = io::load(&samples().join("vi/05.png"), &Limits::default()).unwrap();
    let ir = io::load(&samples().join("ir/05.png"), &Limits::default()).unwrap();
    let (vy, iy) = (color::split_visible(&vis).0, color::infrared(&ir).to_vec());
    let cut = |p: &[f32]| {
        (y0..y0 + h)
            .flat_map(|y| p[y * vis.width() + x0..][..w].to_vec())
            .collect::<Vec<_>>()
    };
    (cut(&vy), cut(&iy))
}

fn roundtrip_error(cfg: &ShipConfig, name: &str, w: usize, h: usize, ops: OpSet) -> f32 {
    let (net, _vars) = nets::build_trainable(cfg, 7, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    let info = ModelInfo {
        architecture: name.into(),
        training_data: "none (seeded init, test)".into(),
        ops,
        tile: None,
    };
    export::export_onnx(&net, &info, &onnx).unwrap();
    let (vy, iy) = crop(200, 150, w, h);
    let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), (1, 1, h, w), &Device::Cpu).unwrap();
    let ours = net
        .forward(&t(&vy), &t(&iy))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let fuser = Fuser::from_onnx(&onnx).unwrap();
    assert_eq!(
        fuser
            .metadata()
            .iter()
            .find(|(k, _)| k == "architecture")
            .map(|(_, v)| v.as_str()),
        Some(name)
    );
    let tract = fuser.fuse_y_raw(&iy, &vy, w, h).unwrap();
    ours.iter()
        .zip(&tract)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
}

// Seeded random weights give outputs of order 1; f32 differences between the candle and tract
// kernels stay below 1e-4 on these small crops (odd sizes on purpose: the FFT must not assume
// even or power-of-two sizes). Both operator sets: the custom ops and their standard twins.
#[test]
fn edge_export_runs_in_the_runtime_with_the_candle_output() {
    for ops in [OpSet::Custom, OpSet::Standard] {
        let err = roundtrip_error(&ShipConfig::edge(), "edge", 53, 37, ops);
        assert!(err < 1e-4, "edge, {ops:?} ops: max abs error {err:e}");
    }
}

#[test]
fn ship_pp_export_runs_in_the_runtime_with_the_candle_output() {
    for ops in [OpSet::Custom, OpSet::Standard] {
        let err = roundtrip_error(&ShipConfig::ship_pp(), "ship++", 41, 30, ops);
        assert!(err < 1e-4, "ship++, {ops:?} ops: max abs error {err:e}");
    }
}

#[test]
fn each_ship_pp_switch_changes_the_network() {
    let base = ShipConfig::ship();
    let variants = [
        ShipConfig {
            cross_order_attention: true,
            ..base
        },
        ShipConfig {
            cross_order_integration: true,
            ..base
        },
        ShipConfig {
            residual_memory: true,
            ..base
        },
    ];
    let (vy, iy) = crop(100, 100, 24, 20);
    let t = |v: &[f32]| Tensor::from_vec(v.to_vec(), (1, 1, 20, 24), &Device::Cpu).unwrap();
    let run = |cfg: &ShipConfig| {
        let (net, _) = nets::build_trainable(cfg, 3, &Device::Cpu).unwrap();
        net.forward(&t(&vy), &t(&iy))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let reference = run(&base);
    for cfg in &variants {
        let out = run(cfg);
        let diff = out
            .iter()
            .zip(&reference)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff > 1e-4, "{cfg:?} gives the same output as SHIP");
    }
}

#[test]
fn edge_preset_fits_the_arm_budget_and_ship_has_the_paper_size() {
    let macs = |cfg: &ShipConfig| {
        let (net, vars) = nets::build_trainable(cfg, 0, &Device::Cpu).unwrap();
        (
            export::macs_per_pixel(&net).unwrap(),
            nets::count_parameters(&vars).0,
        )
    };
    let (edge_macs, _) = macs(&ShipConfig::edge());
    assert!(
        edge_macs <= 60_000,
        "edge: {edge_macs} MAC/pixel > 0.06 MMAC"
    );
    let (ship_macs, ship_params) = macs(&ShipConfig::ship());
    assert_eq!(ship_params, 547_509);
    // SHIP_NETWORK.md §2.5: ~0.535 MMAC/pixel (PyTorch's counter, CDC unfolded).
    assert!(
        (520_000..550_000).contains(&ship_macs),
        "ship: {ship_macs} MAC/pixel"
    );
}

#[test]
fn training_steps_reduce_the_loss_and_the_weights_export() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let opts = TrainOptions {
        preset: "edge".into(),
        data: samples(),
        steps: 6,
        batch: 2,
        crop: 32,
        lr: 2e-3,
        seed: 1,
        ..TrainOptions::default()
    };
    let cfg = ShipConfig::edge();
    let report = train::train(
        &opts,
        &run_dir,
        train::Start::Fresh,
        &Device::Cpu,
        &mut train::Silent,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    // The weights file is named after the test's old output, for the error check below.
    let weights = dir.path().join("w.safetensors");
    std::fs::copy(run_dir.join("weights.safetensors"), &weights).unwrap();
    assert!(report.final_loss.is_finite());
    assert!(
        report.final_loss < report.first_loss,
        "loss {} -> {}",
        report.first_loss,
        report.final_loss
    );
    let net = export::load_weights(&weights, &cfg, &Device::Cpu).unwrap();
    let onnx = dir.path().join("m.onnx");
    let info = ModelInfo {
        architecture: "edge".into(),
        training_data: "test".into(),
        ops: OpSet::Custom,
        tile: None,
    };
    export::export_onnx(&net, &info, &onnx).unwrap();
    assert!(Fuser::from_onnx(&onnx).is_ok());
    // The same weights under another preset are refused with a hint.
    let err = export::load_weights(&weights, &ShipConfig::ship(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("w.safetensors") && err.contains("--preset"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("SHIP_model.pth");
    std::fs::write(&bad, b"not a zip").unwrap();
    let out = dir.path().join("w.safetensors");
    let err = export::official::import_official(&bad, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHIP_model.pth") && err.contains("checkpoint"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Max |candle − tract| of a pan-sharpening network on a crop of the Landsat-7 sample: the MS
/// `w x h` (bands `0..bands`), the PAN `ratio` times larger; the exported graph upsamples the MS
/// itself, candle gets it from `upsample_linear`; the runtime side is `PanModel`.
fn pan_roundtrip_error(cfg: &ShipConfig, w: usize, h: usize, ops: OpSet) -> f32 {
    use ship_edge::imaging::multiband::load_cube;
    use ship_edge::pansharpen::upsample::upsample_linear;

    let (bands, ratio) = (cfg.task.bands(), cfg.task.ratio());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/landsat7");
    let ms = load_cube(&root.join("ms/01.tif"), &Limits::default()).unwrap();
    let pan = load_cube(&root.join("pan/01.tif"), &Limits::default()).unwrap();
    let ms_crop: Vec<f32> = (0..bands)
        .flat_map(|b| (0..h).flat_map(move |y| (0..w).map(move |x| (b, 40 + y, 60 + x))))
        .map(|(b, y, x)| (ms[[b % ms.dim().0, y, x]] / 255.0) as f32)
        .collect();
    let pan_crop: Vec<f32> = (0..h * ratio)
        .flat_map(|y| (0..w * ratio).map(move |x| (y, x)))
        .map(|(y, x)| (pan[[0, 40 * 2 + y, 60 * 2 + x]] / 255.0) as f32)
        .collect();
    let (net, _vars) = nets::build_trainable(cfg, 11, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("pan.onnx");
    let info = ModelInfo {
        architecture: "pan-edge".into(),
        training_data: "none (seeded init, test)".into(),
        ops,
        tile: None,
    };
    export::export_onnx(&net, &info, &onnx).unwrap();

    let (hh, ww) = (h * ratio, w * ratio);
    let ms_up: Vec<f32> = ms_crop
        .chunks(w * h)
        .flat_map(|plane| upsample_linear(plane, w, h, ratio))
        .collect();
    let up = Tensor::from_vec(ms_up, (1, bands, hh, ww), &Device::Cpu).unwrap();
    let p = Tensor::from_vec(pan_crop.clone(), (1, 1, hh, ww), &Device::Cpu).unwrap();
    let ours = net
        .forward(&up, &p)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();

    let model = ship_edge::model::PanModel::load(&onnx).unwrap();
    assert_eq!((model.bands(), model.ratio()), (bands, ratio));
    let tract = model.run(&ms_crop, &pan_crop, w, h).unwrap();
    assert_eq!(tract.len(), bands * hh * ww);
    // Threads split tract's kernels, not the arithmetic: the same result.
    let two = ship_edge::model::PanModel::load(&onnx)
        .unwrap()
        .with_threads(2);
    let threaded = two.run(&ms_crop, &pan_crop, w, h).unwrap();
    let spread = tract
        .iter()
        .zip(&threaded)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(spread < 1e-6, "1 vs 2 threads: {spread:e}");
    ours.iter()
        .zip(&tract)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
}

// The pan-sharpening variant: MS upsampling in the graph (Resize, linear, half-pixel), the
// residual head, 6 bands at ratio 2 (Landsat-7) and 4 bands at ratio 4, both operator sets.
#[test]
fn pan_export_runs_in_tract_with_the_candle_output() {
    use ship_tools::nets::Task;
    for (task, w, h) in [
        (Task::Pan { bands: 6, ratio: 2 }, 23, 17),
        (Task::Pan { bands: 4, ratio: 4 }, 11, 9),
    ] {
        for ops in [OpSet::Custom, OpSet::Standard] {
            let cfg = ShipConfig::pan_edge().with_task(task);
            let err = pan_roundtrip_error(&cfg, w, h, ops);
            assert!(err < 1e-4, "{task:?}, {ops:?} ops: max abs error {err:e}");
        }
    }
}
