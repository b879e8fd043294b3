//! Pan-sharpening metrics, MTF filters, interp23tap and the `pansharpen` CLI against reference
//! values computed independently (`tools/scripts/metrics_fixtures_pan.py`: numpy
//! transcriptions of Vivone's MATLAB toolbox, and sewar where its definitions coincide), on
//! Landsat-7 scenes fused by our baselines, plus invariants and bad inputs.

use std::path::{Path, PathBuf};

use ndarray::Axis;
use serde_json::Value;
use ship_edge::baselines::pan::{PanMethod, pansharpen};
use ship_edge::dsp::{Cube, Image};
use ship_edge::imaging::Limits;
use ship_edge::imaging::multiband::{load_cube, save_cube};
use ship_edge::metrics::pan::{self, PanMetric, ReducedOptions};
use ship_edge::pansharpen::mtf::{kaiser, mtf_kernel};
use ship_edge::pansharpen::resize::{Method, imresize};
use ship_edge::pansharpen::{PanError, Sensor, interp23tap, wald};

use crate::util::Dir;

const REL_TOL: f64 = 1e-3;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/metrics")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number array: {other}"),
    }
}

fn cube_from(v: &Value) -> Cube {
    let b = v.as_array().unwrap();
    let h = b[0].as_array().unwrap().len();
    let w = b[0][0].as_array().unwrap().len();
    Cube::from_shape_vec((b.len(), h, w), floats(v)).unwrap()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// The Landsat-7 directory holding `ms/NN.tif` and `pan/NN.tif` for `scene`: the shipped
/// sample (scene 01 only), else `../shared/data/pansharpen/landsat7`.
fn landsat_dir(scene: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("samples/landsat7"),
        root.join("../shared/data/pansharpen/landsat7"),
    ]
    .into_iter()
    .find(|d| {
        d.join(format!("ms/{scene}.tif")).is_file() && d.join(format!("pan/{scene}.tif")).is_file()
    })
}

fn check_rel(what: &str, got: f64, want: f64, tol: f64) -> f64 {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel <= tol,
        "{what}: got {got}, reference {want} (relative error {rel:.2e})"
    );
    rel
}

#[test]
fn mtf_filters_interp23tap_and_imresize_match_numpy_transcription() {
    let fx = fixture("pan_filters.json");
    assert!(max_abs_diff(&kaiser(41, 0.5), &floats(&fx["kaiser41"])) < 1e-14);
    for case in fx["mtf"].as_array().unwrap() {
        let (g, r) = (
            case["gnyq"].as_f64().unwrap(),
            case["ratio"].as_u64().unwrap() as usize,
        );
        let k = mtf_kernel(g, r);
        assert!(
            (k.sum() - case["sum"].as_f64().unwrap()).abs() < 1e-12,
            "sum GNyq {g} r {r}"
        );
        for (row, key) in [(20, "row20"), (10, "row10")] {
            let err = max_abs_diff(&k.row(row).to_vec(), &floats(&case[key]));
            assert!(err < 1e-13, "GNyq {g} r {r} {key}: {err}");
        }
    }
    let src = cube_from(&fx["interp_input"]);
    for (r, key) in [(2, "interp23tap_r2"), (4, "interp23tap_r4")] {
        let got = interp23tap(&src, r).unwrap();
        let want = cube_from(&fx[key]);
        assert_eq!(got.dim(), want.dim(), "{key}");
        let err = max_abs_diff(got.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-10, "{key}: {err}");
    }
    let img = cube_from(&serde_json::json!([fx["imresize_input"]])).index_axis_move(Axis(0), 0);
    for (scale, key) in [
        (0.5, "imresize_bicubic_half"),
        (0.25, "imresize_bicubic_quarter"),
    ] {
        let got = imresize(&img, scale, Method::Bicubic);
        let want = cube_from(&serde_json::json!([fx[key]])).index_axis_move(Axis(0), 0);
        assert_eq!(got.dim(), want.dim(), "{key}");
        let err = max_abs_diff(
            &got.iter().copied().collect::<Vec<_>>(),
            &want.iter().copied().collect::<Vec<_>>(),
        );
        assert!(err < 1e-10, "{key}: {err}");
    }
}

