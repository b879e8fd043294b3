//! `ship-edge eval`: tables, JSON and CSV on real pairs, models next to baselines, the
//! published tang2022 numbers end to end, and one clear error per kind of bad dataset.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::models::LinearModel;
use crate::util::{Dir, tno_dir};

/// Side of the crops used where a model runs, so the suite stays fast.
const CROP: u32 = 96;

/// Writes the top-left `CROP`x`CROP` of the first `n` TNO sample pairs to `dir/{ir,vi}`.
fn cropped_pairs(dir: &Dir, tno: &Path, n: usize) -> (PathBuf, PathBuf) {
    let (ir, vi) = (dir.join("ir"), dir.join("vi"));
    for (src, dst) in [("ir", &ir), ("vi", &vi)] {
        std::fs::create_dir_all(dst).unwrap();
        for i in 1..=n {
            let name = format!("{i:02}.png");
            let img = image::open(tno.join(src).join(&name)).unwrap();
            img.crop_imm(0, 0, CROP, CROP)
                .save(dst.join(&name))
                .unwrap();
        }
    }
    (ir, vi)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn baselines_table_json_and_csv_on_tno() {
    let Some(tno) = tno_dir() else {
        eprintln!("SKIPPED: no TNO samples (samples/tno or ../shared/data/ivif/tno)");
        return;
    };
    let dir = Dir::new("eval-tno");
    let stdout = dir
        .command()
        .args([
            "eval",
            "--method",
            "average",
            "--method",
            "max",
            "--per-image",
        ])
        .arg_pair("--ir", tno.join("ir"))
        .arg_pair("--vis", tno.join("vi"))
        .arg_pair("--json", "out.json")
        .arg_pair("--csv", "out.csv")
        .stdout();
    assert!(
        stdout.contains("convention default") && stdout.contains("rank"),
        "{stdout}"
    );
    let json = read_json(&dir.join("out.json"));
    assert_eq!(json["convention"], "default");
    let metrics: Vec<&str> = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in [
        "EN", "SD", "SF", "AG", "MI", "SCD", "CC", "VIF", "Qabf", "Nabf", "SSIM", "PSNR",
    ] {
        assert!(metrics.contains(&m), "{m} missing from {metrics:?}");
    }
    let (avg, max) = (&json["methods"]["average"], &json["methods"]["max"]);
    assert_eq!(avg["images"].as_object().unwrap().len(), 5);
    // Mean ranks of two methods over the same metrics always sum to 3.
    let ranks = avg["rank"].as_f64().unwrap() + max["rank"].as_f64().unwrap();
    assert!((ranks - 3.0).abs() < 1e-12, "{ranks}");
    // METRICS.md §6: max copies source pixels, so its MI beats the average's; the average
    // keeps the smoother histogram (lower SD).
    assert!(max["mean"]["MI"].as_f64().unwrap() > avg["mean"]["MI"].as_f64().unwrap());
    assert!(max["mean"]["SD"].as_f64().unwrap() > avg["mean"]["SD"].as_f64().unwrap());
    // The mean is the mean of the per-image values.
    let en: f64 = (1..=5)
        .map(|i| avg["images"][format!("{i:02}")]["EN"].as_f64().unwrap())
        .sum();
    assert!((en / 5.0 - avg["mean"]["EN"].as_f64().unwrap()).abs() < 1e-12);
    let csv = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 5, "{csv}");
    assert!(csv.starts_with("method,image,EN,"), "{csv}");

    // --metrics keeps the listed columns, in that order, and ranks over them alone: max wins
    // MI and SD (above), so its rank is 1.
    dir.command()
        .args(["eval", "--method", "average", "--method", "max"])
        .args(["--metrics", "mi,SD"])
        .arg_pair("--ir", tno.join("ir"))
        .arg_pair("--vis", tno.join("vi"))
        .arg_pair("--json", "sel.json")
        .arg_pair("--markdown", "sel.md")
        .stdout();
    let md = std::fs::read_to_string(dir.join("sel.md")).unwrap();
    assert!(
        md.starts_with("| method | MI ↑ | SD ↑ | mean rank |\n"),
        "{md}"
    );
    assert!(
        md.contains("| max | **") && md.contains("| 1.00 |\n"),
        "{md}"
    );
    let sel = read_json(&dir.join("sel.json"));
    assert_eq!(sel["metrics"], serde_json::json!(["MI", "SD"]));
    assert_eq!(sel["methods"]["max"]["rank"], 1.0);
    assert_eq!(sel["methods"]["max"]["mean"]["MI"], max["mean"]["MI"]);
}

