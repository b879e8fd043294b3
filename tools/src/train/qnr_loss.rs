//! A differentiable form of the full-resolution distortion indices D_λ and D_s of
//! `ship-edge eval --protocol full` (toolbox 1.0, `flag_orig_paper = 0`, p = q = 1): the
//! universal image quality index (uqi) per non-overlapping `S×S` block, averaged over the
//! blocks of a crop, compared between the fused image and the low-resolution references M̃
//! (the MS interpolated to PAN scale) and P̃ (the PAN low-passed through the MS scale), as
//! computed by [`ship_edge::metrics::pan::qnr_references`].
//!
//! Pan-sharpening trains on it at the original resolution, where no reference exists: D_λ
//! asks the fused bands to keep the MS's inter-band relations, D_s asks each band to relate to
//! the PAN as the MS relates to the low-passed PAN (Luo et al., "Pansharpening via
//! unsupervised convolutional neural networks", IEEE JSTARS 2020, train on the same two
//! indices). Per crop the block average has fewer blocks than a whole scene's, so the loss
//! is a noisier estimate of the index it mirrors; `tests` checks it against `ship-edge`'s
//! metric on one crop.

use candle_core::{D, Device, Result, Tensor};

/// Side of the uqi blocks, as in `ship-edge eval` (`metrics::pan::BLOCK`).
pub use ship_edge::metrics::pan::BLOCK;

/// Keeps the uqi finite on a constant block. The metric special-cases a zero variance
/// (`2x̄ȳ/(x̄²+ȳ²)`); a loss only needs a finite value there. Tiny against the variance of
/// any non-constant 8-bit block at unit scale, ~(1/255)²/1024 ≈ 1.5e-8 times a mean².
const UQI_EPS: f64 = 1e-14;

/// `[B, C, H, W]` → `[B, C, (H/s)·(W/s), s·s]`: the non-overlapping `s×s` blocks, row-major.
fn blocks(x: &Tensor, s: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    x.reshape(vec![b, c, h / s, s, w / s, s])?
        .permute([0, 1, 2, 4, 3, 5])?
        .contiguous()?
        .reshape((b, c, (h / s) * (w / s), s * s))
}

/// uqi over the last dimension (covariances with N − 1): `[.., n]` → `[..]`.
fn uqi(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let n = x.dim(D::Minus1)? as f64;
    let mx = x.mean_keepdim(D::Minus1)?;
    let my = y.mean_keepdim(D::Minus1)?;
    let dx = x.broadcast_sub(&mx)?;
    let dy = y.broadcast_sub(&my)?;
    let cov = |a: &Tensor, b: &Tensor| (a * b)?.sum_keepdim(D::Minus1)? / (n - 1.0);
    let (cxx, cyy, cxy) = (cov(&dx, &dx)?, cov(&dy, &dy)?, cov(&dx, &dy)?);
    let num = ((cxy * &mx)? * &my)? * 4.0;
    let den = (((cxx + cyy)? * (mx.sqr()? + my.sqr()?)?)? + UQI_EPS)?;
    (num? / den)?.squeeze(D::Minus1)
}

/// The block-averaged uqi of each crop and channel: `[B, C, H, W]` twice → `[B, C]`.
fn block_q(x: &Tensor, y: &Tensor, s: usize) -> Result<Tensor> {
    uqi(&blocks(x, s)?, &blocks(y, s)?)?.mean(D::Minus1)
}

/// The band pairs `i < j` of `bands` bands, as two index vectors.
fn band_pairs(bands: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let pairs: Vec<(u32, u32)> = (0..bands as u32)
        .flat_map(|i| (i + 1..bands as u32).map(move |j| (i, j)))
        .collect();
    let (i, j): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
    Ok((Tensor::new(i, dev)?, Tensor::new(j, dev)?))
}

/// D_λ of each crop averaged over the batch: the mean over band pairs of
/// `|Q(F_i, F_j) − Q(M̃_i, M̃_j)|`. `fused` and `ms_ref` are `[B, bands, H, W]`, sides
/// multiples of `s`; `ms_ref` carries no gradient.
pub fn d_lambda(fused: &Tensor, ms_ref: &Tensor, s: usize) -> Result<Tensor> {
    let (i, j) = band_pairs(fused.dim(1)?, fused.device())?;
    let q = |x: &Tensor| block_q(&x.index_select(&i, 1)?, &x.index_select(&j, 1)?, s);
    (q(fused)? - q(&ms_ref.detach())?)?.abs()?.mean_all()
}

