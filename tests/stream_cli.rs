//! `ship-edge stream` and `ship-edge calibrate` end to end: sequences cut from the TNO sample
//! pairs (a camera panning over the scene), Y4M and raw Y16 sources, drop policy, a 10,000-frame
//! soak with its memory, and bad input.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ship_edge::imaging::{self, Limits, Planes};
use ship_edge::stream::Summary;
use ship_edge::stream::y4m::{FrameReader, FrameWriter, read_header};

use crate::util::{Dir, max_abs_diff, tno_dir};

const RT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/ship_rt_ivif.onnx");
const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/ship_edge_ivif.onnx");

/// Crop `w` x `h` at (`x0`, `y0`).
fn crop(p: &Planes, x0: usize, y0: usize, w: usize, h: usize) -> Planes {
    let ch: Vec<Vec<f32>> = p
        .channels()
        .iter()
        .map(|c| {
            (0..h)
                .flat_map(|y| c[(y0 + y) * p.width() + x0..][..w].to_vec())
                .collect()
        })
        .collect();
    match ch.len() {
        1 => Planes::gray(w, h, ch.into_iter().next().unwrap()),
        _ => {
            let [r, g, b]: [Vec<f32>; 3] = ch.try_into().unwrap();
            Planes::rgb(w, h, [r, g, b])
        }
    }
}

/// `n` frames of `w` x `h`: a window panning right over TNO pair 01, as (IR, visible).
fn panning(n: usize, w: usize, h: usize) -> Vec<(Planes, Planes)> {
    let tno = tno_dir().expect("the TNO sample pairs (samples/tno) are part of the repository");
    let load = |s: &str| imaging::io::load(&tno.join(s), &Limits::default()).unwrap();
    let (ir, vis) = (load("ir/01.png"), load("vi/01.png"));
    (0..n)
        .map(|i| {
            let x0 = 200 + 8 * i;
            (crop(&ir, x0, 240, w, h), crop(&vis, x0, 240, w, h))
        })
        .collect()
}

/// Writes the frames as `ir/NNN.png` and `vi/NNN.png`.
fn write_dirs(dir: &Dir, frames: &[(Planes, Planes)]) -> (PathBuf, PathBuf) {
    let (ir, vi) = (dir.join("ir"), dir.join("vi"));
    std::fs::create_dir_all(&ir).unwrap();
    std::fs::create_dir_all(&vi).unwrap();
    for (i, (a, b)) in frames.iter().enumerate() {
        imaging::io::save(&ir.join(format!("{i:03}.png")), a).unwrap();
        imaging::io::save(&vi.join(format!("{i:03}.png")), b).unwrap();
    }
    (ir, vi)
}

/// All frames of a Y4M file.
fn read_y4m(path: &Path) -> Vec<Planes> {
    let mut r = BufReader::new(std::fs::File::open(path).unwrap());
    let mut frames = FrameReader::new(read_header(&mut r).unwrap());
    std::iter::from_fn(|| frames.next(&mut r, false).unwrap()).collect()
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn stream_fuses_a_sequence_as_fuse_does() {
    let dir = Dir::new("stream-seq");
    let frames = panning(5, 96, 64);
    let (ir, vi) = write_dirs(&dir, &frames);
    let err = dir
        .command()
        .args([
            "stream",
            "--model",
            RT,
            "--out",
            "y4m:out.y4m",
            "--summary-json",
            "s.json",
        ])
        .arg_pair("--ir", format!("dir:{}", ir.display()))
        .arg_pair("--vis", format!("dir:{}", vi.display()))
        .output();
    assert!(
        err.status.success(),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("stream summary: 5 frames"), "{stderr}");
    let out = read_y4m(&dir.join("out.y4m"));
    assert_eq!(out.len(), 5);
    // Every frame is, 8-bit for 8-bit, what `ship-edge fuse` makes of the same pair: the
    // reused session gives what a fresh plan run gives.
    for (i, frame) in out.iter().enumerate() {
        let png = format!("f{i}.png");
        dir.command()
            .args(["fuse", "--model", RT, "-o", &png])
            .arg_pair("--ir", ir.join(format!("{i:03}.png")))
            .arg_pair("--vis", vi.join(format!("{i:03}.png")))
            .stdout();
        let fused = imaging::io::load(&dir.join(&png), &Limits::default()).unwrap();
        for c in 0..fused.channel_count() {
            let d = max_abs_diff(frame.channel(c), fused.channel(c));
            assert!(d < 1e-6, "frame {i} channel {c}: stream vs fuse {d}");
        }
    }
    let s = summary(&dir.join("s.json"));
    assert_eq!(s["written"], 5);
    assert_eq!(s["ir"]["dropped"], 0);
    assert_eq!(s["stopped_by"], "end of input");
    assert_eq!(s["frame_size"], serde_json::json!([96, 64]));
}

/// The IR frames as raw 14-bit counts (a Boson-like 7000..15000 range), back to back.
fn y16_bytes(frames: &[(Planes, Planes)]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|(ir, _)| {
            ir.channel(0)
                .iter()
                .map(|v| (7000.0 + v * 8000.0) as u16)
                .collect::<Vec<_>>()
        })
        .flat_map(|c| c.to_le_bytes())
        .collect()
}