#[test]
fn a_model_scores_like_the_baseline_it_computes() {
    let Some(tno) = tno_dir() else {
        eprintln!("SKIPPED: no TNO samples (samples/tno or ../shared/data/ivif/tno)");
        return;
    };
    let dir = Dir::new("eval-model");
    let (ir, vi) = cropped_pairs(&dir, &tno, 3);
    let model = LinearModel::default().write(dir.join("avg.onnx"));
    // A directory of already-fused images: the inputs' visible images, named apart.
    dir.command()
        .args(["eval", "--method", "average", "--convention", "cddfuse"])
        .arg_pair("--model", format!("avg-model={}", model.display()))
        .arg_pair("--fused", format!("visible={}", vi.display()))
        .arg_pair("--ir", &ir)
        .arg_pair("--vis", &vi)
        .arg_pair("--json", "out.json")
        .args(["--threads", "1"])
        .stdout();
    let json = read_json(&dir.join("out.json"));
    assert_eq!(json["convention"], "cddfuse");
    let (baseline, model) = (
        &json["methods"]["average"]["mean"],
        &json["methods"]["avg-model"]["mean"],
    );
    for m in json["metrics"].as_array().unwrap() {
        let m = m.as_str().unwrap();
        let (a, b) = (baseline[m].as_f64().unwrap(), model[m].as_f64().unwrap());
        // Same fusion rule, computed in f64 on 0-255 vs f32 on [0,1]: a few pixels may round
        // to the neighbouring 8-bit level.
        assert!(
            (a - b).abs() <= 2e-3 * a.abs().max(1.0),
            "{m}: baseline {a} vs model {b}"
        );
    }
    // The visible image as the fused one: MI(F,B) = H(B), so MI (nats, cddfuse) is at least
    // EN (bits) x ln 2 on every image.
    for (stem, scores) in json["methods"]["visible"]["images"].as_object().unwrap() {
        let (mi, en) = (
            scores["MI"].as_f64().unwrap(),
            scores["EN"].as_f64().unwrap(),
        );
        assert!(
            mi >= en * std::f64::consts::LN_2 - 1e-9,
            "{stem}: MI {mi} < EN {en} x ln 2"
        );
    }
}

