//! Infrared-visible metrics against numbers that other people's code computed:
//! - `tang2022`: the authors' own per-image values (`metrics_tang2022.csv`, their 2022 MATLAB
//!   code) on every published fused image in `../shared/data/ivif/tno_tang` (skipped without it);
//! - `cddfuse`: MMIF-CDDFuse `utils/Evaluator.py`, run by `tools/scripts/metrics_fixtures_ivif.py`;
//! - `default`: Evaluator.py where the definitions coincide, scikit-image / scikit-learn /
//!   numpy for SSIM, MI, PSNR, and the script's numpy transcription for Nabf.
//!
//! The fixtures on `samples/tno` (committed, CC BY) with a fusion recomputed here run
//! everywhere; those on the published fused outputs need `../shared/data`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::Zip;
use serde_json::Value;
use ship_edge::dsp::Image;
use ship_edge::imaging::{Limits, Planes, io};
use ship_edge::metrics::ivif::{Convention, IvifMetricsError, Metric, evaluate, grey};

/// The bar: 1e-3 relative (Qabf 1e-3 absolute against the authors' CSV).
const REL_TOL: f64 = 1e-3;
const QABF_ABS_TOL: f64 = 1e-3;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shared_data() -> Option<PathBuf> {
    let dir = repo().join("../shared/data");
    dir.join("ivif/tno_tang/metrics_tang2022.csv")
        .is_file()
        .then_some(dir)
}

fn load_grey(path: &Path) -> Image {
    let planes =
        io::load(path, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    grey(&planes)
}

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/data/metrics").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The simple fusions the fixture script also computes: floor of the mean, or the maximum.
fn simple_fusion(kind: &str, a: &Image, b: &Image) -> Image {
    Zip::from(a).and(b).map_collect(|&x, &y| match kind {
        "average" => ((x + y) / 2.0).floor(),
        "max" => x.max(y),
        other => panic!("unknown fusion {other}"),
    })
}

/// Worst deviation per metric over many comparisons, and the comparisons that failed.
#[derive(Default)]
struct Tally {
    worst: BTreeMap<String, f64>,
    failures: Vec<String>,
    compared: usize,
}

impl Tally {
    fn compare(
        &mut self,
        convention: Convention,
        label: &str,
        metric: Metric,
        got: f64,
        want: f64,
        qabf_absolute: bool,
    ) {
        let absolute = qabf_absolute && metric == Metric::Qabf;
        let dev = if absolute {
            (got - want).abs()
        } else {
            (got - want).abs() / want.abs()
        };
        let tol = if absolute { QABF_ABS_TOL } else { REL_TOL };
        let worst = self
            .worst
            .entry(format!("{convention:>8} {metric}"))
            .or_insert(0.0);
        *worst = worst.max(dev);
        self.compared += 1;
        if dev.is_nan() || dev > tol {
            self.failures.push(format!(
                "{label} {convention} {metric}: got {got}, want {want} (deviation {dev:.2e})"
            ));
        }
    }

    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} values compared; worst deviation per metric:",
            self.compared
        );
        for (m, d) in &self.worst {
            eprintln!("  {m:13} {d:.2e}");
        }
        assert!(self.compared > 0, "{what}: nothing compared");
        assert!(
            self.failures.is_empty(),
            "{what}:\n{}",
            self.failures.join("\n")
        );
    }
}