#[test]
fn y16_files_y4m_pipes_calibration_and_png_output() {
    let dir = Dir::new("stream-y16");
    // IR at half the visible resolution, registered with a calibration made from point pairs.
    let frames = panning(4, 96, 64);
    let small: Vec<(Planes, Planes)> = frames
        .iter()
        .map(|(ir, vis)| {
            let half: Vec<f32> = (0..32 * 48)
                .map(|i| ir.channel(0)[(i / 48) * 2 * 96 + (i % 48) * 2])
                .collect();
            (Planes::gray(48, 32, half), vis.clone())
        })
        .collect();
    dir.write("ir.raw", y16_bytes(&small));
    // IR pixel (x, y) sits at visible (2x + 0.5, 2y + 0.5): four corners and the centre.
    let pts = "# ir_x,ir_y,vis_x,vis_y\nir_x,ir_y,vis_x,vis_y\n0,0,0.5,0.5\n47,0,94.5,0.5\n47,31,94.5,62.5\n0,31,0.5,62.5\n24,16,48.5,32.5\n";
    dir.write("pts.csv", pts);
    let out = dir
        .command()
        .args([
            "calibrate",
            "--points",
            "pts.csv",
            "--ir-size",
            "48x32",
            "--vis-size",
            "96x64",
        ])
        .stdout();
    assert!(out.contains("RMS reprojection error 0.00 px"), "{out}");

    let mut y4m = Vec::new();
    let mut w = FrameWriter::new(30.0);
    for (_, vis) in &frames {
        w.write(&mut y4m, vis).unwrap();
    }
    let mut cmd = dir.command();
    cmd.args([
        "stream",
        "--model",
        RT,
        "--ir",
        "y16:ir.raw:48x32:14",
        "--vis",
        "y4m:-",
        "--out",
        "png:frames",
        "--calib",
        "calib.json",
        "--agc",
        "clahe",
        "--preview",
    ]);
    let mut child = cmd
        .command_mut()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&y4m).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let pngs: Vec<String> = std::fs::read_dir(dir.join("frames"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pngs.len(), 4, "{pngs:?}");
    // Preview: IR (registered onto the visible frame) | visible | fused, RGB from the visible.
    let p = imaging::io::load(&dir.join("frames/frame_000000.png"), &Limits::default()).unwrap();
    assert_eq!((p.width(), p.height(), p.is_rgb()), (3 * 96, 64, true));
}

