//! Affine normalisation (SHIP's LayerNorm over channels, and InstanceNorm over H, W) in one pass
//! for candle's CPU backend, with a one-pass gradient.
//!
//! candle composes y = (x − mean)/sqrt(var + eps)·w + b from nine tensor ops, and the backward of
//! each broadcast is a sum over the broadcast axes. candle 0.11's CPU sum runs on one thread, and
//! for any axis but the last ones with a divmod per element: on `ship` at batch 8 / crop 128 those
//! sums were 16% of a training step's CPU time. Here the statistics, the output and the three
//! gradients are parallel loops over fixed tasks (the same split at any thread count, so a step is
//! reproducible whatever the pool size). Statistics are two-pass, as in the composition and the
//! exported ONNX, with f64 sums over a plane for InstanceNorm. Other devices and dtypes use the
//! composition ([`normalize_composed`], also the reference of the tests).

use super::SendPtr;
use super::layers::NormAxes;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Pixels per task of the channel statistics: one task's C rows stay in L1/L2.
const PIXELS: usize = 2048;

/// (x − mean)/sqrt(var + eps)·w + b, the statistics over `axes`: x is [B, C, H, W], w and b [C].
pub fn normalize_affine(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    axes: NormAxes,
    eps: f64,
) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if !(f32_cpu(x) && f32_cpu(w) && f32_cpu(b)) {
        return normalize_composed(x, w, b, axes, eps);
    }
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        NormOp {
            axes,
            eps: eps as f32,
        },
    )
}

/// The same normalisation as candle tensor ops: the path on every other device, and the reference.
pub fn normalize_composed(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    axes: NormAxes,
    eps: f64,
) -> Result<Tensor> {
    let mean = |t: &Tensor| match axes {
        NormAxes::Channels => t.mean_keepdim(1),
        // Means over W then over H: a sum of <= W (then H) f32 terms at a time. One flat f32 sum
        // over a whole frame loses the digits these features need (their mean is ~100x their
        // spread).
        NormAxes::Spatial => t.mean_keepdim(3)?.mean_keepdim(2),
    };
    let xc = x.broadcast_sub(&mean(x)?)?;
    let var = mean(&xc.sqr()?)?;
    let y = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    y.broadcast_mul(&w.reshape((1, (), 1, 1))?)?
        .broadcast_add(&b.reshape((1, (), 1, 1))?)
}

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("normalize: {what} must be f32 on CPU");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("normalize: {what} must be contiguous"),
    }
}

/// x viewed as [batch, channels, plane].
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    plane: usize,
}

impl Dims {
    fn of(x: &Shape, w: &Shape) -> Result<Self> {
        let (batch, channels, h, wd) = x.dims4()?;
        if w.elem_count() != channels {
            candle_core::bail!("normalize: parameters {w:?} for input {x:?}");
        }
        Ok(Self {
            batch,
            channels,
            plane: h * wd,
        })
    }

    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// The tasks of the channel statistics: (image, first pixel, pixels).
    fn pixel_tasks(&self) -> Vec<(usize, usize, usize)> {
        let plane = self.plane;
        (0..self.batch)
            .flat_map(|b| {
                (0..plane)
                    .step_by(PIXELS)
                    .map(move |p| (b, p, PIXELS.min(plane - p)))
            })
            .collect()
    }
}

