//! The SHIP colour conventions: which plane of each input the network sees, and the
//! RGB <-> Y/Cr/Cb conversion around it, with exactly the coefficients of the official code.
//!
//! Forward (all values in `[0, 1]`, chroma centred on 0.5):
//! `Y = 0.299 R + 0.587 G + 0.114 B`, `Cr = 0.713 (R - Y) + 0.5`, `Cb = 0.564 (B - Y) + 0.5`.
//!
//! Inverse: `R = Y + 1.403 (Cr - 0.5)`, `G = Y - 0.714 (Cr - 0.5) - 0.344 (Cb - 0.5)`,
//! `B = Y + 1.773 (Cb - 0.5)`.
//!
//! The rounded coefficients make forward then inverse exact to within 1e-3, not bit-exact.

use super::Planes;

/// Converts one RGB pixel to `[Y, Cr, Cb]`.
///
/// ```
/// use ship_edge::imaging::color::rgb_to_ycrcb;
/// let [y, cr, cb] = rgb_to_ycrcb([0.5, 0.5, 0.5]);
/// assert!((y - 0.5).abs() < 1e-6 && (cr - 0.5).abs() < 1e-6 && (cb - 0.5).abs() < 1e-6);
/// ```
#[inline]
pub fn rgb_to_ycrcb([r, g, b]: [f32; 3]) -> [f32; 3] {
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    [y, 0.713 * (r - y) + 0.5, 0.564 * (b - y) + 0.5]
}

/// Converts one `[Y, Cr, Cb]` pixel back to RGB (not clamped).
#[inline]
pub fn ycrcb_to_rgb([y, cr, cb]: [f32; 3]) -> [f32; 3] {
    let (cr, cb) = (cr - 0.5, cb - 0.5);
    [y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb]
}

/// The chroma planes of an RGB visible image, kept aside while the network fuses Y.
#[derive(Debug, Clone, PartialEq)]
pub struct Chroma {
    /// Cr plane, centred on 0.5.
    pub cr: Vec<f32>,
    /// Cb plane, centred on 0.5.
    pub cb: Vec<f32>,
}

/// Splits a visible image into the Y plane the network takes and, for an RGB image, the
/// chroma to merge back afterwards. A grey image is its own Y and has no chroma.
pub fn split_visible(vis: &Planes) -> (Vec<f32>, Option<Chroma>) {
    if !vis.is_rgb() {
        return (vis.channel(0).to_vec(), None);
    }
    let n = vis.width() * vis.height();
    let (r, g, b) = (vis.channel(0), vis.channel(1), vis.channel(2));
    let mut y = Vec::with_capacity(n);
    let mut cr = Vec::with_capacity(n);
    let mut cb = Vec::with_capacity(n);
    for ((&pr, &pg), &pb) in r.iter().zip(g).zip(b) {
        let [py, pcr, pcb] = rgb_to_ycrcb([pr, pg, pb]);
        y.push(py);
        cr.push(pcr);
        cb.push(pcb);
    }
    (y, Some(Chroma { cr, cb }))
}

/// The infrared plane the network takes: channel 0. A single-channel IR image is used as
/// is; for a multi-channel one (a grey frame saved as RGB, as in the TNO set) the official
/// SHIP code reads the first channel, and so do we.
pub fn infrared(ir: &Planes) -> &[f32] {
    ir.channel(0)
}

/// Merges a fused Y plane with the visible chroma (if any) into the output image, clamping
/// every sample to `[0, 1]`. Without chroma the output is grey.
///
/// # Panics
/// If `y` or the chroma planes do not hold `width * height` samples.
pub fn merge(y: &[f32], chroma: Option<&Chroma>, width: usize, height: usize) -> Planes {
    let clamp = |v: f32| v.clamp(0.0, 1.0);
    let Some(chroma) = chroma else {
        return Planes::gray(width, height, y.iter().copied().map(clamp).collect());
    };
    let n = y.len();
    let (mut r, mut g, mut b) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((&py, &pcr), &pcb) in y.iter().zip(&chroma.cr).zip(&chroma.cb) {
        let [pr, pg, pb] = ycrcb_to_rgb([py, pcr, pcb]);
        r.push(clamp(pr));
        g.push(clamp(pg));
        b.push(clamp(pb));
    }
    Planes::rgb(width, height, [r, g, b])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounded SHIP coefficients: forward then inverse is off by at most ~5e-4.
    const ROUNDTRIP_TOL: f32 = 1e-3;

    #[test]
    fn rgb_roundtrip_on_a_grid() {
        let steps = [0.0, 0.1, 0.25, 0.5, 0.73, 0.9, 1.0];
        for r in steps {
            for g in steps {
                for b in steps {
                    let back = ycrcb_to_rgb(rgb_to_ycrcb([r, g, b]));
                    for (x, y) in [r, g, b].iter().zip(back) {
                        assert!((x - y).abs() < ROUNDTRIP_TOL, "{:?} -> {back:?}", [r, g, b]);
                    }
                }
            }
        }
    }

    #[test]
    fn ycrcb_roundtrip_inside_the_gamut() {
        // Y/Cr/Cb triples that map to an in-gamut RGB come back within tolerance.
        let steps = [0.2, 0.35, 0.5, 0.65, 0.8];
        for y in steps {
            for cr in [0.45, 0.5, 0.55] {
                for cb in [0.45, 0.5, 0.55] {
                    let back = rgb_to_ycrcb(ycrcb_to_rgb([y, cr, cb]));
                    for (a, b) in [y, cr, cb].iter().zip(back) {
                        assert!(
                            (a - b).abs() < ROUNDTRIP_TOL,
                            "{:?} -> {back:?}",
                            [y, cr, cb]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn grey_has_neutral_chroma_and_merges_back() {
        let vis = Planes::rgb(2, 1, [vec![0.2, 0.8], vec![0.2, 0.8], vec![0.2, 0.8]]);
        let (y, chroma) = split_visible(&vis);
        let chroma = chroma.unwrap();
        assert!(y.iter().zip([0.2, 0.8]).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(
            chroma
                .cr
                .iter()
                .chain(&chroma.cb)
                .all(|c| (c - 0.5).abs() < 1e-6)
        );
        let out = merge(&y, Some(&chroma), 2, 1);
        assert!(out.is_rgb());
        for ch in out.channels() {
            assert!(ch.iter().zip([0.2, 0.8]).all(|(a, b)| (a - b).abs() < 1e-6));
        }
    }

    #[test]
    fn merge_clamps_and_grey_stays_grey() {
        let out = merge(&[-0.5, 0.5, 1.5], None, 3, 1);
        assert_eq!(out.channel_count(), 1);
        assert_eq!(out.channel(0), &[0.0, 0.5, 1.0]);
        let chroma = Chroma {
            cr: vec![1.0],
            cb: vec![0.0],
        };
        let out = merge(&[1.0], Some(&chroma), 1, 1);
        assert!(out.channels().iter().all(|c| (0.0..=1.0).contains(&c[0])));
    }

    #[test]
    fn infrared_takes_channel_zero() {
        let ir = Planes::rgb(1, 1, [vec![0.1], vec![0.2], vec![0.3]]);
        assert_eq!(infrared(&ir), &[0.1]);
    }
}
