//! Fast stride-1 "same" conv2d for candle's CPU backend, with its gradients.
//!
//! candle 0.11's CPU convolution runs at ~3 GMAC/s on SHIP's 16/32-channel layers (and its
//! backward is slower still, notes/CANDLE.md §4). Here each output row tile is one gemm over an
//! im2col tile, `out[Cout, px] = W[Cout, Cin·k²] · cols[Cin·k², px]`, tiles in parallel with rayon.
//! The input gradient is the same convolution with the kernel transposed and flipped; the weight
//! gradient is `grad[Cout, px] · colsᵀ`, summed over tiles. Other devices use candle's own conv.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// Output pixels per tile: big enough for an efficient gemm, small enough for the cache.
const TILE_PX: usize = 4096;

/// Geometry of one convolution (odd square kernel, stride 1, pad k/2).
#[derive(Debug, Clone, Copy)]
struct Geom {
    batch: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl Geom {
    fn of(x: &Layout, w: &Layout) -> Result<Self> {
        let (batch, cin, h, wd) = x.shape().dims4()?;
        let (cout, wcin, kh, kw) = w.shape().dims4()?;
        if wcin != cin || kh != kw || kh % 2 == 0 {
            candle_core::bail!(
                "conv: input {:?} and kernel {:?} do not fit",
                x.shape(),
                w.shape()
            );
        }
        Ok(Self {
            batch,
            cin,
            cout,
            h,
            w: wd,
            k: kh,
        })
    }
    fn kdim(&self) -> usize {
        self.cin * self.k * self.k
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn tiles(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let rows = (TILE_PX / self.w).max(1);
        (0..self.h)
            .step_by(rows)
            .map(move |y0| (y0, (y0 + rows).min(self.h)))
    }
}

/// im2col of rows [y0, y1) of one image [Cin, H, W] into cols [Cin·k², (y1−y0)·W].
fn im2col(x: &[f32], g: &Geom, y0: usize, y1: usize, cols: &mut [f32]) {
    let (pad, n) = (g.k / 2, (y1 - y0) * g.w);
    for ci in 0..g.cin {
        let plane = &x[ci * g.hw()..(ci + 1) * g.hw()];
        for dy in 0..g.k {
            for dx in 0..g.k {
                let row = &mut cols[((ci * g.k + dy) * g.k + dx) * n..][..n];
                for (ty, y) in (y0..y1).enumerate() {
                    let out = &mut row[ty * g.w..(ty + 1) * g.w];
                    let sy = y as isize + dy as isize - pad as isize;
                    if sy < 0 || sy >= g.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[sy as usize * g.w..][..g.w];
                    // out[x] = src[x + dx − pad] where that is inside the row, else 0.
                    let lo = pad.saturating_sub(dx).min(g.w);
                    let hi = (g.w + pad).saturating_sub(dx).min(g.w).max(lo);
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if lo < hi {
                        out[lo..hi].copy_from_slice(&src[lo + dx - pad..hi + dx - pad]);
                    }
                }
            }
        }
    }
}

/// The gemm right-hand side [K, n] of one row tile and its row stride: the input rows themselves
/// for a 1x1 kernel, else the tile's im2col written into `cols`.
fn tile_rhs(
    xb: &[f32],
    g: &Geom,
    y0: usize,
    y1: usize,
    cols: &mut Vec<f32>,
) -> (*const f32, isize) {
    if g.k == 1 {
        return (xb[y0 * g.w..].as_ptr(), g.hw() as isize);
    }
    let n = (y1 - y0) * g.w;
    cols.resize(g.kdim() * n, 0.0);
    im2col(xb, g, y0, y1, cols);
    (cols.as_ptr(), n as isize)
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("conv: only f32 is supported on CPU"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("conv: non-contiguous input"),
    }
}

/// Raw pointer that may cross rayon threads: every tile writes a disjoint set of columns.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Taking `self` makes closures capture the whole (Send) wrapper, not the raw field.
    fn get(self) -> *mut f32 {
        self.0
    }
}

fn conv_forward(x: &[f32], wt: &[f32], g: &Geom) -> Vec<f32> {
    let (hw, kd) = (g.hw(), g.kdim());
    let mut out = vec![0f32; g.batch * g.cout * hw];
    let tiles: Vec<_> = (0..g.batch)
        .flat_map(|b| g.tiles().map(move |t| (b, t)))
        .collect();
    let dst = SendPtr(out.as_mut_ptr());
    tiles
        .into_par_iter()
        .for_each_init(Vec::new, |cols, (b, (y0, y1))| {
            let n = (y1 - y0) * g.w;
            let xb = &x[b * g.cin * hw..(b + 1) * g.cin * hw];
            let (rhs, rhs_rs) = tile_rhs(xb, g, y0, y1, cols);
            // SAFETY: dst covers out[b, :, y0·W .. y1·W] with row stride HW, disjoint per tile;
            // lhs is W [Cout, K] row-major, rhs is [K, n] with row stride rhs_rs.
            unsafe {
                gemm(
                    g.cout,
                    n,
                    kd,
                    dst.get().add(b * g.cout * hw + y0 * g.w),
                    1,
                    hw as isize,
                    false,
                    wt.as_ptr(),
                    1,
                    kd as isize,
                    rhs,
                    1,
                    rhs_rs,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        });
    out
}

/// dL/dW[Cout, K] = Σ_tiles grad[Cout, px] · cols[K, px]ᵀ.
fn conv_weight_grad(x: &[f32], grad: &[f32], g: &Geom) -> Vec<f32> {
    let (hw, kd) = (g.hw(), g.kdim());
    let tiles: Vec<_> = (0..g.batch)
        .flat_map(|b| g.tiles().map(move |t| (b, t)))
        .collect();
    tiles
        .into_par_iter()
        .fold(
            || (vec![0f32; g.cout * kd], Vec::new()),
            |(mut acc, mut cols), (b, (y0, y1))| {
                let n = (y1 - y0) * g.w;
                let xb = &x[b * g.cin * hw..(b + 1) * g.cin * hw];
                let (rhs, rhs_rs) = tile_rhs(xb, g, y0, y1, &mut cols);
                // SAFETY: acc is [Cout, K]; lhs = grad[b, :, tile] (row stride HW);
                // rhs = colsᵀ, i.e. [n, K] read with column stride rhs_rs.
                unsafe {
                    gemm(
                        g.cout,
                        kd,
                        n,
                        acc.as_mut_ptr(),
                        1,
                        kd as isize,
                        true,
                        grad[b * g.cout * hw + y0 * g.w..].as_ptr(),
                        1,
                        hw as isize,
                        rhs,
                        rhs_rs,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                (acc, cols)
            },
        )
        .map(|(acc, _)| acc)
        .reduce(
            || vec![0f32; g.cout * kd],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

struct ConvOp;

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
        let g = Geom::of(xl, wl)?;
        let out = conv_forward(contiguous(xs, xl)?, contiguous(ws, wl)?, &g);
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.cout, g.h, g.w)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let w_flipped = w
            .transpose(0, 1)?
            .contiguous()?
            .flip(&[2, 3])?
            .contiguous()?;
        let gx = grad.apply_op2_no_bwd(&w_flipped, &ConvOp)?;
        let gw = x
            .contiguous()?
            .apply_op2_no_bwd(&grad, &WeightGradOp { k: w.dim(2)? })?;
        Ok((Some(gx), Some(gw)))
    }
}

/// (x, grad) -> dL/dW for a k x k kernel.
struct WeightGradOp {
    k: usize,
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
        let (batch, cin, h, w) = xl.shape().dims4()?;
        let (gb, cout, gh, gw) = gl.shape().dims4()?;
        if (gb, gh, gw) != (batch, h, w) {
            candle_core::bail!("conv weight grad: {:?} vs {:?}", xl.shape(), gl.shape());
        }
        let g = Geom {
            batch,
            cin,
            cout,
            h,
            w,
            k: self.k,
        };
        let out = conv_weight_grad(contiguous(xs, xl)?, contiguous(gs, gl)?, &g);
        Ok((
            CpuStorage::F32(out),
            Shape::from((cout, cin, self.k, self.k)),
        ))
    }
}

/// Stride-1 conv with "same" padding (k/2) of x [B,Cin,H,W] by w [Cout,Cin,k,k], no bias.
/// CPU f32 tensors take the gemm path above; anything else candle's `conv2d`.
pub fn conv2d_same(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let k = w.dim(2)?;
    if x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && w.dtype() == candle_core::DType::F32
    {
        x.contiguous()?.apply_op2(&w.contiguous()?, ConvOp)
    } else {
        x.conv2d(w, k / 2, 1, 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::{max_diff, probe_grads, uniform};
    use candle_core::Var;

    /// Forward and both gradients against candle's own conv2d (the reference), for the kernel
    /// sizes and odd image sizes SHIP uses, with tiles that split the rows unevenly.
    #[test]
    fn matches_candle_conv_forward_and_gradients() {
        for (k, cin, cout, h, w) in [
            (3, 5, 7, 13, 600),
            (1, 6, 4, 9, 11),
            (3, 2, 3, 1, 5),
            (5, 3, 2, 8, 9),
        ] {
            let x = Var::from_tensor(&uniform(&[2, cin, h, w], 1, -1.0, 1.0)).unwrap();
            let wt = Var::from_tensor(&uniform(&[cout, cin, k, k], 2, -1.0, 1.0)).unwrap();
            let probe = uniform(&[2, cout, h, w], 3, -1.0, 1.0);
            let ours = conv2d_same(&x, &wt).unwrap();
            let theirs = x.conv2d(&wt, k / 2, 1, 1, 1).unwrap();
            // f32 sums of <= 75 products of values in [-1, 1].
            assert!(max_diff(&ours, &theirs) < 1e-4, "forward k={k}");
            let g1 = probe_grads(&ours, &probe);
            let g2 = probe_grads(&theirs, &probe);
            for v in [&x, &wt] {
                let (a, b) = (g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(max_diff(a, b) < 1e-3, "gradient k={k} shape {:?}", v.dims());
            }
        }
    }
}
