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

/// Mean |a − b|.
fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn grey(path: &Path) -> (u32, u32, Vec<f32>) {
    let img = image::open(path).unwrap().to_luma32f();
    (img.width(), img.height(), img.into_raw())
}

#[test]
#[cfg_attr(
    target_arch = "aarch64",
    ignore = "full-image check, minutes under qemu: --include-ignored on a board"
)]
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
        .map(|a| {
            if a.starts_with("samples/") {
                repo().join(a).display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let dir = Dir::new("readme_quick_start");
    dir.command().args(&args).stdout();
    let out = dir.join("fused.png");
    let (w, h, fused) = grey(&out);
    let (vw, vh, vis) = grey(&repo().join("samples/tno/vi/01.png"));
    let (_, _, ir) = grey(&repo().join("samples/tno/ir/01.png"));
    assert_eq!((w, h), (vw, vh), "fused image size");
    // The shipped model is trained towards max(visible, IR) intensities (the SHIP loss), so it
    // lands much closer to them than plain averaging does (0.121 mean |F − max| on this pair).
    let target: Vec<f32> = vis.iter().zip(&ir).map(|(v, i)| v.max(*i)).collect();
    let average: Vec<f32> = vis.iter().zip(&ir).map(|(v, i)| (v + i) / 2.0).collect();
    let (ours, avg) = (
        mean_abs_diff(&fused, &target),
        mean_abs_diff(&average, &target),
    );
    assert!(
        ours < 0.5 * avg,
        "mean |F - max(V, I)|: model {ours:.4}, averaging {avg:.4}"
    );
}

#[test]
fn ci_runs_the_readme_test_commands() {
    let text = readme();
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    for test_cmd in [
        "cargo test --workspace",
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=\"qemu-aarch64 -L /usr/aarch64-linux-gnu\" QEMU_CPU=cortex-a76 cargo test --profile qemu -p ship-edge --target aarch64-unknown-linux-gnu",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == test_cmd),
            "README names `{test_cmd}`"
        );
        assert!(
            ci.lines().any(|l| l.trim() == test_cmd),
            ".ci/run runs `{test_cmd}`"
        );
    }
}
