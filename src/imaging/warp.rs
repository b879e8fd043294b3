//! Registration of the IR frame onto the visible frame: a 3x3 homography (estimated from point
//! pairs with the normalised DLT), the calibration file that stores it, and a precomputed
//! bilinear warp map, built once per stream and applied per frame without allocating.
//!
//! Coordinates are in pixels with `(0, 0)` at the centre of the top-left pixel. A homography
//! `H` maps IR coordinates to visible ones: `vis ~ H · (x_ir, y_ir, 1)`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a homography or a calibration could not be made or used. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum WarpError {
    /// Fewer than four point pairs.
    #[error(
        "{n} point pairs given: a homography needs at least 4 (8 or more spread over the frame are better)"
    )]
    TooFewPoints {
        /// How many were given.
        n: usize,
    },
    /// The points do not determine a homography.
    #[error(
        "the point pairs are degenerate (three or more on one line, or repeated): spread them over the frame"
    )]
    Degenerate,
    /// A calibration file could not be read or is malformed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, and what was expected.
        reason: String,
    },
    /// Frames do not have the size the calibration was made for.
    #[error(
        "{path}: calibrated for {what} frames of {expected_w}x{expected_h}, the stream gives {got_w}x{got_h}"
    )]
    FrameSize {
        /// The calibration file.
        path: PathBuf,
        /// `IR` or `visible`.
        what: &'static str,
        /// Calibrated width.
        expected_w: usize,
        /// Calibrated height.
        expected_h: usize,
        /// Frame width.
        got_w: usize,
        /// Frame height.
        got_h: usize,
    },
}

/// A 3x3 projective transform, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Homography(pub [[f64; 3]; 3]);

impl Homography {
    /// The identity.
    pub const IDENTITY: Homography =
        Homography([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// The pixel-centre-preserving scale from a `from` frame to a `to` frame (a plain resize).
    pub fn resize(from: (usize, usize), to: (usize, usize)) -> Homography {
        let sx = to.0 as f64 / from.0 as f64;
        let sy = to.1 as f64 / from.1 as f64;
        // x_to + 0.5 = (x_from + 0.5) * s
        Homography([
            [sx, 0.0, 0.5 * sx - 0.5],
            [0.0, sy, 0.5 * sy - 0.5],
            [0.0, 0.0, 1.0],
        ])
    }

    /// Maps a point; `None` where it goes to infinity.
    pub fn apply(&self, (x, y): (f64, f64)) -> Option<(f64, f64)> {
        let h = &self.0;
        let w = h[2][0] * x + h[2][1] * y + h[2][2];
        if w.abs() < 1e-12 {
            return None;
        }
        Some((
            (h[0][0] * x + h[0][1] * y + h[0][2]) / w,
            (h[1][0] * x + h[1][1] * y + h[1][2]) / w,
        ))
    }

    /// The inverse, if the matrix is invertible.
    pub fn inverse(&self) -> Option<Homography> {
        let m = &self.0;
        let cof = |r0: usize, r1: usize, c0: usize, c1: usize| {
            m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
        };
        let adj = [
            [cof(1, 2, 1, 2), -cof(0, 2, 1, 2), cof(0, 1, 1, 2)],
            [-cof(1, 2, 0, 2), cof(0, 2, 0, 2), -cof(0, 1, 0, 2)],
            [cof(1, 2, 0, 1), -cof(0, 2, 0, 1), cof(0, 1, 0, 1)],
        ];
        let det = m[0][0] * adj[0][0] + m[0][1] * adj[1][0] + m[0][2] * adj[2][0];
        if !det.is_finite() || det.abs() < 1e-15 {
            return None;
        }
        Some(Homography(adj.map(|row| row.map(|v| v / det))))
    }

    fn mul(&self, other: &Homography) -> Homography {
        let (a, b) = (&self.0, &other.0);
        let mut out = [[0.0; 3]; 3];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| a[r][k] * b[k][c]).sum();
            }
        }
        Homography(out)
    }

    /// The homography that maps each `from` point onto its `to` point in the least-squares
    /// sense (normalised DLT, Hartley & Zisserman alg. 4.2, with `h33 = 1`).
    pub fn estimate(from: &[(f64, f64)], to: &[(f64, f64)]) -> Result<Homography, WarpError> {
        let n = from.len().min(to.len());
        if n < 4 {
            return Err(WarpError::TooFewPoints { n });
        }
        let (tf, tt) = (normaliser(&from[..n]), normaliser(&to[..n]));
        // Normal equations of the 2n x 8 system in the normalised frames.
        let mut ata = [[0.0f64; 8]; 8];
        let mut atb = [0.0f64; 8];
        for (p, q) in from[..n].iter().zip(&to[..n]) {
            let (x, y) = tf.apply(*p).ok_or(WarpError::Degenerate)?;
            let (u, v) = tt.apply(*q).ok_or(WarpError::Degenerate)?;
            for (row, rhs) in [
                ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
                ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
            ] {
                for i in 0..8 {
                    atb[i] += row[i] * rhs;
                    for j in 0..8 {
                        ata[i][j] += row[i] * row[j];
                    }
                }
            }
        }
        let h = solve8(ata, atb).ok_or(WarpError::Degenerate)?;
        let normalised = Homography([[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1.0]]);
        let back = tt.inverse().ok_or(WarpError::Degenerate)?;
        let mut out = back.mul(&normalised).mul(&tf);
        let s = out.0[2][2];
        if !s.is_finite() || s.abs() < 1e-12 {
            return Err(WarpError::Degenerate);
        }
        out.0.iter_mut().flatten().for_each(|v| *v /= s);
        Ok(out)
    }

    /// Root-mean-square distance between `H(from)` and `to`, in pixels.
    pub fn rms_error(&self, from: &[(f64, f64)], to: &[(f64, f64)]) -> f64 {
        let sq: Vec<f64> = from
            .iter()
            .zip(to)
            .map(|(p, q)| match self.apply(*p) {
                Some((x, y)) => (x - q.0).powi(2) + (y - q.1).powi(2),
                None => f64::INFINITY,
            })
            .collect();
        (sq.iter().sum::<f64>() / sq.len().max(1) as f64).sqrt()
    }
}

