//! `ship-tools train --task pan`: a few steps of `pan-edge` on small scenes cut from the
//! Landsat-7 sample lower the L1 loss, validate against GSA and MTF-GLP with the
//! reduced-resolution metrics, and leave weights that export to a model the runtime's
//! `PanModel` loads; a band-count mismatch is an error naming the file. A fine-tune from those
//! weights with the full-resolution loss term scores D_λ, D_s and QNR too.

use std::path::{Path, PathBuf};
use std::process::Command;

use ship_edge::dsp::Cube;
use ship_edge::eval::pan::{PanEval, PanSource, Protocol};
use ship_edge::imaging::Limits;
use ship_edge::imaging::multiband::{load_cube, save_cube};
use ship_edge::pansharpen::Sensor;
use ship_tools::train::{checkpoint, record};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/landsat7")
}

/// Four scenes of `bands` MS bands at 64x64 (PAN 128x128) cut from the sample scene.
fn tiny_scenes(root: &Path, bands: usize) -> PathBuf {
    let ms = load_cube(&sample().join("ms/01.tif"), &Limits::default()).unwrap();
    let pan = load_cube(&sample().join("pan/01.tif"), &Limits::default()).unwrap();
    let data = root.join("data");
    for sub in ["ms", "pan"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
    }
    for (i, (x0, y0)) in [(0, 0), (96, 40), (200, 160), (300, 300)]
        .into_iter()
        .enumerate()
    {
        let m = Cube::from_shape_fn((bands, 64, 64), |(b, y, x)| ms[[b, y0 + y, x0 + x]]);
        let p = Cube::from_shape_fn((1, 128, 128), |(_, y, x)| pan[[0, 2 * y0 + y, 2 * x0 + x]]);
        save_cube(&data.join(format!("ms/s{i}.tif")), &m, 8).unwrap();
        save_cube(&data.join(format!("pan/s{i}.tif")), &p, 8).unwrap();
    }
    data
}

fn train(data: &Path, out: &Path) -> std::process::Output {
    train_with(data, out, &[])
}

/// The short run of [`train`] with `extra` flags, which replace its own of the same name.
fn train_with(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let short = [
        ("--steps", "8"),
        ("--batch", "2"),
        ("--crop", "32"),
        ("--lr", "2e-3"),
        ("--val-every", "4"),
        ("--ckpt-every", "8"),
        ("--seed", "5"),
    ];
    Command::new(env!("CARGO_BIN_EXE_ship-tools"))
        .args(["train", "--task", "pan", "--holdout", "1"])
        .args(
            short
                .iter()
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(flag, value)| [*flag, *value]),
        )
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_short_pan_run_lowers_the_loss_validates_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_scenes(tmp.path(), 6);
    let out = tmp.path().join("run");
    let o = train(&data, &out);
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let cfg = record::RunConfig::load(&out).unwrap();
    assert_eq!(cfg.options.preset, "pan-edge");
    assert_eq!(cfg.options.grad_clip, Some(4.0));
    assert_eq!((cfg.train_stems.len(), cfg.val_stems.len()), (3, 1));
    let ckpt = checkpoint::load(&out.join("last.safetensors")).unwrap();
    let rows = &ckpt.history;
    assert_eq!(rows.iter().map(|r| r.step).collect::<Vec<_>>(), [4, 8]);
    assert!(
        rows[1].train_loss < rows[0].train_loss,
        "loss {} -> {}",
        rows[0].train_loss,
        rows[1].train_loss
    );
    let val = rows[1].val.as_ref().expect("validated");
    assert_eq!(val.metrics.len(), 7);
    assert!(val.metrics.iter().all(|m| m.is_finite()), "{val:?}");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        csv.starts_with("step,lr,train_loss,val_loss,PSNR,SSIM,SAM,ERGAS,SCC,Q,Q2n,wall_s"),
        "{csv}"
    );
    let baselines = std::fs::read_to_string(out.join("baselines.csv")).unwrap();
    assert!(
        baselines.contains("\ngsa,") && baselines.contains("\nmtf-glp,"),
        "{baselines}"
    );
    for f in ["loss.png", "val.png", "contact.png", "weights.safetensors"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    // The weights export to a model the runtime loads and runs on a held-out scene.
    let onnx = tmp.path().join("pan.onnx");
    let e = Command::new(env!("CARGO_BIN_EXE_ship-tools"))
        .args(["export", "--preset", "pan-edge", "--weights"])
        .arg(out.join("weights.safetensors"))
        .arg("--out")
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let model = ship_edge::model::PanModel::load(&onnx).unwrap();
    // The export found the run directory: the model runs in tiles of the training frame.
    assert_eq!(model.tile(), Some(16));
    let stem = &cfg.val_stems[0];
    let ms = load_cube(&data.join(format!("ms/{stem}.tif")), &Limits::default()).unwrap();
    let pan = load_cube(&data.join(format!("pan/{stem}.tif")), &Limits::default()).unwrap();
    let pan = pan.index_axis_move(ndarray::Axis(0), 0);
    let fused = model.sharpen_native(&ms, &pan, 255.0).unwrap();
    assert_eq!(fused.dim(), (6, 128, 128));

    // `ship-edge eval` of the exported model on the validation scene reproduces the training's
    // last validation (candle vs tract, the same tiles and rounding).
    let val = tmp.path().join("val");
    for sub in ["ms", "pan"] {
        std::fs::create_dir_all(val.join(sub)).unwrap();
        let name = format!("{sub}/{stem}.tif");
        std::fs::copy(data.join(&name), val.join(&name)).unwrap();
    }
    let eval = PanEval {
        ms_dir: val.join("ms"),
        pan_dir: val.join("pan"),
        protocol: Protocol::Reduced,
        ratio: None,
        bands: None,
        sensor: Sensor::from_name("landsat7").unwrap(),
        sensor_name: "landsat7".into(),
        peak: 255.0,
        sources: vec![PanSource::Model {
            name: "ours".into(),
            model: Box::new(model),
        }],
        limits: Limits::default(),
    };
    let report = eval.run(&mut |_, _| {}).unwrap();
    let trained = &rows[1].val.as_ref().unwrap().metrics;
    for (k, (a, b)) in report.methods[0].mean.iter().zip(trained).enumerate() {
        assert!(
            (a - b).abs() <= 2e-3 * b.abs().max(1.0),
            "{}: eval {a} vs training {b}",
            report.metrics[k]
        );
    }
}

