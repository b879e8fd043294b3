//! Parity with the authors' released network: module by module on the official intermediates,
//! and end to end (candle and tract) on the 5 TNO pairs. Reads `../shared/reference/`; skips with
//! a printed reason when it is absent (the checkpoint carries no license and is never copied here).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use prost::Message;
use ship_tools::export::{self, ModelInfo, OpSet, official};
use ship_tools::nets::{Ship, ShipConfig};
use tract_onnx::prelude::*;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn reference() -> Option<PathBuf> {
    let r = shared().join("reference");
    if r.join("SHIP_model.pth").is_file() {
        Some(r)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (official checkpoint parity needs it)",
            r.display()
        );
        None
    }
}

fn official_net(reference: &Path) -> Ship {
    let tensors =
        official::read_official(&reference.join("SHIP_model.pth")).expect("official checkpoint");
    Ship::new(
        &ShipConfig::ship(),
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
    )
    .unwrap()
}

/// max |x| over all elements.
fn max_abs_value(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// max |a − b| over all elements.
fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    max_abs_value(&(a - b).unwrap())
}

#[test]
fn official_checkpoint_imports_into_the_ship_preset_with_the_paper_parameter_count() {
    let Some(reference) = reference() else { return };
    let tensors = official::read_official(&reference.join("SHIP_model.pth")).unwrap();
    assert_eq!(tensors.len(), 484);
    let (params, buffers) = tensors.iter().fold((0, 0), |(p, b), (k, t)| {
        if ship_tools::nets::is_buffer(k) {
            (p, b + t.elem_count())
        } else {
            (p + t.elem_count(), b)
        }
    });
    // SHIP_NETWORK.md §2.5: 547,509 learnable parameters plus 5,520 buffer values.
    assert_eq!((params, buffers), (547_509, 5_520));
}

#[test]
fn every_stage_matches_the_official_intermediates() {
    let Some(reference) = reference() else { return };
    let npz = reference.join("ship_official_intermediates/tno01_48x64.npz");
    let refs: std::collections::HashMap<String, Tensor> =
        Tensor::read_npz(&npz).unwrap().into_iter().collect();
    let net = official_net(&reference);
    let vis_y = refs["in.v"].narrow(1, 0, 1).unwrap();
    let stages = net.trace(&vis_y, &refs["in.r"]).unwrap();
    for (name, ours) in &stages {
        let Some(want) = refs.get(name) else { continue };
        let scale = max_abs_value(want);
        let rel = max_abs(ours, want) / scale;
        // The reference README: an independent f32 implementation agrees within 3.2e-6 relative;
        // more than ~1e-5 points to a real difference.
        assert!(
            rel < 2e-5,
            "{name}: max error {rel:e} relative to max|x| = {scale}"
        );
    }
    assert!(stages.iter().any(|(n, _)| n == "out"));
}

/// Runs an exported network in tract at the inputs' size.
fn run_tract(net: &Ship, vis: &Tensor, ir: &Tensor) -> Tensor {
    let info = ModelInfo {
        architecture: "ship".into(),
        training_data: "official checkpoint (test only)".into(),
        ops: OpSet::Custom,
        tile: None,
    };
    let bytes = export::model_proto(net, &info).unwrap().encode_to_vec();
    let model = ship_edge::ops::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap();
    let (_, _, h, w) = vis.dims4().unwrap();
    let plan = model
        .with_input_fact(0, f32::fact([1, 1, h, w]).into())
        .unwrap()
        .with_input_fact(1, f32::fact([1, 1, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let to_tract = |t: &Tensor| {
        tract_ndarray::Array4::from_shape_vec(
            (1, 1, h, w),
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        )
        .unwrap()
        .into_tensor()
        .into_tvalue()
    };
    let out = plan.run(tvec!(to_tract(vis), to_tract(ir))).unwrap();
    let out = out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect::<Vec<_>>();
    Tensor::from_vec(out, (1, 1, h, w), &Device::Cpu).unwrap()
}

#[test]
fn tract_matches_the_official_output_on_the_intermediates_crop() {
    let Some(reference) = reference() else { return };
    let npz = reference.join("ship_official_intermediates/tno01_48x64.npz");
    let refs: std::collections::HashMap<String, Tensor> =
        Tensor::read_npz(&npz).unwrap().into_iter().collect();
    let net = official_net(&reference);
    let out = run_tract(&net, &refs["in.v"].narrow(1, 0, 1).unwrap(), &refs["in.r"]);
    let err = max_abs(&out, &refs["out"]);
    eprintln!("tract on the 48x64 crop: max abs error {err:e}");
    assert!(err < 1e-4, "tract on the 48x64 crop: max abs error {err:e}");
}

fn tno_inputs(n: usize) -> (Tensor, Tensor, Tensor) {
    let data = shared().join("data/ivif/tno");
    let limits = ship_edge::imaging::Limits::default();
    let vis = ship_edge::imaging::io::load(&data.join(format!("vi/{n:02}.png")), &limits).unwrap();
    let ir = ship_edge::imaging::io::load(&data.join(format!("ir/{n:02}.png")), &limits).unwrap();
    let (w, h) = (vis.width(), vis.height());
    let t = |v: Vec<f32>| Tensor::from_vec(v, (1, 1, h, w), &Device::Cpu).unwrap();
    let want = Tensor::read_npy(shared().join(format!(
        "reference/ship_official_outputs/{n:02}_fused_y.npy"
    )))
    .unwrap()
    .reshape((1, 1, h, w))
    .unwrap();
    (
        t(ship_edge::imaging::color::split_visible(&vis).0),
        t(ship_edge::imaging::color::infrared(&ir).to_vec()),
        want,
    )
}

/// The tolerance the issue sets; float32 runs of the official network itself differ by ~1e-4.
const TOL: f32 = 1e-3;

#[test]
fn candle_and_tract_match_the_official_outputs_on_tno() {
    let Some(reference) = reference() else { return };
    let net = official_net(&reference);
    for n in 1..=5 {
        let (vis, ir, want) = tno_inputs(n);
        let err = max_abs(&net.forward(&vis, &ir).unwrap(), &want);
        assert!(err <= TOL, "candle, TNO {n:02}: max abs error {err:e}");
        let tract_err = max_abs(&run_tract(&net, &vis, &ir), &want);
        assert!(
            tract_err <= TOL,
            "tract, TNO {n:02}: max abs error {tract_err:e}"
        );
        eprintln!(
            "TNO {n:02}: max abs error candle {err:.2e}, tract {tract_err:.2e} (tolerance {TOL})"
        );
    }
}
