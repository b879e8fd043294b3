//! `ship-tools train`: a few steps of `edge` on tiny crops lower the loss and fill the run
//! directory; a run resumed halfway ends with the same weights as one run straight through;
//! a doubled SIGINT still saves the checkpoint; bad input gives errors that name the file.
//! Data: crops of the TNO samples written to a temp folder (CI has no shared data).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use candle_core::{Device, Tensor};
use ship_edge::imaging::{Limits, Planes, io};
use ship_tools::export;
use ship_tools::nets::ShipConfig;
use ship_tools::train::{self, Silent, Start, TrainOptions, ValSource, checkpoint, record};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/tno")
}

/// A w x h window at (x0, y0) of every channel.
fn crop(p: &Planes, x0: usize, y0: usize, w: usize, h: usize) -> Planes {
    let cut = |c: &[f32]| -> Vec<f32> {
        (0..h)
            .flat_map(|y| c[(y0 + y) * p.width() + x0..][..w].to_vec())
            .collect()
    };
    if p.is_rgb() {
        Planes::rgb(
            w,
            h,
            [cut(p.channel(0)), cut(p.channel(1)), cut(p.channel(2))],
        )
    } else {
        Planes::gray(w, h, cut(p.channel(0)))
    }
}

/// Four 64x48 pairs cut from the samples (plus saliency masks when `masks`).
fn tiny_data(root: &Path, masks: bool) -> PathBuf {
    let data = root.join("data");
    for sub in ["ir", "vi", "mask"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
    }
    for (i, (name, x0, y0)) in [
        ("01", 300, 250),
        ("02", 200, 300),
        ("03", 400, 200),
        ("05", 250, 250),
    ]
    .into_iter()
    .enumerate()
    {
        let load = |sub: &str| {
            io::load(
                &samples().join(sub).join(format!("{name}.png")),
                &Limits::default(),
            )
            .unwrap()
        };
        let (ir, vi) = (
            crop(&load("ir"), x0, y0, 64, 48),
            crop(&load("vi"), x0, y0, 64, 48),
        );
        io::save(&data.join(format!("ir/p{i}.png")), &ir).unwrap();
        io::save(&data.join(format!("vi/p{i}.png")), &vi).unwrap();
        if masks {
            // A saliency map with exact ones on hot pixels (m̄ = 0 there), graded elsewhere.
            let m: Vec<f32> = ir
                .channel(0)
                .iter()
                .map(|&v| if v > 0.6 { 1.0 } else { v })
                .collect();
            io::save(
                &data.join(format!("mask/p{i}.png")),
                &Planes::gray(64, 48, m),
            )
            .unwrap();
        }
    }
    if !masks {
        std::fs::remove_dir(data.join("mask")).unwrap();
    }
    data
}

fn tiny_options(data: &Path, steps: usize) -> TrainOptions {
    TrainOptions {
        preset: "edge".into(),
        data: data.to_path_buf(),
        val: ValSource::Holdout(1),
        steps,
        batch: 2,
        crop: 32,
        lr: 2e-3,
        val_every: 3,
        ckpt_every: 100,
        ..TrainOptions::default()
    }
}

fn run(opts: &TrainOptions, out: &Path, start: Start) -> anyhow::Result<train::TrainReport> {
    train::train(
        opts,
        out,
        start,
        &Device::Cpu,
        &mut Silent,
        &AtomicBool::new(false),
    )
}

