//! The streaming loop: one capture thread per source, one inference thread, and the caller's
//! thread as the output thread, joined by bounded queues.
//!
//! ```text
//! capture ir  ─┐                 ┌─────────────┐   sync_channel(2)   ┌──────────────┐
//!              ├─ Inbox (2+2) ──▶│ pair, warp, │ ──────────────────▶ │ sink, stats, │
//! capture vis ─┘  drop oldest    │ fuse        │                     │ reports      │
//!                 (live only)    └─────────────┘                     └──────────────┘
//! ```
//! The tract plan, its state (FFT plans and scratch of the custom ops), the warp map and the
//! frame buffers are built at the first pair and reused for every later one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::inbox::{Inbox, Next, Pushed, WhenFull};
use super::pair::{Side, Stamped};
use super::sink::{Sink, SinkError};
use super::source::{Source, SourceError};
use super::stats::{Histogram, RssSample, RunLatency, SideCounters, SideTotals, Summary, Tick};
use crate::bench::LatencyStats;
use crate::bench::{current_rss_bytes, peak_rss_bytes};
use crate::imaging::warp::{Calibration, Homography, WarpError, WarpMap};
use crate::imaging::{Planes, color};
use crate::{Error, Fuser};

/// Settings of a stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Release file sources at their nominal rate, as live cameras (with the drop policy)
    /// instead of as fast as inference takes them. The clock starts once the first pair's
    /// engine is built: planning the model for the frame size is not played as dropped frames.
    pub pace: bool,
    /// Largest capture-time difference of a pair.
    pub tolerance: Duration,
    /// A source with no frame for this long is reported as stalled.
    pub stall_timeout: Duration,
    /// Frames queued per source (at least 2).
    pub queue: usize,
    /// IR-to-visible registration (the file it came from, for messages).
    pub calibration: Option<(std::path::PathBuf, Calibration)>,
    /// Output `[IR | visible | fused]` side by side instead of the fused frame.
    pub preview: bool,
    /// Stop after this many fused frames.
    pub max_frames: Option<u64>,
    /// How often [`Observer::tick`] is called.
    pub report_every: Duration,
}

impl Default for StreamConfig {
    fn default() -> StreamConfig {
        StreamConfig {
            pace: false,
            tolerance: Duration::from_millis(20),
            stall_timeout: Duration::from_secs(2),
            queue: 2,
            calibration: None,
            preview: false,
            max_frames: None,
            report_every: Duration::from_secs(1),
        }
    }
}

/// Receives the stream's progress (the CLI prints it; tests collect it).
pub trait Observer {
    /// The periodic report.
    fn tick(&mut self, _tick: &Tick) {}
    /// Something worth telling the user: a stall, a reconnect, a skipped frame.
    fn notice(&mut self, _message: &str) {}
}

/// Why a stream could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Inference failed (the model does not accept the frame size, …).
    #[error(transparent)]
    Fuse(#[from] Error),
    /// The calibration does not fit the frames.
    #[error(transparent)]
    Warp(#[from] WarpError),
    /// The output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// A captured frame on its way to pairing.
#[derive(Debug)]
struct Frame {
    image: Planes,
    time: Duration,
    arrived: Instant,
}

impl Stamped for Frame {
    fn time(&self) -> Duration {
        self.time
    }
}

/// A fused frame on its way out.
struct Fused {
    image: Planes,
    /// Arrival of the later of the pair's two frames.
    captured: Instant,
}

/// Back-off between reconnection attempts: doubles from the first to the last.
const RECONNECT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));
/// How long the inference thread waits for a pair before it checks for stalls and stop.
const POLL: Duration = Duration::from_millis(50);

/// Sleeps `d` in short steps; false if `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
    false
}

