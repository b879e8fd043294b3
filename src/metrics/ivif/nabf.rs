//! N^{AB/F}: B. K. Shreyamsha Kumar's modified fusion-artifact measure (`analysis_nabf.m`,
//! `sobel_fn.m`), the share of edge strength the fused image adds where neither source has it.
//! Its threshold Td = 2 and weight floor 0.001 are absolute, so the value depends on the input
//! scale: the default feeds 0–255, `tang2022` feeds [0,1].

use std::f64::consts::PI;

use ndarray::Zip;

use crate::dsp::{Border, Image, pad};

const TD: f64 = 2.0;
const WT_MIN: f64 = 0.001;
const NRG: f64 = 0.9999;
const KG: f64 = 19.0;
const SIGMA_G: f64 = 0.5;
const NRA: f64 = 0.9995;
const KA: f64 = 22.0;
const SIGMA_A: f64 = 0.5;

/// `sobel_fn.m`: correlation with [−1 0 1; −2 0 2; −1 0 1]/8 (gv) and [−1 −2 −1; 0 0 0; 1 2 1]/8
/// (gh) over the image mirrored without repeating the edge (`per_extn_im_fn`). Each window is
/// summed column by column as MATLAB `sum(sum(.))` does, since on [0,1] images the rounding
/// decides ties between edge strengths; the zero taps are left out, which can only change the
/// sign of a zero response, and no later formula depends on that sign. Returns (gv, gh).
fn sobel_fn(img: &Image) -> (Image, Image) {
    let (h, w) = img.dim();
    let x = pad(&img.view(), (1, 1, 1, 1), Border::Reflect);
    let mut gv = Image::zeros((h, w));
    let mut gh = Image::zeros((h, w));
    for (y, (mut gv_row, mut gh_row)) in gv.outer_iter_mut().zip(gh.outer_iter_mut()).enumerate() {
        let (up, mid, down) = (x.row(y), x.row(y + 1), x.row(y + 2));
        for c in 0..w {
            // Columns c−1, c, c+1 of the image are c, c+1, c+2 of the padded rows.
            let left = up[c] * -0.125 + mid[c] * -0.25 + down[c] * -0.125;
            let right = up[c + 2] * 0.125 + mid[c + 2] * 0.25 + down[c + 2] * 0.125;
            gv_row[c] = left + right;
            let column = |j: usize, k: f64| up[c + j] * -k + down[c + j] * k;
            gh_row[c] = column(0, 0.125) + column(1, 0.25) + column(2, 0.125);
        }
    }
    (gv, gh)
}

/// Edge strength √(gh² + gv²).
fn strength(gv: f64, gh: f64) -> f64 {
    (gh * gh + gv * gv).sqrt()
}

/// Edge orientation atan(gv/gh), 0 where both responses are 0.
fn orientation(gv: f64, gh: f64) -> f64 {
    if gv == 0.0 && gh == 0.0 {
        0.0
    } else {
        (gv / gh).atan()
    }
}

/// Edge preservation Q_XF = √(Qg·Qa).
fn q(gx: f64, ax: f64, gf: f64, af: f64) -> f64 {
    let ratio = if gx == 0.0 || gf == 0.0 {
        0.0
    } else if gx > gf {
        gf / gx
    } else {
        gx / gf
    };
    let orientation = ((ax - af).abs() - PI / 2.0).abs() * 2.0 / PI;
    let qg = NRG / (1.0 + (-KG * (ratio - SIGMA_G)).exp());
    let qa = NRA / (1.0 + (-KA * (orientation - SIGMA_A)).exp());
    (qg * qa).sqrt()
}

/// w = g^1.5 where g ≥ Td, else the floor (g·√g: `powf` was a third of Nabf's time; they
/// differ by at most an ulp).
fn weight(g: f64) -> f64 {
    if g >= TD { g * g.sqrt() } else { WT_MIN }
}

/// Nabf = Σ n·((1−Q_AF)·w_A + (1−Q_BF)·w_B) / Σ(w_A + w_B), n = 1 where F's edge is stronger
/// than both sources'. Orientations are only needed (and computed) where n = 1.
pub(super) fn nabf(f: &Image, a: &Image, b: &Image) -> f64 {
    let (vf, hf) = sobel_fn(f);
    let (va, ha) = sobel_fn(a);
    let (vb, hb) = sobel_fn(b);
    let (mut num, mut den) = (0.0, 0.0);
    Zip::from(&vf)
        .and(&hf)
        .and(&va)
        .and(&ha)
        .and(&vb)
        .and(&hb)
        .for_each(|&vf, &hf, &va, &ha, &vb, &hb| {
            let (gf, ga, gb) = (strength(vf, hf), strength(va, ha), strength(vb, hb));
            let (wa, wb) = (weight(ga), weight(gb));
            if gf > ga && gf > gb {
                let af = orientation(vf, hf);
                num += (1.0 - q(ga, orientation(va, ha), gf, af)) * wa
                    + (1.0 - q(gb, orientation(vb, hb), gf, af)) * wb;
            }
            den += wa + wb;
        });
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn sobel_mirrors_without_repeating_the_edge() {
        let img = array![[1.0, 2.0, 4.0], [0.0, 3.0, 9.0], [5.0, 1.0, 2.0]];
        let (gv, gh) = sobel_fn(&img);
        let at = |y: usize, x: usize| {
            (
                strength(gv[[y, x]], gh[[y, x]]),
                orientation(gv[[y, x]], gh[[y, x]]),
            )
        };
        // Centre: gv = (24 − 6)/8, gh = (9 − 9)/8 → atan(+inf) = π/2.
        assert_eq!(at(1, 1), (18.0 / 8.0, PI / 2.0));
        // Top-left: row −1 = row 1, column −1 = column 1. Window rows [3 0 3; 2 1 2; 3 0 3].
        // Columns −1 and +1 are equal, and so are rows −1 and +1: both responses are 0.
        assert_eq!(at(0, 0), (0.0, 0.0));
    }

    #[test]
    fn no_artifacts_when_f_copies_a_source() {
        let a = Image::from_shape_fn((20, 30), |(y, x)| ((x * 7 + y * 3) % 50) as f64);
        let b = Image::from_shape_fn((20, 30), |(y, x)| ((x * x + y * 5) % 60) as f64);
        // F = A: F is never strictly stronger than A.
        assert_eq!(nabf(&a, &a, &b), 0.0);
        let noisy = Image::from_shape_fn((20, 30), |(y, x)| ((x * 131 + y * 71) % 256) as f64);
        let v = nabf(&noisy, &a, &b);
        assert!(v > 0.0 && v < 1.0, "{v}");
    }
}