/// A textured synthetic scene: 6 correlated bands of DN and a PAN that is their mean plus
/// detail, at ratio 2.
fn synthetic(h: usize, w: usize) -> (Cube, Image) {
    let pan = Image::from_shape_fn((2 * h, 2 * w), |(y, x)| {
        let (fy, fx) = (y as f64, x as f64);
        100.0 + 40.0 * (fy / 7.0).sin() * (fx / 11.0).cos() + ((y * 31 + x * 17) % 13) as f64
    });
    let ms = Cube::from_shape_fn((6, h, w), |(b, y, x)| {
        let p = pan[[2 * y + 1, 2 * x + 1]];
        (p * (0.6 + 0.1 * b as f64) + 5.0 * b as f64 + ((y + 3 * x + b) % 5) as f64).round()
    });
    (ms, pan)
}

fn value(values: &[(PanMetric, f64)], m: PanMetric) -> f64 {
    values.iter().find(|(k, _)| *k == m).unwrap().1
}

#[test]
fn identical_images_give_ideal_scores() {
    let (ms, pan) = synthetic(64, 64);
    let opts = ReducedOptions {
        ratio: 2,
        ..ReducedOptions::default()
    };
    let r = pan::reduced(&ms, &ms, &opts).unwrap();
    assert_eq!(value(&r, PanMetric::Psnr), f64::INFINITY);
    assert!((value(&r, PanMetric::Ssim) - 1.0).abs() < 1e-12);
    assert!(value(&r, PanMetric::Sam).abs() < 1e-6);
    assert_eq!(value(&r, PanMetric::Ergas), 0.0);
    assert!((value(&r, PanMetric::Scc) - 1.0).abs() < 1e-12);
    assert!((value(&r, PanMetric::Q) - 1.0).abs() < 1e-12);
    assert!((value(&r, PanMetric::Q2n) - 1.0).abs() < 1e-12);
    // A proportional spectrum has SAM 0 but not ERGAS 0.
    let r2 = pan::reduced(&ms.mapv(|v| 2.0 * v), &ms, &opts).unwrap();
    assert!(value(&r2, PanMetric::Sam).abs() < 1e-6 && value(&r2, PanMetric::Ergas) > 1.0);
    // The cropped variant runs too.
    let cut = ReducedOptions { dim_cut: 5, ..opts };
    assert!((value(&pan::reduced(&ms, &ms, &cut).unwrap(), PanMetric::Q2n) - 1.0).abs() < 1e-12);

    // Full resolution: the upsampled MS itself has no spectral distortion.
    let up = interp23tap(&ms, 2).unwrap();
    let f = pan::full(&up, &ms, &pan, 2, &Sensor::other()).unwrap();
    assert!(value(&f, PanMetric::DLambda).abs() < 1e-12);
    let (dl, ds, q) = (
        value(&f, PanMetric::DLambda),
        value(&f, PanMetric::Ds),
        value(&f, PanMetric::Qnr),
    );
    assert!((q - (1.0 - dl) * (1.0 - ds)).abs() < 1e-15 && q <= 1.0);
    assert!((0.0..=2.0).contains(&ds));
    assert_eq!(PanMetric::Q2n.label(6), "Q8");
    assert_eq!(PanMetric::Q2n.label(4), "Q4");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (ms, pan) = synthetic(32, 32);
    let opts = ReducedOptions {
        ratio: 2,
        ..ReducedOptions::default()
    };
    let five = ms.slice(ndarray::s![..5, .., ..]).to_owned();
    let e = pan::reduced(&five, &ms, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            PanError::Bands {
                got: 5,
                expected: 6,
                ..
            }
        ),
        "{e}"
    );
    let small = ms.slice(ndarray::s![.., ..20, ..]).to_owned();
    let e = pan::reduced(&small, &small, &opts).unwrap_err();
    assert!(e.to_string().contains("32x32"), "{e}");
    let e = pan::reduced(&ms, &ms, &ReducedOptions { peak: 0.0, ..opts }).unwrap_err();
    assert!(e.to_string().contains("peak"), "{e}");
    // QNR needs 32-multiple sides.
    let (ms40, pan40) = synthetic(20, 20);
    let up = interp23tap(&ms40, 2).unwrap();
    let e = pan::full(&up, &ms40, &pan40, 2, &Sensor::other()).unwrap_err();
    assert!(
        matches!(e, PanError::BlockSize { .. }) && e.to_string().contains("multiples of 32"),
        "{e}"
    );
    // Fused at the wrong size, or with the wrong bands.
    let e = pan::full(&ms, &ms, &pan, 2, &Sensor::other()).unwrap_err();
    assert!(e.to_string().contains("PAN size"), "{e}");
    let up = interp23tap(&five, 2).unwrap();
    assert!(matches!(
        pan::full(&up, &ms, &pan, 2, &Sensor::other()),
        Err(PanError::Bands { .. })
    ));
    // Ratios: PAN not ratio times the MS, a ratio that is not a power of two.
    let e = pansharpen(PanMethod::Exp, &ms, &pan, 3, &Sensor::other()).unwrap_err();
    assert!(e.to_string().contains("96x96"), "{e}");
    let pan96 = Image::zeros((96, 96));
    let e = pansharpen(PanMethod::Exp, &ms, &pan96, 3, &Sensor::other()).unwrap_err();
    assert!(e.to_string().contains("power of two"), "{e}");
    let e = wald::degrade(&ms, &pan96, 3, &Sensor::other()).unwrap_err();
    assert!(e.to_string().contains("multiples of the ratio 3"), "{e}");
    assert!(matches!(
        "pca".parse::<PanMethod>(),
        Err(PanError::UnknownMethod(_))
    ));
}

