//! Automatic gain control for 14/16-bit thermal frames (raw Y16 from FLIR Lepton/Boson-class
//! cores): raw counts to `[0, 1]` samples the network can use.
//!
//! A radiometric frame spans a few hundred counts of a 16-bit range, so a fixed scale gives a
//! flat grey image. [`Agc::Percentile`] stretches the frame's own low/high percentiles to
//! `[0, 1]`, with the limits smoothed over frames so the picture does not pump when a hot
//! object enters; [`Agc::Clahe`] adds contrast-limited adaptive histogram equalisation on top
//! of that stretch (local contrast, the look of most thermal cores' "AGC on" output).
//! [`Agc::Linear`] is the plain `count / (2^bits − 1)` scale, for data already gain-controlled.

use std::fmt;
use std::str::FromStr;

/// How raw counts become `[0, 1]` samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agc {
    /// Stretch the `low`..`high` percentiles of each frame to `[0, 1]` (clipped outside).
    Percentile {
        /// Low percentile, in percent.
        low: f64,
        /// High percentile, in percent.
        high: f64,
    },
    /// [`Agc::Percentile`] with 0.5 % / 99.5 %, then CLAHE on `tiles` x `tiles` tiles with
    /// the histogram clipped at `clip` times its mean bin.
    Clahe {
        /// Tiles per axis.
        tiles: usize,
        /// Clip limit, in multiples of the mean bin count (>= 1).
        clip: f64,
    },
    /// `count / (2^bits − 1)`, clipped to `[0, 1]`.
    Linear,
}

impl Agc {
    /// Percentile stretch 1 % / 99 %.
    pub const PERCENTILE: Agc = Agc::Percentile {
        low: 1.0,
        high: 99.0,
    };
    /// CLAHE on 8x8 tiles, clip limit 2.
    pub const CLAHE: Agc = Agc::Clahe {
        tiles: 8,
        clip: 2.0,
    };
}

impl Default for Agc {
    fn default() -> Agc {
        Agc::PERCENTILE
    }
}

impl fmt::Display for Agc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agc::Percentile { low, high } => write!(f, "percentile {low}%..{high}%"),
            Agc::Clahe { tiles, clip } => write!(f, "clahe {tiles}x{tiles} tiles, clip {clip}"),
            Agc::Linear => f.write_str("linear"),
        }
    }
}

/// An AGC name that is not `percentile`, `clahe` or `linear`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown AGC `{0}`: choose percentile, clahe or linear")]
pub struct UnknownAgc(pub String);

impl FromStr for Agc {
    type Err = UnknownAgc;
    fn from_str(s: &str) -> Result<Agc, UnknownAgc> {
        match s {
            "percentile" => Ok(Agc::PERCENTILE),
            "clahe" => Ok(Agc::CLAHE),
            "linear" | "none" => Ok(Agc::Linear),
            _ => Err(UnknownAgc(s.to_string())),
        }
    }
}

/// Weight of the new frame's limits in the running limits (about a 5-frame time constant at
/// video rate): fast enough to follow a pan, slow enough not to flicker.
const LIMIT_SMOOTHING: f64 = 0.2;

/// Histogram bins of the CLAHE step (on the stretched `[0, 1]` frame).
const CLAHE_BINS: usize = 256;

/// Per-stream AGC state: the smoothed limits and the reusable histogram, so a stream of
/// frames allocates nothing after the first one.
#[derive(Debug, Clone)]
pub struct AgcState {
    agc: Agc,
    bits: u32,
    limits: Option<(f64, f64)>,
    histogram: Vec<u32>,
}

impl AgcState {
    /// State for frames of `bits` significant bits (1..=16; counts above are clipped).
    pub fn new(agc: Agc, bits: u32) -> AgcState {
        AgcState {
            agc,
            bits: bits.clamp(1, 16),
            limits: None,
            histogram: Vec::new(),
        }
    }

    /// The method.
    pub fn agc(&self) -> Agc {
        self.agc
    }

    /// Converts one frame of raw counts (`width * height`, row-major) into `out`.
    pub fn apply(&mut self, counts: &[u16], width: usize, height: usize, out: &mut Vec<f32>) {
        debug_assert_eq!(counts.len(), width * height);
        out.clear();
        let max = ((1u32 << self.bits) - 1) as u16;
        match self.agc {
            Agc::Linear => {
                let scale = 1.0 / f32::from(max);
                out.extend(counts.iter().map(|&c| f32::from(c.min(max)) * scale));
            }
            Agc::Percentile { low, high } => self.stretch(counts, low, high, out),
            Agc::Clahe { tiles, clip } => {
                self.stretch(counts, 0.5, 99.5, out);
                clahe(out, width, height, tiles, clip, &mut self.histogram);
            }
        }
    }

