//! One frame end to end, per shipped model, at thermal-sensor sizes: the network through
//! [`Fuser::fuse_y_raw`] (what `ship-edge fuse` and `bench` run), and the per-frame colour work
//! around it (Y/CrCb split of the visible frame and merge of the fused Y) at 640x512.
//!
//! `cargo bench --bench frame`; `ship-edge bench --profile` splits a frame by op type.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use ship_edge::bench::{FrameSize, synthetic_pair};
use ship_edge::imaging::{Planes, color};
use ship_edge::{FuseOptions, Fuser};

fn shipped_models() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut models: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("models/")
        .map(|e| e.expect("models/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    models.sort();
    models
}

fn frame(c: &mut Criterion) {
    let sizes = ["lepton", "boson320"].map(|s| s.parse::<FrameSize>().expect("preset"));
    for model in shipped_models() {
        let name = model
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let fuser = Fuser::with_options(&model, FuseOptions { threads: 1 }).expect("shipped model");
        let mut group = c.benchmark_group(format!("frame_1thread/{name}"));
        group.sample_size(10);
        for size in sizes {
            let (ir, vis) = synthetic_pair(size);
            group.bench_function(size.to_string(), |b| {
                b.iter(|| {
                    fuser
                        .fuse_y_raw(black_box(&ir), black_box(&vis), size.width, size.height)
                        .expect("frame")
                })
            });
        }
        group.finish();
    }
}

fn colour(c: &mut Criterion) {
    let size = FrameSize::BOSON;
    let (ir, vis) = synthetic_pair(size);
    let rgb = Planes::rgb(
        size.width,
        size.height,
        [
            vis.clone(),
            ir.clone(),
            vis.iter().map(|v| 1.0 - v).collect(),
        ],
    );
    let (y, chroma) = color::split_visible(&rgb);
    let mut group = c.benchmark_group("colour_640x512");
    group.bench_function("split_visible", |b| {
        b.iter(|| color::split_visible(black_box(&rgb)))
    });
    group.bench_function("merge", |b| {
        b.iter(|| color::merge(black_box(&y), chroma.as_ref(), size.width, size.height))
    });
    group.finish();
}

criterion_group!(benches, frame, colour);
criterion_main!(benches);