#[test]
fn paced_sources_faster_than_inference_drop_frames_and_stay_bounded() {
    let dir = Dir::new("stream-drop");
    let n = 24;
    let (ir, vi) = write_dirs(&dir, &panning(n, 128, 96));
    // 400 fps of 128x96 frames through the edge model (~25 fps here): inference falls behind.
    let out = dir
        .command()
        .args([
            "stream",
            "--model",
            EDGE,
            "--pace",
            "--fps",
            "400",
            "--threads",
            "1",
        ])
        .args([
            "--out",
            "y4m:out.y4m",
            "--summary-json",
            "s.json",
            "--tolerance-ms",
            "1",
        ])
        .arg_pair("--ir", format!("dir:{}", ir.display()))
        .arg_pair("--vis", format!("dir:{}", vi.display()))
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Summary = serde_json::from_value(summary(&dir.join("s.json"))).unwrap();
    assert!(s.written >= 1 && s.written < n as u64, "{s:?}");
    for side in [&s.ir, &s.vis] {
        assert_eq!(side.captured, n as u64);
        assert!(side.dropped > 0, "{s:?}");
        // Every frame is accounted for: fused, dropped, unpaired, or left in a 2-frame queue.
        let accounted = s.written + side.dropped + side.unpaired;
        assert!(
            accounted <= side.captured && side.captured - accounted <= 2,
            "{s:?}"
        );
    }
    assert_eq!(read_y4m(&dir.join("out.y4m")).len() as u64, s.written);
}

#[test]
fn a_paced_stream_whose_first_frames_do_not_pair_still_runs() {
    // The corrupt first IR frame is skipped, so the IR side starts at 1/fps and the two first
    // frames cannot pair. The paced clock, which waits for the first pair's engine, must start
    // anyway: it used to wait for a pair that could never come.
    let dir = Dir::new("stream-pace-unpaired");
    let n = 6;
    let (ir, vi) = write_dirs(&dir, &panning(n, 64, 48));
    std::fs::write(ir.join("000.png"), b"not a png").unwrap();
    let mut cmd = dir.command();
    cmd.args([
        "stream",
        "--model",
        RT,
        "--pace",
        "--fps",
        "20",
        "--threads",
        "1",
    ])
    .args(["--out", "y4m:out.y4m", "--summary-json", "s.json"])
    .arg_pair("--ir", format!("dir:{}", ir.display()))
    .arg_pair("--vis", format!("dir:{}", vi.display()));
    let mut child = cmd
        .command_mut()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The 6 frames take 0.3 s at 20 fps; a minute means it hangs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the paced stream hung waiting for its first pair");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let s: Summary = serde_json::from_value(summary(&dir.join("s.json"))).unwrap();
    assert_eq!(
        (s.ir.corrupt, s.ir.captured, s.vis.captured),
        (1, 5, 6),
        "{s:?}"
    );
    assert!(s.written >= 1 && s.vis.unpaired >= 1, "{s:?}");
    assert_eq!(read_y4m(&dir.join("out.y4m")).len() as u64, s.written);
}

#[test]
fn soak_of_10000_small_frames_keeps_memory_flat() {
    // Under qemu the loop runs ~60x slower: a short run still exercises it. (A multiple of
    // the 8 distinct frames.)
    let n: usize = if cfg!(target_arch = "aarch64") {
        120
    } else {
        10_000
    };
    let dir = Dir::new("stream-soak");
    let frames = panning(8, 32, 24);
    let raw = y16_bytes(&frames);
    let mut ir = std::fs::File::create(dir.join("ir.raw")).unwrap();
    for _ in 0..n / 8 {
        ir.write_all(&raw).unwrap();
    }
    drop(ir);
    let mut cmd = dir.command();
    cmd.args([
        "stream",
        "--model",
        RT,
        "--threads",
        "1",
        "--ir",
        "y16:ir.raw:32x24:14",
        "--vis",
        "y4m:-",
        "--out",
        "y4m:out.y4m",
        "--summary-json",
        "s.json",
        "--quiet",
    ]);
    let mut child = cmd
        .command_mut()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut w = FrameWriter::new(30.0);
        let mut buf = std::io::BufWriter::new(&mut stdin);
        for i in 0..n {
            w.write(&mut buf, &frames[i % 8].1).unwrap();
        }
    });
    let done = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let s: Summary = serde_json::from_value(summary(&dir.join("s.json"))).unwrap();
    assert_eq!(s.written, n as u64, "{s:?}");
    // Memory: resident size after the first tenth of the run vs at the end. Under qemu-user the
    // process's RSS is the emulator's, whose translated-code cache keeps growing: native only.
    let after = |frames: u64| {
        s.rss
            .iter()
            .find(|r| r.frames >= frames)
            .map(|r| r.rss_bytes)
    };
    if let (false, Some(early), Some(last)) = (
        cfg!(target_arch = "aarch64"),
        after(n as u64 / 10),
        s.rss.last(),
    ) {
        let growth = last.rss_bytes as f64 - early as f64;
        eprintln!(
            "soak: {n} frames, RSS {:.1} MiB after {} frames, {:.1} MiB at the end ({} frames)",
            early as f64 / 1048576.0,
            n / 10,
            last.rss_bytes as f64 / 1048576.0,
            last.frames
        );
        assert!(
            growth < 4.0 * 1048576.0,
            "RSS grew by {:.1} MiB",
            growth / 1048576.0
        );
    }
}

