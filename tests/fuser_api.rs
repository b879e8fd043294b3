//! The library API the tools crate uses: `Fuser` on raw planes and decoded images, input
//! binding by name, clamping, plan caching, fixed-size models, metadata.

use ship_edge::imaging::Planes;
use ship_edge::model::ModelError;
use ship_edge::{Error, FuseOptions, Fuser};

use crate::models::LinearModel;
use crate::util::Dir;

fn planes(w: usize, h: usize, f: impl Fn(usize) -> f32) -> Vec<f32> {
    (0..w * h).map(f).collect()
}

#[test]
fn inputs_are_bound_by_name_not_order() {
    let dir = Dir::new("api-order");
    // Graph order ir, vis_y; asymmetric weights reveal a swap.
    let spec = LinearModel {
        inputs: vec![("ir", "ir"), ("vis_y", "vis")],
        vis_weight: 0.25,
        ir_weight: 0.75,
        ..LinearModel::default()
    };
    let fuser = Fuser::from_onnx(spec.write(dir.join("m.onnx"))).unwrap();
    let (w, h) = (5, 3);
    let ir = planes(w, h, |i| i as f32 / 15.0);
    let vis = planes(w, h, |i| 1.0 - i as f32 / 15.0);
    let y = fuser.fuse_y(&ir, &vis, w, h).unwrap();
    for i in 0..w * h {
        let want = 0.25 * vis[i] + 0.75 * ir[i];
        assert!((y[i] - want).abs() < 1e-6, "{i}: {} vs {want}", y[i]);
    }
}

#[test]
fn fuse_y_clamps_and_raw_does_not() {
    let dir = Dir::new("api-clamp");
    let spec = LinearModel {
        vis_weight: 1.0,
        ir_weight: 1.0,
        bias: -0.25,
        ..LinearModel::default()
    };
    let fuser = Fuser::from_onnx(spec.write(dir.join("m.onnx"))).unwrap();
    let ir = vec![0.0, 0.9, 0.1];
    let vis = vec![0.0, 0.9, 0.3];
    let raw = fuser.fuse_y_raw(&ir, &vis, 3, 1).unwrap();
    let want = [-0.25, 1.55, 0.15];
    assert!(
        raw.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{raw:?}"
    );
    let clamped = fuser.fuse_y(&ir, &vis, 3, 1).unwrap();
    assert!(
        clamped
            .iter()
            .zip([0.0, 1.0, 0.15])
            .all(|(a, b)| (a - b).abs() < 1e-6),
        "{clamped:?}"
    );
}

#[test]
fn plans_are_cached_per_size_and_threads_agree() {
    let dir = Dir::new("api-plans");
    let path = LinearModel::default().write(dir.join("m.onnx"));
    let one = Fuser::with_options(&path, FuseOptions { threads: 1 }).unwrap();
    let two = Fuser::with_options(&path, FuseOptions { threads: 2 }).unwrap();
    for (w, h) in [(16, 8), (7, 3), (16, 8)] {
        let ir = planes(w, h, |i| (i % 7) as f32 / 7.0);
        let vis = planes(w, h, |i| (i % 5) as f32 / 5.0);
        assert_eq!(
            one.fuse_y(&ir, &vis, w, h).unwrap(),
            two.fuse_y(&ir, &vis, w, h).unwrap()
        );
    }
    assert_eq!(one.model().planned_sizes(), vec![(16, 8), (7, 3)]);
}

#[test]
fn fuse_on_planes_handles_grey_and_rgb() {
    let dir = Dir::new("api-fuse");
    let fuser = Fuser::from_onnx(LinearModel::default().write(dir.join("m.onnx"))).unwrap();
    let ir = Planes::gray(2, 1, vec![0.2, 0.6]);
    let grey = fuser
        .fuse(&ir, &Planes::gray(2, 1, vec![0.4, 0.0]))
        .unwrap();
    assert_eq!(grey.channel_count(), 1);
    assert!(
        grey.channel(0)
            .iter()
            .zip([0.3, 0.3])
            .all(|(a, b)| (a - b).abs() < 1e-6)
    );
    // A grey pixel stored as RGB: neutral chroma, so every channel is the fused Y.
    let rgb = Planes::rgb(2, 1, [vec![0.4, 0.0], vec![0.4, 0.0], vec![0.4, 0.0]]);
    let out = fuser.fuse(&ir, &rgb).unwrap();
    assert!(out.is_rgb());
    for ch in out.channels() {
        assert!(
            ch.iter().zip([0.3, 0.3]).all(|(a, b)| (a - b).abs() < 1e-5),
            "{ch:?}"
        );
    }
}

#[test]
fn size_and_buffer_errors() {
    let dir = Dir::new("api-errors");
    let fuser = Fuser::from_onnx(LinearModel::default().write(dir.join("m.onnx"))).unwrap();
    let err = fuser
        .fuse(
            &Planes::gray(2, 2, vec![0.0; 4]),
            &Planes::gray(4, 1, vec![0.0; 4]),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::SizeMismatch {
            ir_width: 2,
            ir_height: 2,
            vis_width: 4,
            vis_height: 1
        }
    ));
    let err = fuser.fuse_y(&[0.0; 3], &[0.0; 4], 2, 2).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferSize {
                name: "ir",
                len: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn fixed_size_model_runs_its_size_only() {
    let dir = Dir::new("api-fixed");
    let path = LinearModel {
        fixed: Some((2, 3)),
        ..LinearModel::default()
    }
    .write(dir.join("m.onnx"));
    let fuser = Fuser::from_onnx(&path).unwrap();
    let y = fuser.fuse_y(&[1.0; 6], &[0.0; 6], 3, 2).unwrap();
    assert_eq!(y, vec![0.5; 6]);
    let err = fuser.fuse_y(&[1.0; 6], &[0.0; 6], 2, 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Model(ModelError::FixedSize {
                width: 2,
                height: 3,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn metadata_and_info() {
    let dir = Dir::new("api-meta");
    let fuser = Fuser::from_onnx(LinearModel::default().write(dir.join("m.onnx"))).unwrap();
    let meta = fuser.metadata();
    assert!(
        meta.contains(&("task".to_string(), "ivif".to_string())),
        "{meta:?}"
    );
    assert!(
        meta.contains(&("architecture".to_string(), "linear-test".to_string())),
        "{meta:?}"
    );
    let info = fuser.info();
    assert_eq!(info.input("vis_y").unwrap().shape_string(), "[1,1,H,W]");
    assert_eq!(info.parameters, 3);
    assert_eq!(info.op_counts.get("Add"), Some(&2));
}
