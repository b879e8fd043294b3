//! Full-resolution (no reference) metrics, toolbox 1.0 mode of `D_lambda.m`, `D_s.m` and
//! `QNR.m` (`flag_orig_paper = 0`): Q per **non-overlapping** S×S block (`blockproc`),
//! averaged over blocks, compared in the PAN-scale domain. The callers check sizes (sides
//! multiples of S, at least 2 bands).

use ndarray::{ArrayView2, Axis, s};

use crate::dsp::{Cube, Image};

/// `uqi` of the toolbox's QNR files on two equally sized blocks:
/// `4·cov(x,y)·x̄·ȳ / ((var x + var y)(x̄² + ȳ²))`, covariances with N−1. Where MATLAB would
/// divide by zero (a constant block) we follow `img_qi.m`: `2x̄ȳ/(x̄²+ȳ²)` when only the
/// variances vanish, 1 when the means vanish too. In `[-1, 1]`; scale-invariant.
pub fn uqi(x: &ArrayView2<f64>, y: &ArrayView2<f64>) -> f64 {
    let n = x.len() as f64;
    let mx = x.sum() / n;
    let my = y.sum() / n;
    let (mut cxx, mut cyy, mut cxy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        cxx += da * da;
        cyy += db * db;
        cxy += da * db;
    }
    let (cxx, cyy, cxy) = (cxx / (n - 1.0), cyy / (n - 1.0), cxy / (n - 1.0));
    let (vars, means) = (cxx + cyy, mx * mx + my * my);
    if vars != 0.0 && means != 0.0 {
        4.0 * cxy * mx * my / vars / means
    } else if vars == 0.0 && means != 0.0 {
        2.0 * mx * my / means
    } else {
        1.0
    }
}

/// Mean of [`uqi`] over the non-overlapping `block×block` blocks of two images.
fn block_q(x: &ArrayView2<f64>, y: &ArrayView2<f64>, block: usize) -> f64 {
    let (h, w) = x.dim();
    let (by, bx) = (h / block, w / block);
    let mut total = 0.0;
    for j in 0..by {
        for i in 0..bx {
            let win = s![j * block..(j + 1) * block, i * block..(i + 1) * block];
            total += uqi(&x.slice(win), &y.slice(win));
        }
    }
    total / (by * bx) as f64
}

/// Spectral distortion D_λ (p = 1): the mean over band pairs `i < j` of
/// `|Q(F_i, F_j) − Q(M̃_i, M̃_j)|`, `ms_up` = M̃ the MS interpolated to PAN size. In `[0, 2]`,
/// 0 when `fused` = M̃; scale-invariant.
pub fn d_lambda(fused: &Cube, ms_up: &Cube, block: usize) -> f64 {
    let bands = fused.dim().0;
    let mut sum = 0.0;
    for i in 0..bands - 1 {
        for j in i + 1..bands {
            let q_exp = block_q(
                &ms_up.index_axis(Axis(0), i),
                &ms_up.index_axis(Axis(0), j),
                block,
            );
            let q_fused = block_q(
                &fused.index_axis(Axis(0), i),
                &fused.index_axis(Axis(0), j),
                block,
            );
            sum += (q_fused - q_exp).abs();
        }
    }
    sum / ((bands * bands - bands) / 2) as f64
}

/// Spatial distortion D_s (q = 1): the mean over bands of `|Q(F_i, P) − Q(M̃_i, P̃)|`, with
/// `pan_filt` = P̃ = `interp23tap(imresize(P, 1/r))` (bicubic). In `[0, 2]`; scale-invariant.
pub fn d_s(fused: &Cube, ms_up: &Cube, pan: &Image, pan_filt: &Image, block: usize) -> f64 {
    let bands = fused.dim().0;
    let mut sum = 0.0;
    for i in 0..bands {
        let q_high = block_q(&fused.index_axis(Axis(0), i), &pan.view(), block);
        let q_low = block_q(&ms_up.index_axis(Axis(0), i), &pan_filt.view(), block);
        sum += (q_high - q_low).abs();
    }
    sum / bands as f64
}

/// QNR = `(1 − D_λ)^α · (1 − D_s)^β` with α = β = 1. At most 1 (no distortion).
pub fn qnr_index(d_lambda: f64, d_s: f64) -> f64 {
    (1.0 - d_lambda) * (1.0 - d_s)
}