/// D_s of each crop averaged over the batch: the mean over bands of
/// `|Q(F_i, P) − Q(M̃_i, P̃)|`. `pan` and `pan_ref` are `[B, 1, H, W]`.
pub fn d_s(
    fused: &Tensor,
    ms_ref: &Tensor,
    pan: &Tensor,
    pan_ref: &Tensor,
    s: usize,
) -> Result<Tensor> {
    let shape = fused.dims4()?;
    let wide = |p: &Tensor| p.detach().broadcast_as(shape)?.contiguous();
    let high = block_q(fused, &wide(pan)?, s)?;
    let low = block_q(&ms_ref.detach(), &wide(pan_ref)?, s)?;
    (high - low)?.abs()?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;
    use ship_edge::dsp::{Cube, Image};
    use ship_edge::metrics::pan as metrics;

    fn cube(seed: u64, bands: usize, side: usize) -> Cube {
        let mut rng = crate::nets::init::Rng::new(seed);
        // Smooth structure that differs with the seed and the band, plus noise, so the
        // blocks' uqi values are far from 0 and 1 and differ between the images.
        let f = 0.05 + 0.04 * seed as f64;
        Cube::from_shape_fn((bands, side, side), |(b, y, x)| {
            let (b, x, y) = (b as f64, x as f64, y as f64);
            let base = (x * f * (1.0 + 0.3 * b) + b).sin() + (y * 0.07 + seed as f64).cos();
            100.0 + 40.0 * base + 30.0 * rng.uniform()
        })
    }

    fn tensor(c: &Cube) -> Tensor {
        let (b, h, w) = c.dim();
        let v: Vec<f32> = c.iter().map(|&x| x as f32).collect();
        Tensor::from_vec(v, (1, b, h, w), &Device::Cpu).unwrap()
    }

    #[test]
    fn the_indices_match_ship_edges_metrics_on_one_crop() {
        let (bands, side) = (4, 2 * BLOCK);
        let fused = cube(1, bands, side);
        let ms_ref = cube(2, bands, side);
        let pan: Image = cube(3, 1, side).index_axis_move(Axis(0), 0);
        let pan_ref: Image = cube(4, 1, side).index_axis_move(Axis(0), 0);
        let want_dl = metrics::d_lambda(&fused, &ms_ref, BLOCK);
        let want_ds = metrics::d_s(&fused, &ms_ref, &pan, &pan_ref, BLOCK);
        assert!(want_dl > 0.05 && want_ds > 0.05, "{want_dl} {want_ds}");
        let p = |i: &Image| tensor(&i.clone().insert_axis(Axis(0)));
        let dl: f32 = d_lambda(&tensor(&fused), &tensor(&ms_ref), BLOCK)
            .unwrap()
            .to_scalar()
            .unwrap();
        let ds: f32 = d_s(
            &tensor(&fused),
            &tensor(&ms_ref),
            &p(&pan),
            &p(&pan_ref),
            BLOCK,
        )
        .unwrap()
        .to_scalar()
        .unwrap();
        assert!((f64::from(dl) - want_dl).abs() < 1e-4, "{dl} vs {want_dl}");
        assert!((f64::from(ds) - want_ds).abs() < 1e-4, "{ds} vs {want_ds}");
    }

    #[test]
    fn a_fused_image_equal_to_its_references_has_no_distortion_and_a_gradient() {
        let ms = tensor(&cube(5, 3, BLOCK));
        let pan = tensor(&cube(6, 1, BLOCK));
        let var = candle_core::Var::from_tensor(&(&ms + 1.0).unwrap()).unwrap();
        let dl = d_lambda(var.as_tensor(), &ms, BLOCK).unwrap();
        let ds = d_s(var.as_tensor(), &ms, &pan, &pan, BLOCK).unwrap();
        let total = (dl + ds).unwrap();
        // An offset changes the means, so the distortion is small but not zero.
        let v: f32 = total.to_scalar().unwrap();
        assert!(v > 0.0 && v < 0.05, "{v}");
        let g = total.backward().unwrap();
        let grad = g
            .get(var.as_tensor())
            .expect("a gradient reaches the input");
        let norm: f32 = grad.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm > 0.0 && norm.is_finite());
        let same = d_lambda(&ms, &ms, BLOCK)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(same.abs() < 1e-6, "{same}");
    }
}