/// What `ship-edge pansharpen [--wald]` writes: the method's output rounded and clamped to 8 bits.
fn fused_8bit(method: PanMethod, ms: &Cube, pan: &Image, reduced: bool) -> Cube {
    let sensor = Sensor::other();
    let out = if reduced {
        let (m, p) = wald::degrade(ms, pan, 2, &sensor).unwrap();
        pansharpen(method, &m, &p, 2, &sensor).unwrap()
    } else {
        pansharpen(method, ms, pan, 2, &sensor).unwrap()
    };
    out.mapv(|v| v.round().clamp(0.0, 255.0))
}

const REDUCED_KEYS: [(PanMetric, &str); 7] = [
    (PanMetric::Psnr, "PSNR"),
    (PanMetric::Ssim, "SSIM"),
    (PanMetric::Sam, "SAM"),
    (PanMetric::Ergas, "ERGAS"),
    (PanMetric::Scc, "SCC"),
    (PanMetric::Q, "Q"),
    (PanMetric::Q2n, "Q2n"),
];

const FULL_KEYS: [(PanMetric, &str); 3] = [
    (PanMetric::DLambda, "D_lambda"),
    (PanMetric::Ds, "D_s"),
    (PanMetric::Qnr, "QNR"),
];

/// Scores every fixture method of `scene` and compares with the references.
fn check_scene(scene: &str, only: &[&str]) {
    let Some(dir) = landsat_dir(scene) else {
        eprintln!(
            "SKIPPED: Landsat-7 scene {scene} is absent (samples/landsat7, ../shared/data/pansharpen/landsat7)"
        );
        return;
    };
    let fx = fixture("pan_landsat7.json");
    let entry = fx["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["scene"] == scene)
        .unwrap();
    let ms = load_cube(&dir.join(format!("ms/{scene}.tif")), &Limits::default()).unwrap();
    let pan = load_cube(&dir.join(format!("pan/{scene}.tif")), &Limits::default())
        .unwrap()
        .index_axis_move(Axis(0), 0);
    let opts = ReducedOptions {
        ratio: 2,
        peak: 255.0,
        dim_cut: 0,
    };
    // Largest relative deviation per metric (and reference), reported on stderr.
    let mut worst: Vec<(String, f64)> = Vec::new();
    let mut note = |key: String, rel: f64| match worst.iter_mut().find(|(k, _)| *k == key) {
        Some((_, w)) => *w = w.max(rel),
        None => worst.push((key, rel)),
    };
    for (name, want) in entry["methods"].as_object().unwrap() {
        if !only.is_empty() && !only.contains(&name.as_str()) {
            continue;
        }
        let method: PanMethod = name.parse().unwrap();
        // Reduced resolution (Wald): the CLI's --wald output against the original MS.
        let f = fused_8bit(method, &ms, &pan, true);
        assert_eq!(
            f.sum(),
            want["reduced_input_sum"].as_f64().unwrap(),
            "scene {scene} {name}: the fused input differs from the one the fixture scored (baseline changed? rerun tools/scripts/metrics_fixtures_pan.py)"
        );
        let got = pan::reduced(&f, &ms, &opts).unwrap();
        for (m, key) in REDUCED_KEYS {
            let rel = check_rel(
                &format!("{scene} {name} {key}"),
                value(&got, m),
                want["reduced"][key].as_f64().unwrap(),
                REL_TOL,
            );
            note(key.to_owned(), rel);
            if let Some(s) = want["reduced_sewar"][key].as_f64() {
                let rel = check_rel(
                    &format!("{scene} {name} {key} (sewar)"),
                    value(&got, m),
                    s,
                    REL_TOL,
                );
                note(format!("{key} (sewar)"), rel);
            }
        }
        // Full resolution on the original pair.
        let f = fused_8bit(method, &ms, &pan, false);
        assert_eq!(
            f.sum(),
            want["full_input_sum"].as_f64().unwrap(),
            "scene {scene} {name}: full-resolution input differs"
        );
        let got = pan::full(&f, &ms, &pan, 2, &Sensor::other()).unwrap();
        for (m, key) in FULL_KEYS {
            let rel = check_rel(
                &format!("{scene} {name} {key}"),
                value(&got, m),
                want["full"][key].as_f64().unwrap(),
                REL_TOL,
            );
            note(key.to_owned(), rel);
        }
    }
    let worst: Vec<String> = worst.iter().map(|(k, v)| format!("{k} {v:.1e}")).collect();
    eprintln!(
        "scene {scene}: max relative deviation: {}",
        worst.join(", ")
    );
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn landsat_scene_01_component_substitution_matches_references() {
    check_scene("01", &["exp", "brovey", "gihs", "gsa"]);
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn landsat_scene_01_multiresolution_matches_references() {
    check_scene("01", &["mtf-glp", "mtf-glp-hpm", "sfim"]);
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn landsat_scene_13_matches_references() {
    check_scene("13", &[]);
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn landsat_scene_25_matches_references() {
    check_scene("25", &[]);
}

#[test]
fn pansharpen_cli_writes_a_multiband_tiff_and_refuses_bad_pairs() {
    let dir = Dir::new("pansharpen");
    let (ms, pan) = synthetic(32, 32);
    save_cube(&dir.join("ms.tif"), &ms, 8).unwrap();
    save_cube(&dir.join("pan.tif"), &pan.clone().insert_axis(Axis(0)), 8).unwrap();
    let out = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "--method",
            "gsa",
            "-o",
            "f.tif",
        ])
        .stdout();
    assert!(
        out.contains("f.tif") && out.contains("64x64 with 6 bands"),
        "{out}"
    );
    let fused = load_cube(&dir.join("f.tif"), &Limits::default()).unwrap();
    let want = pansharpen(
        PanMethod::Gsa,
        &ms.mapv(|v| v.round().clamp(0.0, 255.0)),
        &pan.mapv(|v| v.round().clamp(0.0, 255.0)),
        2,
        &Sensor::other(),
    )
    .unwrap()
    .mapv(|v| v.round().clamp(0.0, 255.0));
    assert_eq!(fused, want);
    let out = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "--method",
            "exp",
            "--wald",
            "-o",
            "r.tif",
        ])
        .stdout();
    assert!(out.contains("32x32 with 6 bands"), "{out}");

    // A PAN that is not an integer multiple of the MS.
    save_cube(
        &dir.join("pan_odd.tif"),
        &Image::zeros((70, 64)).insert_axis(Axis(0)),
        8,
    )
    .unwrap();
    let err = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan_odd.tif",
            "--method",
            "exp",
            "-o",
            "x.tif",
        ])
        .fails_with(1);
    assert!(
        err.contains("pan_odd.tif") && err.contains("integer multiple"),
        "{err}"
    );
    // A multiband file given as PAN.
    let err = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "ms.tif",
            "--method",
            "exp",
            "-o",
            "x.tif",
        ])
        .fails_with(1);
    assert!(err.contains("6 bands, expected 1"), "{err}");
    // An explicit ratio that does not match, an unknown method, a non-TIFF output.
    let err = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "--method",
            "exp",
            "--ratio",
            "4",
            "-o",
            "x.tif",
        ])
        .fails_with(1);
    assert!(err.contains("expected 128x128"), "{err}");
    let err = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "--method",
            "pca",
            "-o",
            "x.tif",
        ])
        .fails_with(1);
    assert!(err.contains("unknown pan-sharpening method"), "{err}");
    let err = dir
        .command()
        .args([
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "--method",
            "exp",
            "-o",
            "x.png",
        ])
        .fails_with(1);
    assert!(err.contains(".tif"), "{err}");
    assert!(!dir.join("x.tif").exists());
}
