//! The README's two commands: the quick start runs on the shipped sample with the shipped
//! default model, and `.ci/run` runs the README's test command.

use std::path::Path;

use crate::util::Dir;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

/// Pearson correlation of two planes.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().map(|&v| v as f64).sum::<f64>() / n, b.iter().map(|&v| v as f64).sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64 - ma, y as f64 - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

fn grey(path: &Path) -> (u32, u32, Vec<f32>) {
    let img = image::open(path).unwrap().to_luma32f();
    (img.width(), img.height(), img.into_raw())
}

#[test]
fn quick_start_fuses_the_shipped_sample_with_the_default_model() {
    let text = readme();
    let line = text
        .lines()
        .find(|l| l.starts_with("cargo run --release -- fuse"))
        .expect("README quick start has a `cargo run --release -- fuse` line");
    let args: Vec<String> = line
        .split_whitespace()
        .skip_while(|a| *a != "--")
        .skip(1)
        .map(|a| if a.starts_with("samples/") { repo().join(a).display().to_string() } else { a.to_string() })
        .collect();
    let dir = Dir::new("readme_quick_start");
    dir.command().args(&args).stdout();
    let out = dir.join("fused.png");
    let (w, h, fused) = grey(&out);
    let (vw, vh, vis) = grey(&repo().join("samples/tno/vi/01.png"));
    let (_, _, ir) = grey(&repo().join("samples/tno/ir/01.png"));
    assert_eq!((w, h), (vw, vh), "fused image size");
    // A fusion carries structure from both sources (the shipped model card reports these).
    let (cv, ci) = (correlation(&fused, &vis), correlation(&fused, &ir));
    assert!(cv > 0.5 && ci > 0.5, "correlation with visible {cv:.3}, with IR {ci:.3}");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let text = readme();
    let test_cmd = "cargo test --workspace";
    assert!(text.lines().any(|l| l.trim() == test_cmd), "README names `{test_cmd}`");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    assert!(ci.lines().any(|l| l.trim() == test_cmd), ".ci/run runs `{test_cmd}`");
}
