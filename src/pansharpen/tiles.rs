//! Tiling a large scene for a pan-sharpening model: overlapping MS tiles, each run with its PAN
//! tile, blended back with weights that ramp across the overlaps, so no seam shows.
//!
//! A weight is 0 in the outermost `margin` PAN pixels of an inner tile edge (where a tile's own
//! border handling differs from the whole scene's), then rises linearly to 1 across the rest of
//! the overlap; at the scene border it is 1. A model whose output depends only on inputs within
//! `margin` PAN pixels therefore gives exactly the untiled result. SHIP's order-1 interaction is
//! global over the frame, so a SHIP model's tiles differ slightly from the whole scene; the
//! ramps spread that difference over the overlap instead of leaving an edge.

use std::ops::Range;

/// The smallest overlap (MS pixels) for which every PAN pixel gets a positive weight.
pub const MIN_OVERLAP: usize = 3;

/// The overlap (MS pixels) tiles of `tile` pixels get unless told otherwise: a quarter of the
/// tile, from [`MIN_OVERLAP`] to 16.
pub fn default_overlap(tile: usize) -> usize {
    (tile / 4).clamp(MIN_OVERLAP, 16)
}

/// Tile spans along an axis of `len` MS pixels: tiles of `tile` pixels, consecutive ones
/// overlapping by at least `overlap`; the last is moved back to end at `len`, so every tile has
/// the full size. One span when `len <= tile`.
pub fn spans(len: usize, tile: usize, overlap: usize) -> Vec<Range<usize>> {
    if len <= tile {
        return std::iter::once(0..len).collect();
    }
    let step = tile.saturating_sub(overlap).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        if start + tile >= len {
            out.push(len - tile..len);
            return out;
        }
        out.push(start..start + tile);
        start += step;
    }
}

/// Blend weights along one axis for the PAN pixels of `span` (MS pixels, scaled by `ratio`)
/// in an axis of `len` MS pixels, with `overlap` MS pixels of overlap.
pub fn weights(span: &Range<usize>, len: usize, ratio: usize, overlap: usize) -> Vec<f32> {
    let margin = ratio as f32;
    let ramp = ((overlap * ratio) as f32 - 2.0 * margin).max(1.0);
    let n = span.len() * ratio;
    let edge = |d: usize| ((d as f32 + 1.0 - margin) / ramp).clamp(0.0, 1.0);
    (0..n)
        .map(|p| {
            let left = if span.start == 0 { 1.0 } else { edge(p) };
            let right = if span.end == len {
                1.0
            } else {
                edge(n - 1 - p)
            };
            left.min(right)
        })
        .collect()
}

/// Overlapping tile outputs blended with [`weights`]: the runtime's tiled model run and the
/// training's tiled validation both add their tiles here.
#[derive(Debug, Clone)]
pub struct Blend {
    bands: usize,
    /// The axes in MS pixels (rows, columns).
    len: (usize, usize),
    ratio: usize,
    overlap: usize,
    /// `[bands, rows·ratio, columns·ratio]` weighted sums, and the weight sum per pixel.
    acc: Vec<f64>,
    total: Vec<f64>,
}

impl Blend {
    /// An empty blend of `bands` bands over `rows` x `cols` MS pixels at `ratio`.
    pub fn new(bands: usize, (rows, cols): (usize, usize), ratio: usize, overlap: usize) -> Blend {
        let plane = rows * ratio * cols * ratio;
        Blend {
            bands,
            len: (rows, cols),
            ratio,
            overlap,
            acc: vec![0.0; bands * plane],
            total: vec![0.0; plane],
        }
    }

    /// Adds the output of the tile over MS rows `ys` and columns `xs`; `value(band, i, j)` is
    /// its sample at PAN pixel (i, j) of the tile.
    pub fn add(
        &mut self,
        ys: &Range<usize>,
        xs: &Range<usize>,
        value: impl Fn(usize, usize, usize) -> f64,
    ) {
        let r = self.ratio;
        let (wy, wx) = (
            weights(ys, self.len.0, r, self.overlap),
            weights(xs, self.len.1, r, self.overlap),
        );
        let width = self.len.1 * r;
        let plane = self.total.len();
        for (i, &fy) in wy.iter().enumerate() {
            for (j, &fx) in wx.iter().enumerate() {
                let weight = f64::from(fy * fx);
                if weight == 0.0 {
                    continue;
                }
                let at = (ys.start * r + i) * width + xs.start * r + j;
                self.total[at] += weight;
                for band in 0..self.bands {
                    self.acc[band * plane + at] += weight * value(band, i, j);
                }
            }
        }
    }

    /// The blended output, band-major `[bands, rows·ratio, cols·ratio]`.
    pub fn finish(self) -> Vec<f64> {
        let plane = self.total.len();
        let mut acc = self.acc;
        for (k, a) in acc.iter_mut().enumerate() {
            *a /= self.total[k % plane];
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_axis_with_full_tiles() {
        let whole = spans(100, 128, 16);
        assert_eq!((whole.len(), whole[0].clone()), (1, 0..100));
        let s = spans(300, 128, 16);
        assert_eq!(s, [0..128, 112..240, 172..300]);
        for w in s.windows(2) {
            assert!(w[0].end >= w[1].start + 16);
        }
    }

    #[test]
    fn weights_vanish_at_inner_edges_and_cover_every_pixel() {
        let (len, ratio, overlap) = (300, 2, 16);
        let s = spans(len, 128, overlap);
        let mut total = vec![0f32; len * ratio];
        for span in &s {
            let w = weights(span, len, ratio, overlap);
            assert_eq!(w.len(), span.len() * ratio);
            for (i, v) in w.iter().enumerate() {
                total[span.start * ratio + i] += v;
            }
        }
        assert!(total.iter().all(|&t| t > 0.0));
        let inner = weights(&s[1], len, ratio, overlap);
        assert_eq!(&inner[..2], &[0.0, 0.0]);
        assert_eq!(inner[inner.len() / 2], 1.0);
        assert_eq!(weights(&s[0], len, ratio, overlap)[0], 1.0);
    }
}
