//! One frame end to end, per shipped model, at thermal-sensor sizes: the network through
//! [`Fuser::fuse_y_raw`] (what `ship-edge fuse` and `bench` run); tract's `DFT` on the
//! 8-channel complex planes the standard-op twin of the `edge` model transforms (12 such nodes
//! per frame, 61% of a frame before the custom ops; `--bench ops` times the `GlobalInteraction`
//! op that replaces them), with the bytes it moves; and the per-frame colour work around the
//! network (Y/CrCb split and merge) at 640x512.
//!
//! `cargo bench --bench frame`; `ship-edge bench --profile` splits a frame by op type.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ship_edge::bench::{FrameSize, synthetic_pair};
use ship_edge::imaging::{Planes, color};
use ship_edge::{FuseOptions, Fuser};
use tract_onnx::pb;
use tract_onnx::prelude::*;

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

/// A one-node ONNX graph: complex `DFT` (onesided = 0, opset 17) along `axis` of
/// `[1, channels, height, width, 2]`, the form the exporter emits for the order-1 interaction.
fn dft_plan(axis: i64, shape: [usize; 5]) -> Arc<TypedRunnableModel> {
    use pb::attribute_proto::AttributeType;
    let attr = |name: &str, i: i64| pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    };
    let value = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let graph = pb::GraphProto {
        name: "dft".into(),
        node: vec![pb::NodeProto {
            op_type: "DFT".into(),
            name: "dft".into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            attribute: vec![attr("axis", axis), attr("inverse", 0), attr("onesided", 0)],
            ..Default::default()
        }],
        input: vec![value("x")],
        output: vec![value("y")],
        ..Default::default()
    };
    let proto = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    tract_onnx::onnx()
        .model_for_proto_model(&proto)
        .expect("DFT graph")
        .with_input_fact(0, f32::fact(shape).into())
        .expect("input fact")
        .into_optimized()
        .expect("optimised")
        .into_runnable()
        .expect("plan")
}

fn dft(c: &mut Criterion) {
    let FrameSize { width, height } = FrameSize::BOSON;
    let shape = [1, 8, height, width, 2];
    let x = Tensor::from_shape(&shape, &vec![0.5f32; shape.iter().product()]).expect("tensor");
    let mut group = c.benchmark_group("dft_8x640x512_complex");
    group.sample_size(10);
    // Read once and written once: the least a transform along one axis must move.
    group.throughput(Throughput::Bytes(
        2 * 4 * shape.iter().product::<usize>() as u64,
    ));
    for (axis, name) in [(2, "along_h"), (3, "along_w")] {
        let plan = dft_plan(axis, shape);
        group.bench_function(name, |b| {
            b.iter(|| plan.run(tvec!(x.clone().into_tvalue())).expect("DFT"))
        });
    }
    group.finish();
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

criterion_group!(benches, frame, dft, colour);
criterion_main!(benches);
