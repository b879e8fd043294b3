//! conv2d for candle's CPU backend as custom ops with their gradients: rectangular kernels,
//! explicit padding, stride 1 or 2 (any stride), bias fused in, dilation 1, groups 1.
//!
//! candle 0.11's CPU convolution runs at a few GMAC/s on SHIP's 16/32-channel layers and its
//! input gradient (`conv_transpose2d`) is slower still (notes/CANDLE.md §4). Here every product
//! is computed in plain Rust in parallel with rayon (`kernels`): stride-1 convolutions by a
//! register-blocked AVX2 + FMA direct kernel where the CPU has it (forward, input gradient as
//! the flipped-kernel convolution, weight gradient; `SHIP_TOOLS_CONV=gemm` turns it off), every
//! other case by im2col + `gemm` over tiles of output rows. `bwd` calls two more custom ops, so
//! the whole backward pass stays in plain Rust. Other devices and
//! dtypes use candle's own conv ([`candle_conv2d`], also the reference of the tests).
//! Tolerance: f32 sums in a different order than candle's, ~1e-6 relative.

mod kernels;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

pub use kernels::Geom;
use kernels::InputGradPath;

/// Padding and stride of a convolution (dilation 1, groups 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    /// Zeros added above and below (rows), and left and right (columns).
    pub padding: (usize, usize),
    /// Step between output pixels, both axes.
    pub stride: usize,
}

impl Default for ConvParams {
    fn default() -> Self {
        Self {
            padding: (0, 0),
            stride: 1,
        }
    }
}

impl ConvParams {
    /// Stride 1 with "same" padding for an odd kh x kw kernel.
    pub fn same(kh: usize, kw: usize) -> Self {
        Self {
            padding: (kh / 2, kw / 2),
            stride: 1,
        }
    }

    /// The geometry of input `x` [B, Cin, H, W] and kernel `w` [Cout, Cin, kh, kw].
    pub fn geom(&self, x: &Shape, w: &Shape) -> Result<Geom> {
        let (batch, cin, h, wd) = x.dims4()?;
        let (cout, wcin, kh, kw) = w.dims4()?;
        if wcin != cin {
            candle_core::bail!("conv: input {x:?} and kernel {w:?} do not fit");
        }
        let (ph, pw) = self.padding;
        Geom {
            batch,
            cin,
            cout,
            h,
            w: wd,
            kh,
            kw,
            ph,
            pw,
            stride: self.stride,
        }
        .checked()
        .map_err(candle_core::Error::msg)
    }
}

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_f32s(s, l, "conv", what)
}

fn output(out: Vec<f32>, g: &Geom) -> (CpuStorage, Shape) {
    (
        CpuStorage::F32(out),
        Shape::from((g.batch, g.cout, g.oh(), g.ow())),
    )
}

/// The convolution: `(x, w)` or, with bias, `(x, w, b)`.
struct ConvOp(ConvParams);

impl ConvOp {
    /// (dL/dx, dL/dw, dL/db); a gradient nobody tracks is not computed.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias_tracked: bool,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        let gx = x
            .track_op()
            .then(|| {
                grad.apply_op2_no_bwd(
                    w,
                    &InputGradOp {
                        p: self.0,
                        h,
                        w: wd,
                    },
                )
            })
            .transpose()?;
        let (gw, gb) = if w.track_op() || bias_tracked {
            let (cout, cin, kh, kw) = w.dims4()?;
            let both = x.apply_op2_no_bwd(&grad, &WeightGradOp { p: self.0, kh, kw })?;
            let kd = cin * kh * kw;
            let gw = both.narrow(1, 0, kd)?.reshape((cout, cin, kh, kw))?;
            let gb = both.narrow(1, kd, 1)?.reshape(cout)?;
            (Some(gw), bias_tracked.then_some(gb))
        } else {
            (None, None)
        };
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "ship-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0.geom(xl.shape(), wl.shape())?;
        let out = kernels::forward(f32s(xs, xl, "input")?, f32s(ws, wl, "kernel")?, None, &g);
        Ok(output(out, &g))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw, _) = self.grads(x, w, false, grad)?;
        Ok((gx, gw))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "ship-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0.geom(xl.shape(), wl.shape())?;
        let b = f32s(bs, bl, "bias")?;
        if b.len() != g.cout {
            candle_core::bail!("conv: bias {:?} for {} output channels", bl.shape(), g.cout);
        }
        let x = f32s(xs, xl, "input")?;
        let out = kernels::forward(x, f32s(ws, wl, "kernel")?, Some(b), &g);
        Ok(output(out, &g))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, b.track_op(), grad)
    }
}