#[test]
fn bad_sources_fail_before_any_output() {
    let dir = Dir::new("stream-bad");
    let (ir, vi) = write_dirs(&dir, &panning(2, 32, 24));
    let ir_spec = format!("dir:{}", ir.display());
    let vi_spec = format!("dir:{}", vi.display());
    let run = |args: &[&str]| {
        let mut cmd = dir.command();
        cmd.args(["stream", "--model", RT, "--out", "y4m:out.y4m"])
            .args(args);
        cmd
    };
    let e = run(&["--ir", "dir:missing", "--vis", &vi_spec]).fails_with(1);
    assert!(e.contains("missing") && e.contains("cannot list"), "{e}");
    dir.write("junk.y4m", "GIF89a not a stream\n");
    let e = run(&["--ir", &ir_spec, "--vis", "y4m:junk.y4m"]).fails_with(1);
    assert!(
        e.contains("junk.y4m") && e.contains("not a YUV4MPEG2 stream"),
        "{e}"
    );
    let e = run(&["--ir", "y16:x.raw:0x10", "--vis", &vi_spec]).fails_with(2);
    assert!(e.contains("WxH"), "{e}");
    dir.write("calib.json", r#"{"ir_size":[64,48],"vis_size":[64,48],"homography":[[1,0,0],[0,1,0],[0,0,1]],"points":4,"rms_px":0.1}"#);
    let e = run(&["--ir", &ir_spec, "--vis", &vi_spec, "--calib", "calib.json"]).fails_with(1);
    assert!(
        e.contains("calib.json") && e.contains("64x48") && e.contains("32x24"),
        "{e}"
    );
    assert!(!dir.join("out.y4m").exists(), "{:?}", dir.files());
    let e = dir
        .command()
        .args([
            "calibrate",
            "--points",
            "calib.json",
            "--ir-size",
            "64x48",
            "--vis-size",
            "64x48",
        ])
        .fails_with(1);
    assert!(
        e.contains("calib.json:1") && e.contains("four numbers"),
        "{e}"
    );
}

#[test]
fn ctrl_c_stops_a_waiting_stream_with_complete_output() {
    let dir = Dir::new("stream-sigint");
    let frames = panning(8, 32, 24);
    dir.write("ir.raw", y16_bytes(&frames));
    let mut cmd = dir.command();
    cmd.args([
        "stream",
        "--model",
        RT,
        "--ir",
        "y16:ir.raw:32x24",
        "--vis",
        "y4m:-",
        "--out",
        "y4m:out.y4m",
        "--summary-json",
        "s.json",
    ]);
    let mut child = cmd
        .command_mut()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Five visible frames, then the pipe stays open: the stream waits for more.
    let mut stdin = child.stdin.take().unwrap();
    let mut w = FrameWriter::new(30.0);
    for (_, vis) in &frames[..5] {
        w.write(&mut stdin, vis).unwrap();
    }
    stdin.flush().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains("written 5 ");
        seen.push(line);
        if waiting {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("written 5 ")),
        "{seen:?}"
    );
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    drop(stdin);
    assert!(status.success(), "{status}: {seen:?} {rest:?}");
    assert!(rest.iter().any(|l| l.contains("(interrupted)")), "{rest:?}");
    assert_eq!(read_y4m(&dir.join("out.y4m")).len(), 5);
    assert_eq!(summary(&dir.join("s.json"))["written"], 5);
}
