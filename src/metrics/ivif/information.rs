//! Mutual information from the exact 256x256 joint histogram of grey levels, with the
//! `tang2022` quirk: its `Hab.m` indexes `uint8(x) + 1`, which saturates, so levels 254 and
//! 255 share a bin in the joint histograms (only).

use super::stats::{entropy_bits, level};
use crate::dsp::Image;

/// Grey levels as bytes, computed once for the marginal and both joint histograms.
fn levels(img: &Image) -> Vec<u8> {
    img.iter().map(|&v| level(v) as u8).collect()
}

fn marginal_entropy(levels: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &l in levels {
        counts[usize::from(l)] += 1;
    }
    entropy_bits(counts, levels.len() as u64)
}

/// H(X,Y) in bits from the 256x256 joint histogram; `saturate` merges level 255 into 254.
fn joint_entropy(x: &[u8], y: &[u8], saturate: bool) -> f64 {
    let top = if saturate { 254 } else { 255 };
    let mut joint = vec![0u64; 256 * 256];
    for (&u, &v) in x.iter().zip(y) {
        joint[usize::from(u.min(top)) << 8 | usize::from(v.min(top))] += 1;
    }
    entropy_bits(joint, x.len() as u64)
}

/// MI(F,A) + MI(F,B) in **nats** (multiply by 1/ln 2 for bits), MI(X,Y) = H(X) + H(Y) − H(X,Y)
/// with exact marginals; `saturate_joint` merges level 255 into 254 in the joint histograms
/// only.
pub(super) fn mi_sum(f: &Image, a: &Image, b: &Image, saturate_joint: bool) -> f64 {
    let (lf, la, lb) = (levels(f), levels(a), levels(b));
    let hf = marginal_entropy(&lf);
    let mi = |lx: &[u8]| hf + marginal_entropy(lx) - joint_entropy(&lf, lx, saturate_joint);
    (mi(&la) + mi(&lb)) * std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn independent_and_identical() {
        // x, y independent and uniform on two levels each: MI 0; MI(x,x) = H(x) = 1 bit.
        let x = array![[0.0, 0.0, 9.0, 9.0]];
        let y = array![[3.0, 7.0, 3.0, 7.0]];
        assert!(mi_sum(&x, &y, &y, false).abs() < 1e-15);
        let bits = mi_sum(&x, &x, &x, false) / std::f64::consts::LN_2;
        assert!((bits - 2.0).abs() < 1e-12);
    }

    #[test]
    fn saturation_merges_the_top_levels_in_the_joint_only() {
        // x separates 254 from 255; y is constant. Exact MI(x, y) = 0. With the quirk the
        // joint entropy drops to 0 while H(x) stays 1 bit: MI = 1 bit.
        let x = array![[254.0, 255.0]];
        let y = array![[10.0, 10.0]];
        assert!(mi_sum(&x, &y, &y, false).abs() < 1e-15);
        let bits = mi_sum(&x, &y, &y, true) / std::f64::consts::LN_2;
        assert!((bits - 2.0).abs() < 1e-12);
    }
}