/// When paced sources start their clock: the moment the inference engine is ready, or the
/// moment the first frames turn out not to pair (then no engine can be built from them).
///
/// The first frame of each side is released at once (its size plans the engine); a later one
/// at stamp `t` waits for the start, is released at `start + t`, and is stamped on the
/// pipeline's clock, `(start − epoch) + t`, as a camera's frame would be. Planning takes from
/// tens of milliseconds to seconds on a loaded machine, and a clock already running would turn
/// all of it into dropped frames.
#[derive(Default)]
struct PaceStart {
    at: Mutex<Option<Instant>>,
    set: Condvar,
}

impl PaceStart {
    /// Starts the clock now, unless it already runs.
    fn start(&self) {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        at.get_or_insert_with(Instant::now);
        self.set.notify_all();
    }

    /// The start, once there is one; `None` if `stop` was set meanwhile.
    fn wait(&self, stop: &AtomicBool) -> Option<Instant> {
        let mut at = self.at.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(t) = *at {
                return Some(t);
            }
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            at = self
                .set
                .wait_timeout(at, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// What a capture thread shares with the rest of the pipeline.
struct CaptureLink {
    side: Side,
    inbox: Arc<Inbox<Frame>>,
    counters: Arc<SideCounters>,
    stop: Arc<AtomicBool>,
    notices: Sender<String>,
    epoch: Instant,
    pace: bool,
    pace_start: Arc<PaceStart>,
}

/// The capture loop of one source: frames into the inbox, faults handled here.
fn capture(mut source: Box<dyn Source>, link: CaptureLink) {
    let CaptureLink {
        side,
        inbox,
        counters,
        stop,
        notices,
        epoch,
        pace,
        pace_start,
    } = link;
    let live = source.is_live() || pace;
    let when_full = if live {
        WhenFull::DropOldest
    } else {
        WhenFull::Wait
    };
    let mut first_released = false;
    while !stop.load(Ordering::Relaxed) {
        match source.next_frame() {
            Ok(Some(c)) => {
                SideCounters::bump(&counters.captured);
                let time = match c.timestamp {
                    Some(t) if pace && !first_released => {
                        first_released = true;
                        t
                    }
                    Some(t) if pace => {
                        let Some(start) = pace_start.wait(&stop) else {
                            break;
                        };
                        let due = start + t;
                        if !sleep_unless(&stop, due.saturating_duration_since(Instant::now())) {
                            break;
                        }
                        start - epoch + t
                    }
                    Some(t) => t,
                    None => epoch.elapsed(),
                };
                let frame = Frame {
                    image: c.image,
                    time,
                    arrived: Instant::now(),
                };
                if inbox.push(side, frame, when_full) == Pushed::ShutDown {
                    break;
                }
            }
            Ok(None) => break,
            Err(SourceError::Corrupt(msg)) => {
                SideCounters::bump(&counters.corrupt);
                let _ = notices.send(format!("skipped: {msg}"));
            }
            Err(SourceError::Lost(msg)) => {
                let _ = notices.send(format!("{msg}; reconnecting"));
                let mut wait = RECONNECT_BACKOFF.0;
                loop {
                    if !sleep_unless(&stop, wait) {
                        break;
                    }
                    match source.reconnect() {
                        Ok(()) => {
                            SideCounters::bump(&counters.reconnects);
                            let _ = notices.send(format!("{}: reconnected", source.name()));
                            break;
                        }
                        Err(SourceError::Fatal(msg)) => {
                            let _ = notices.send(format!("error: {msg}"));
                            inbox.close(side);
                            return;
                        }
                        Err(e) => {
                            wait = (wait * 2).min(RECONNECT_BACKOFF.1);
                            let _ = notices
                                .send(format!("{e}; next try in {:.1} s", wait.as_secs_f64()));
                        }
                    }
                }
            }
            Err(SourceError::Fatal(msg)) => {
                let _ = notices.send(format!("error: {msg}"));
                break;
            }
        }
    }
    inbox.close(side);
}

/// Per-stream inference state, built at the first pair.
struct Engine<'f> {
    fuser: &'f Fuser,
    session: crate::model::IvifSession<'f>,
    vis_size: (usize, usize),
    ir_size: (usize, usize),
    warp: Option<WarpMap>,
    ir_plane: Vec<f32>,
    raw: Vec<f32>,
    preview: bool,
}

impl<'f> Engine<'f> {
    fn new(
        fuser: &'f Fuser,
        cfg: &StreamConfig,
        ir: &Planes,
        vis: &Planes,
    ) -> Result<Engine<'f>, StreamError> {
        let ir_size = (ir.width(), ir.height());
        let vis_size = (vis.width(), vis.height());
        let homography = match &cfg.calibration {
            Some((path, c)) => {
                c.check_sizes(path, ir_size, vis_size)?;
                Some(c.homography)
            }
            None if ir_size != vis_size => Some(Homography::resize(ir_size, vis_size)),
            None => None,
        };
        let warp = homography.map(|h| {
            WarpMap::new(&h, ir_size, vis_size)
                .expect("calibration homographies are checked invertible")
        });
        let session = fuser
            .model()
            .session(vis_size.0, vis_size.1)
            .map_err(Error::from)?;
        Ok(Engine {
            fuser,
            session,
            vis_size,
            ir_size,
            warp,
            ir_plane: Vec::new(),
            raw: Vec::new(),
            preview: cfg.preview,
        })
    }

    /// Fuses one pair; `Ok(None)` if a frame's size changed mid-stream (skipped).
    fn fuse(&mut self, ir: &Planes, vis: &Planes) -> Result<Option<Planes>, StreamError> {
        if (ir.width(), ir.height()) != self.ir_size || (vis.width(), vis.height()) != self.vis_size
        {
            return Ok(None);
        }
        let ir_y = color::infrared(ir);
        let ir_y: &[f32] = match &self.warp {
            Some(map) => {
                map.apply(ir_y, &mut self.ir_plane);
                &self.ir_plane
            }
            None => ir_y,
        };
        let (vis_y, chroma) = color::split_visible(vis);
        self.fuser
            .fuse_y_session(&mut self.session, ir_y, &vis_y, &mut self.raw)?;
        self.raw.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        let (w, h) = self.vis_size;
        let fused = color::merge(&self.raw, chroma.as_ref(), w, h).with_bit_depth(vis.bit_depth());
        if !self.preview {
            return Ok(Some(fused));
        }
        let ir_view = Planes::gray(w, h, ir_y.to_vec());
        Ok(Some(side_by_side(&[&ir_view, vis, &fused])))
    }
}

/// Frames of one height placed left to right; RGB if any of them is.
fn side_by_side(frames: &[&Planes]) -> Planes {
    let h = frames[0].height();
    let total_w: usize = frames.iter().map(|f| f.width()).sum();
    let rgb = frames.iter().any(|f| f.is_rgb());
    let channels = if rgb { 3 } else { 1 };
    let mut out = vec![Vec::with_capacity(total_w * h); channels];
    for y in 0..h {
        for f in frames {
            let w = f.width();
            for (c, plane) in out.iter_mut().enumerate() {
                let src = f.channel(if f.is_rgb() { c } else { 0 });
                plane.extend_from_slice(&src[y * w..(y + 1) * w]);
            }
        }
    }
    if rgb {
        let [r, g, b]: [Vec<f32>; 3] = out.try_into().expect("three planes");
        Planes::rgb(total_w, h, [r, g, b])
    } else {
        Planes::gray(total_w, h, out.pop().expect("one plane"))
    }
}

/// What the inference thread hands back.
struct InferenceEnd {
    stalls: [u64; 2],
    frame_size: Option<[usize; 2]>,
    error: Option<StreamError>,
    frame_limit: bool,
    /// Pairs skipped because a frame size changed mid-stream.
    size_changes: u64,
}

/// The inference loop: pairs from the inbox, fused frames to the output thread.
fn infer(
    fuser: &Fuser,
    cfg: &StreamConfig,
    inbox: &Inbox<Frame>,
    stop: &AtomicBool,
    pace_start: &PaceStart,
    out: SyncSender<Fused>,
    notices: Sender<String>,
) -> InferenceEnd {
    let mut engine: Option<Engine<'_>> = None;
    let mut end = InferenceEnd {
        stalls: [0; 2],
        frame_size: None,
        error: None,
        frame_limit: false,
        size_changes: 0,
    };
    // Per side: Some(since) while stalled.
    let mut stalled: [Option<Instant>; 2] = [None; 2];
    let mut fused = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if cfg.max_frames.is_some_and(|m| fused >= m) {
            end.frame_limit = true;
            break;
        }
        let next = inbox.next_pair(cfg.tolerance, POLL);
        for side in Side::BOTH {
            let empty_since = inbox.empty_since(side);
            match (stalled[side as usize], empty_since) {
                (None, Some(t)) if t.elapsed() > cfg.stall_timeout && !inbox.is_closed(side) => {
                    stalled[side as usize] = Some(t);
                    end.stalls[side as usize] += 1;
                    let other = if side == Side::Ir {
                        Side::Vis
                    } else {
                        Side::Ir
                    };
                    let _ = notices.send(format!(
                        "{} stalled: no frame for {:.1} s; fusing pauses, the {} stream keeps running",
                        side.name(),
                        t.elapsed().as_secs_f64(),
                        other.name()
                    ));
                }
                (Some(t), now) if now != Some(t) => {
                    stalled[side as usize] = None;
                    let _ = notices.send(format!(
                        "{} resumed after {:.1} s",
                        side.name(),
                        t.elapsed().as_secs_f64()
                    ));
                }
                _ => {}
            }
        }
        let (ir, vis) = match next {
            Next::Pair(ir, vis) => (ir, vis),
            Next::Timeout => {
                // The first frames were dropped unpaired (a skipped corrupt frame shifts one
                // side's first stamp, say): only frames released by the clock can pair now.
                if engine.is_none() && Side::BOTH.iter().any(|&s| inbox.drops(s).0 > 0) {
                    pace_start.start();
                }
                continue;
            }
            Next::End => break,
        };
        if engine.is_none() {
            let built = Engine::new(fuser, cfg, &ir.image, &vis.image);
            pace_start.start();
            match built {
                Ok(e) => {
                    end.frame_size = Some([e.vis_size.0, e.vis_size.1]);
                    engine = Some(e);
                }
                Err(e) => {
                    end.error = Some(e);
                    break;
                }
            }
        }
        let engine = engine.as_mut().expect("built above");
        match engine.fuse(&ir.image, &vis.image) {
            Ok(Some(image)) => {
                fused += 1;
                let captured = ir.arrived.max(vis.arrived);
                if out.send(Fused { image, captured }).is_err() {
                    break; // the output side stopped (sink error)
                }
            }
            Ok(None) => {
                end.size_changes += 1;
                if end.size_changes > 1 {
                    continue;
                }
                let _ = notices.send(format!(
                    "skipped (further ones are only counted): a pair of {}x{} IR and {}x{} visible frames: the stream started with {}x{} and {}x{}",
                    ir.image.width(),
                    ir.image.height(),
                    vis.image.width(),
                    vis.image.height(),
                    engine.ir_size.0,
                    engine.ir_size.1,
                    engine.vis_size.0,
                    engine.vis_size.1
                ));
            }
            Err(e) => {
                end.error = Some(e);
                break;
            }
        }
    }
    end
}

