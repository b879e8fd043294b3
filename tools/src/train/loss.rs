//! The IVIF training loss: SHIP's (SHIP_NETWORK.md §5.1) plus an SSIM term.
//!
//! total = 10·‖Y_f − max(Y_v, IR)‖₁ + 10·‖∇Y_f − max(∇Y_v, ∇IR)‖₁
//!       + w_ssim·(1 − ½(SSIM(Y_f, Y_v) + SSIM(Y_f, IR)))
//!       + 3·(‖m⊙Y_v − Y_f‖₁ + ‖Y_f − m̄⊙IR‖₁)   (only with saliency masks m; m̄ = 1 − [m = 1])
//!
//! with ∇ = |Sobel_x| + |Sobel_y| and L1 terms as means. Every convolution runs on our CPU conv
//! op (candle's own backward is the slow path, notes/CANDLE.md §4) and falls back to candle's
//! conv on other devices.

use candle_core::{Device, Result, Tensor};

use crate::nets::conv_cpu::{ConvParams, conv2d};

/// Weight of the max-intensity L1 term (SHIP).
pub const W_MAX: f64 = 10.0;
/// Weight of the max-gradient L1 term (SHIP).
pub const W_GRAD: f64 = 10.0;
/// Weight of the saliency-mask term (SHIP, when masks are given).
pub const W_MASK: f64 = 3.0;
/// Default weight of the SSIM term. SHIP's own loss has none; SwinFusion uses the same three
/// terms in the ratio SSIM : intensity : gradient = 10 : 20 : 20, i.e. 5 on our scale. We take
/// less, 2: a drop of 0.1 in mean SSIM (clearly visible) then costs as much as 2% of full scale
/// (5 grey levels) of mean intensity error, so the max-intensity target that gives the fused
/// image its IR contrast stays the main term, and SSIM regularises structure (halos, noise)
/// without pulling the result towards the plain average that maximises SSIM to both sources.
pub const DEFAULT_SSIM_WEIGHT: f64 = 2.0;

/// SSIM window: 11x11 Gaussian, σ = 1.5 (Wang et al. 2004), separable.
pub const SSIM_WINDOW: usize = 11;
const SSIM_SIGMA: f64 = 1.5;
/// Wang's constants for data in [0,1]: (0.01·L)², (0.03·L)² with L = 1.
const SSIM_C1: f64 = 1e-4;
const SSIM_C2: f64 = 9e-4;

/// Term weights of the loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossWeights {
    pub max: f64,
    pub grad: f64,
    pub ssim: f64,
    /// Used only when the batch has masks.
    pub mask: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        Self {
            max: W_MAX,
            grad: W_GRAD,
            ssim: DEFAULT_SSIM_WEIGHT,
            mask: W_MASK,
        }
    }
}

/// The loss tensor and each term's unweighted value.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// Weighted sum (what is minimised).
    pub total: Tensor,
    pub l_max: f32,
    pub l_grad: f32,
    /// 1 − ½(SSIM(F,V) + SSIM(F,I)).
    pub l_ssim: f32,
    pub l_mask: Option<f32>,
}

/// |Sobel_x| + |Sobel_y| of a `[B,1,H,W]` tensor ("same" size, zero padding).
pub fn sobel(x: &Tensor) -> Result<Tensor> {
    let dev: &Device = x.device();
    let kx = Tensor::from_vec(
        vec![-1f32, 0., 1., -2., 0., 2., -1., 0., 1.],
        (1, 1, 3, 3),
        dev,
    )?;
    let ky = Tensor::from_vec(
        vec![-1f32, -2., -1., 0., 0., 0., 1., 2., 1.],
        (1, 1, 3, 3),
        dev,
    )?;
    let same = ConvParams::same(3, 3);
    conv2d(x, &kx, None, same)?.abs()? + conv2d(x, &ky, None, same)?.abs()?
}

