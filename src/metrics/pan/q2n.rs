//! Q2n (Garzelli & Nencini's hypercomplex quality index, toolbox `q2n.m`, `onions_quality.m`,
//! `onion_mult.m`, `norm_blocco.m`), reproduced step by step including the toolbox's quirks
//! (uint16 cast, mean-zero bands not divided by their std, the `termine3 == 0` branch).

use ndarray::{Array3, Axis, s};

use crate::dsp::Cube;

/// `onion_mult.m`: the Cayley–Dickson product of two hypercomplex numbers of `2^k` parts.
fn onion_mult(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = a.len();
    if n == 1 {
        return vec![a[0] * b[0]];
    }
    let l = n / 2;
    let neg_tail = |v: &[f64]| -> Vec<f64> {
        let mut v = v.to_vec();
        for x in v.iter_mut().skip(1) {
            *x = -*x;
        }
        v
    };
    let a1 = &a[..l];
    let b1 = neg_tail(&a[l..]);
    let c = &b[..l];
    let d = neg_tail(&b[l..]);
    if n == 2 {
        return vec![a1[0] * c[0] - d[0] * b1[0], a1[0] * d[0] + c[0] * b1[0]];
    }
    let ris1 = onion_mult(a1, c);
    let ris2 = onion_mult(&d, &neg_tail(&b1));
    let ris3 = onion_mult(&neg_tail(a1), &d);
    let ris4 = onion_mult(c, &b1);
    ris1.iter()
        .zip(&ris2)
        .map(|(x, y)| x - y)
        .chain(ris3.iter().zip(&ris4).map(|(x, y)| x + y))
        .collect()
}

/// The product as a table: `(a·b)[k] = Σ sign·a[i]·b[j]` over the entries `(i, j, k, sign)`.
/// The product is bilinear, so probing it with basis vectors gives every entry.
fn mult_table(n: usize) -> Vec<(usize, usize, usize, f64)> {
    let mut table = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let (mut ei, mut ej) = (vec![0.0; n], vec![0.0; n]);
            ei[i] = 1.0;
            ej[j] = 1.0;
            for (k, v) in onion_mult(&ei, &ej).into_iter().enumerate() {
                if v != 0.0 {
                    table.push((i, j, k, v));
                }
            }
        }
    }
    table
}

/// MATLAB `uint16(x)`: round half away from zero, saturate to `0..=65535` (NaN → 0).
fn to_uint16(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.round().clamp(0.0, 65535.0)
    }
}

/// `onions_quality.m` on one block `[bands, n, n]` (reference `dat1`, fused `dat2`).
fn onions_quality(
    dat1: &mut Array3<f64>,
    dat2: &mut Array3<f64>,
    table: &[(usize, usize, usize, f64)],
) -> Vec<f64> {
    let (nb, h, w) = dat1.dim();
    let npix = (h * w) as f64;
    let k = npix / (npix - 1.0);
    // Conjugate the fused image: negate bands 2..N.
    for b in 1..nb {
        dat2.index_axis_mut(Axis(0), b).mapv_inplace(|v| -v);
    }
    // Block normalisation of the reference band (norm_blocco: (x − mean)/std + 1, std with N−1,
    // std 0 → eps) and the same affine map on the fused band (un-conjugated, then re-negated).
    for b in 0..nb {
        let band = dat1.index_axis(Axis(0), b);
        let mean = band.sum() / npix;
        let var = band.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (npix - 1.0);
        let std = if var == 0.0 { f64::EPSILON } else { var.sqrt() };
        dat1.index_axis_mut(Axis(0), b)
            .mapv_inplace(|v| (v - mean) / std + 1.0);
        let map = |v: f64| {
            if mean == 0.0 {
                v - mean + 1.0
            } else {
                (v - mean) / std + 1.0
            }
        };
        if b == 0 {
            dat2.index_axis_mut(Axis(0), b).mapv_inplace(map);
        } else {
            dat2.index_axis_mut(Axis(0), b).mapv_inplace(|v| -map(-v));
        }
    }
    let m1: Vec<f64> = dat1.axis_iter(Axis(0)).map(|b| b.sum() / npix).collect();
    let m2: Vec<f64> = dat2.axis_iter(Axis(0)).map(|b| b.sum() / npix).collect();
    let mod_q1m2: f64 = m1.iter().map(|v| v * v).sum();
    let mod_q2m2: f64 = m2.iter().map(|v| v * v).sum();
    let (mod_q1m, mod_q2m) = (mod_q1m2.sqrt(), mod_q2m2.sqrt());
    // mean2(mod_q.^2) = mean over pixels of Σ_b x_b².
    let int1 = k * dat1.iter().map(|v| v * v).sum::<f64>() / npix;
    let int2 = k * dat2.iter().map(|v| v * v).sum::<f64>() / npix;
    let termine2 = mod_q1m * mod_q2m;
    let termine4 = mod_q1m * mod_q1m + mod_q2m * mod_q2m;
    let termine3 = int1 + int2 - k * (mod_q1m * mod_q1m + mod_q2m * mod_q2m);
    let mean_bias = 2.0 * termine2 / termine4;
    if termine3 == 0.0 {
        let mut q = vec![0.0; nb];
        q[nb - 1] = mean_bias;
        return q;
    }
    let cbm = 2.0 / termine3;
    // qu = onion_mult2D(dat1, dat2), averaged over the block's pixels.
    let mut qu = vec![0.0; nb];
    let (d1, d2) = (
        dat1.as_slice().expect("standard layout"),
        dat2.as_slice().expect("standard layout"),
    );
    let plane = h * w;
    let (mut a, mut b) = (vec![0.0; nb], vec![0.0; nb]);
    for p in 0..plane {
        for band in 0..nb {
            a[band] = d1[band * plane + p];
            b[band] = d2[band * plane + p];
        }
        for &(i, j, kk, sign) in table {
            qu[kk] += sign * a[i] * b[j];
        }
    }
    let qm = onion_mult(&m1, &m2);
    (0..nb)
        .map(|i| (k * qu[i] / npix - k * qm[i]) * mean_bias * cbm)
        .collect()
}

