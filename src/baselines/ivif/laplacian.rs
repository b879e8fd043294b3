//! Laplacian-pyramid fusion (Burt and Adelson, "The Laplacian pyramid as a compact image code",
//! 1983; used for fusion by Burt and Kolczynski 1993): detail bands by max-abs, the coarsest
//! Gaussian level by averaging.
//!
//! `G_0 = X`, `G_{k+1} = ↓2(w ∗ G_k)`, `L_k = G_k − expand(G_{k+1})` with the 5-tap binomial
//! `w = [1 4 6 4 1]/16` (separable) and reflect borders (`dsp::Border::Reflect`, OpenCV's
//! `BORDER_REFLECT_101`). `expand` zero-inserts to the finer level's exact size (odd sizes
//! included) and filters with `2w` per axis, so reconstruction `G_k = L_k + expand(G_{k+1})`
//! is exact up to rounding whatever the size.

use ndarray::Zip;

use crate::dsp::Image;

/// Number of pyramid reductions (detail bands) for images large enough.
pub const DEFAULT_LEVELS: usize = 4;

/// The smallest side a reduced level may have: below this a 5-tap filter mostly sees the
/// mirrored border, so the pyramid stops early for small images.
pub const MIN_LEVEL_SIZE: usize = 8;

/// The 5-tap binomial kernel, 1/16 · [1 4 6 4 1].
const W: [f64; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// How many reductions an `h x w` image gets: at most `max_levels`, each reduced level keeping
/// at least [`MIN_LEVEL_SIZE`] pixels on its short side (0 for tiny images, where the fusion
/// degenerates to averaging).
pub fn levels_for(h: usize, w: usize, max_levels: usize) -> usize {
    let mut side = h.min(w);
    let mut levels = 0;
    while levels < max_levels && side.div_ceil(2) >= MIN_LEVEL_SIZE {
        side = side.div_ceil(2);
        levels += 1;
    }
    levels
}

/// Mirror without repeating the edge sample (`d c b | a b c d | c b a`, [`Border::Reflect`]).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let j = i.rem_euclid(period);
    (if j < n as isize { j } else { period - j }) as usize
}

/// One axis of a linear resampling: for each output index, the `(input index, weight)` pairs.
/// Reduce and expand are sparse (at most 5 and 3 taps), so they are applied from these tables
/// instead of filtering full-resolution images and then dropping or zero-filling samples.
type Taps = Vec<Vec<(usize, f64)>>;

/// `↓2(w ∗ x)` along an axis of length `n`: the even samples of the reflect-bordered blur.
fn reduce_taps(n: usize) -> Taps {
    (0..n.div_ceil(2))
        .map(|i| {
            (0..5)
                .map(|k| (reflect((2 * i + k) as isize - 2, n), W[k]))
                .collect()
        })
        .collect()
}

/// `2w ∗ ↑2(x)` to length `n`: zero insertion at the odd positions of a length-`n` axis, then
/// the reflect-bordered blur; only taps that land on an even (non-zero) position remain.
fn expand_taps(n: usize) -> Taps {
    (0..n)
        .map(|x| {
            (0..5)
                .filter_map(|k| {
                    let f = reflect((x + k) as isize - 2, n);
                    f.is_multiple_of(2).then_some((f / 2, 2.0 * W[k]))
                })
                .collect()
        })
        .collect()
}

/// Applies `rows` along axis 0 and `cols` along axis 1 (a separable linear map).
fn resample(img: &Image, rows: &Taps, cols: &Taps) -> Image {
    let mut horizontal = Image::zeros((img.nrows(), cols.len()));
    for (src, mut dst) in img.rows().into_iter().zip(horizontal.rows_mut()) {
        for (d, taps) in dst.iter_mut().zip(cols) {
            *d = taps.iter().map(|&(i, w)| w * src[i]).sum();
        }
    }
    let mut out = Image::zeros((rows.len(), cols.len()));
    for (mut dst, taps) in out.rows_mut().into_iter().zip(rows) {
        for &(i, w) in taps {
            dst.scaled_add(w, &horizontal.row(i));
        }
    }
    out
}

/// `↓2(w ∗ g)`: `ceil(n/2)` samples along each axis.
fn reduce(g: &Image) -> Image {
    let (h, w) = g.dim();
    resample(g, &reduce_taps(h), &reduce_taps(w))
}

/// `4 · w ∗ ↑2(g)` at exactly `(h, w)` (the finer level's size, odd or even).
fn expand(g: &Image, (h, w): (usize, usize)) -> Image {
    resample(g, &expand_taps(h), &expand_taps(w))
}

/// The Laplacian pyramid of `x` with `levels` detail bands: `[L_0, …, L_{levels-1}, G_levels]`.
fn pyramid(x: &Image, levels: usize) -> Vec<Image> {
    let mut bands = Vec::with_capacity(levels + 1);
    let mut g = x.clone();
    for _ in 0..levels {
        let coarser = reduce(&g);
        let detail = &g - &expand(&coarser, g.dim());
        bands.push(detail);
        g = coarser;
    }
    bands.push(g);
    bands
}

