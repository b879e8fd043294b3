//! The streaming pipeline's fault handling, with scripted fake sources around the real `rt`
//! model: a stalled source, corrupt frames, a lost camera, a dead source, and Ctrl-C.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ship_edge::imaging::Planes;
use ship_edge::stream::source::{Captured, Source, SourceError};
use ship_edge::stream::{self, Observer, SinkSpec, StreamConfig, Summary, Tick};
use ship_edge::{FuseOptions, Fuser};

use crate::util::Dir;

const RT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/ship_rt_ivif.onnx");
const FRAME_MS: u64 = 33;

/// One step of a fake source's script.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The next frame (nominal time `index * 33 ms` for file-like sources).
    Frame,
    /// Wait this long, then continue.
    Pause(u64),
    /// A corrupt frame (its index is used up).
    Corrupt,
    /// The device goes away; `reconnect` fails this many times first.
    Lost(u32),
    /// The source breaks for good.
    Fatal,
}

struct Fake {
    name: String,
    live: bool,
    script: VecDeque<Step>,
    /// Repeat `Frame` forever once the script is done (live cameras).
    endless: bool,
    index: u64,
    reconnect_failures: u32,
}

impl Fake {
    fn boxed(name: &str, live: bool, script: &[Step], endless: bool) -> Box<dyn Source> {
        Box::new(Fake {
            name: name.into(),
            live,
            script: script.iter().copied().collect(),
            endless,
            index: 0,
            reconnect_failures: 0,
        })
    }
}

fn frames(n: usize) -> Vec<Step> {
    vec![Step::Frame; n]
}

