//! Affine normalisation (SHIP's LayerNorm over channels, and InstanceNorm over H, W) in one pass
//! for candle's CPU backend, with a one-pass gradient.
//!
//! candle composes y = (x − mean)/sqrt(var + eps)·w + b from nine tensor ops, and the backward of
//! each broadcast is a sum over the broadcast axes. candle 0.11's CPU sum runs on one thread, and
//! for any axis but the last ones with a divmod per element: on `ship` at batch 8 / crop 128 those
//! sums were 16% of a training step's CPU time. Here the statistics, the output and the three
//! gradients are parallel loops over fixed tasks (the same split at any thread count, so a step is
//! reproducible whatever the pool size). Statistics are two-pass, as in the composition and the
//! exported ONNX; every intermediate is f64, so only the results are rounded to f32 (the
//! composition in f32 loses up to 3 digits of the weight gradient on features whose mean is
//! ~100x their spread). Other devices and dtypes use the composition ([`normalize_composed`],
//! also the reference of the tests).

use super::SendPtr;
use super::layers::NormAxes;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Pixels per task of the channel statistics: 8 KB per channel row, so a task's rows of
/// SHIP's 8-32 channels stay in L2.
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

/// x's dims and the slices of x, w and a third operand (b, or dL/dy), named in errors.
fn operands<'a>(
    [(xs, xl), (ws, wl), (ts, tl)]: [(&'a CpuStorage, &Layout); 3],
    third: &str,
) -> Result<(Dims, [&'a [f32]; 3])> {
    let f32s = |s, l, what| super::cpu_f32s(s, l, "normalize", what);
    let d = Dims::of(xl.shape(), wl.shape())?;
    Ok((
        d,
        [
            f32s(xs, xl, "input")?,
            f32s(ws, wl, "weight")?,
            f32s(ts, tl, third)?,
        ],
    ))
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
///
/// In f64, as the per-pixel work after them: a pixel's few channels can have a spread far
/// below their mean, and 1/spread scales the rounding of everything downstream.
fn pixel_stats(x: &[f32], d: Dims, base: usize, n: usize, eps: f32) -> (Vec<f64>, Vec<f64>) {
    let row = |c: usize| &x[base + c * d.plane..][..n];
    let inv_c = 1.0 / d.channels as f64;
    let mut mean = vec![0f64; n];
    for c in 0..d.channels {
        mean.iter_mut()
            .zip(row(c))
            .for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m *= inv_c);
    let mut rstd = vec![0f64; n];
    for c in 0..d.channels {
        for ((s, &v), &m) in rstd.iter_mut().zip(row(c)).zip(&mean) {
            *s += (v as f64 - m) * (v as f64 - m);
        }
    }
    rstd.iter_mut()
        .for_each(|s| *s = 1.0 / (*s * inv_c + eps as f64).sqrt());
    (mean, rstd)
}

/// Mean and 1/sqrt(var + eps) of one plane, two-pass, in f64 (see [`pixel_stats`]).
fn plane_stats(x: &[f32], eps: f32) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.0 / (var + eps as f64).sqrt())
}

fn forward(x: &[f32], w: &[f32], b: &[f32], d: Dims, axes: NormAxes, eps: f32) -> Vec<f32> {
    let mut y = vec![0f32; d.len()];
    if d.len() == 0 {
        return y;
    }
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
                    let (wc, bc) = (w[c] as f64, b[c] as f64);
                    for (((o, &v), &m), &s) in
                        out.iter_mut().zip(&x[at..at + n]).zip(&mean).zip(&rstd)
                    {
                        *o = ((v as f64 - m) * s * wc + bc) as f32;
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
                    let (ws, bc) = (s * w[c] as f64, b[c] as f64);
                    for (o, &v) in out.iter_mut().zip(xp) {
                        *o = ((v as f64 - m) * ws + bc) as f32;
                    }
                });
        }
    }
    y
}

/// One task's sums of dL/dy·x̂ (dL/dw) and dL/dy (dL/db), for channels `first..`.
struct Partial {
    first: usize,
    dw: Vec<f64>,
    db: Vec<f64>,
}

