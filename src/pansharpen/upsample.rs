//! The MS upsampling of ship-edge's pan-sharpening models: bilinear, pixel-area aligned (ONNX
//! `Resize` with `mode = linear`, `coordinate_transformation_mode = half_pixel`, edges
//! replicated). The exported graph starts with that `Resize`; training computes the same
//! upsampled MS here, outside the autograd graph (it has no parameters).
//!
//! Half-pixel alignment puts MS sample `i` at PAN position `r·i + (r − 1)/2`, the centre of the
//! PAN pixels it covers: the registration of the Landsat-7 data (`shared/data/README.md`), unlike
//! the toolbox's `interp23tap` phase.

/// Upsamples one `width` x `height` plane (row-major) by `ratio` on both axes.
pub fn upsample_linear(plane: &[f32], width: usize, height: usize, ratio: usize) -> Vec<f32> {
    assert_eq!(plane.len(), width * height, "plane size");
    let taps = |len: usize| -> Vec<(usize, usize, f32)> {
        (0..len * ratio)
            .map(|o| {
                let src = ((o as f32 + 0.5) / ratio as f32 - 0.5).clamp(0.0, (len - 1) as f32);
                let i0 = src.floor() as usize;
                (i0, (i0 + 1).min(len - 1), src - i0 as f32)
            })
            .collect()
    };
    let (cols, rows) = (taps(width), taps(height));
    let mut out = Vec::with_capacity(width * height * ratio * ratio);
    for &(y0, y1, fy) in &rows {
        let (r0, r1) = (&plane[y0 * width..][..width], &plane[y1 * width..][..width]);
        out.extend(cols.iter().map(|&(x0, x1, fx)| {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
            top + (bottom - top) * fy
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_two_interpolates_between_centres_and_replicates_edges() {
        // 1-D ramp 0, 1, 2: output positions (o + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25, 1.75, 2.25.
        let up = upsample_linear(&[0.0, 1.0, 2.0], 3, 1, 2);
        assert_eq!(up.len(), 12);
        assert_eq!(&up[..6], &[0.0, 0.25, 0.75, 1.25, 1.75, 2.0]);
        assert_eq!(&up[..6], &up[6..]);
    }

    #[test]
    fn constant_planes_stay_constant_at_ratio_four() {
        let up = upsample_linear(&[0.3; 6], 3, 2, 4);
        assert_eq!(up.len(), 96);
        assert!(up.iter().all(|&v| (v - 0.3).abs() < 1e-7));
    }
}