impl Source for Fake {
    fn name(&self) -> &str {
        &self.name
    }
    fn is_live(&self) -> bool {
        self.live
    }
    fn fps(&self) -> Option<f64> {
        Some(1000.0 / FRAME_MS as f64)
    }
    fn next_frame(&mut self) -> Result<Option<Captured>, SourceError> {
        loop {
            let step = match self.script.pop_front() {
                Some(s) => s,
                None if self.endless => Step::Frame,
                None => return Ok(None),
            };
            match step {
                Step::Pause(ms) => std::thread::sleep(Duration::from_millis(ms)),
                Step::Frame => {
                    let i = self.index;
                    self.index += 1;
                    if self.live {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let v = (i % 10) as f32 / 10.0;
                    return Ok(Some(Captured {
                        image: Planes::gray(
                            32,
                            24,
                            (0..32 * 24)
                                .map(|p| (v + p as f32 / 2000.0) % 1.0)
                                .collect(),
                        ),
                        timestamp: (!self.live).then(|| Duration::from_millis(i * FRAME_MS)),
                    }));
                }
                Step::Corrupt => {
                    self.index += 1;
                    return Err(SourceError::Corrupt(format!(
                        "{}: frame {} is damaged",
                        self.name,
                        self.index - 1
                    )));
                }
                Step::Lost(failures) => {
                    self.reconnect_failures = failures;
                    return Err(SourceError::Lost(format!("{}: unplugged", self.name)));
                }
                Step::Fatal => {
                    return Err(SourceError::Fatal(format!(
                        "{}: broken for good",
                        self.name
                    )));
                }
            }
        }
    }
    fn reconnect(&mut self) -> Result<(), SourceError> {
        if self.reconnect_failures > 0 {
            self.reconnect_failures -= 1;
            return Err(SourceError::Lost(format!("{}: not back yet", self.name)));
        }
        Ok(())
    }
}

/// Collects notices; sets `stop` at the first tick when asked to.
#[derive(Default)]
struct Log {
    notices: Vec<String>,
    stop_at_tick: Option<Arc<AtomicBool>>,
}

impl Observer for Log {
    fn tick(&mut self, _tick: &Tick) {
        if let Some(stop) = &self.stop_at_tick {
            stop.store(true, Ordering::SeqCst);
        }
    }
    fn notice(&mut self, message: &str) {
        self.notices.push(message.to_string());
    }
}

fn run(
    ir: Box<dyn Source>,
    vis: Box<dyn Source>,
    cfg: StreamConfig,
    log: &mut Log,
    out: &Dir,
) -> Summary {
    let fuser = Fuser::with_options(RT, FuseOptions { threads: 1 }).unwrap();
    let sink = stream::sink::open(&SinkSpec::Y4mFile(out.join("out.y4m")), 30.0).unwrap();
    let stop = log.stop_at_tick.clone().unwrap_or_default();
    stream::run(&fuser, &cfg, [ir, vis], sink, stop, log).unwrap()
}

fn config() -> StreamConfig {
    StreamConfig {
        tolerance: Duration::from_millis(5),
        stall_timeout: Duration::from_millis(300),
        ..StreamConfig::default()
    }
}

fn has(log: &Log, text: &str) -> bool {
    log.notices.iter().any(|n| n.contains(text))
}

#[test]
fn a_stalled_source_is_reported_and_fusion_resumes() {
    let dir = Dir::new("stream-stall");
    let mut ir = frames(5);
    // Long enough to outlast the two queued frames even under qemu (~150 ms a frame there).
    ir.push(Step::Pause(1500));
    ir.extend(frames(5));
    let mut log = Log::default();
    let s = run(
        Fake::boxed("ir", false, &ir, false),
        Fake::boxed("vis", false, &frames(10), false),
        config(),
        &mut log,
        &dir,
    );
    assert!(
        has(&log, "ir stalled") && has(&log, "ir resumed"),
        "{:?}",
        log.notices
    );
    assert_eq!((s.written, s.ir.stalls, s.vis.stalls), (10, 1, 0), "{s:?}");
}

#[test]
fn corrupt_frames_are_skipped_and_counted() {
    let dir = Dir::new("stream-corrupt");
    let mut ir = frames(3);
    ir.push(Step::Corrupt);
    ir.extend(frames(4));
    let mut log = Log::default();
    let s = run(
        Fake::boxed("ir", false, &ir, false),
        Fake::boxed("vis", false, &frames(8), false),
        config(),
        &mut log,
        &dir,
    );
    assert!(has(&log, "frame 3 is damaged"), "{:?}", log.notices);
    assert_eq!(
        (s.written, s.ir.corrupt, s.vis.unpaired),
        (7, 1, 1),
        "{s:?}"
    );
}

#[test]
fn a_lost_camera_is_reconnected_with_back_off() {
    let dir = Dir::new("stream-lost");
    let mut ir = frames(5);
    ir.push(Step::Lost(1));
    let cfg = StreamConfig {
        tolerance: Duration::from_millis(15),
        stall_timeout: Duration::from_secs(5),
        max_frames: Some(15),
        ..StreamConfig::default()
    };
    let mut log = Log::default();
    let s = run(
        Fake::boxed("ir", true, &ir, true),
        Fake::boxed("vis", true, &[], true),
        cfg,
        &mut log,
        &dir,
    );
    assert!(
        has(&log, "unplugged; reconnecting")
            && has(&log, "not back yet")
            && has(&log, "ir: reconnected"),
        "{:?}",
        log.notices
    );
    assert_eq!((s.written, s.ir.reconnects), (15, 1), "{s:?}");
    assert_eq!(s.stopped_by, "frame limit");
}

#[test]
fn a_dead_source_ends_the_stream_with_its_error() {
    let dir = Dir::new("stream-dead");
    let mut ir = frames(3);
    ir.push(Step::Fatal);
    let mut log = Log::default();
    let s = run(
        Fake::boxed("ir", false, &ir, false),
        Fake::boxed("vis", false, &frames(8), false),
        config(),
        &mut log,
        &dir,
    );
    assert_eq!(s.written, 3);
    assert_eq!(s.errors, vec!["ir: broken for good".to_string()]);
}

#[test]
fn stop_ends_a_live_stream_with_a_complete_output_file() {
    let dir = Dir::new("stream-stop");
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = StreamConfig {
        tolerance: Duration::from_millis(15),
        report_every: Duration::from_millis(300),
        ..StreamConfig::default()
    };
    let mut log = Log {
        stop_at_tick: Some(stop),
        ..Log::default()
    };
    let s = run(
        Fake::boxed("ir", true, &[], true),
        Fake::boxed("vis", true, &[], true),
        cfg,
        &mut log,
        &dir,
    );
    assert_eq!(s.stopped_by, "interrupted");
    assert!(s.written > 0);
    let bytes = std::fs::read(dir.join("out.y4m")).unwrap();
    let frame = b"FRAME\n".len() + 32 * 24;
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(
        bytes.len(),
        header + s.written as usize * frame,
        "whole frames only"
    );
}