/// The similarity that moves the points' centroid to the origin and their mean distance from
/// it to √2.
fn normaliser(points: &[(f64, f64)]) -> Homography {
    let n = points.len() as f64;
    let (cx, cy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
    let mean = points
        .iter()
        .map(|p| ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    let s = if mean > 1e-12 {
        2f64.sqrt() / mean
    } else {
        1.0
    };
    Homography([[s, 0.0, -s * cx], [0.0, s, -s * cy], [0.0, 0.0, 1.0]])
}

/// Solves an 8x8 system by Gaussian elimination with partial pivoting; `None` if singular.
fn solve8(mut a: [[f64; 8]; 8], mut b: [f64; 8]) -> Option<[f64; 8]> {
    let scale = a.iter().flatten().fold(0f64, |m, v| m.max(v.abs()));
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-10 * scale.max(1e-300) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..8 {
            let f = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The calibration file of a camera pair (`ship-edge calibrate` writes it, `stream --calib`
/// reads it): the IR-to-visible homography and the frame sizes it was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// IR frame size, `[width, height]`.
    pub ir_size: [usize; 2],
    /// Visible frame size, `[width, height]`.
    pub vis_size: [usize; 2],
    /// Maps IR pixel coordinates to visible ones.
    pub homography: Homography,
    /// Point pairs it was estimated from.
    pub points: usize,
    /// RMS reprojection error over those points, in visible pixels.
    pub rms_px: f64,
}

impl Calibration {
    /// Reads and checks a calibration file.
    pub fn load(path: &Path) -> Result<Calibration, WarpError> {
        let err = |reason: String| WarpError::File {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let c: Calibration = serde_json::from_str(&text).map_err(|e| {
            err(format!(
                "not a calibration file ({e}); expected JSON with ir_size, vis_size, homography \
                 (3x3), points and rms_px, as `ship-edge calibrate` writes"
            ))
        })?;
        if c.ir_size.contains(&0) || c.vis_size.contains(&0) {
            return Err(err("frame sizes must be at least 1x1".into()));
        }
        if c.homography.inverse().is_none()
            || c.homography.0.iter().flatten().any(|v| !v.is_finite())
        {
            return Err(err("the homography is singular or not finite".into()));
        }
        Ok(c)
    }

    /// The JSON text written to a calibration file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a calibration serialises") + "\n"
    }

    /// Checks that a stream's frames have the calibrated sizes.
    pub fn check_sizes(
        &self,
        path: &Path,
        ir: (usize, usize),
        vis: (usize, usize),
    ) -> Result<(), WarpError> {
        for (what, [ew, eh], (gw, gh)) in
            [("IR", self.ir_size, ir), ("visible", self.vis_size, vis)]
        {
            if (ew, eh) != (gw, gh) {
                return Err(WarpError::FrameSize {
                    path: path.to_path_buf(),
                    what,
                    expected_w: ew,
                    expected_h: eh,
                    got_w: gw,
                    got_h: gh,
                });
            }
        }
        Ok(())
    }
}

/// Sentinel index of an output pixel whose source lies outside the IR frame.
const OUTSIDE: u32 = u32::MAX;

/// A precomputed bilinear warp from a source frame onto a destination frame: per destination
/// pixel, the top-left source neighbour and the two interpolation weights. Pixels that map
/// outside the source are black.
#[derive(Debug, Clone)]
pub struct WarpMap {
    src: (usize, usize),
    dst: (usize, usize),
    index: Vec<u32>,
    fx: Vec<f32>,
    fy: Vec<f32>,
}

impl WarpMap {
    /// The map that resamples a `src` frame with `h` (source to destination coordinates) onto
    /// a `dst` frame. `None` if `h` is singular.
    pub fn new(h: &Homography, src: (usize, usize), dst: (usize, usize)) -> Option<WarpMap> {
        let inv = h.inverse()?;
        let n = dst.0 * dst.1;
        let (mut index, mut fx, mut fy) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (sw, sh) = (src.0 as f64, src.1 as f64);
        for y in 0..dst.1 {
            for x in 0..dst.0 {
                let inside = inv
                    .apply((x as f64, y as f64))
                    .filter(|&(u, v)| u >= -0.5 && v >= -0.5 && u <= sw - 0.5 && v <= sh - 0.5);
                match inside {
                    Some((u, v)) => {
                        // Clamp to the last full cell so x0 + 1 stays inside; the weight
                        // then reaches the edge pixel exactly.
                        let u = u.clamp(0.0, sw - 1.0);
                        let v = v.clamp(0.0, sh - 1.0);
                        let x0 = (u.floor() as usize).min(src.0.saturating_sub(2));
                        let y0 = (v.floor() as usize).min(src.1.saturating_sub(2));
                        index.push((y0 * src.0 + x0) as u32);
                        fx.push((u - x0 as f64) as f32);
                        fy.push((v - y0 as f64) as f32);
                    }
                    None => {
                        index.push(OUTSIDE);
                        fx.push(0.0);
                        fy.push(0.0);
                    }
                }
            }
        }
        Some(WarpMap {
            src,
            dst,
            index,
            fx,
            fy,
        })
    }

    /// Source frame size (width, height).
    pub fn src_size(&self) -> (usize, usize) {
        self.src
    }

    /// Destination frame size (width, height).
    pub fn dst_size(&self) -> (usize, usize) {
        self.dst
    }

    /// Warps one plane (`src` size) into `out` (resized to the destination size).
    pub fn apply(&self, plane: &[f32], out: &mut Vec<f32>) {
        debug_assert_eq!(plane.len(), self.src.0 * self.src.1);
        let sw = self.src.0;
        // One-pixel-wide sources have no right/lower neighbour: reuse the pixel itself.
        let (dx, dy) = (
            usize::from(self.src.0 > 1),
            if self.src.1 > 1 { sw } else { 0 },
        );
        out.clear();
        out.extend(
            self.index
                .iter()
                .zip(self.fx.iter().zip(&self.fy))
                .map(|(&i, (&fx, &fy))| {
                    if i == OUTSIDE {
                        return 0.0;
                    }
                    let i = i as usize;
                    let top = plane[i] * (1.0 - fx) + plane[i + dx] * fx;
                    let bottom = plane[i + dy] * (1.0 - fx) + plane[i + dy + dx] * fx;
                    top * (1.0 - fy) + bottom * fy
                }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Homography {
        Homography([[1.8, 0.05, 12.0], [-0.03, 1.75, 7.5], [1e-4, -5e-5, 1.0]])
    }

    #[test]
    fn estimate_recovers_a_known_homography() {
        let from: Vec<(f64, f64)> = [
            (3.0, 4.0),
            (150.0, 10.0),
            (155.0, 115.0),
            (8.0, 118.0),
            (80.0, 60.0),
            (40.0, 90.0),
        ]
        .to_vec();
        let to: Vec<_> = from.iter().map(|&p| truth().apply(p).unwrap()).collect();
        let h = Homography::estimate(&from, &to).unwrap();
        assert!(h.rms_error(&from, &to) < 1e-6);
        for (a, b) in h.0.iter().flatten().zip(truth().0.iter().flatten()) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0), "{h:?}");
        }
    }

    #[test]
    fn estimate_refuses_too_few_and_collinear_points() {
        let line: Vec<(f64, f64)> = (0..6).map(|i| (i as f64, 2.0 * i as f64)).collect();
        assert!(matches!(
            Homography::estimate(&line[..3], &line[..3]),
            Err(WarpError::TooFewPoints { n: 3 })
        ));
        assert!(matches!(
            Homography::estimate(&line, &line),
            Err(WarpError::Degenerate)
        ));
    }

    #[test]
    fn inverse_round_trips() {
        let h = truth();
        let p = h
            .inverse()
            .unwrap()
            .apply(h.apply((33.0, 21.0)).unwrap())
            .unwrap();
        assert!((p.0 - 33.0).abs() < 1e-9 && (p.1 - 21.0).abs() < 1e-9);
    }

    #[test]
    fn identity_warp_is_exact_and_resize_keeps_a_ramp() {
        let (w, h) = (7, 5);
        let plane: Vec<f32> = (0..w * h).map(|i| i as f32 / 40.0).collect();
        let mut out = Vec::new();
        WarpMap::new(&Homography::IDENTITY, (w, h), (w, h))
            .unwrap()
            .apply(&plane, &mut out);
        assert_eq!(out, plane);
        // A horizontal ramp upscaled 2x stays a ramp: centre of the 2x frame's pixel 2 is the
        // source position 0.75.
        let ramp: Vec<f32> = (0..w * h).map(|i| (i % w) as f32).collect();
        let map = WarpMap::new(
            &Homography::resize((w, h), (2 * w, 2 * h)),
            (w, h),
            (2 * w, 2 * h),
        )
        .unwrap();
        map.apply(&ramp, &mut out);
        assert!((out[2] - 0.75).abs() < 1e-6, "{}", out[2]);
        assert!((out[2 * w - 1] - 6.0).abs() < 1e-6);
    }

    #[test]
    fn pixels_mapped_outside_are_black() {
        let shift = Homography([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let mut out = Vec::new();
        WarpMap::new(&shift, (8, 2), (8, 2))
            .unwrap()
            .apply(&[1.0; 16], &mut out);
        assert_eq!(&out[..3], &[0.0; 3]);
        assert_eq!(&out[3..8], &[1.0; 5]);
    }

    #[test]
    fn calibration_file_round_trips_and_checks_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calib.json");
        let c = Calibration {
            ir_size: [160, 120],
            vis_size: [640, 480],
            homography: truth(),
            points: 6,
            rms_px: 0.5,
        };
        std::fs::write(&path, c.to_json()).unwrap();
        let back = Calibration::load(&path).unwrap();
        assert_eq!(back, c);
        let e = back
            .check_sizes(&path, (160, 120), (640, 512))
            .unwrap_err()
            .to_string();
        assert!(e.contains("640x480") && e.contains("640x512"), "{e}");
        std::fs::write(&path, "{\"ir_size\": [1, 2]}").unwrap();
        let e = Calibration::load(&path).unwrap_err().to_string();
        assert!(e.contains("calib.json") && e.contains("homography"), "{e}");
    }
}