fn weights(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

#[test]
fn a_short_run_lowers_the_loss_and_writes_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path(), false);
    let out = tmp.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_ship-tools"))
        .args([
            "train",
            "--task",
            "ivif",
            "--preset",
            "edge",
            "--holdout",
            "1",
        ])
        .args([
            "--steps", "8", "--batch", "2", "--crop", "32", "--lr", "2e-3",
        ])
        .args(["--val-every", "4", "--ckpt-every", "4", "--seed", "3"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    for f in [
        "config.json",
        "metrics.csv",
        "baselines.csv",
        "last.safetensors",
        "ckpt_0000004.safetensors",
        "ckpt_0000008.safetensors",
        "weights.safetensors",
        "loss.png",
        "val.png",
        "contact.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let cfg = record::RunConfig::load(&out).unwrap();
    assert_eq!((cfg.train_stems.len(), cfg.val_stems.len()), (3, 1));
    assert!(!cfg.train_stems.contains(&cfg.val_stems[0]));
    // Rows at steps 4 and 8: the mean loss of steps 5-8 is below that of steps 1-4.
    let ckpt = checkpoint::load(&out.join("last.safetensors")).unwrap();
    assert_eq!(ckpt.state.step, 8);
    let rows = &ckpt.history;
    assert_eq!(rows.iter().map(|r| r.step).collect::<Vec<_>>(), [4, 8]);
    assert!(
        rows[1].train_loss < rows[0].train_loss,
        "loss {} -> {}",
        rows[0].train_loss,
        rows[1].train_loss
    );
    let val = rows[1].val.as_ref().expect("validated");
    assert!(
        val.loss.is_finite() && val.metrics.iter().all(|m| m.is_finite()),
        "{val:?}"
    );
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        csv.starts_with("step,lr,train_loss,val_loss,EN,SD,SF,MI,SCD,VIF,Qabf,SSIM"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    // The weights are what `ship-tools export --weights` reads.
    export::load_weights(
        &out.join("weights.safetensors"),
        &ShipConfig::edge(),
        &Device::Cpu,
    )
    .unwrap();
    // No temp file is left behind.
    let stray: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// GNU `timeout` (and `kill` to a process group) delivers SIGINT to the trainer twice at once.
/// That is one interrupt: the run still finishes its step, saves the checkpoint and says where
/// to resume, instead of quitting on the second signal.
#[cfg(unix)]
#[test]
fn a_doubled_interrupt_still_saves_the_checkpoint() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path(), false);
    let out = tmp.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ship-tools"))
        .args(["train", "--preset", "edge", "--holdout", "1"])
        .args(["--steps", "1000000", "--batch", "2", "--crop", "32"])
        .args(["--val-every", "2", "--seed", "3"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // A run that never reaches step 2, or never stops, fails the test instead of hanging it.
    let finished = std::sync::Arc::new(AtomicBool::new(false));
    let watchdog = finished.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(300));
        if !watchdog.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: signals our own child, still unreaped while `finished` is false.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let trained = line.starts_with("step 2 ");
        seen.push(line);
        if trained {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.starts_with("step 2 ")),
        "{seen:?}"
    );
    for _ in 0..2 {
        // SAFETY: signals our own child, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        // Apart enough to arrive as two signals (one pending SIGINT absorbs another), close
        // enough to land before the run has saved and exited.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status.code(), Some(130), "{seen:?}");
    let stopped = seen
        .iter()
        .find_map(|l| l.strip_prefix("stopped at step "))
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no resume hint: {seen:?}"));
    let ckpt = checkpoint::load(&out.join("last.safetensors")).unwrap();
    assert_eq!(ckpt.state.step, stopped);
    assert!(stopped >= 2);
}

/// The checkpoint restores the whole state (weights, Adam moments, step, data RNG), so the
/// resumed run is bit-identical to the straight one. That also needs deterministic kernels: at
/// this size (≤ 2 conv tiles per rayon leaf) they are; at batch 8 / crop 128 the conv
/// weight gradient's rayon fold/reduce sums in an order that depends on work stealing, and two
/// straight runs already differ (~2e-4 relative after 3 steps).
#[test]
fn a_resumed_run_ends_exactly_where_a_straight_run_does() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path(), true);
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    run(&tiny_options(&data, 6), &straight, Start::Fresh).unwrap();
    let half = run(&tiny_options(&data, 3), &split, Start::Fresh).unwrap();
    assert_eq!(half.final_step, 3);
    let rest = run(&tiny_options(&data, 6), &split, Start::Resume).unwrap();
    assert_eq!((rest.start_step, rest.final_step), (3, 6));
    let (a, b) = (
        weights(&straight.join("weights.safetensors")),
        weights(&split.join("weights.safetensors")),
    );
    assert_eq!(a.len(), b.len());
    for (name, ta) in &a {
        let va: Vec<f32> = ta.flatten_all().unwrap().to_vec1().unwrap();
        let vb: Vec<f32> = b[name].flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} differs after resume"
        );
    }
    let (ca, cb) = (
        checkpoint::load(&straight.join("last.safetensors")).unwrap(),
        checkpoint::load(&split.join("last.safetensors")).unwrap(),
    );
    assert_eq!(ca.train_losses, cb.train_losses);
    assert_eq!(ca.state.data_draws, cb.state.data_draws);
    // The mask term was on (the data has mask/).
    assert!(record::RunConfig::load(&split).unwrap().masks);
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path(), false);
    let msg = |r: anyhow::Result<train::TrainReport>| format!("{:#}", r.unwrap_err());

    // A crop larger than the images names the file.
    let mut big = tiny_options(&data, 2);
    big.crop = 64;
    let e = msg(run(&big, &tmp.path().join("big"), Start::Fresh));
    assert!(e.contains(".png") && e.contains("crop"), "{e}");
    assert!(
        !tmp.path().join("big").exists(),
        "a failed start leaves no run directory"
    );

    // No vi/ folder.
    let lonely = tmp.path().join("lonely");
    std::fs::create_dir_all(lonely.join("ir")).unwrap();
    let e = msg(run(
        &tiny_options(&lonely, 2),
        &tmp.path().join("x"),
        Start::Fresh,
    ));
    assert!(e.contains("vi") && e.contains("missing"), "{e}");

    // Resuming a folder that is no run, or with another preset.
    let e = msg(run(
        &tiny_options(&data, 2),
        &tmp.path().join("nothing"),
        Start::Resume,
    ));
    assert!(e.contains("config.json"), "{e}");
    let out = tmp.path().join("r");
    run(&tiny_options(&data, 1), &out, Start::Fresh).unwrap();
    let mut other = tiny_options(&data, 2);
    other.preset = "ship".into();
    let e = msg(run(&other, &out, Start::Resume));
    assert!(e.contains("preset") && e.contains("edge"), "{e}");
    // A new run into an existing run directory is refused.
    let e = msg(run(&tiny_options(&data, 2), &out, Start::Fresh));
    assert!(e.contains("--resume"), "{e}");
    // A run directory without its checkpoint.
    std::fs::remove_file(out.join("last.safetensors")).unwrap();
    let e = msg(run(&tiny_options(&data, 2), &out, Start::Resume));
    assert!(e.contains("last.safetensors"), "{e}");
}