/// (dL/dout, w) -> dL/dx, for an input of H x W.
struct InputGradOp {
    p: ConvParams,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGradOp {
    fn name(&self) -> &'static str {
        "ship-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, _, _, _) = gl.shape().dims4()?;
        let (_, cin, _, _) = wl.shape().dims4()?;
        let x_shape = Shape::from((batch, cin, self.h, self.w));
        let g = self.p.geom(&x_shape, wl.shape())?;
        if gl.shape().dims() != [batch, g.cout, g.oh(), g.ow()] {
            candle_core::bail!("conv input grad: gradient {:?} for {g:?}", gl.shape());
        }
        let grad = f32s(gs, gl, "gradient")?;
        let dx = kernels::input_grad(grad, f32s(ws, wl, "kernel")?, &g, InputGradPath::best(&g));
        Ok((CpuStorage::F32(dx), x_shape))
    }
}

/// (x, dL/dout) -> [Cout, Cin·kh·kw + 1]: dL/dw with dL/db as the last column.
struct WeightGradOp {
    p: ConvParams,
    kh: usize,
    kw: usize,
}

impl CustomOp2 for WeightGradOp {
    fn name(&self) -> &'static str {
        "ship-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, cin, _, _) = xl.shape().dims4()?;
        let (batch, cout, _, _) = gl.shape().dims4()?;
        let w_shape = Shape::from((cout, cin, self.kh, self.kw));
        let g = self.p.geom(xl.shape(), &w_shape)?;
        if gl.shape().dims() != [g.batch, cout, g.oh(), g.ow()] || batch != g.batch {
            candle_core::bail!("conv weight grad: gradient {:?} for {g:?}", gl.shape());
        }
        let x = f32s(xs, xl, "input")?;
        let (dw, db) = kernels::weight_grad(x, f32s(gs, gl, "gradient")?, &g);
        let kd = g.kdim();
        let mut both = Vec::with_capacity(cout * (kd + 1));
        for (row, b) in dw.chunks_exact(kd).zip(db) {
            both.extend_from_slice(row);
            both.push(b);
        }
        Ok((CpuStorage::F32(both), Shape::from((cout, kd + 1))))
    }
}

/// The kernel that runs stride-1 convolutions on this machine: "direct-avx2-fma" or "gemm"
/// (no AVX2 + FMA, or `SHIP_TOOLS_CONV=gemm`). Other strides always take the gemm path.
pub fn stride1_kernel() -> &'static str {
    if kernels::direct_enabled() {
        "direct-avx2-fma"
    } else {
        "gemm"
    }
}

/// conv2d of x `[B, Cin, H, W]` by w `[Cout, Cin, kh, kw]` plus an optional bias `[Cout]`:
/// out [B, Cout, (H + 2ph − kh)/s + 1, (W + 2pw − kw)/s + 1].
/// CPU f32 tensors take the gemm kernels above, anything else [`candle_conv2d`].
///
/// ```
/// use candle_core::{Device, Tensor};
/// use ship_tools::nets::conv_cpu::{ConvParams, conv2d};
/// let x = Tensor::ones((1, 2, 5, 6), candle_core::DType::F32, &Device::Cpu)?;
/// let w = Tensor::ones((3, 2, 1, 5), candle_core::DType::F32, &Device::Cpu)?;
/// let y = conv2d(&x, &w, None, ConvParams { padding: (0, 2), stride: 2 })?;
/// assert_eq!(y.dims(), &[1, 3, 3, 3]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, p: ConvParams) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if !(f32_cpu(x) && f32_cpu(w) && bias.is_none_or(f32_cpu)) {
        return candle_conv2d(x, w, bias, p);
    }
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, ConvOp(p)),
        None => x.apply_op2(&w, ConvOp(p)),
    }
}