/// Runs every fixture case of `file` (images under `root`) in `convention`.
fn check_fixture(file: &str, root: &Path, convention: Convention) -> Tally {
    let fixture = fixture(file);
    let mut tally = Tally::default();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let a = load_grey(&root.join(case["ir"].as_str().unwrap()));
        let b = load_grey(&root.join(case["vi"].as_str().unwrap()));
        let fused = case["fused"].as_str().unwrap();
        let f = if fused.ends_with(".png") {
            load_grey(&root.join(fused))
        } else {
            simple_fusion(fused, &a, &b)
        };
        let want = case[convention.name()].as_object().unwrap();
        for (metric, value) in evaluate(convention, &f, &a, &b).unwrap() {
            // Every metric of the convention has a reference number.
            let reference = want
                .get(metric.name())
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("{file} {name}: no {convention} {metric}"));
            tally.compare(convention, name, metric, value, reference, false);
        }
    }
    tally
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn default_matches_independent_references_on_samples() {
    check_fixture("ivif_samples.json", repo(), Convention::Default).finish("samples/tno, default");
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn cddfuse_matches_evaluator_py_on_samples() {
    check_fixture("ivif_samples.json", repo(), Convention::Cddfuse).finish("samples/tno, cddfuse");
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn tang2022_matches_its_transcription_on_samples() {
    check_fixture("ivif_samples.json", repo(), Convention::Tang2022)
        .finish("samples/tno, tang2022");
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn fixtures_on_published_outputs_match_references() {
    let Some(shared) = shared_data() else {
        eprintln!("SKIPPED: no ../shared/data/ivif/tno_tang (published fused images)");
        return;
    };
    for convention in [Convention::Default, Convention::Cddfuse] {
        check_fixture("ivif_tno_tang.json", &shared, convention)
            .finish(&format!("tno_tang published outputs, {convention}"));
    }
}

/// One row of `metrics_tang2022.csv` whose fused image we have.
struct CsvRow {
    image: String,
    method: String,
    values: Vec<(Metric, f64)>,
}

fn tang_rows(dir: &Path) -> Vec<CsvRow> {
    let text = std::fs::read_to_string(dir.join("metrics_tang2022.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..2], ["image", "method"]);
    let metrics: Vec<Metric> = header[2..].iter().map(|m| m.parse().unwrap()).collect();
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|cells| dir.join("fused").join(cells[1]).is_dir())
        .map(|cells| CsvRow {
            image: cells[0].to_owned(),
            method: cells[1].to_owned(),
            values: metrics
                .iter()
                .zip(&cells[2..])
                .map(|(&m, v)| (m, v.parse().unwrap()))
                .collect(),
        })
        .collect()
}

/// A label and the scores computed for it.
type Scored = (String, Vec<(Metric, f64)>);

/// Scores `rows` in the tang2022 convention, spread over the available cores, and compares
/// them with the authors' numbers (Qabf absolute, the rest relative).
fn check_tang_rows(dir: &Path, rows: &[CsvRow]) -> Tally {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = rows.len().div_ceil(threads).max(1);
    let scored: Vec<Vec<Scored>> = std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|row| {
                            let png = |sub: &str| dir.join(sub).join(format!("{}.png", row.image));
                            let (a, b) = (load_grey(&png("ir")), load_grey(&png("vi")));
                            let f = load_grey(&png(&format!("fused/{}", row.method)));
                            let got = evaluate(Convention::Tang2022, &f, &a, &b).unwrap();
                            (format!("{} {}", row.method, row.image), got)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tally = Tally::default();
    for ((label, got), row) in scored.into_iter().flatten().zip(rows) {
        let got: std::collections::HashMap<_, _> = got.into_iter().collect();
        for &(metric, reference) in &row.values {
            tally.compare(
                Convention::Tang2022,
                &label,
                metric,
                got[&metric],
                reference,
                true,
            );
        }
    }
    tally
}

fn tno_tang_dir() -> Option<PathBuf> {
    let dir = shared_data()?.join("ivif/tno_tang");
    dir.join("fused").is_dir().then_some(dir)
}

/// The authors' numbers for every method we have images for, on 4 of the 22 pairs
/// (16 triples, SeAFusion's RGB outputs included); the exhaustive check is the ignored test
/// below (about a minute in the dev profile on 2 cores).
#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn tang2022_matches_the_authors_csv() {
    let Some(dir) = tno_tang_dir() else {
        eprintln!("SKIPPED: no ../shared/data/ivif/tno_tang/metrics_tang2022.csv");
        return;
    };
    let rows: Vec<CsvRow> = tang_rows(&dir)
        .into_iter()
        .filter(|r| ["01", "05", "16", "37"].contains(&r.image.as_str()))
        .collect();
    assert_eq!(
        rows.len(),
        16,
        "expected 4 methods x 4 images with fused outputs"
    );
    check_tang_rows(&dir, &rows).finish("tang2022 vs metrics_tang2022.csv (4 images)");
}

/// Every published fused image (4 methods x 22 TNO pairs) against the authors' own numbers.
/// Run with `cargo test --test tests tang2022 -- --ignored`.
#[test]
#[ignore = "exhaustive: 88 triples of up to 576x768, about a minute in the dev profile"]
fn tang2022_matches_the_authors_csv_on_every_published_image() {
    let Some(dir) = tno_tang_dir() else {
        eprintln!("SKIPPED: no ../shared/data/ivif/tno_tang/metrics_tang2022.csv");
        return;
    };
    let rows = tang_rows(&dir);
    assert_eq!(
        rows.len(),
        88,
        "expected 4 methods x 22 images with fused outputs"
    );
    check_tang_rows(&dir, &rows).finish("tang2022 vs metrics_tang2022.csv (all)");
}

/// The METRICS.md §3.2 test vector (TNO 01, SeAFusion) in all three conventions.
#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn tno01_seafusion_test_vector() {
    let Some(shared) = shared_data() else {
        eprintln!("SKIPPED: no ../shared/data/ivif/tno_tang");
        return;
    };
    let dir = shared.join("ivif/tno_tang");
    let a = load_grey(&dir.join("ir/01.png"));
    let b = load_grey(&dir.join("vi/01.png"));
    let f = load_grey(&dir.join("fused/SeAFusion/01.png"));
    let get = |c: Convention| -> BTreeMap<&str, f64> {
        evaluate(c, &f, &a, &b)
            .unwrap()
            .into_iter()
            .map(|(m, v)| (m.name(), v))
            .collect()
    };
    let (def, cdd, tang) = (
        get(Convention::Default),
        get(Convention::Cddfuse),
        get(Convention::Tang2022),
    );
    // Printed digits of the table: rounded values, so a half-unit tolerance in the last digit.
    let close = |got: f64, want: f64, half_unit: f64| (got - want).abs() <= half_unit;
    assert!(
        close(tang["SD"], 8.8977, 5e-5) && close(tang["VIF"], 0.8358, 5e-5),
        "{tang:?}"
    );
    assert!(
        close(tang["MI"], 2.5669, 5e-5) && close(tang["PSNR"], 61.652, 5e-4),
        "{tang:?}"
    );
    assert!(
        close(cdd["SD"], 48.149, 5e-4) && close(cdd["SF"], 12.803, 5e-4),
        "{cdd:?}"
    );
    assert!(
        close(cdd["MI"], 1.7635, 5e-5) && close(cdd["VIF"], 0.6314, 5e-5),
        "{cdd:?}"
    );
    assert!(
        close(cdd["SSIM"], 0.9968, 5e-5) && close(cdd["PSNR"], 13.52, 5e-3),
        "{cdd:?}"
    );
    assert!(
        close(def["MI"], 2.5442, 5e-5) && close(def["Qabf"], 0.4739, 5e-5),
        "{def:?}"
    );
    // max(F) = 255 here, so both PSNR peaks coincide.
    assert!((def["PSNR"] - cdd["PSNR"]).abs() < 1e-9);
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn identical_images_are_perfect_in_every_convention() {
    let a = load_grey(&repo().join("samples/tno/ir/01.png"));
    for convention in Convention::ALL {
        let got: BTreeMap<_, _> = evaluate(convention, &a, &a, &a)
            .unwrap()
            .into_iter()
            .map(|(m, v)| (m.name(), v))
            .collect();
        assert!((got["CC"] - 1.0).abs() < 1e-12, "{convention}: {got:?}");
        assert!(
            (got["VIF"] - 2.0).abs() < 1e-6 || convention == Convention::Tang2022,
            "{convention}: {got:?}"
        );
        // On [0,1] images the reference's G = g_F branch (equal strengths) scores low.
        if convention != Convention::Tang2022 {
            assert!(got["Qabf"] > 0.9, "{convention}: {got:?}");
        }
        if let Some(ssim) = got.get("SSIM") {
            assert!((ssim - 2.0).abs() < 1e-12, "{convention}: {got:?}");
        }
        if let Some(nabf) = got.get("Nabf") {
            assert_eq!(*nabf, 0.0, "{convention}");
        }
        if let Some(mse) = got.get("MSE") {
            assert_eq!(*mse, 0.0, "{convention}");
        }
        assert_eq!(got["PSNR"], f64::INFINITY, "{convention}");
    }
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn default_and_compatibility_conventions_relate_as_documented() {
    let a = load_grey(&repo().join("samples/tno/ir/02.png"));
    let b = load_grey(&repo().join("samples/tno/vi/02.png"));
    let f = simple_fusion("average", &a, &b);
    let get = |c: Convention| -> BTreeMap<&str, f64> {
        evaluate(c, &f, &a, &b)
            .unwrap()
            .into_iter()
            .map(|(m, v)| (m.name(), v))
            .collect()
    };
    let (def, cdd, tang) = (
        get(Convention::Default),
        get(Convention::Cddfuse),
        get(Convention::Tang2022),
    );
    for m in ["EN", "SD", "SF", "AG", "SCD", "CC", "VIF", "Qabf"] {
        assert_eq!(def[m], cdd[m], "{m}");
    }
    assert!((cdd["MI"] - def["MI"] * std::f64::consts::LN_2).abs() < 1e-12);
    assert!((tang["SF"] - def["SF"] / 255.0).abs() < 1e-12);
    assert!((tang["PSNR"] - (def["PSNR"] + 20.0 * 255f64.log10())).abs() < 1e-9);
    assert!(
        (tang["MSE"] * 255.0 * 255.0 - 10f64.powf((20.0 * 255f64.log10() - def["PSNR"]) / 10.0))
            .abs()
            < 1e-6
    );
    let (h, w) = f.dim();
    assert!((tang["AG"] - def["AG"] * (h * w) as f64 / ((h - 1) * (w - 1)) as f64).abs() < 1e-12);
    // The saturation quirks only ever inflate MI here and shrink SD.
    assert!(tang["MI"] >= def["MI"] && tang["SD"] < def["SD"] / 2.0);
}

#[test]
fn grey_of_an_rgb_file_is_rounded_bt601_luma() {
    // samples/tno PNGs store three equal channels: grey is the channel itself.
    let planes = io::load(&repo().join("samples/tno/vi/03.png"), &Limits::default()).unwrap();
    let g = grey(&planes);
    let c0 = planes.channel(0);
    assert!(
        g.iter()
            .zip(c0)
            .all(|(&v, &c)| v == (f64::from(c) * 255.0).round())
    );
    let rgb = Planes::rgb(
        3,
        1,
        [
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ],
    );
    // 0.299·255 = 76.245, 0.587·255 = 149.685, 0.114·255 = 29.07.
    assert_eq!(
        grey(&rgb).iter().copied().collect::<Vec<_>>(),
        [76.0, 150.0, 29.0]
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let a = Image::from_shape_fn((40, 50), |(y, x)| ((x * 3 + y) % 256) as f64);
    let other = Image::zeros((40, 49));
    for convention in Convention::ALL {
        let err = evaluate(convention, &a, &a, &other).unwrap_err();
        assert!(
            matches!(
                err,
                IvifMetricsError::SizeMismatch {
                    image: "visible",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("49x40") && err.to_string().contains("50x40"),
            "{err}"
        );
        let empty = Image::zeros((0, 5));
        assert!(matches!(
            evaluate(convention, &empty, &empty, &empty),
            Err(IvifMetricsError::TooSmall { image: "fused", .. })
        ));
        let mut inf = a.clone();
        inf[[0, 0]] = f64::INFINITY;
        assert!(matches!(
            evaluate(convention, &inf, &a, &a),
            Err(IvifMetricsError::NonFinite { image: "fused", .. })
        ));
        // Tiny but valid images give numbers or NaN, never a panic.
        let tiny = Image::from_shape_fn((3, 4), |(y, x)| (x * 50 + y * 7) as f64);
        assert_eq!(
            evaluate(convention, &tiny, &tiny, &tiny).unwrap().len(),
            convention.metrics().len()
        );
    }
    assert!("matlab".parse::<Convention>().is_err());
}