/// Runs a stream until the sources end, `stop` is set, or `max_frames` frames are written.
/// Sources are opened by the caller (so a bad source fails before anything starts). Capture
/// threads blocked in a read when the stream stops are left to finish on their own.
pub fn run(
    fuser: &Fuser,
    cfg: &StreamConfig,
    sources: [Box<dyn Source>; 2],
    mut sink: Box<dyn Sink>,
    stop: Arc<AtomicBool>,
    observer: &mut dyn Observer,
) -> Result<Summary, StreamError> {
    let epoch = Instant::now();
    let pace_start = Arc::new(PaceStart::default());
    let inbox = Arc::new(Inbox::new(cfg.queue));
    let counters: [Arc<SideCounters>; 2] = Default::default();
    let (notice_tx, notice_rx) = mpsc::channel::<String>();
    for (side, source) in Side::BOTH.into_iter().zip(sources) {
        let link = CaptureLink {
            side,
            inbox: inbox.clone(),
            counters: counters[side as usize].clone(),
            stop: stop.clone(),
            notices: notice_tx.clone(),
            epoch,
            pace: cfg.pace,
            pace_start: pace_start.clone(),
        };
        std::thread::Builder::new()
            .name(format!("capture-{}", side.name()))
            .spawn(move || capture(source, link))
            .expect("spawning a capture thread");
    }

    let (out_tx, out_rx) = mpsc::sync_channel::<Fused>(2);
    let mut output = Output::new(cfg, epoch);
    let (end, sink_error) = std::thread::scope(|scope| {
        let inference = {
            let (inbox, stop, pace, tx) = (&inbox, &stop, &pace_start, notice_tx.clone());
            std::thread::Builder::new()
                .name("inference".into())
                .spawn_scoped(scope, move || {
                    infer(fuser, cfg, inbox, stop, pace, out_tx, tx)
                })
                .expect("spawning the inference thread")
        };
        let sink_error = output.drain(
            &out_rx,
            &notice_rx,
            sink.as_mut(),
            &inbox,
            &counters,
            observer,
        );
        if sink_error.is_some() {
            // Stop the inference thread (its next send fails) and the producers.
            drop(out_rx);
        }
        inbox.shut_down();
        let end = inference
            .join()
            .expect("the inference thread does not panic");
        // Paced capture threads still waiting for a start (no pair was ever built) go on to
        // find the inbox shut down.
        pace_start.start();
        (end, sink_error)
    });
    // Notices sent while the inference thread finished.
    while let Ok(n) = notice_rx.try_recv() {
        output.note(&n, observer);
    }
    let finished = sink.finish();
    let totals = output.totals(&inbox, &counters, end.stalls);
    let stopped_by = if let Some(e) = &sink_error {
        e.to_string()
    } else if let Some(e) = &end.error {
        e.to_string()
    } else if end.frame_limit {
        "frame limit".into()
    } else if stop.load(Ordering::Relaxed) {
        "interrupted".into()
    } else {
        "end of input".into()
    };
    if let Some(e) = sink_error {
        return Err(e.into());
    }
    if let Some(e) = end.error {
        return Err(e);
    }
    finished?;
    let after_first = output
        .last_write
        .zip(output.first_write)
        .map(|(l, f)| l - f);
    let later = output.written.saturating_sub(1);
    Ok(Summary {
        seconds: output
            .last_write
            .map_or(epoch.elapsed(), |l| l - epoch)
            .as_secs_f64(),
        written: output.written,
        fps_out: match after_first {
            Some(d) if later > 0 && d > Duration::ZERO => later as f64 / d.as_secs_f64(),
            _ => 0.0,
        },
        latency_ms: (output.latency.count() > 0).then(|| {
            let ms = |q: f64| {
                output
                    .latency
                    .percentile(q)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1e3
            };
            RunLatency {
                p50: ms(50.0),
                p90: ms(90.0),
                p99: ms(99.0),
                max: ms(100.0),
            }
        }),
        ir: totals[0],
        vis: totals[1],
        frame_size: end.frame_size,
        size_changes: end.size_changes,
        rss: output.rss,
        peak_rss_bytes: peak_rss_bytes(),
        stopped_by,
        errors: output.errors,
    })
}

