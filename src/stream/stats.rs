//! Counters and latency statistics of a stream: what the once-a-second line on stderr and the
//! final summary report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bench::LatencyStats;

/// Per-side counters shared with the capture threads.
#[derive(Debug, Default)]
pub struct SideCounters {
    /// Frames the source gave.
    pub captured: AtomicU64,
    /// Frames skipped as corrupt (undecodable, cut short, wrong size).
    pub corrupt: AtomicU64,
    /// Successful reconnections after the device was lost.
    pub reconnects: AtomicU64,
}

impl SideCounters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Totals of one side, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideTotals {
    /// Frames the source gave.
    pub captured: u64,
    /// Dropped because inference was behind (queue full; live sources only).
    pub dropped: u64,
    /// Dropped because no frame of the other stream was close enough in time.
    pub unpaired: u64,
    /// Skipped as corrupt.
    pub corrupt: u64,
    /// Times the source stalled (no frame for the stall timeout).
    pub stalls: u64,
    /// Reconnections after the device was lost.
    pub reconnects: u64,
}

/// Relative width of a latency histogram bucket (2 %: percentiles to about 1 %).
const BUCKET_RATIO: f64 = 1.02;
/// Buckets from 1 µs to about 100 s.
const BUCKETS: usize = 940;

/// A log-spaced latency histogram: constant memory however long the stream runs.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: Duration,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: Duration::ZERO,
        }
    }
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let i = if us <= 1.0 {
            0
        } else {
            ((us.ln() / BUCKET_RATIO.ln()) as usize).min(BUCKETS - 1)
        };
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(d);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-th percentile (bucket centre), `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let centre_us = BUCKET_RATIO.powf(i as f64 + 0.5);
                return Some(Duration::from_secs_f64(centre_us / 1e6).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// The once-a-second report.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Time since the stream started.
    pub elapsed: Duration,
    /// Frames per second given by each source over the last interval.
    pub fps_in: [f64; 2],
    /// Fused frames written per second over the last interval.
    pub fps_out: f64,
    /// Capture-to-output latency over the last interval (ms), if frames were written.
    pub latency: Option<LatencyStats>,
    /// Totals so far, `[ir, vis]`.
    pub sides: [SideTotals; 2],
    /// Fused frames written so far.
    pub written: u64,
}

impl Tick {
    /// One line for stderr.
    pub fn line(&self) -> String {
        let lat = self.latency.map_or("latency -".to_string(), |l| {
            format!("latency p50 {:.0} ms p99 {:.0} ms", l.p50, l.p99)
        });
        let [ir, vis] = &self.sides;
        format!(
            "[{:6.1} s] in ir {:.1} vis {:.1} fps | out {:.1} fps | {lat} | written {} | dropped ir {} vis {} | unpaired ir {} vis {} | corrupt ir {} vis {}",
            self.elapsed.as_secs_f64(),
            self.fps_in[0],
            self.fps_in[1],
            self.fps_out,
            self.written,
            ir.dropped,
            vis.dropped,
            ir.unpaired,
            vis.unpaired,
            ir.corrupt,
            vis.corrupt
        )
    }
}

/// Latency percentiles of a whole run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunLatency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest frame.
    pub max: f64,
}

/// A resident-memory sample: after how many written frames, how many bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RssSample {
    /// Frames written when sampled.
    pub frames: u64,
    /// Resident set, bytes.
    pub rss_bytes: u64,
}

/// What a finished stream reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Wall time from start to the last frame written, seconds.
    pub seconds: f64,
    /// Fused frames written.
    pub written: u64,
    /// Output rate over the run after the first frame (planning excluded), frames per second.
    pub fps_out: f64,
    /// Capture-to-output latency over the run after the first frame.
    pub latency_ms: Option<RunLatency>,
    /// Per side: `ir`, `vis`.
    pub ir: SideTotals,
    /// See `ir`.
    pub vis: SideTotals,
    /// Frame size fused (visible size), `[width, height]`.
    pub frame_size: Option<[usize; 2]>,
    /// Pairs skipped because a frame's size differed from the stream's first frames.
    pub size_changes: u64,
    /// Resident memory once a second (Linux), to show it stays flat.
    pub rss: Vec<RssSample>,
    /// Peak resident memory, bytes (Linux).
    pub peak_rss_bytes: Option<u64>,
    /// Why it stopped: `end of input`, `interrupted`, `frame limit`, or the error.
    pub stopped_by: String,
    /// Source failures that ended a side early.
    pub errors: Vec<String>,
}

impl Summary {
    /// The human-readable summary for stderr.
    pub fn text(&self) -> String {
        let mut s = format!(
            "stream summary: {} frames in {:.1} s, {:.2} fps out ({})",
            self.written, self.seconds, self.fps_out, self.stopped_by
        );
        if let Some(l) = self.latency_ms {
            s += &format!(
                "\n  latency capture-to-output: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l.p50, l.p90, l.p99, l.max
            );
        }
        for (name, t) in [("ir", &self.ir), ("vis", &self.vis)] {
            s += &format!(
                "\n  {name}: {} captured, {} dropped (inference behind), {} unpaired, {} corrupt, {} stalls, {} reconnects",
                t.captured, t.dropped, t.unpaired, t.corrupt, t.stalls, t.reconnects
            );
        }
        if self.size_changes > 0 {
            s += &format!(
                "\n  {} pairs skipped: their frame size differed from the stream's first pair",
                self.size_changes
            );
        }
        if let (Some(first), Some(last)) = (self.rss.first(), self.rss.last()) {
            s += &format!(
                "\n  memory: RSS {:.1} MiB after {} frames, {:.1} MiB after {} (peak {:.1} MiB)",
                first.rss_bytes as f64 / 1048576.0,
                first.frames,
                last.rss_bytes as f64 / 1048576.0,
                last.frames,
                self.peak_rss_bytes.unwrap_or(0) as f64 / 1048576.0
            );
        }
        for e in &self.errors {
            s += &format!("\n  error: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.percentile(50.0).unwrap().as_secs_f64() * 1e3;
        let p99 = h.percentile(99.0).unwrap().as_secs_f64() * 1e3;
        assert!((p50 - 50.0).abs() < 1.0, "{p50}");
        assert!((p99 - 99.0).abs() < 2.0, "{p99}");
        assert_eq!(h.percentile(100.0).unwrap(), Duration::from_millis(100));
        assert!(Histogram::default().percentile(50.0).is_none());
    }
}
