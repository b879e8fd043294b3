//! Custom ops against their standard-ONNX twins: every shipped model (`models/X.onnx`, custom
//! ops) and its portable export from the same weights (`models/portable/X.onnx`, standard ops
//! only) must give the same raw output on the TNO samples.
//!
//! Tolerance 1e-4 absolute on outputs in [0, 1] (issue 6): the two forms differ only in f32
//! rounding (FFT algorithm, summation order), measured at a few 1e-6.
//! Natively two full sample frames are used (the order-1 interaction is global, so a crop would
//! not exercise the full-size FFT); under qemu a crop of pair 01, since tract's DFT in the
//! standard form is slow there.

use std::path::{Path, PathBuf};

use ship_edge::Fuser;
use ship_edge::imaging::multiband::load_cube;
use ship_edge::imaging::{Limits, color, io};
use ship_edge::model::{PanModel, meta};
use ship_edge::ops;

use crate::util::max_abs_diff;

/// Largest raw-output difference allowed between the two forms.
const TOLERANCE: f32 = 1e-4;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (custom, portable) pairs of shipped models.
fn model_pairs() -> Vec<(PathBuf, PathBuf)> {
    let mut pairs: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(repo().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        // int8 models have no twin of their own: `int8_models.rs` holds them to their f32 model.
        .filter(|p| !crate::int8_models::is_quantized(p))
        .map(|p| {
            let portable = repo().join("models/portable").join(p.file_name().unwrap());
            (p, portable)
        })
        .collect();
    pairs.sort();
    pairs
}

/// (IR, visible luminance, width, height) of the sample pairs the test runs on (also the int8
/// models' test).
pub fn inputs() -> Vec<(Vec<f32>, Vec<f32>, usize, usize)> {
    let load = |kind: &str, n: &str| {
        let path = repo()
            .join("samples/tno")
            .join(kind)
            .join(format!("{n}.png"));
        io::load(&path, &Limits::default()).unwrap()
    };
    let pairs: &[&str] = if cfg!(target_arch = "aarch64") {
        &["01"]
    } else {
        // An even and an odd frame size; the shipped pairs agree to 2e-6 (measured).
        &["01", "05"]
    };
    pairs
        .iter()
        .map(|n| {
            let (ir, vis) = (load("ir", n), load("vi", n));
            let (w, h) = (vis.width(), vis.height());
            let (iy, vy) = (color::infrared(&ir).to_vec(), color::split_visible(&vis).0);
            if cfg!(target_arch = "aarch64") {
                let (x0, y0, cw, ch) = (200, 150, 96, 64);
                let cut = |p: &[f32]| -> Vec<f32> {
                    (y0..y0 + ch)
                        .flat_map(|y| p[y * w + x0..][..cw].to_vec())
                        .collect()
                };
                (cut(&iy), cut(&vy), cw, ch)
            } else {
                (iy, vy, w, h)
            }
        })
        .collect()
}

fn metadata<'a>(fuser: &'a Fuser, key: &str) -> Option<&'a str> {
    fuser
        .metadata()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_shipped_model_has_a_portable_twin_with_the_same_output() {
    let pairs = model_pairs();
    assert!(!pairs.is_empty(), "no models/*.onnx");
    let inputs = inputs();
    for (custom, portable) in pairs {
        if let Ok(fast) = PanModel::load(&custom) {
            pan_twins_agree(&fast, &custom, &portable);
            continue;
        }
        let fast = Fuser::from_onnx(&custom).unwrap();
        let twin = Fuser::from_onnx(&portable).unwrap_or_else(|e| {
            panic!(
                "{}: the standard-op twin of {} is missing or broken ({e}); export it with \
                 ship-tools export --ops standard",
                portable.display(),
                custom.display()
            )
        });
        assert_eq!(
            metadata(&fast, meta::OPS),
            Some(meta::OPS_CUSTOM),
            "{}",
            custom.display()
        );
        assert_eq!(
            metadata(&twin, meta::OPS),
            Some(meta::OPS_STANDARD),
            "{}",
            portable.display()
        );
        for (ir, vis, w, h) in &inputs {
            let a = fast.fuse_y_raw(ir, vis, *w, *h).unwrap();
            let b = twin.fuse_y_raw(ir, vis, *w, *h).unwrap();
            let worst = max_abs_diff(&a, &b);
            assert!(
                worst <= TOLERANCE,
                "{} vs {} at {w}x{h}: max |Δ| {worst:e} > {TOLERANCE:e}",
                custom.display(),
                portable.display()
            );
        }
    }
}

/// A pan-sharpening model and its twin on a crop of the Landsat-7 sample (the first `bands`
/// MS bands, 24x24 MS pixels, run whole).
fn pan_twins_agree(fast: &PanModel, custom: &Path, portable: &Path) {
    let twin = PanModel::load(portable).unwrap_or_else(|e| {
        panic!(
            "{}: the standard-op twin of {} is missing or broken ({e})",
            portable.display(),
            custom.display()
        )
    });
    let (b, r, n) = (fast.bands(), fast.ratio(), 24);
    let root = repo().join("samples/landsat7");
    let ms = load_cube(&root.join("ms/01.tif"), &Limits::default()).unwrap();
    let pan = load_cube(&root.join("pan/01.tif"), &Limits::default()).unwrap();
    let ms_crop: Vec<f32> = (0..b)
        .flat_map(|k| (0..n).flat_map(move |y| (0..n).map(move |x| (k, 100 + y, 120 + x))))
        .map(|(k, y, x)| (ms[[k, y, x]] / 255.0) as f32)
        .collect();
    let pan_crop: Vec<f32> = (0..n * r)
        .flat_map(|y| (0..n * r).map(move |x| (200 + y, 240 + x)))
        .map(|(y, x)| (pan[[0, y, x]] / 255.0) as f32)
        .collect();
    let a = fast.run(&ms_crop, &pan_crop, n, n).unwrap();
    let c = twin.run(&ms_crop, &pan_crop, n, n).unwrap();
    let worst = max_abs_diff(&a, &c);
    assert!(
        worst <= TOLERANCE,
        "{} vs {}: max |Δ| {worst:e} > {TOLERANCE:e}",
        custom.display(),
        portable.display()
    );
}

/// The shipped models really use the custom ops (a silent fall-back to the standard form would
/// pass the parity test and lose the speed), and their twins use none.
#[test]
fn shipped_models_carry_the_custom_ops_and_twins_only_standard_ones() {
    for (custom, portable) in model_pairs() {
        let counts = |p: &Path| ship_edge::model::ModelInfo::read(p).unwrap().op_counts;
        let (fast, twin) = (counts(&custom), counts(&portable));
        for op in ops::OP_TYPES {
            let key = format!("{}.{op}", ops::DOMAIN);
            assert!(fast.contains_key(&key), "{}: no {key}", custom.display());
            assert!(
                !twin.keys().any(|k| k.contains(op)),
                "{}: has {op}",
                portable.display()
            );
        }
        assert!(twin.contains_key("DFT"), "{}: no DFT", portable.display());
        assert!(
            !fast.contains_key("DFT"),
            "{}: still has DFT",
            custom.display()
        );
    }
}