    /// Percentile stretch with limits smoothed over frames.
    fn stretch(&mut self, counts: &[u16], low: f64, high: f64, out: &mut Vec<f32>) {
        let max = (1usize << self.bits) - 1;
        self.histogram.clear();
        self.histogram.resize(max + 1, 0);
        for &c in counts {
            self.histogram[usize::from(c).min(max)] += 1;
        }
        let (lo, hi) = percentiles(&self.histogram, counts.len(), low, high);
        let (lo, hi) = match self.limits {
            None => (lo, hi),
            Some((l, h)) => (
                l + LIMIT_SMOOTHING * (lo - l),
                h + LIMIT_SMOOTHING * (hi - h),
            ),
        };
        self.limits = Some((lo, hi));
        // A uniform frame (lens cap, shutter) maps to mid-grey instead of dividing by zero.
        let span = (hi - lo).max(1.0);
        let (lo, inv) = (lo as f32, 1.0 / span as f32);
        out.extend(
            counts
                .iter()
                .map(|&c| ((f32::from(c) - lo) * inv).clamp(0.0, 1.0)),
        );
    }
}

/// The counts at the `low` and `high` percentiles of a histogram of `n` samples.
fn percentiles(histogram: &[u32], n: usize, low: f64, high: f64) -> (f64, f64) {
    let rank = |p: f64| ((p / 100.0) * n.saturating_sub(1) as f64).round() as u64;
    let (want_lo, want_hi) = (rank(low), rank(high));
    let (mut lo, mut hi) = (None, None);
    let mut seen = 0u64;
    for (value, &count) in histogram.iter().enumerate() {
        seen += u64::from(count);
        if lo.is_none() && seen > want_lo {
            lo = Some(value as f64);
        }
        if seen > want_hi {
            hi = Some(value as f64);
            break;
        }
    }
    let hi = hi.unwrap_or((histogram.len() - 1) as f64);
    (lo.unwrap_or(0.0), hi)
}