/// Collapses a pyramid back into an image (the inverse of [`pyramid`]): each detail band
/// gives the exact size to expand the coarser level to.
fn collapse(mut bands: Vec<Image>) -> Image {
    let mut g = bands.pop().expect("a pyramid has at least its top level");
    while let Some(detail) = bands.pop() {
        let up = expand(&g, detail.dim());
        g = detail + up;
    }
    g
}

/// Fuses `a` and `b` (same shape, checked by the caller) with up to `max_levels` reductions:
/// max-abs on every detail band, the mean on the top Gaussian level.
pub fn fuse(a: &Image, b: &Image, max_levels: usize) -> Image {
    let (h, w) = a.dim();
    let levels = levels_for(h, w, max_levels);
    let (pa, pb) = (pyramid(a, levels), pyramid(b, levels));
    let mut fused: Vec<Image> = Vec::with_capacity(levels + 1);
    for (k, (la, lb)) in pa.iter().zip(&pb).enumerate() {
        if k < levels {
            // Ties go to `a` (the IR image), a fixed, documented choice.
            let pick = |&x: &f64, &y: &f64| if x.abs() >= y.abs() { x } else { y };
            fused.push(Zip::from(la).and(lb).map_collect(pick));
        } else {
            fused.push((la + lb) * 0.5);
        }
    }
    collapse(fused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::ivif::testing::{max_abs_diff, texture};

    #[test]
    fn level_count_follows_the_size() {
        assert_eq!(levels_for(480, 640, 4), 4);
        assert_eq!(levels_for(37, 53, 4), 2); // 37 -> 19 -> 10 (-> 5 too small)
        assert_eq!(levels_for(16, 16, 4), 1);
        assert_eq!(levels_for(15, 100, 4), 1);
        assert_eq!(levels_for(14, 100, 4), 0);
        assert_eq!(levels_for(1, 1, 4), 0);
        assert_eq!(levels_for(4096, 4096, 4), 4);
    }

    #[test]
    fn pyramid_reconstructs_exactly_at_odd_sizes() {
        for (h, w) in [(37, 53), (64, 48), (33, 17), (1, 1), (2, 3)] {
            let x = texture(h, w, 1);
            // Also deeper than `levels_for` allows: tiny levels must still round-trip.
            for levels in [levels_for(h, w, 6), 3] {
                let back = collapse(pyramid(&x, levels));
                assert!(max_abs_diff(&back, &x) < 1e-9, "{h}x{w}, {levels} levels");
            }
        }
    }

    #[test]
    fn sparse_tables_equal_blurring_the_full_grid() {
        use crate::dsp::{Border, Output, correlate_separable, decimate};
        for (h, w) in [(37, 53), (16, 9), (2, 3), (1, 5)] {
            let x = texture(h, w, 7);
            let blurred = correlate_separable(&x.view(), &W, &W, Border::Reflect, Output::Same);
            let dense = decimate(&blurred.view(), 0, 2);
            assert!(max_abs_diff(&reduce(&x), &dense) < 1e-9, "reduce {h}x{w}");
            let coarse = reduce(&x);
            let mut up = Image::zeros((h, w));
            for ((y, c), &v) in coarse.indexed_iter() {
                up[[2 * y, 2 * c]] = v;
            }
            let w2 = W.map(|t| 2.0 * t);
            let dense = correlate_separable(&up.view(), &w2, &w2, Border::Reflect, Output::Same);
            assert!(
                max_abs_diff(&expand(&coarse, (h, w)), &dense) < 1e-9,
                "expand {h}x{w}"
            );
        }
    }

    #[test]
    fn reduced_and_expanded_sizes() {
        let x = texture(37, 53, 2);
        let bands = pyramid(&x, 2);
        let dims: Vec<_> = bands.iter().map(|b| b.dim()).collect();
        assert_eq!(dims, [(37, 53), (19, 27), (10, 14)]);
        // A constant image has zero detail everywhere (the reflected borders included).
        let c = Image::from_elem((37, 53), 90.0);
        let bands = pyramid(&c, 2);
        assert!(bands[..2].iter().all(|b| b.iter().all(|v| v.abs() < 1e-12)));
        assert!(bands[2].iter().all(|v| (v - 90.0).abs() < 1e-12));
    }

    #[test]
    fn fusing_an_image_with_itself_returns_it() {
        let x = texture(48, 61, 3);
        assert!(max_abs_diff(&fuse(&x, &x, DEFAULT_LEVELS), &x) < 1e-9);
    }

    #[test]
    fn details_come_from_the_stronger_source() {
        // a: flat grey; b: the same mean plus a texture. Fused keeps b's texture and the
        // averaged base: F - (a + b)/2 has b's detail at full strength, not halved.
        let a = Image::from_elem((64, 64), 100.0);
        let b = texture(64, 64, 4);
        let f = fuse(&a, &b, DEFAULT_LEVELS);
        let sd = |x: &Image| {
            let m = x.mean().unwrap();
            (x.mapv(|v| (v - m).powi(2)).mean().unwrap()).sqrt()
        };
        let avg = (&a + &b) * 0.5;
        assert!(sd(&f) > 1.5 * sd(&avg), "{} vs {}", sd(&f), sd(&avg));
    }
}