#[test]
fn scenes_with_the_wrong_band_count_are_refused_before_the_run_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_scenes(tmp.path(), 4);
    let out = tmp.path().join("run");
    let o = train(&data, &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s0.tif") && err.contains("4 bands") && err.contains("6"),
        "{err}"
    );
    assert!(!out.exists(), "a failed start leaves no run directory");
}

#[test]
fn a_full_resolution_fine_tune_starts_from_the_weights_and_scores_qnr() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_scenes(tmp.path(), 6);
    let parent = tmp.path().join("parent");
    assert_ok(&train(&data, &parent));
    let weights = parent.join("weights.safetensors");
    let parent_val = checkpoint::load(&parent.join("last.safetensors"))
        .unwrap()
        .history[1]
        .val
        .clone()
        .unwrap();

    // A learning rate too small to move the weights: the first validation of the fine-tune
    // is the parent's last one, so --init loaded the trained weights.
    let out = tmp.path().join("fine");
    let w = weights.to_str().unwrap();
    assert_ok(&train_with(
        &data,
        &out,
        &["--init", w, "--full-res-weight", "0.05", "--lr", "1e-12"],
    ));
    let cfg = record::RunConfig::load(&out).unwrap();
    assert_eq!(cfg.options.full_res_weight, Some(0.05));
    assert_eq!(cfg.options.init.as_deref(), Some(weights.as_path()));
    let ckpt = checkpoint::load(&out.join("last.safetensors")).unwrap();
    let val = ckpt.history[0].val.as_ref().unwrap();
    assert_eq!(val.metrics.len(), 10);
    for (a, b) in val.metrics.iter().zip(&parent_val.metrics) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    let (dl, ds, qnr) = (val.metrics[7], val.metrics[8], val.metrics[9]);
    assert!(dl > 0.0 && ds > 0.0 && qnr > 0.5 && qnr < 1.0, "{val:?}");
    assert!((qnr - (1.0 - dl) * (1.0 - ds)).abs() < 1e-9);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.contains(",Q2n,D_lambda,D_s,QNR,wall_s"), "{csv}");
    let baselines = std::fs::read_to_string(out.join("baselines.csv")).unwrap();
    assert!(baselines.contains(",QNR,mean_rank"), "{baselines}");

    // Bad fine-tunes fail before a run directory exists, naming the problem.
    let refused = |name: &str, extra: &[&str], needle: &str| {
        let out = tmp.path().join(name);
        let o = train_with(&data, &out, extra);
        assert!(!o.status.success(), "{name} started");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!out.exists(), "{name} left a run directory");
    };
    refused(
        "no_weights",
        &["--init", "missing.safetensors"],
        "missing.safetensors",
    );
    refused("wrong_preset", &["--init", w, "--preset", "pan"], "preset");
    refused(
        "odd_crop",
        &["--full-res-weight", "0.05", "--crop", "48"],
        "multiple of 32",
    );
    refused(
        "ratio",
        &[
            "--full-res-weight",
            "0.05",
            "--preset",
            "pan-edge-x4",
            "--bands",
            "1,2,3,4",
            "--crop",
            "64",
        ],
        "PAN/MS ratio 2",
    );
}