/// The output thread's state: sink writes, latency, periodic reports.
struct Output {
    report_every: Duration,
    epoch: Instant,
    written: u64,
    first_write: Option<Instant>,
    last_write: Option<Instant>,
    /// Whole run, after the first frame (which includes planning).
    latency: Histogram,
    interval_ms: Vec<f64>,
    interval_start: Instant,
    interval_written: u64,
    interval_captured: [u64; 2],
    rss: Vec<RssSample>,
    errors: Vec<String>,
}

impl Output {
    fn new(cfg: &StreamConfig, epoch: Instant) -> Output {
        Output {
            report_every: cfg.report_every,
            epoch,
            written: 0,
            first_write: None,
            last_write: None,
            latency: Histogram::default(),
            interval_ms: Vec::new(),
            interval_start: epoch,
            interval_written: 0,
            interval_captured: [0; 2],
            rss: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn note(&mut self, message: &str, observer: &mut dyn Observer) {
        if let Some(e) = message.strip_prefix("error: ") {
            self.errors.push(e.to_string());
        }
        observer.notice(message);
    }

    /// Writes frames until the inference thread ends; returns a sink error, if one stopped it.
    fn drain(
        &mut self,
        frames: &Receiver<Fused>,
        notices: &Receiver<String>,
        sink: &mut dyn Sink,
        inbox: &Inbox<Frame>,
        counters: &[Arc<SideCounters>; 2],
        observer: &mut dyn Observer,
    ) -> Option<SinkError> {
        loop {
            while let Ok(n) = notices.try_recv() {
                self.note(&n, observer);
            }
            let next_tick = self.interval_start + self.report_every;
            let wait = next_tick.saturating_duration_since(Instant::now());
            match frames.recv_timeout(wait) {
                Ok(f) => {
                    if let Err(e) = sink.write(&f.image) {
                        return Some(e);
                    }
                    let now = Instant::now();
                    if self.first_write.is_some() {
                        self.latency.record(now - f.captured);
                    }
                    self.first_write.get_or_insert(now);
                    self.last_write = Some(now);
                    self.interval_ms
                        .push((now - f.captured).as_secs_f64() * 1e3);
                    self.written += 1;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
            if Instant::now() >= next_tick {
                self.tick(inbox, counters, observer);
            }
        }
    }

    fn tick(
        &mut self,
        inbox: &Inbox<Frame>,
        counters: &[Arc<SideCounters>; 2],
        observer: &mut dyn Observer,
    ) {
        let now = Instant::now();
        let secs = (now - self.interval_start).as_secs_f64().max(1e-9);
        let sides = self.totals(inbox, counters, [0; 2]);
        let captured = [sides[0].captured, sides[1].captured];
        let tick = Tick {
            elapsed: now - self.epoch,
            fps_in: [0, 1].map(|i| (captured[i] - self.interval_captured[i]) as f64 / secs),
            fps_out: (self.written - self.interval_written) as f64 / secs,
            latency: LatencyStats::from_samples(&self.interval_ms),
            sides,
            written: self.written,
        };
        observer.tick(&tick);
        if let Some(rss) = current_rss_bytes() {
            self.rss.push(RssSample {
                frames: self.written,
                rss_bytes: rss,
            });
        }
        self.interval_ms.clear();
        self.interval_start = now;
        self.interval_written = self.written;
        self.interval_captured = captured;
    }

    fn totals(
        &self,
        inbox: &Inbox<Frame>,
        counters: &[Arc<SideCounters>; 2],
        stalls: [u64; 2],
    ) -> [SideTotals; 2] {
        Side::BOTH.map(|side| {
            let c = &counters[side as usize];
            let (unpaired, dropped) = inbox.drops(side);
            SideTotals {
                captured: c.captured.load(Ordering::Relaxed),
                dropped,
                unpaired,
                corrupt: c.corrupt.load(Ordering::Relaxed),
                stalls: stalls[side as usize],
                reconnects: c.reconnects.load(Ordering::Relaxed),
            }
        })
    }
}