/// Mean and 1/sqrt(var + eps) of each of the `n` pixels at `x[base + c·plane + i]`.
fn pixel_stats(x: &[f32], d: Dims, base: usize, n: usize, eps: f32) -> (Vec<f32>, Vec<f32>) {
    let row = |c: usize| &x[base + c * d.plane..][..n];
    let inv_c = 1.0 / d.channels as f32;
    let mut mean = vec![0f32; n];
    for c in 0..d.channels {
        mean.iter_mut().zip(row(c)).for_each(|(m, &v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m *= inv_c);
    let mut rstd = vec![0f32; n];
    for c in 0..d.channels {
        for ((s, &v), &m) in rstd.iter_mut().zip(row(c)).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    rstd.iter_mut()
        .for_each(|s| *s = 1.0 / (*s * inv_c + eps).sqrt());
    (mean, rstd)
}

/// Mean and 1/sqrt(var + eps) of one plane, two-pass with f64 sums.
fn plane_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

fn forward(x: &[f32], w: &[f32], b: &[f32], d: Dims, axes: NormAxes, eps: f32) -> Vec<f32> {
    let mut y = vec![0f32; d.len()];
    match axes {
        NormAxes::Channels => {
            let dst = SendPtr(y.as_mut_ptr());
            d.pixel_tasks().into_par_iter().for_each(|(bi, p0, n)| {
                let base = bi * d.channels * d.plane + p0;
                let (mean, rstd) = pixel_stats(x, d, base, n, eps);
                for c in 0..d.channels {
                    let at = base + c * d.plane;
                    // SAFETY: pixels p0..p0+n of plane (bi, c): this task's only.
                    let out = unsafe { std::slice::from_raw_parts_mut(dst.at(at), n) };
                    let (wc, bc) = (w[c], b[c]);
                    for (((o, &v), &m), &s) in
                        out.iter_mut().zip(&x[at..at + n]).zip(&mean).zip(&rstd)
                    {
                        *o = (v - m) * s * wc + bc;
                    }
                }
            });
        }
        NormAxes::Spatial => {
            y.par_chunks_mut(d.plane)
                .zip(x.par_chunks(d.plane))
                .enumerate()
                .for_each(|(k, (out, xp))| {
                    let c = k % d.channels;
                    let (m, s) = plane_stats(xp, eps);
                    let (ws, bc) = (s * w[c], b[c]);
                    for (o, &v) in out.iter_mut().zip(xp) {
                        *o = (v - m) * ws + bc;
                    }
                });
        }
    }
    y
}

/// One task's sums of dL/dy·x̂ (dL/dw) and dL/dy (dL/db) per channel.
struct Partial {
    dw: Vec<f64>,
    db: Vec<f64>,
}

/// [dL/dx, dL/dw, dL/db] flat. With x̂ = (x − mean)·rstd and g = dL/dy·w, over the values
/// normalised together: dL/dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
fn backward(x: &[f32], w: &[f32], dy: &[f32], d: Dims, axes: NormAxes, eps: f32) -> Vec<f32> {
    let c_count = d.channels;
    let mut dx = vec![0f32; d.len() + 2 * c_count];
    let (dx_part, params) = dx.split_at_mut(d.len());
    let partials: Vec<Partial> = match axes {
        NormAxes::Channels => {
            let dst = SendPtr(dx_part.as_mut_ptr());
            d.pixel_tasks()
                .into_par_iter()
                .map(|(bi, p0, n)| {
                    let base = bi * c_count * d.plane + p0;
                    let (mean, rstd) = pixel_stats(x, d, base, n, eps);
                    let xhat = |c: usize| {
                        let at = base + c * d.plane;
                        x[at..at + n]
                            .iter()
                            .zip(&mean)
                            .zip(&rstd)
                            .map(|((&v, &m), &s)| (v - m) * s)
                    };
                    let mut part = Partial {
                        dw: vec![0.0; c_count],
                        db: vec![0.0; c_count],
                    };
                    let (mut mg, mut mgx) = (vec![0f32; n], vec![0f32; n]);
                    for c in 0..c_count {
                        let g = &dy[base + c * d.plane..][..n];
                        let (mut sw, mut sb) = (0f32, 0f32);
                        for (((a, ax), &gv), xh) in mg.iter_mut().zip(&mut mgx).zip(g).zip(xhat(c))
                        {
                            *a += gv * w[c];
                            *ax += gv * w[c] * xh;
                            sw += gv * xh;
                            sb += gv;
                        }
                        part.dw[c] = sw as f64;
                        part.db[c] = sb as f64;
                    }
                    let inv_c = 1.0 / c_count as f32;
                    for (c, &wc) in w.iter().enumerate() {
                        let at = base + c * d.plane;
                        // SAFETY: pixels p0..p0+n of plane (bi, c): this task's only.
                        let out = unsafe { std::slice::from_raw_parts_mut(dst.at(at), n) };
                        let rows = out.iter_mut().zip(&dy[at..at + n]).zip(xhat(c));
                        let stats = rstd.iter().zip(&mg).zip(&mgx);
                        for (((o, &gv), xh), ((&s, &a), &ax)) in rows.zip(stats) {
                            *o = s * (gv * wc - (a + xh * ax) * inv_c);
                        }
                    }
                    part
                })
                .collect()
        }
        NormAxes::Spatial => dx_part
            .par_chunks_mut(d.plane)
            .zip(x.par_chunks(d.plane).zip(dy.par_chunks(d.plane)))
            .enumerate()
            .map(|(k, (out, (xp, g)))| {
                let c = k % c_count;
                let (m, s) = plane_stats(xp, eps);
                let (mut sw, mut sb) = (0f64, 0f64);
                for (&v, &gv) in xp.iter().zip(g) {
                    sw += (gv * (v - m) * s) as f64;
                    sb += gv as f64;
                }
                let n = d.plane as f64;
                let (mg, mgx) = ((sb / n) as f32 * w[c], (sw / n) as f32 * w[c]);
                for ((o, &v), &gv) in out.iter_mut().zip(xp).zip(g) {
                    let xh = (v - m) * s;
                    *o = s * (gv * w[c] - mg - xh * mgx);
                }
                let mut part = Partial {
                    dw: vec![0.0; c_count],
                    db: vec![0.0; c_count],
                };
                part.dw[c] = sw;
                part.db[c] = sb;
                part
            })
            .collect(),
    };
    // In task order, so the sums do not depend on which thread ran which task.
    let (dw, db) = params.split_at_mut(c_count);
    for c in 0..c_count {
        dw[c] = partials.iter().map(|p| p.dw[c]).sum::<f64>() as f32;
        db[c] = partials.iter().map(|p| p.db[c]).sum::<f64>() as f32;
    }
    dx
}

/// The normalisation `(x, w, b)`.
struct NormOp {
    axes: NormAxes,
    eps: f32,
}

impl CustomOp3 for NormOp {
    fn name(&self) -> &'static str {
        match self.axes {
            NormAxes::Channels => "ship-layer-norm-channels",
            NormAxes::Spatial => "ship-instance-norm",
        }
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
        let d = Dims::of(xl.shape(), wl.shape())?;
        if bl.shape().elem_count() != d.channels {
            candle_core::bail!(
                "normalize: bias {:?} for input {:?}",
                bl.shape(),
                xl.shape()
            );
        }
        let (x, w, b) = (
            f32s(xs, xl, "input")?,
            f32s(ws, wl, "weight")?,
            f32s(bs, bl, "bias")?,
        );
        let y = forward(x, w, b, d, self.axes, self.eps);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let both = x.apply_op3_no_bwd(
            w,
            &grad.contiguous()?,
            &NormGradOp {
                axes: self.axes,
                eps: self.eps,
            },
        )?;
        let (n, c) = (x.elem_count(), w.elem_count());
        let dx = both.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = both.narrow(0, n, c)?.reshape(w.shape())?;
        let db = both.narrow(0, n + c, c)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// (x, w, dL/dy) -> [dL/dx, dL/dw, dL/db] flat.
struct NormGradOp {
    axes: NormAxes,
    eps: f32,
}

impl CustomOp3 for NormGradOp {
    fn name(&self) -> &'static str {
        "ship-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::of(xl.shape(), wl.shape())?;
        if gl.shape() != xl.shape() {
            candle_core::bail!(
                "normalize grad: {:?} for input {:?}",
                gl.shape(),
                xl.shape()
            );
        }
        let (x, w, dy) = (
            f32s(xs, xl, "input")?,
            f32s(ws, wl, "weight")?,
            f32s(gs, gl, "gradient")?,
        );
        let out = backward(x, w, dy, d, self.axes, self.eps);
        let n = out.len();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::{max_diff, probe_grads, uniform};
    use candle_core::Var;

    /// Forward and all three gradients against the composition, on sizes off the task split
    /// (3 images of 5 channels, 2,100 pixels: two pixel tasks per image, the second partial).
    #[test]
    fn matches_the_composition_with_gradients() {
        for axes in [NormAxes::Channels, NormAxes::Spatial] {
            let x = Var::from_tensor(&uniform(&[3, 5, 30, 70], 1, -2.0, 3.0)).unwrap();
            let w = Var::from_tensor(&uniform(&[5], 2, 0.5, 1.5)).unwrap();
            let b = Var::from_tensor(&uniform(&[5], 3, -0.5, 0.5)).unwrap();
            let probe = uniform(&[3, 5, 30, 70], 4, -1.0, 1.0);
            let ours = normalize_affine(&x, &w, &b, axes, 1e-5).unwrap();
            let theirs = normalize_composed(&x, &w, &b, axes, 1e-5).unwrap();
            assert!(max_diff(&ours, &theirs) < 2e-6, "{axes:?} forward");
            let (g1, g2) = (probe_grads(&ours, &probe), probe_grads(&theirs, &probe));
            for (v, tol, what) in [(&x, 5e-6, "dx"), (&w, 5e-4, "dw"), (&b, 5e-4, "db")] {
                let (a, e) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                let d = max_diff(a, e);
                assert!(d < tol, "{axes:?} {what}: {d}");
            }
        }
    }

    /// The statistics really are per pixel (channels) or per plane (spatial): an output of
    /// unit weight and zero bias has mean 0 and variance ~1 over the normalised axes.
    #[test]
    fn normalises_over_the_right_axes() {
        let x = uniform(&[2, 4, 8, 8], 5, -1.0, 4.0);
        let (w, b) = (
            Tensor::ones(4, DType::F32, x.device()).unwrap(),
            Tensor::zeros(4, DType::F32, x.device()).unwrap(),
        );
        let y = normalize_affine(&x, &w, &b, NormAxes::Channels, 1e-5).unwrap();
        let m = y
            .mean_keepdim(1)
            .unwrap()
            .abs()
            .unwrap()
            .max_keepdim(2)
            .unwrap();
        assert!(
            m.flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                < 1e-5
        );
        let y = normalize_affine(&x, &w, &b, NormAxes::Spatial, 1e-5).unwrap();
        let v = y
            .sqr()
            .unwrap()
            .mean_keepdim(3)
            .unwrap()
            .mean_keepdim(2)
            .unwrap();
        let v: Vec<f32> = v.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|v| (v - 1.0).abs() < 1e-3), "{v:?}");
    }
}
