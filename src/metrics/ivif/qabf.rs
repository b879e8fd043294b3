//! Q^{AB/F}, Xydeas & Petrovic's edge-information transfer, as `analysis_Qabf.m` and
//! MMIF-CDDFuse `Evaluator.Qabf` compute it — including their `G = g_F` branch where the two
//! edge strengths are equal (not 1), which makes the value depend on the input scale and on
//! float rounding (METRICS.md §2).

use std::f64::consts::FRAC_PI_2;

use ndarray::Zip;

use crate::dsp::{Border, Image, pad};

const GAMMA_G: f64 = 0.9994;
const KAPPA_G: f64 = -15.0;
const SIGMA_G: f64 = 0.5;
const GAMMA_A: f64 = 0.9879;
const KAPPA_A: f64 = -22.0;
const SIGMA_A: f64 = 0.8;

/// The Sobel responses (sx, sy) of MATLAB `conv2(img, h, 'same')` (zero padding):
/// h_x = [−1 0 1; −2 0 2; −1 0 1], h_y = [1 2 1; 0 0 0; −1 −2 −1].
///
/// The terms are added in MATLAB's order (kernel columns outer, rows inner, from 0): on [0,1]
/// images (`tang2022`) the rounding decides which pixels hit the exact-equality branch, and
/// this order reproduces the authors' Qabf to 1e-15 where the others miss by up to 1e-3.
fn sobel_conv2(img: &Image) -> (Image, Image) {
    let (h, w) = img.dim();
    let p = pad(&img.view(), (1, 1, 1, 1), Border::Zero);
    let mut gx = Image::zeros((h, w));
    let mut gy = Image::zeros((h, w));
    for y in 0..h {
        // Rows y−1, y, y+1 and columns x−1, x, x+1 of the image are p[y + 0..3][x + 0..3].
        let (up, mid, down) = (p.row(y), p.row(y + 1), p.row(y + 2));
        for x in 0..w {
            // conv2: out(y,x) = Σ_j Σ_i h(i,j) · img(y+1−i, x+1−j).
            let sx = -down[x + 2] - 2.0 * mid[x + 2] - up[x + 2] + down[x] + 2.0 * mid[x] + up[x];
            let sy =
                down[x + 2] - up[x + 2] + 2.0 * down[x + 1] - 2.0 * up[x + 1] + down[x] - up[x];
            gx[[y, x]] = sx;
            gy[[y, x]] = sy;
        }
    }
    (gx, gy)
}

/// Edge strength g = √(sx² + sy²).
fn strength(sx: f64, sy: f64) -> f64 {
    (sx * sx + sy * sy).sqrt()
}

/// Edge orientation α = atan(sy/sx), π/2 where sx = 0.
fn orientation(sx: f64, sy: f64) -> f64 {
    if sx == 0.0 {
        FRAC_PI_2
    } else {
        (sy / sx).atan()
    }
}

/// Q_XF per pixel from the source's and the fused image's strength and orientation.
fn q(gx: f64, ax: f64, gf: f64, af: f64) -> f64 {
    #[allow(clippy::float_cmp)] // the reference's exact-equality branch, kept on purpose
    let big_g = if gx > gf {
        gf / gx
    } else if gx == gf {
        gf
    } else {
        gx / gf
    };
    let big_a = 1.0 - (ax - af).abs() / FRAC_PI_2;
    let qg = GAMMA_G / (1.0 + (KAPPA_G * (big_g - SIGMA_G)).exp());
    let qa = GAMMA_A / (1.0 + (KAPPA_A * (big_a - SIGMA_A)).exp());
    qg * qa
}

/// Qabf = Σ(Q_AF·g_A + Q_BF·g_B) / Σ(g_A + g_B). Q_XF is skipped where g_X = 0 (it is
/// weighted by g_X).
pub(super) fn qabf(f: &Image, a: &Image, b: &Image) -> f64 {
    let (xf, yf) = sobel_conv2(f);
    let (xa, ya) = sobel_conv2(a);
    let (xb, yb) = sobel_conv2(b);
    let (mut num, mut den) = (0.0, 0.0);
    Zip::from(&xf)
        .and(&yf)
        .and(&xa)
        .and(&ya)
        .and(&xb)
        .and(&yb)
        .for_each(|&xf, &yf, &xa, &ya, &xb, &yb| {
            let (gf, ga, gb) = (strength(xf, yf), strength(xa, ya), strength(xb, yb));
            if ga > 0.0 || gb > 0.0 {
                let af = orientation(xf, yf);
                if ga > 0.0 {
                    num += q(ga, orientation(xa, ya), gf, af) * ga;
                }
                if gb > 0.0 {
                    num += q(gb, orientation(xb, yb), gf, af) * gb;
                }
            }
            den += ga + gb;
        });
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn sobel_matches_conv2_by_hand() {
        let img = array![[1.0, 2.0, 4.0], [0.0, 3.0, 9.0], [5.0, 1.0, 2.0]];
        // MATLAB: conv2(img, [-1 0 1; -2 0 2; -1 0 1], 'same')(2,2) = (1+0+5) − (4+18+2) = −18
        // conv2(img, [1 2 1; 0 0 0; -1 -2 -1], 'same')(2,2) = (5+2+2) − (1+4+4) = 0
        let (sx, sy) = sobel_conv2(&img);
        assert_eq!((sx[[1, 1]], sy[[1, 1]]), (-18.0, 0.0));
        assert_eq!(orientation(-18.0, 0.0), 0.0);
        // corner (1,1): sx = −(2·2 + 3) = −7, sy = (2·0 + 3) − 0 = 3.
        assert_eq!((sx[[0, 0]], sy[[0, 0]]), (-7.0, 3.0));
        assert_eq!(strength(-7.0, 3.0), 58f64.sqrt());
    }

    #[test]
    fn in_range() {
        let a = Image::from_shape_fn((20, 30), |(y, x)| ((x * 7 + y * 3) % 50) as f64);
        let b = Image::from_shape_fn((20, 30), |(y, x)| ((x * x + y * 5) % 60) as f64);
        let f = (&a + &b) / 2.0;
        let v = qabf(&f, &a, &b);
        assert!(v > 0.0 && v < 1.0, "{v}");
    }
}
