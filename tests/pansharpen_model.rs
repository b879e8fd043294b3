//! `ship-edge pansharpen --model` on the Landsat-7 sample with small contract models: the
//! in-graph upsampling, DN scaling and TIFF output are exact; a model whose bands, ratio or
//! metadata do not fit the images is refused before anything is written.

use std::path::{Path, PathBuf};

use ship_edge::imaging::Limits;
use ship_edge::imaging::multiband::load_cube;
use ship_edge::pansharpen::upsample::upsample_linear;

use crate::models::PanLinearModel;
use crate::util::Dir;

fn landsat() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/landsat7");
    (root.join("ms/01.tif"), root.join("pan/01.tif"))
}

#[test]
fn a_model_pan_sharpens_the_landsat_sample() {
    let dir = Dir::new("pan-model");
    // PAN weight 0: the output is exactly the model's bilinear MS upsampling.
    let model = PanLinearModel::new(6, 2, 0.0).write(dir.join("up.onnx"));
    let (ms, pan) = landsat();
    let out = dir
        .command()
        .args(["pansharpen", "-o", "out.tif"])
        .arg_pair("--model", &model)
        .arg_pair("--ms", &ms)
        .arg_pair("--pan", &pan)
        .stdout();
    assert!(
        out.contains("768x768 with 6 bands (8-bit)") && out.contains("up.onnx"),
        "{out}"
    );
    let fused = load_cube(&dir.join("out.tif"), &Limits::default()).unwrap();
    let cube = load_cube(&ms, &Limits::default()).unwrap();
    assert_eq!(fused.dim(), (6, 768, 768));
    for b in [0, 5] {
        let plane: Vec<f32> = cube
            .index_axis(ndarray::Axis(0), b)
            .iter()
            .map(|&v| (v / 255.0) as f32)
            .collect();
        let up = upsample_linear(&plane, 384, 384, 2);
        let worst = fused
            .index_axis(ndarray::Axis(0), b)
            .iter()
            .zip(&up)
            .map(|(&got, &want)| (got - (f64::from(want) * 255.0).round()).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 1.0,
            "band {b}: {worst} DN off the bilinear upsampling"
        );
    }
}

#[test]
fn models_that_do_not_fit_the_images_are_refused() {
    let dir = Dir::new("pan-model-bad");
    let (ms, pan) = landsat();
    let run = |model: &Path| {
        dir.command()
            .args(["pansharpen", "-o", "out.tif"])
            .arg_pair("--model", model)
            .arg_pair("--ms", &ms)
            .arg_pair("--pan", &pan)
            .fails_with(1)
    };
    let four = PanLinearModel::new(4, 2, 0.1).write(dir.join("four.onnx"));
    let e = run(&four);
    assert!(
        e.contains("01.tif") && e.contains("6 bands") && e.contains("takes 4"),
        "{e}"
    );
    let x4 = PanLinearModel::new(6, 4, 0.1).write(dir.join("x4.onnx"));
    let e = run(&x4);
    assert!(
        e.contains("expected 1536x1536") && e.contains("ratio 4"),
        "{e}"
    );
    let no_meta = PanLinearModel {
        ratio_meta: None,
        ..PanLinearModel::new(6, 2, 0.1)
    }
    .write(dir.join("nometa.onnx"));
    let e = run(&no_meta);
    assert!(
        e.contains("nometa.onnx") && e.contains("scale_ratio") && e.contains("missing"),
        "{e}"
    );
    let e = dir
        .command()
        .args(["pansharpen", "--method", "gsa", "-o", "out.tif"])
        .arg_pair("--model", &four)
        .arg_pair("--ms", &ms)
        .arg_pair("--pan", &pan)
        .fails_with(2);
    assert!(e.contains("cannot be used with"), "{e}");
    assert!(!dir.join("out.tif").exists());
}
