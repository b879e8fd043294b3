//! Bad input to `ship-edge fuse`: each case fails with exit code 1, one `error: ...` line
//! naming the file at fault, and leaves no output file behind.

use image::{ImageBuffer, Luma};

use crate::models::LinearModel;
use crate::util::Dir;

/// A directory with a valid 8x6 pair (`ir.png`, `vis.png`) and the average model (`avg.onnx`).
fn setup(test: &str) -> Dir {
    let dir = Dir::new(test);
    ImageBuffer::from_fn(8, 6, |x, _| Luma([(x * 30) as u8]))
        .save(dir.join("ir.png"))
        .unwrap();
    ImageBuffer::from_fn(8, 6, |_, y| Luma([(y * 40) as u8]))
        .save(dir.join("vis.png"))
        .unwrap();
    LinearModel::default().write(dir.join("avg.onnx"));
    dir
}

/// Runs `fuse` with the defaults replaced by `overrides` (flag, value) and checks the failure
/// shape; returns the error line.
fn fuse_fails(dir: &Dir, overrides: &[(&str, &str)]) -> String {
    let mut args = vec![
        ("--ir", "ir.png"),
        ("--vis", "vis.png"),
        ("--model", "avg.onnx"),
        ("-o", "out.png"),
    ];
    for &(flag, value) in overrides {
        args.iter_mut().find(|(f, _)| *f == flag).unwrap().1 = value;
    }
    let before = dir.files();
    let mut cmd = dir.command();
    cmd.args(["fuse"]);
    for (flag, value) in &args {
        cmd.arg_pair(flag, value);
    }
    let stderr = cmd.fails_with(1);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert_eq!(dir.files(), before, "the failed run left files behind");
    lines[0].to_string()
}

fn assert_mentions(line: &str, parts: &[&str]) {
    for part in parts {
        assert!(line.contains(part), "{part:?} not in: {line}");
    }
}

#[test]
fn mismatched_sizes() {
    let dir = setup("mismatch");
    ImageBuffer::from_fn(10, 6, |_, _| Luma([9u8]))
        .save(dir.join("vis10.png"))
        .unwrap();
    let line = fuse_fails(&dir, &[("--vis", "vis10.png")]);
    assert_mentions(&line, &["ir.png", "vis10.png", "8x6", "10x6"]);
}

#[test]
fn missing_image() {
    let dir = setup("missing-image");
    let line = fuse_fails(&dir, &[("--ir", "nope.png")]);
    assert_mentions(&line, &["nope.png", "file not found"]);
}

#[test]
fn garbage_bytes_named_png() {
    let dir = setup("garbage-png");
    dir.write("junk.png", b"definitely not a picture, just text");
    let line = fuse_fails(&dir, &[("--vis", "junk.png")]);
    assert_mentions(&line, &["junk.png", "not a PNG, TIFF or JPEG image"]);
}

#[test]
fn truncated_png() {
    let dir = setup("truncated");
    // Noise does not compress, so half the file cuts into the pixel data.
    let noisy = ImageBuffer::from_fn(64, 64, |x, y| Luma([((x * 7919 + y * 104729) % 251) as u8]));
    noisy.save(dir.join("full.png")).unwrap();
    let bytes = std::fs::read(dir.join("full.png")).unwrap();
    dir.write("cut.png", &bytes[..bytes.len() / 2]);
    std::fs::remove_file(dir.join("full.png")).unwrap();
    ImageBuffer::from_fn(64, 64, |_, _| Luma([1u8]))
        .save(dir.join("vis64.png"))
        .unwrap();
    let line = fuse_fails(&dir, &[("--ir", "cut.png"), ("--vis", "vis64.png")]);
    assert_mentions(&line, &["cut.png", "corrupt or truncated PNG"]);
}

#[test]
fn missing_model() {
    let dir = setup("missing-model");
    let line = fuse_fails(&dir, &[("--model", "absent.onnx")]);
    assert_mentions(&line, &["absent.onnx", "model file not found"]);
}

#[test]
fn model_for_another_task() {
    let dir = setup("wrong-task");
    LinearModel {
        task: Some("pansharpen"),
        ..LinearModel::default()
    }
    .write(dir.join("pan.onnx"));
    let line = fuse_fails(&dir, &[("--model", "pan.onnx")]);
    assert_mentions(
        &line,
        &[
            "pan.onnx",
            "model is for task `pansharpen`, expected `ivif`",
        ],
    );
}

#[test]
fn model_without_task() {
    let dir = setup("no-task");
    LinearModel {
        task: None,
        ..LinearModel::default()
    }
    .write(dir.join("bare.onnx"));
    let line = fuse_fails(&dir, &[("--model", "bare.onnx")]);
    assert_mentions(&line, &["bare.onnx", "no `task`"]);
}

#[test]
fn garbage_model_file() {
    let dir = setup("garbage-model");
    dir.write(
        "junk.onnx",
        [0xffu8, 0xfe, 0x00, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02],
    );
    let line = fuse_fails(&dir, &[("--model", "junk.onnx")]);
    assert_mentions(&line, &["junk.onnx", "not an ONNX model"]);
}

#[test]
fn model_missing_an_input() {
    let dir = setup("missing-input");
    let spec = LinearModel {
        inputs: vec![("vis_y", "vis"), ("thermal", "ir")],
        ..LinearModel::default()
    };
    spec.write(dir.join("renamed.onnx"));
    let line = fuse_fails(&dir, &[("--model", "renamed.onnx")]);
    assert_mentions(&line, &["renamed.onnx", "no input `ir`", "thermal"]);
}

#[test]
fn fixed_size_model_and_other_image_size() {
    let dir = setup("fixed-size");
    LinearModel {
        fixed: Some((480, 640)),
        ..LinearModel::default()
    }
    .write(dir.join("fixed.onnx"));
    let line = fuse_fails(&dir, &[("--model", "fixed.onnx")]);
    assert_mentions(&line, &["fixed.onnx", "640x480", "8x6"]);
}

#[test]
fn output_in_a_missing_directory() {
    let dir = setup("missing-dir");
    let line = fuse_fails(&dir, &[("-o", "no/such/dir/out.png")]);
    assert_mentions(&line, &["no/such/dir/out.png", "does not exist"]);
}

#[test]
fn unknown_output_extension() {
    let dir = setup("bad-ext");
    let line = fuse_fails(&dir, &[("-o", "out.bmp")]);
    assert_mentions(&line, &["out.bmp", "unknown output format"]);
}

#[test]
fn output_checked_before_the_model() {
    // Both the output and the model are wrong: the cheap output check answers first.
    let dir = setup("order");
    let line = fuse_fails(&dir, &[("-o", "out.gif"), ("--model", "absent.onnx")]);
    assert_mentions(&line, &["out.gif"]);
}