/// The same convolution with candle's own ops (conv2d, explicit padding when ph != pw, bias
/// broadcast-added): the path on every other device, and the reference.
pub fn candle_conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    p: ConvParams,
) -> Result<Tensor> {
    let (ph, pw) = p.padding;
    let y = if ph == pw {
        x.conv2d(w, ph, p.stride, 1, 1)?
    } else {
        let x = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
        x.conv2d(w, 0, p.stride, 1, 1)?
    };
    match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        None => Ok(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::init::Rng;
    use crate::nets::testing::{probe_grads, uniform};
    use candle_core::Var;

    /// Direct loops in f64: (out, dL/dx, dL/dw, dL/db) for dL/dout = `probe`.
    fn naive(x: &[f32], w: &[f32], b: &[f32], g: &Geom, probe: &[f32]) -> [Vec<f64>; 4] {
        let (oh, ow) = (g.oh(), g.ow());
        let mut out = vec![0f64; g.out_len()];
        let (mut dx, mut dw, mut db) = (
            vec![0f64; g.in_len()],
            vec![0f64; g.w_len()],
            vec![0f64; g.cout],
        );
        for (bi, co, oy, ox) in itertools4(g.batch, g.cout, oh, ow) {
            let o = ((bi * g.cout + co) * oh + oy) * ow + ox;
            let p = probe[o] as f64;
            out[o] = b[co] as f64;
            db[co] += p;
            for (ci, ky, kx) in
                (0..g.cin).flat_map(|c| (0..g.kh * g.kw).map(move |t| (c, t / g.kw, t % g.kw)))
            {
                let iy = (oy * g.stride + ky) as isize - g.ph as isize;
                let ix = (ox * g.stride + kx) as isize - g.pw as isize;
                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                    continue;
                }
                let xi = ((bi * g.cin + ci) * g.h + iy as usize) * g.w + ix as usize;
                let wi = ((co * g.cin + ci) * g.kh + ky) * g.kw + kx;
                out[o] += x[xi] as f64 * w[wi] as f64;
                dx[xi] += p * w[wi] as f64;
                dw[wi] += p * x[xi] as f64;
            }
        }
        [out, dx, dw, db]
    }

    fn itertools4(
        a: usize,
        b: usize,
        c: usize,
        d: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        (0..a * b * c * d).map(move |i| (i / (b * c * d), i / (c * d) % b, i / d % c, i % d))
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// max |a − b| / max |b|: the relative error the tests bound.
    fn rel_err(a: &[f32], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max)
            / scale
    }

    /// A random geometry over the kernel sizes, paddings, strides and batches the op supports.
    fn random_geom(rng: &mut Rng) -> Geom {
        let (kh, kw) = [(1, 1), (3, 3), (1, 5), (5, 1), (5, 5), (3, 2)][rng.below(6)];
        let (ph, pw) = (rng.below(kh), rng.below(kw));
        Geom {
            batch: 1 + rng.below(3),
            cin: 1 + rng.below(4),
            cout: 1 + rng.below(4),
            h: (kh - 2 * ph.min(kh / 2)).max(1) + rng.below(9),
            w: (kw - 2 * pw.min(kw / 2)).max(1) + rng.below(9),
            kh,
            kw,
            ph,
            pw,
            stride: 1 + rng.below(2),
        }
        .checked()
        .unwrap()
    }

    /// Forward and the three gradients against direct loops in f64 over random shapes, and against
    /// candle's own conv2d wherever candle's backward works (its stride-2 input gradient fails
    /// when the padded H and W leave different remainders, notes/CANDLE.md §2).
    /// Tolerance 1e-4 relative: f32 sums of <= 100 products, in a different order.
    #[test]
    fn matches_reference_on_random_shapes() {
        let mut rng = Rng::new(13);
        for case in 0..60 {
            let g = random_geom(&mut rng);
            let seed = 100 + 4 * case;
            let x =
                Var::from_tensor(&uniform(&[g.batch, g.cin, g.h, g.w], seed, -1.0, 1.0)).unwrap();
            let w = Var::from_tensor(&uniform(&[g.cout, g.cin, g.kh, g.kw], seed + 1, -1.0, 1.0))
                .unwrap();
            let b = Var::from_tensor(&uniform(&[g.cout], seed + 2, -1.0, 1.0)).unwrap();
            let probe = uniform(&[g.batch, g.cout, g.oh(), g.ow()], seed + 3, -1.0, 1.0);
            let p = ConvParams {
                padding: (g.ph, g.pw),
                stride: g.stride,
            };
            let ours = conv2d(&x, &w, Some(&b), p).unwrap();
            let grads = probe_grads(&ours, &probe);
            let reference = naive(&vals(&x), &vals(&w), &vals(&b), &g, &vals(&probe));
            let got = [
                &ours,
                grads.get(&x).unwrap(),
                grads.get(&w).unwrap(),
                grads.get(&b).unwrap(),
            ];
            for (name, (a, r)) in ["forward", "dx", "dw", "db"]
                .iter()
                .zip(got.iter().zip(&reference))
            {
                let e = rel_err(&vals(a), r);
                assert!(e < 1e-4, "{name} vs naive: {e:e} for {g:?}");
            }
            let theirs = candle_conv2d(&x, &w, Some(&b), p).unwrap();
            assert!(
                rel_err(
                    &vals(&ours),
                    &vals(&theirs).iter().map(|&v| v as f64).collect::<Vec<_>>()
                ) < 1e-4
            );
            let rem = |n: usize, k: usize, pad: usize| (n + 2 * pad - k) % g.stride;
            if rem(g.h, g.kh, g.ph) == rem(g.w, g.kw, g.pw) {
                let theirs = probe_grads(&theirs, &probe);
                for v in [&x, &w, &b] {
                    let r: Vec<f64> = vals(theirs.get(v).unwrap())
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    let e = rel_err(&vals(grads.get(v).unwrap()), &r);
                    assert!(
                        e < 1e-4,
                        "gradient {:?} vs candle: {e:e} for {g:?}",
                        v.dims()
                    );
                }
            }
        }
    }

    /// The direct kernels (forward, input gradient, weight and bias gradient) against direct
    /// loops in f64 on every case they take: 1x1, 3x3, 5x5, 1x5, 5x1 kernels, padding from 0 to
    /// kh − 1, Cin != Cout, Cout off the 4-channel blocks, widths off the 8/24-pixel blocks
    /// (1, 8, 9, 21, 25, 37, 48, 70, 130), several row bands per image, batch > 1. The gemm path
    /// runs on the same cases as a second check of the harness. Tolerance 1e-4 relative: f32
    /// sums of <= 400 products per output and <= 10^4 per weight, in a different order.
    #[test]
    fn direct_kernels_match_reference() {
        if !kernels::direct_available() {
            println!("skipped: this CPU lacks AVX2 + FMA, the direct kernels do not run");
            return;
        }
        // (batch, cin, cout, h, w, kh, kw, ph, pw)
        let cases = [
            (2, 16, 16, 9, 37, 3, 3, 1, 1),
            (1, 3, 5, 7, 1, 3, 3, 1, 1),
            (2, 4, 7, 6, 23, 3, 3, 0, 0),
            (3, 8, 6, 5, 48, 1, 1, 0, 0),
            (1, 5, 9, 4, 25, 1, 5, 0, 2),
            (2, 2, 3, 11, 8, 5, 1, 2, 0),
            (2, 16, 8, 10, 16, 3, 3, 1, 1),
            (1, 8, 16, 3, 130, 3, 3, 1, 1),
            (1, 6, 4, 33, 70, 3, 3, 1, 1),
            (1, 4, 4, 20, 64, 5, 5, 2, 2),
            (2, 3, 2, 6, 9, 3, 3, 2, 0),
            (1, 1, 1, 5, 5, 3, 3, 1, 1),
        ];
        for (case, &(batch, cin, cout, h, w, kh, kw, ph, pw)) in cases.iter().enumerate() {
            let g = Geom {
                batch,
                cin,
                cout,
                h,
                w,
                kh,
                kw,
                ph,
                pw,
                stride: 1,
            }
            .checked()
            .unwrap();
            let seed = 500 + 4 * case as u64;
            let x = vals(&uniform(&[g.batch, g.cin, g.h, g.w], seed, -1.0, 1.0));
            let wt = vals(&uniform(&[g.cout, g.cin, g.kh, g.kw], seed + 1, -1.0, 1.0));
            let b = vals(&uniform(&[g.cout], seed + 2, -1.0, 1.0));
            let probe = vals(&uniform(
                &[g.batch, g.cout, g.oh(), g.ow()],
                seed + 3,
                -1.0,
                1.0,
            ));
            let [out, dx, dw, db] = naive(&x, &wt, &b, &g, &probe);
            for path in [kernels::ConvPath::Direct, kernels::ConvPath::Gemm] {
                let igp = match path {
                    kernels::ConvPath::Direct => InputGradPath::DirectFlipped,
                    kernels::ConvPath::Gemm => InputGradPath::FlippedConv,
                };
                let (gw, gb) = kernels::weight_grad_with(&x, &probe, &g, path);
                let got = [
                    kernels::forward_with(&x, &wt, Some(&b), &g, path),
                    kernels::input_grad(&probe, &wt, &g, igp),
                    gw,
                    gb,
                ];
                for (name, (a, r)) in ["forward", "dx", "dw", "db"]
                    .iter()
                    .zip(got.iter().zip([&out, &dx, &dw, &db]))
                {
                    let e = rel_err(a, r);
                    assert!(e < 1e-4, "{path:?} {name}: {e:e} for {g:?}");
                }
            }
        }
    }

    /// Both input-gradient paths agree at stride 1, on row tiles that split the image unevenly.
    #[test]
    fn input_gradient_paths_agree() {
        let g = Geom {
            batch: 2,
            cin: 3,
            cout: 5,
            h: 13,
            w: 300,
            kh: 3,
            kw: 5,
            ph: 1,
            pw: 2,
            stride: 1,
        };
        let grad = vals(&uniform(&[g.batch, g.cout, g.oh(), g.ow()], 1, -1.0, 1.0));
        let w = vals(&uniform(&[g.cout, g.cin, g.kh, g.kw], 2, -1.0, 1.0));
        let a = kernels::input_grad(&grad, &w, &g, InputGradPath::FlippedConv);
        let b = kernels::input_grad(&grad, &w, &g, InputGradPath::Col2im);
        let b: Vec<f64> = b.iter().map(|&v| v as f64).collect();
        assert!(rel_err(&a, &b) < 1e-5);
    }

    /// Central differences of L = Σ probe ⊙ conv(x, w, b) on a tiny stride-2 case. L is linear in
    /// each argument, so the difference quotient is exact up to f32 rounding of L (~1e-6·|L| / ε).
    #[test]
    fn gradients_match_finite_differences() {
        let g = Geom {
            batch: 1,
            cin: 2,
            cout: 2,
            h: 5,
            w: 4,
            kh: 3,
            kw: 2,
            ph: 1,
            pw: 0,
            stride: 2,
        };
        let p = ConvParams {
            padding: (g.ph, g.pw),
            stride: g.stride,
        };
        let x = uniform(&[1, 2, 5, 4], 7, -1.0, 1.0);
        let w = uniform(&[2, 2, 3, 2], 8, -1.0, 1.0);
        let b = uniform(&[2], 9, -1.0, 1.0);
        let probe = uniform(&[1, 2, g.oh(), g.ow()], 10, -1.0, 1.0);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| -> f64 {
            let y = conv2d(x, w, Some(b), p).unwrap();
            (y * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64
        };
        let vars = [
            Var::from_tensor(&x).unwrap(),
            Var::from_tensor(&w).unwrap(),
            Var::from_tensor(&b).unwrap(),
        ];
        let grads = probe_grads(
            &conv2d(&vars[0], &vars[1], Some(&vars[2]), p).unwrap(),
            &probe,
        );
        let eps = 1e-2;
        for (i, v) in vars.iter().enumerate() {
            let analytic = vals(grads.get(v).unwrap());
            for (j, a) in analytic.iter().enumerate() {
                let bump = |s: f32| {
                    let mut args = [vals(&x), vals(&w), vals(&b)];
                    args[i][j] += s * eps;
                    let t = |k: usize, t: &Tensor| {
                        Tensor::from_vec(args[k].clone(), t.shape(), t.device()).unwrap()
                    };
                    loss(&t(0, &x), &t(1, &w), &t(2, &b))
                };
                let fd = (bump(1.0) - bump(-1.0)) / (2.0 * eps as f64);
                assert!(
                    (fd - *a as f64).abs() < 1e-3,
                    "arg {i} elem {j}: fd {fd} vs {a}"
                );
            }
        }
    }
}