/// Normalised 1-D Gaussian taps of the SSIM window.
fn gaussian_taps() -> Vec<f32> {
    let c = (SSIM_WINDOW / 2) as f64;
    let g: Vec<f64> = (0..SSIM_WINDOW)
        .map(|i| (-(i as f64 - c).powi(2) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| (v / s) as f32).collect()
}

/// Gaussian-weighted local means of a [N,1,H,W] stack: two 1-D passes ("valid", so no border
/// is invented; output (H−10)x(W−10)).
fn local_mean(x: &Tensor) -> Result<Tensor> {
    let taps = gaussian_taps();
    let dev = x.device();
    let gh = Tensor::from_vec(taps.clone(), (1, 1, SSIM_WINDOW, 1), dev)?;
    let gw = Tensor::from_vec(taps, (1, 1, 1, SSIM_WINDOW), dev)?;
    let valid = ConvParams::default();
    conv2d(&conv2d(x, &gh, None, valid)?, &gw, None, valid)
}

/// Mean SSIM of `f` against `v` and against `i` (all `[B,1,H,W]`, H and W >= 11), as two scalar
/// tensors. One filtering pass serves both: the eight moment maps are stacked on the batch axis.
pub fn ssim_pair(f: &Tensor, v: &Tensor, i: &Tensor) -> Result<(Tensor, Tensor)> {
    let (b, _, h, w) = f.dims4()?;
    if h < SSIM_WINDOW || w < SSIM_WINDOW {
        candle_core::bail!(
            "SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {w}x{h}"
        );
    }
    let stack = Tensor::cat(
        &[
            f,
            v,
            i,
            &f.sqr()?,
            &v.sqr()?,
            &i.sqr()?,
            &(f * v)?,
            &(f * i)?,
        ],
        0,
    )?;
    let m = local_mean(&stack)?;
    let part = |k: usize| m.narrow(0, k * b, b);
    let (mf, mv, mi) = (part(0)?, part(1)?, part(2)?);
    let (ff, vv, ii, fv, fi) = (part(3)?, part(4)?, part(5)?, part(6)?, part(7)?);
    let var = |xx: &Tensor, mx: &Tensor| xx - mx.sqr()?;
    let var_f = var(&ff, &mf)?;
    let ssim = |mx: &Tensor, xx: &Tensor, xy: &Tensor| -> Result<Tensor> {
        let cov = (xy - (&mf * mx)?)?;
        let num = ((((&mf * mx)? * 2.0)? + SSIM_C1)? * ((cov * 2.0)? + SSIM_C2)?)?;
        let den = (((mf.sqr()? + mx.sqr()?)? + SSIM_C1)? * ((&var_f + var(xx, mx)?)? + SSIM_C2)?)?;
        (num / den)?.mean_all()
    };
    Ok((ssim(&mv, &vv, &fv)?, ssim(&mi, &ii, &fi)?))
}

/// The loss of a fused batch against its sources (and masks).
pub fn ivif_loss(
    fused: &Tensor,
    vis: &Tensor,
    ir: &Tensor,
    mask: Option<&Tensor>,
    w: &LossWeights,
) -> Result<LossParts> {
    let l_max = (fused - vis.maximum(ir)?)?.abs()?.mean_all()?;
    let target = sobel(vis)?.maximum(&sobel(ir)?)?;
    let l_grad = (sobel(fused)? - target)?.abs()?.mean_all()?;
    let (s_v, s_i) = ssim_pair(fused, vis, ir)?;
    let l_ssim = ((s_v + s_i)? * -0.5)?.affine(1.0, 1.0)?;
    let mut total = (((&l_max * w.max)? + (&l_grad * w.grad)?)? + (&l_ssim * w.ssim)?)?;
    let mut mask_value = None;
    if let Some(m) = mask {
        // m̄ = 1 − [m == 1]: 1 wherever the saliency map is not exactly 1.
        let not_one = m.ne(1f32)?.to_dtype(fused.dtype())?;
        let l_mask = (((m * vis)? - fused)?.abs()?.mean_all()?
            + (fused - (not_one * ir)?)?.abs()?.mean_all()?)?;
        total = (total + (&l_mask * w.mask)?)?;
        mask_value = Some(l_mask.to_scalar()?);
    }
    Ok(LossParts {
        total,
        l_max: l_max.to_scalar()?,
        l_grad: l_grad.to_scalar()?,
        l_ssim: l_ssim.to_scalar()?,
        l_mask: mask_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::uniform;
    use ship_edge::dsp::Image;
    use ship_edge::metrics::ivif::{Convention, Metric, evaluate};

    fn to_image(t: &Tensor) -> Image {
        let (_, _, h, w) = t.dims4().unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        Image::from_shape_fn((h, w), |(y, x)| f64::from(v[y * w + x]) * 255.0)
    }

    /// Same window, constants and "valid" extent as the runtime's SSIM metric (Wang's
    /// definition on 0–255 with C scaled by 255²), so the values agree up to f32 rounding.
    #[test]
    fn ssim_matches_the_runtime_metric() {
        let f = uniform(&[1, 1, 24, 30], 1, 0.0, 1.0);
        let v = ((&f * 0.7).unwrap() + uniform(&[1, 1, 24, 30], 2, 0.0, 0.3)).unwrap();
        let i = uniform(&[1, 1, 24, 30], 3, 0.0, 1.0);
        let (sv, si) = ssim_pair(&f, &v, &i).unwrap();
        let ours = f64::from(sv.to_scalar::<f32>().unwrap() + si.to_scalar::<f32>().unwrap());
        let scores = evaluate(
            Convention::Default,
            &to_image(&f),
            &to_image(&i),
            &to_image(&v),
        )
        .unwrap();
        let theirs = scores.iter().find(|(m, _)| *m == Metric::Ssim).unwrap().1;
        // f32 moments of ~500 terms vs f64: 1e-4.
        assert!((ours - theirs).abs() < 1e-4, "{ours} vs {theirs}");
    }

    #[test]
    fn ssim_of_an_image_with_itself_is_one_and_the_loss_is_zero_on_a_perfect_target() {
        let x = uniform(&[2, 1, 16, 16], 4, 0.0, 1.0);
        let (a, b) = ssim_pair(&x, &x, &x).unwrap();
        assert!((a.to_scalar::<f32>().unwrap() - 1.0).abs() < 1e-5);
        assert!((b.to_scalar::<f32>().unwrap() - 1.0).abs() < 1e-5);
        let parts = ivif_loss(&x, &x, &x, None, &LossWeights::default()).unwrap();
        assert!(parts.total.to_scalar::<f32>().unwrap().abs() < 1e-4);
    }

    #[test]
    fn the_mask_term_follows_the_official_definition() {
        // m = 1 everywhere: m̄ = 0, so L_mask = |V − F| + |F|.
        let f = uniform(&[1, 1, 12, 12], 5, 0.0, 1.0);
        let v = uniform(&[1, 1, 12, 12], 6, 0.0, 1.0);
        let m = Tensor::ones((1, 1, 12, 12), candle_core::DType::F32, &Device::Cpu).unwrap();
        let parts = ivif_loss(&f, &v, &v, Some(&m), &LossWeights::default()).unwrap();
        let want = (&v - &f)
            .unwrap()
            .abs()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            + f.abs()
                .unwrap()
                .mean_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
        assert!((parts.l_mask.unwrap() - want).abs() < 1e-6);
    }
}
