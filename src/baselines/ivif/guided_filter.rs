//! The guided filter of He, Sun and Tang ("Guided Image Filtering", ECCV 2010 / TPAMI 2013),
//! grey guide, grey input, O(1) per pixel through clipped box sums (their `guidedfilter.m`).

use ndarray::Zip;

use crate::dsp::{Image, box_mean};

/// Filters `p` guided by `guide` with a `(2r+1) x (2r+1)` window and regulariser `eps`.
///
/// Per window k: `a_k = cov(I, p) / (var(I) + eps)`, `b_k = mean(p) - a_k mean(I)`; the output
/// is `mean(a) I + mean(b)` over the windows covering each pixel. Windows are clipped at the
/// border (divided by their true pixel count), exactly as `boxfilter.m` does
/// ([`box_mean`] = `box_sum / box_count`).
///
/// `eps` is in squared guide units: the published parameters (GFF's 0.3 and 1e-6) assume a
/// guide in `[0, 1]`. `guide` and `p` must have the same shape (checked by the callers).
pub fn guided_filter(guide: &Image, p: &Image, r: usize, eps: f64) -> Image {
    let mean = |x: &Image| box_mean(&x.view(), r);
    let mean_i = mean(guide);
    let mean_p = mean(p);
    let corr_ip = mean(&(guide * p));
    let corr_ii = mean(&(guide * guide));
    // a = cov(I, p) / (var(I) + eps), reusing the buffers: corr_ip becomes a, mean_p becomes b.
    let (mut a, mut b) = (corr_ip, mean_p);
    Zip::from(&mut a)
        .and(&mut b)
        .and(&mean_i)
        .and(&corr_ii)
        .for_each(|a, b, &mi, &ii| {
            let cov = *a - mi * *b;
            let var = ii - mi * mi;
            *a = cov / (var + eps);
            *b -= *a * mi;
        });
    let mut q = mean(&b);
    Zip::from(&mut q)
        .and(&mean(&a))
        .and(guide)
        .for_each(|q, &ma, &i| *q += ma * i);
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Image {
        Image::from_shape_fn((h, w), |(y, x)| ((y * 7 + x * 13) % 17) as f64 / 16.0)
    }

    #[test]
    fn constant_input_is_kept() {
        let g = ramp(9, 12);
        let p = Image::from_elem((9, 12), 0.25);
        let q = guided_filter(&g, &p, 3, 0.01);
        assert!(q.iter().all(|v| (v - 0.25).abs() < 1e-12));
    }

    #[test]
    fn self_guided_with_tiny_eps_is_near_identity() {
        // a -> 1, b -> 0 where the guide varies: edge-preserving by construction.
        let g = ramp(15, 11);
        let q = guided_filter(&g, &g, 2, 1e-9);
        let err = (&q - &g).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(err < 1e-5, "{err}");
    }

    #[test]
    fn huge_eps_is_a_box_mean_and_large_radius_is_clipped() {
        // eps >> var: a -> 0, q -> mean of the window means of p.
        let g = ramp(6, 5);
        let p = ramp(6, 5).mapv(|v| 1.0 - v);
        let q = guided_filter(&g, &p, 45, 1e12);
        let m = p.mean().unwrap();
        assert!(q.iter().all(|v| (v - m).abs() < 1e-9));
        assert_eq!(
            guided_filter(&Image::zeros((1, 1)), &Image::ones((1, 1)), 7, 1e-6)[[0, 0]],
            1.0
        );
    }
}