/// The acceptance check end to end: `eval --convention tang2022` on the published
/// outputs reproduces the authors' MATLAB numbers (metrics_tang2022.csv).
#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn tang2022_eval_reproduces_the_published_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ivif/tno_tang");
    if !root.join("metrics_tang2022.csv").is_file() {
        eprintln!("SKIPPED: ../shared/data/ivif/tno_tang is absent");
        return;
    }
    let dir = Dir::new("eval-tang");
    let methods = ["SeAFusion", "PIAFusion", "IFCNN", "U2Fusion"];
    let mut cmd = dir.command();
    cmd.args(["eval", "--convention", "tang2022"])
        .arg_pair("--ir", root.join("ir"))
        .arg_pair("--vis", root.join("vi"))
        .arg_pair("--json", "out.json");
    for m in methods {
        cmd.arg_pair(
            "--fused",
            format!("{m}={}", root.join("fused").join(m).display()),
        );
    }
    cmd.stdout();
    let json = read_json(&dir.join("out.json"));
    let csv = std::fs::read_to_string(root.join("metrics_tang2022.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut checked = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (stem, method) = (cells[0], cells[1]);
        if !methods.contains(&method) {
            continue;
        }
        let ours = &json["methods"][method]["images"][stem];
        for (name, cell) in header.iter().zip(&cells).skip(2) {
            let want: f64 = cell.parse().unwrap();
            let got = ours[*name]
                .as_f64()
                .unwrap_or_else(|| panic!("{method} {stem} {name} missing"));
            // METRICS.md: Qabf's equal-gradient branch is float-sensitive (absolute 1e-3);
            // everything else agrees to 1e-3 relative.
            let tol = if *name == "Qabf" {
                1e-3
            } else {
                1e-3 * want.abs()
            };
            assert!(
                (got - want).abs() <= tol,
                "{method} {stem} {name}: {got} vs published {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 22 * 4 * (header.len() - 2));
}

#[test]
fn bad_datasets_fail_with_one_clear_error() {
    let Some(tno) = tno_dir() else {
        eprintln!("SKIPPED: no TNO samples (samples/tno or ../shared/data/ivif/tno)");
        return;
    };
    let dir = Dir::new("eval-bad");
    let (ir, vi) = cropped_pairs(&dir, &tno, 2);
    let eval = |extra: &[&str]| {
        let mut cmd = dir.command();
        cmd.args(["eval"])
            .arg_pair("--ir", &ir)
            .arg_pair("--vis", &vi)
            .args(extra);
        cmd.fails_with(1)
    };
    // No method at all.
    assert!(eval(&[]).contains("nothing to evaluate"));
    // Unknown baseline, bad --fused spec, unknown convention.
    assert!(eval(&["--method", "median"]).contains("median"));
    assert!(eval(&["--method", "max", "--fused", "nodir"]).contains("NAME=DIR"));
    assert!(eval(&["--method", "max", "--convention", "matlab"]).contains("matlab"));
    // An unknown --metrics name, caught before any image is read.
    let err = eval(&["--method", "max", "--metrics", "EN,Qcb"]);
    assert!(err.contains("Qcb") && err.contains("Qabf"), "{err}");
    // A fused directory that lacks a pair.
    let partial = dir.join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::copy(vi.join("01.png"), partial.join("01.png")).unwrap();
    let err = eval(&["--fused", &format!("p={}", partial.display())]);
    assert!(err.contains("02.png") && err.contains("partial"), "{err}");
    // A fused image of the wrong size.
    image::open(vi.join("02.png"))
        .unwrap()
        .crop_imm(0, 0, 10, 10)
        .save(partial.join("02.png"))
        .unwrap();
    let err = eval(&["--fused", &format!("p={}", partial.display())]);
    assert!(
        err.contains("10x10") && err.contains(&format!("{CROP}x{CROP}")),
        "{err}"
    );
    // A missing IR counterpart.
    std::fs::remove_file(ir.join("02.png")).unwrap();
    let err = eval(&["--method", "max"]);
    assert!(
        err.contains("02.png") && err.contains("no counterpart"),
        "{err}"
    );
    // An unreadable image.
    std::fs::write(ir.join("02.png"), b"not a png").unwrap();
    let err = eval(&["--method", "max"]);
    assert!(err.contains("02.png"), "{err}");
    // No dataset: a usage error from the command itself.
    assert!(
        dir.command()
            .args(["eval", "--method", "max"])
            .fails_with(1)
            .contains("--ir DIR --vis DIR")
    );
    // Nothing half-written.
    assert!(!dir.join("out.json").exists());
}

/// The shipped Landsat-7 scene at reduced and full resolution, every pan baseline.
#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn pan_eval_reduced_and_full_on_landsat7() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/landsat7");
    let dir = Dir::new("eval-pan");
    let methods = [
        "exp",
        "brovey",
        "gihs",
        "gsa",
        "mtf-glp",
        "mtf-glp-hpm",
        "sfim",
    ];
    let run = |protocol: &str| {
        let mut cmd = dir.command();
        cmd.args(["eval", "--protocol", protocol, "--sensor", "landsat7"])
            .arg_pair("--ms", root.join("ms"))
            .arg_pair("--pan", root.join("pan"))
            .arg_pair("--json", format!("{protocol}.json"));
        for m in methods {
            cmd.arg_pair("--method", m);
        }
        let stdout = cmd.stdout();
        assert!(stdout.contains(&format!("protocol {protocol}")), "{stdout}");
        read_json(&dir.join(format!("{protocol}.json")))
    };
    let reduced = run("reduced");
    assert_eq!(reduced["convention"], "vivone");
    assert_eq!(reduced["ratio"], 2);
    let mean = |j: &Value, m: &str, k: &str| j["methods"][m]["mean"][k].as_f64().unwrap();
    // Every detail-injection method beats plain interpolation (EXP) on ERGAS and Q at reduced
    // resolution on this scene except the two colour-space methods, which distort spectra.
    for m in ["gsa", "mtf-glp", "mtf-glp-hpm", "sfim"] {
        assert!(
            mean(&reduced, m, "ERGAS") < mean(&reduced, "exp", "ERGAS"),
            "{m}"
        );
        assert!(mean(&reduced, m, "Q") > mean(&reduced, "exp", "Q"), "{m}");
    }
    let full = run("full");
    assert_eq!(
        full["metrics"],
        serde_json::json!(["D_lambda", "D_s", "QNR"])
    );
    // EXP is the MS itself upsampled: no spectral distortion by construction.
    assert!(mean(&full, "exp", "D_lambda") < 1e-2);
    for m in methods {
        let (dl, ds, qnr) = (
            mean(&full, m, "D_lambda"),
            mean(&full, m, "D_s"),
            mean(&full, m, "QNR"),
        );
        assert!(
            ((1.0 - dl) * (1.0 - ds) - qnr).abs() < 1e-12,
            "{m}: QNR = (1-D_lambda)(1-D_s)"
        );
    }
    // A pan-sharpening model runs like a baseline on the same (degraded or original) pair: the
    // bilinear-upsampling contract model is plain interpolation, as EXP is.
    let up = crate::models::PanLinearModel::new(6, 2, 0.0).write(dir.join("up.onnx"));
    let model_run = |protocol: &str| {
        dir.command()
            .args([
                "eval",
                "--protocol",
                protocol,
                "--sensor",
                "landsat7",
                "--method",
                "exp",
            ])
            .arg_pair("--model", format!("bilinear={}", up.display()))
            .arg_pair("--ms", root.join("ms"))
            .arg_pair("--pan", root.join("pan"))
            .arg_pair("--json", format!("m_{protocol}.json"))
            .stdout();
        read_json(&dir.join(format!("m_{protocol}.json")))
    };
    let (reduced, full) = (model_run("reduced"), model_run("full"));
    let (ours, exp) = (
        mean(&reduced, "bilinear", "ERGAS"),
        mean(&reduced, "exp", "ERGAS"),
    );
    assert!(
        (ours - exp).abs() < 0.25 * exp,
        "ERGAS bilinear {ours} vs exp {exp}"
    );
    assert!(mean(&full, "bilinear", "D_lambda") < 2e-2);
    let err = dir
        .command()
        .args(["eval", "--model", "missing.onnx"])
        .arg_pair("--ms", root.join("ms"))
        .arg_pair("--pan", root.join("pan"))
        .fails_with(1);
    assert!(err.contains("missing.onnx"), "{err}");
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
fn pan_band_selection_and_a_ratio_four_set_from_ratio_two_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/landsat7");
    let dir = Dir::new("eval-pan-x4");
    let mean = |j: &Value, m: &str, k: &str| j["methods"][m]["mean"][k].as_f64().unwrap();
    // Bands 1-4 at ratio 4: the MS is degraded by 4, the PAN by the data's 2.
    let up = crate::models::PanLinearModel::new(4, 4, 0.0).write(dir.join("up4.onnx"));
    dir.command()
        .args([
            "eval", "--sensor", "landsat7", "--ratio", "4", "--bands", "1,2,3,4",
        ])
        .args(["--method", "exp", "--method", "gsa"])
        .arg_pair("--model", format!("bilinear={}", up.display()))
        .arg_pair("--ms", root.join("ms"))
        .arg_pair("--pan", root.join("pan"))
        .arg_pair("--json", "x4.json")
        .stdout();
    let x4 = read_json(&dir.join("x4.json"));
    assert_eq!(x4["ratio"], 4);
    let (ours, exp, gsa) = (
        mean(&x4, "bilinear", "ERGAS"),
        mean(&x4, "exp", "ERGAS"),
        mean(&x4, "gsa", "ERGAS"),
    );
    assert!(
        (ours - exp).abs() < 0.25 * exp,
        "ERGAS bilinear {ours} vs exp {exp}"
    );
    assert!(gsa < exp, "GSA {gsa} vs EXP {exp} at ratio 4");
    // Ratio 4 on ratio-2 data has no full-resolution pair.
    let err = dir
        .command()
        .args([
            "eval",
            "--protocol",
            "full",
            "--ratio",
            "4",
            "--method",
            "exp",
        ])
        .arg_pair("--ms", root.join("ms"))
        .arg_pair("--pan", root.join("pan"))
        .fails_with(1);
    assert!(err.contains("reduced resolution"), "{err}");
    // A band the image lacks names the file.
    let err = dir
        .command()
        .args(["eval", "--bands", "1,9", "--method", "exp"])
        .arg_pair("--ms", root.join("ms"))
        .arg_pair("--pan", root.join("pan"))
        .fails_with(1);
    assert!(err.contains("01.tif") && err.contains("band 9"), "{err}");
    // pansharpen --bands writes the selected bands only.
    dir.command()
        .args(["pansharpen", "--method", "gsa", "--bands", "3,2,1"])
        .arg_pair("--ms", root.join("ms/01.tif"))
        .arg_pair("--pan", root.join("pan/01.tif"))
        .arg_pair("-o", "rgb.tif")
        .stdout();
    let rgb = ship_edge::imaging::multiband::load_cube(
        &dir.join("rgb.tif"),
        &ship_edge::imaging::Limits::default(),
    )
    .unwrap();
    assert_eq!(rgb.dim(), (3, 768, 768));
}