/// Q2n (`q2n.m`) of `fused` against `reference` (`[bands, H, W]`), `block×block`
/// non-overlapping blocks (shift = block size):
/// 1. sides padded to a multiple of `block` by mirroring (MATLAB `x(:, N:-1:N-est+1)`);
/// 2. both cast to `uint16` (round, saturate): **inputs must be integer-scaled DN**;
/// 3. the band count zero-padded to a power of two (6 bands → Q8);
/// 4. per block the norm of the hypercomplex quality, averaged over blocks.
///
/// In `[0, 1]`, 1 for identical cubes.
pub fn q2n(reference: &Cube, fused: &Cube, block: usize) -> f64 {
    let (bands, h, w) = reference.dim();
    let (ph, pw) = (h.div_ceil(block) * block, w.div_ceil(block) * block);
    let nb = bands.next_power_of_two();
    let prepare = |c: &Cube| {
        let mut out = Array3::<f64>::zeros((nb, ph, pw));
        for b in 0..bands {
            for y in 0..ph {
                let sy = if y < h { y } else { 2 * h - 1 - y };
                for x in 0..pw {
                    let sx = if x < w { x } else { 2 * w - 1 - x };
                    out[[b, y, x]] = to_uint16(c[[b, sy, sx]]);
                }
            }
        }
        out
    };
    let (r, f) = (prepare(reference), prepare(fused));
    let table = mult_table(nb);
    let (by, bx) = (ph / block, pw / block);
    let mut total = 0.0;
    for j in 0..by {
        for i in 0..bx {
            let win = s![.., j * block..(j + 1) * block, i * block..(i + 1) * block];
            let mut d1 = r.slice(win).to_owned();
            let mut d2 = f.slice(win).to_owned();
            let q = onions_quality(&mut d1, &mut d2, &table);
            total += q.iter().map(|v| v * v).sum::<f64>().sqrt();
        }
    }
    total / (by * bx) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_product_matches_hamilton() {
        // Hamilton: i·j = k, with parts [1, i, j, k].
        let i = [0.0, 1.0, 0.0, 0.0];
        let j = [0.0, 0.0, 1.0, 0.0];
        let p = onion_mult(&i, &j);
        assert_eq!(p.iter().map(|v| v.abs()).sum::<f64>(), 1.0);
        assert_eq!(p[3].abs(), 1.0);
        // The table reproduces the recursive product.
        let (a, b) = (
            [1.0, 2.0, -3.0, 0.5, 4.0, -1.0, 2.0, 3.0],
            [0.5, -1.0, 2.0, 1.0, 0.0, 3.0, -2.0, 1.5],
        );
        let direct = onion_mult(&a, &b);
        let mut via = [0.0; 8];
        for (i, j, k, s) in mult_table(8) {
            via[k] += s * a[i] * b[j];
        }
        for (x, y) in direct.iter().zip(via) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn identical_images_score_one() {
        let c = Cube::from_shape_fn((6, 64, 64), |(b, y, x)| {
            ((b * 31 + y * 7 + x * 13) % 97) as f64 + 10.0
        });
        assert!((q2n(&c, &c, 32) - 1.0).abs() < 1e-12);
        let d = c.mapv(|v| v + ((v * 7.0) % 5.0) - 2.0);
        let q = q2n(&c, &d, 32);
        assert!(q < 1.0 && q > 0.5, "{q}");
    }
}