/// Contrast-limited adaptive histogram equalisation of a `[0, 1]` plane in place: one clipped
/// and redistributed 256-bin histogram per tile, each pixel mapped through the bilinear blend
/// of its four nearest tiles' CDFs (Zuiderveld, Graphics Gems IV).
fn clahe(
    plane: &mut [f32],
    width: usize,
    height: usize,
    tiles: usize,
    clip: f64,
    scratch: &mut Vec<u32>,
) {
    let tiles_x = tiles.clamp(1, width.max(1));
    let tiles_y = tiles.clamp(1, height.max(1));
    let bin = |v: f32| ((v * (CLAHE_BINS - 1) as f32).round() as usize).min(CLAHE_BINS - 1);
    scratch.clear();
    scratch.resize(tiles_x * tiles_y * CLAHE_BINS, 0);
    let tile_of = |i: usize, n: usize, t: usize| (i * t / n).min(t - 1);
    for y in 0..height {
        let ty = tile_of(y, height, tiles_y);
        for x in 0..width {
            let tx = tile_of(x, width, tiles_x);
            scratch[(ty * tiles_x + tx) * CLAHE_BINS + bin(plane[y * width + x])] += 1;
        }
    }
    // Each tile's histogram becomes its CDF, scaled to [0, 1] and stored as f32 bits.
    let mut cdfs = vec![0f32; tiles_x * tiles_y * CLAHE_BINS];
    for t in 0..tiles_x * tiles_y {
        let hist = &mut scratch[t * CLAHE_BINS..(t + 1) * CLAHE_BINS];
        let total: u32 = hist.iter().sum();
        if total == 0 {
            continue;
        }
        let limit = ((clip.max(1.0) * f64::from(total) / CLAHE_BINS as f64).ceil() as u32).max(1);
        let mut excess = 0u32;
        for h in hist.iter_mut() {
            if *h > limit {
                excess += *h - limit;
                *h = limit;
            }
        }
        let (share, rest) = (
            excess / CLAHE_BINS as u32,
            (excess % CLAHE_BINS as u32) as usize,
        );
        let cdf = &mut cdfs[t * CLAHE_BINS..(t + 1) * CLAHE_BINS];
        let mut acc = 0u32;
        for (i, h) in hist.iter().enumerate() {
            acc += h + share + u32::from(i < rest);
            cdf[i] = acc as f32 / total as f32;
        }
    }
    // Tile centres, in pixels, for the bilinear blend.
    let centre = |t: usize, n: usize, count: usize| (t as f32 + 0.5) * n as f32 / count as f32;
    let neighbours = |p: usize, n: usize, count: usize| {
        let c = (p as f32 + 0.5) * count as f32 / n as f32 - 0.5;
        let t0 = c.floor().clamp(0.0, (count - 1) as f32) as usize;
        let t1 = (t0 + 1).min(count - 1);
        let f = if t1 == t0 {
            0.0
        } else {
            ((p as f32 + 0.5 - centre(t0, n, count))
                / (centre(t1, n, count) - centre(t0, n, count)))
            .clamp(0.0, 1.0)
        };
        (t0, t1, f)
    };
    for y in 0..height {
        let (ty0, ty1, fy) = neighbours(y, height, tiles_y);
        for x in 0..width {
            let (tx0, tx1, fx) = neighbours(x, width, tiles_x);
            let b = bin(plane[y * width + x]);
            let at = |ty: usize, tx: usize| cdfs[(ty * tiles_x + tx) * CLAHE_BINS + b];
            let top = at(ty0, tx0) * (1.0 - fx) + at(ty0, tx1) * fx;
            let bottom = at(ty1, tx0) * (1.0 - fx) + at(ty1, tx1) * fx;
            plane[y * width + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 14-bit-like frame: a 300-count ramp around 8000 with one hot and one cold pixel.
    fn thermal(width: usize, height: usize) -> Vec<u16> {
        let mut f: Vec<u16> = (0..width * height)
            .map(|i| 8000 + (i % width) as u16 * 300 / width as u16)
            .collect();
        f[0] = 16383;
        f[1] = 0;
        f
    }

    #[test]
    fn percentile_stretch_spans_the_range_and_ignores_outliers() {
        let (w, h) = (64, 48);
        let mut agc = AgcState::new(Agc::PERCENTILE, 14);
        let mut out = Vec::new();
        agc.apply(&thermal(w, h), w, h, &mut out);
        // The ramp fills [0, 1]: column 1 near 0, column 62 near 1, not crushed by the outliers.
        assert!(
            out[w + 1] < 0.05 && out[w + 62] > 0.95,
            "{} {}",
            out[w + 1],
            out[w + 62]
        );
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        let linear = {
            let mut a = AgcState::new(Agc::Linear, 14);
            let mut o = Vec::new();
            a.apply(&thermal(w, h), w, h, &mut o);
            o
        };
        assert!((linear[w] - 8000.0 / 16383.0).abs() < 1e-6);
    }

    #[test]
    fn limits_are_smoothed_over_frames() {
        let (w, h) = (32, 8);
        let mut agc = AgcState::new(Agc::PERCENTILE, 16);
        let mut out = Vec::new();
        agc.apply(&thermal(w, h), w, h, &mut out);
        let before = out[w + 16];
        // The whole scene warms by 300 counts: the running limits follow only partly, so the
        // same pixel brightens instead of staying put (no pumping jump).
        let warm: Vec<u16> = thermal(w, h)
            .iter()
            .map(|c| c.saturating_add(300))
            .collect();
        agc.apply(&warm, w, h, &mut out);
        assert!(out[w + 16] > before + 0.2, "{before} -> {}", out[w + 16]);
    }

    #[test]
    fn uniform_frames_do_not_divide_by_zero() {
        let mut agc = AgcState::new(Agc::CLAHE, 14);
        let mut out = Vec::new();
        agc.apply(&[5000; 64], 8, 8, &mut out);
        assert!(out.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn clahe_raises_local_contrast_and_keeps_order() {
        // Two halves of low-contrast texture at different levels: a global stretch leaves each
        // half's texture faint, CLAHE spreads each half over a wide range.
        let (w, h) = (64, 64);
        let counts: Vec<u16> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let base = if x < w / 2 { 1000 } else { 3000 };
                base + ((x * 7 + y * 3) % 20) as u16
            })
            .collect();
        let spread = |agc: Agc| {
            let mut s = AgcState::new(agc, 16);
            let mut out = Vec::new();
            s.apply(&counts, w, h, &mut out);
            let left: Vec<f32> = (0..h)
                .flat_map(|y| out[y * w + 4..y * w + 12].to_vec())
                .collect();
            let (lo, hi) = left
                .iter()
                .fold((1f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
            hi - lo
        };
        let (global, local) = (spread(Agc::PERCENTILE), spread(Agc::CLAHE));
        assert!(local > 3.0 * global, "percentile {global}, clahe {local}");
    }

    #[test]
    fn names_parse() {
        assert_eq!("clahe".parse::<Agc>().unwrap(), Agc::CLAHE);
        assert!(
            "auto"
                .parse::<Agc>()
                .unwrap_err()
                .to_string()
                .contains("percentile")
        );
    }
}
