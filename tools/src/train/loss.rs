//! The IVIF training loss of SHIP (SHIP_NETWORK.md §5.1) without the saliency-mask term:
//! 10·‖Y_f − max(Y_v, IR)‖₁ + 10·‖∇Y_f − max(∇Y_v, ∇IR)‖₁, with ∇ = |Sobel_x| + |Sobel_y|.

use candle_core::{Device, Result, Tensor};

use crate::nets::conv_cpu::{ConvParams, conv2d};

/// Weight of the max-intensity and of the max-gradient L1 terms.
pub const W_MAX: f64 = 10.0;
pub const W_GRAD: f64 = 10.0;

/// |Sobel_x| + |Sobel_y| of a [B,1,H,W] tensor ("same" size, zero padding).
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
    // Our CPU conv (candle's own backward is the slow path, notes/CANDLE.md §4).
    let same = ConvParams {
        padding: (1, 1),
        stride: 1,
    };
    conv2d(x, &kx, None, same)?.abs()? + conv2d(x, &ky, None, same)?.abs()?
}

/// (total, max-intensity term, gradient term).
pub fn fusion_loss(fused: &Tensor, vis: &Tensor, ir: &Tensor) -> Result<(Tensor, f32, f32)> {
    let l_max = (fused - vis.maximum(ir)?)?.abs()?.mean_all()?;
    let target = sobel(vis)?.maximum(&sobel(ir)?)?;
    let l_grad = (sobel(fused)? - target)?.abs()?.mean_all()?;
    let total = ((&l_max * W_MAX)? + (&l_grad * W_GRAD)?)?;
    Ok((total, l_max.to_scalar()?, l_grad.to_scalar()?))
}