/// [dL/dx, dL/dw, dL/db] flat. With x̂ = (x − mean)·rstd and g = dL/dy·w, over the values
/// normalised together: dL/dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
fn backward(x: &[f32], w: &[f32], dy: &[f32], d: Dims, axes: NormAxes, eps: f32) -> Vec<f32> {
    let c_count = d.channels;
    let mut dx = vec![0f32; d.len() + 2 * c_count];
    if d.len() == 0 {
        return dx;
    }
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
                            .map(|((&v, &m), &s)| (v as f64 - m) * s)
                    };
                    let mut part = Partial {
                        first: 0,
                        dw: vec![0.0; c_count],
                        db: vec![0.0; c_count],
                    };
                    let (mut mg, mut mgx) = (vec![0f64; n], vec![0f64; n]);
                    for c in 0..c_count {
                        let g = &dy[base + c * d.plane..][..n];
                        let (wc, mut sw, mut sb) = (w[c] as f64, 0f64, 0f64);
                        for (((a, ax), &gv), xh) in mg.iter_mut().zip(&mut mgx).zip(g).zip(xhat(c))
                        {
                            let gv = gv as f64;
                            *a += gv * wc;
                            *ax += gv * wc * xh;
                            sw += gv * xh;
                            sb += gv;
                        }
                        part.dw[c] = sw;
                        part.db[c] = sb;
                    }
                    let inv_c = 1.0 / c_count as f64;
                    for (c, &wc) in w.iter().enumerate() {
                        let at = base + c * d.plane;
                        // SAFETY: pixels p0..p0+n of plane (bi, c): this task's only.
                        let out = unsafe { std::slice::from_raw_parts_mut(dst.at(at), n) };
                        let rows = out.iter_mut().zip(&dy[at..at + n]).zip(xhat(c));
                        let stats = rstd.iter().zip(&mg).zip(&mgx);
                        for (((o, &gv), xh), ((&s, &a), &ax)) in rows.zip(stats) {
                            *o = (s * (gv as f64 * wc as f64 - (a + xh * ax) * inv_c)) as f32;
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
                    sw += gv as f64 * (v as f64 - m) * s;
                    sb += gv as f64;
                }
                let (n, wc) = (d.plane as f64, w[c] as f64);
                let (mg, mgx) = (sb / n * wc, sw / n * wc);
                for ((o, &v), &gv) in out.iter_mut().zip(xp).zip(g) {
                    let xh = (v as f64 - m) * s;
                    *o = (s * (gv as f64 * wc - mg - xh * mgx)) as f32;
                }
                Partial {
                    first: c,
                    dw: vec![sw],
                    db: vec![sb],
                }
            })
            .collect(),
    };
    // In task order, so the sums do not depend on which thread ran which task.
    let (mut dw, mut db) = (vec![0f64; c_count], vec![0f64; c_count]);
    for p in &partials {
        for (k, (w, b)) in p.dw.iter().zip(&p.db).enumerate() {
            dw[p.first + k] += w;
            db[p.first + k] += b;
        }
    }
    let sums = dw.iter().chain(&db);
    params
        .iter_mut()
        .zip(sums)
        .for_each(|(o, &v)| *o = v as f32);
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
        let (d, [x, w, b]) = operands([(xs, xl), (ws, wl), (bs, bl)], "bias")?;
        if bl.shape().elem_count() != d.channels {
            candle_core::bail!(
                "normalize: bias {:?} for input {:?}",
                bl.shape(),
                xl.shape()
            );
        }
        let y = forward(x, w, b, d, self.axes, self.eps);
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
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
        // Copies: views would keep the activation-sized buffer alive as long as the gradients.
        let dw = both.narrow(0, n, c)?.reshape(w.shape())?.copy()?;
        let db = both.narrow(0, n + c, c)?.reshape(b.shape())?.copy()?;
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
        let (d, [x, w, dy]) = operands([(xs, xl), (ws, wl), (gs, gl)], "gradient")?;
        if gl.shape() != xl.shape() {
            candle_core::bail!(
                "normalize grad: {:?} for input {:?}",
                gl.shape(),
                xl.shape()
            );
        }
        let out = backward(x, w, dy, d, self.axes, self.eps);
        let n = out.len();
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::{probe_grads, uniform};
    use candle_core::{Device, Var};

    /// Forward and the three gradients of the f32 op against candle's composition in f64 (the
    /// exact reference): no worse than the same composition in f32, and within 1e-5, a few ulp
    /// of outputs up to ~40 (the f64 intermediates leave only the final rounding to f32).
    /// Measured: at most 3.6e-6 (db), where the f32 composition is off by up to 3.7e-3 (dw of
    /// InstanceNorm around 100). Sizes are off the task split: 3 images of 5 channels, 2,100
    /// pixels (two pixel tasks per image, the second partial). Once on values around 0, once
    /// around 100 with a spread of 1 (SHIP's HIN features have means ~100x their spread).
    #[test]
    fn is_as_accurate_as_candles_composition() {
        let f64_of = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let diff = |a: &Tensor, e: &Tensor| {
            let d = (f64_of(a) - e)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap();
            d.max(0).unwrap().to_scalar::<f64>().unwrap()
        };
        let vars = |t: [&Tensor; 3]| t.map(|t| Var::from_tensor(t).unwrap());
        for offset in [0.0, 100.0] {
            for axes in [NormAxes::Channels, NormAxes::Spatial] {
                let x0 = (uniform(&[3, 5, 30, 70], 1, -0.5, 0.5) + offset).unwrap();
                let (w0, b0) = (uniform(&[5], 2, 0.5, 1.5), uniform(&[5], 3, -0.5, 0.5));
                let probe = uniform(&[3, 5, 30, 70], 4, -1.0, 1.0);
                let [x, w, b] = vars([&x0, &w0, &b0]);
                let [xc, wc, bc] = vars([&x0, &w0, &b0]);
                let [xe, we, be] = vars([&f64_of(&x0), &f64_of(&w0), &f64_of(&b0)]);
                let ours = normalize_affine(&x, &w, &b, axes, 1e-5).unwrap();
                let candle = normalize_composed(&xc, &wc, &bc, axes, 1e-5).unwrap();
                let exact = normalize_composed(&xe, &we, &be, axes, 1e-5).unwrap();
                let check = |what: &str, ours: f64, candle: f64| {
                    assert!(
                        ours <= candle.max(1e-6) && ours < 1e-5,
                        "{axes:?} around {offset}: {what} error {ours:e}, candle's {candle:e}"
                    );
                };
                check("forward", diff(&ours, &exact), diff(&candle, &exact));
                let g = probe_grads(&ours, &probe);
                let gc = probe_grads(&candle, &probe);
                let ge = probe_grads(&exact, &f64_of(&probe));
                let cases = [
                    (&x, &xc, &xe, "dx"),
                    (&w, &wc, &we, "dw"),
                    (&b, &bc, &be, "db"),
                ];
                for (v, vc, ve, what) in cases {
                    let e = ge.get(ve).unwrap();
                    let (d, dc) = (diff(g.get(v).unwrap(), e), diff(gc.get(vc).unwrap(), e));
                    check(what, d, dc);
                }
            }
        }
    }

    /// The split into tasks is fixed, and partial sums are combined in task order: the output
    /// and the gradients are bit-identical whatever the number of threads.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut out = Vec::new();
                for axes in [NormAxes::Channels, NormAxes::Spatial] {
                    let x = Var::from_tensor(&uniform(&[2, 6, 50, 90], 7, -1.0, 2.0)).unwrap();
                    let w = Var::from_tensor(&uniform(&[6], 8, 0.5, 1.5)).unwrap();
                    let b = Var::from_tensor(&uniform(&[6], 9, -0.5, 0.5)).unwrap();
                    let y = normalize_affine(&x, &w, &b, axes, 1e-5).unwrap();
                    let g = probe_grads(&y, &uniform(&[2, 6, 50, 90], 10, -1.0, 1.0));
                    for t in [
                        &y,
                        g.get(&x).unwrap(),
                        g.get(&w).unwrap(),
                        g.get(&b).unwrap(),
                    ] {
                        out.push(t.flatten_all().unwrap().to_vec1().unwrap());
                    }
                }
                out
            })
        };
        let one = run(1);
        assert_eq!(one, run(3));
        assert_eq!(one, run(4));
    }

    /// An empty frame gives empty outputs and zero parameter gradients, not a panic.
    #[test]
    fn empty_frames_are_fine() {
        let x = Var::from_tensor(&Tensor::zeros((2, 3, 0, 5), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let w = Var::from_tensor(&Tensor::ones(3, DType::F32, &Device::Cpu).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap()).unwrap();
        for axes in [NormAxes::Channels, NormAxes::Spatial] {
            let y = normalize_affine(&x, &w, &b, axes, 1e-5).unwrap();
            assert_eq!(y.dims(), &[2, 3, 0, 5]);
            let g = y.sum_all().unwrap().backward().unwrap();
            let dw: Vec<f32> = g.get(&w).unwrap().to_vec1().unwrap();
            assert_eq!(dw, [0.0; 3]);
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
