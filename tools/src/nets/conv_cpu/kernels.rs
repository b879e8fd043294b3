//! The convolution kernels over plain f32 slices (NCHW, contiguous): geometry, im2col / col2im of
//! one tile of output rows, and the three products as `gemm` calls, tiles in parallel with rayon.
//!
//! With K = Cin·kh·kw and `cols` the im2col of a tile [K, px]:
//! forward `out[Cout, px] = W[Cout, K] · cols (+ bias)`; weight gradient
//! `dW[Cout, K] = Σ_tiles grad[Cout, px] · colsᵀ`, bias gradient `Σ grad`; input gradient either
//! the stride-1 convolution of `grad` by the transposed, flipped kernel, or (any stride)
//! `col2im(Wᵀ · grad)`. im2col scratch lives in one buffer per thread, reused across calls, so a
//! call allocates only its output.

use std::cell::RefCell;
use std::ops::Range;

use crate::nets::SendPtr;
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

mod direct;

/// Output pixels per tile (whole output rows, at least one): a 3x3 16-channel im2col tile is then
/// ~150 KiB, which stays in L2 between the im2col and the gemm that streams it (measured on the
/// probe layer: 128-256 px beat 1024-2048 px by ~15%).
const TILE_PX: usize = 256;

/// Geometry of one 2-D convolution: NCHW input, [Cout, Cin, kh, kw] kernel, zero padding (ph, pw)
/// on both sides, one stride for both axes, dilation 1, groups 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    pub batch: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ph: usize,
    pub pw: usize,
    pub stride: usize,
}

impl Geom {
    /// Checks the sizes fit: a non-empty kernel no bigger than the padded input, padding below
    /// the kernel size (so every output sees at least one input pixel), stride >= 1.
    pub fn checked(self) -> Result<Self, String> {
        let ok = self.kh > 0
            && self.kw > 0
            && self.stride > 0
            && self.ph < self.kh
            && self.pw < self.kw
            && self.h + 2 * self.ph >= self.kh
            && self.w + 2 * self.pw >= self.kw;
        if ok {
            Ok(self)
        } else {
            Err(format!("conv: unsupported geometry {self:?}"))
        }
    }
    pub fn oh(&self) -> usize {
        (self.h + 2 * self.ph - self.kh) / self.stride + 1
    }
    pub fn ow(&self) -> usize {
        (self.w + 2 * self.pw - self.kw) / self.stride + 1
    }
    /// Rows of the im2col matrix, Cin·kh·kw.
    pub fn kdim(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    fn taps(&self) -> usize {
        self.kh * self.kw
    }
    fn in_plane(&self) -> usize {
        self.h * self.w
    }
    fn out_plane(&self) -> usize {
        self.oh() * self.ow()
    }
    /// Elements of the input, output and kernel.
    pub fn in_len(&self) -> usize {
        self.batch * self.cin * self.in_plane()
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.cout * self.out_plane()
    }
    pub fn w_len(&self) -> usize {
        self.cout * self.kdim()
    }
    /// A 1x1, stride-1, unpadded conv reads its gemm operand straight from the input.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.ph == 0 && self.pw == 0
    }
    /// The output rows of each tile of one image.
    fn row_tiles(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let (oh, rows) = (self.oh(), (TILE_PX / self.ow()).max(1));
        (0..oh).step_by(rows).map(move |y| y..(y + rows).min(oh))
    }
    /// (image, output rows) of every tile.
    fn tiles(&self) -> Vec<(usize, Range<usize>)> {
        (0..self.batch)
            .flat_map(|b| self.row_tiles().map(move |r| (b, r)))
            .collect()
    }
    /// For stride 1: the input gradient is this convolution of `grad` by [`flip_kernel`].
    fn flipped(&self) -> Self {
        Self {
            cin: self.cout,
            cout: self.cin,
            h: self.oh(),
            w: self.ow(),
            ph: self.kh - 1 - self.ph,
            pw: self.kw - 1 - self.pw,
            ..*self
        }
    }
    /// Input row of output row `oy` at kernel row `dy`, and the output columns [lo, hi) whose
    /// kernel column `dx` lands inside the input (the rest read padding).
    fn tap_span(&self, oy: usize, dy: usize, dx: usize) -> Option<(usize, Range<usize>)> {
        let iy = (oy * self.stride + dy).checked_sub(self.ph)?;
        if iy >= self.h {
            return None;
        }
        let s = self.stride;
        let ow = self.ow();
        let lo = self.pw.saturating_sub(dx).div_ceil(s).min(ow);
        let hi = (self.w + self.pw)
            .saturating_sub(dx)
            .div_ceil(s)
            .clamp(lo, ow);
        Some((iy, lo..hi))
    }
    /// Input column of output column `ox` at kernel column `dx` (inside the span).
    fn ix(&self, ox: usize, dx: usize) -> usize {
        ox * self.stride + dx - self.pw
    }
}

/// [Cout, Cin, kh, kw] -> [Cin, Cout, kh, kw] rotated by 180°: the kernel of the stride-1 input
/// gradient.
fn flip_kernel(w: &[f32], g: &Geom) -> Vec<f32> {
    let (taps, mut out) = (g.taps(), vec![0f32; w.len()]);
    for co in 0..g.cout {
        for ci in 0..g.cin {
            let src = &w[(co * g.cin + ci) * taps..][..taps];
            let dst = &mut out[(ci * g.cout + co) * taps..][..taps];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, s)| *d = *s);
        }
    }
    out
}

/// Row stride of a scratch matrix with `n` columns: off a multiple of 4 KiB, so that the gemm's
/// reads down a column do not all land in the same cache set (a 1024-pixel tile would).
fn leading_dim(n: usize) -> usize {
    n + 16
}

/// im2col of output rows `rows` of one image `x` [Cin, H, W] into `cols` [Cin·kh·kw, px]
/// (row stride [`leading_dim`]).
fn im2col(x: &[f32], g: &Geom, rows: Range<usize>, cols: &mut [f32]) {
    let (ow, n) = (g.ow(), leading_dim(rows.len() * g.ow()));
    for ci in 0..g.cin {
        let plane = &x[ci * g.in_plane()..][..g.in_plane()];
        for (tap, (dy, dx)) in taps(g).enumerate() {
            let row = &mut cols[(ci * g.taps() + tap) * n..][..rows.len() * ow];
            for (t, oy) in rows.clone().enumerate() {
                let out = &mut row[t * ow..][..ow];
                let Some((iy, span)) = g.tap_span(oy, dy, dx) else {
                    out.fill(0.0);
                    continue;
                };
                let src = &plane[iy * g.w..][..g.w];
                out[..span.start].fill(0.0);
                out[span.end..].fill(0.0);
                if g.stride == 1 {
                    let s0 = g.ix(span.start, dx);
                    out[span.clone()].copy_from_slice(&src[s0..s0 + span.len()]);
                } else {
                    for ox in span {
                        out[ox] = src[g.ix(ox, dx)];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`] for channels `chans`: adds `cols` [chans·kh·kw, px] (row stride
/// [`leading_dim`]) into `dx` [chans, H, W].
fn col2im(cols: &[f32], g: &Geom, chans: usize, rows: Range<usize>, dx_planes: &mut [f32]) {
    let (ow, n) = (g.ow(), leading_dim(rows.len() * g.ow()));
    for ci in 0..chans {
        let plane = &mut dx_planes[ci * g.in_plane()..][..g.in_plane()];
        for (tap, (dy, kx)) in taps(g).enumerate() {
            let row = &cols[(ci * g.taps() + tap) * n..][..rows.len() * ow];
            for (t, oy) in rows.clone().enumerate() {
                let Some((iy, span)) = g.tap_span(oy, dy, kx) else {
                    continue;
                };
                let dst = &mut plane[iy * g.w..][..g.w];
                for ox in span {
                    dst[g.ix(ox, kx)] += row[t * ow + ox];
                }
            }
        }
    }
}

/// Kernel taps (dy, dx) in row-major order, the order of the im2col rows.
fn taps(g: &Geom) -> impl Iterator<Item = (usize, usize)> + use<> {
    let kw = g.kw;
    (0..g.kh * kw).map(move |t| (t / kw, t % kw))
}

/// A strided read-only matrix view for [`matmul`].
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Mat {
    fn rows(ptr: *const f32, rs: usize) -> Self {
        Self {
            ptr,
            rs: rs as isize,
            cs: 1,
        }
    }
    fn t(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// dst[m, n] (row stride `dst_rs`, unit column stride) = lhs[m, k] · rhs[k, n], plus dst's
/// previous value when `accumulate`. Single-threaded: the callers parallelise over tiles.
///
/// # Safety
/// Every view must cover its m/n/k extent and `dst` must not be written by anyone else meanwhile.
unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

thread_local! {
    /// Per-thread im2col / col2im scratch, grown as needed and kept across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer, resized to `len` (contents unspecified).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < len {
            s.resize(len, 0.0);
        }
        f(&mut s[..len])
    })
}

/// Runs `f` on the gemm right-hand side [K, px] of a tile of image `xb`: the input itself for a
/// pointwise conv, else its im2col in the thread's scratch.
fn with_cols<R>(xb: &[f32], g: &Geom, rows: Range<usize>, f: impl FnOnce(Mat) -> R) -> R {
    if g.pointwise() {
        return f(Mat::rows(xb[rows.start * g.w..].as_ptr(), g.in_plane()));
    }
    let ld = leading_dim(rows.len() * g.ow());
    with_scratch(g.kdim() * ld, |cols| {
        im2col(xb, g, rows, cols);
        f(Mat::rows(cols.as_ptr(), ld))
    })
}

/// Which kernel computes a convolution product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// Stride 1 on x86-64 with AVX2 + FMA: the register-blocked direct kernel (`direct.rs`).
    Direct,
    /// Any geometry, any CPU: im2col tiles and `gemm`.
    Gemm,
}

impl ConvPath {
    /// [`ConvPath::Direct`] where the CPU and `g` allow it, else [`ConvPath::Gemm`]. Setting
    /// `SHIP_TOOLS_CONV=gemm` forces the gemm path (to compare, or to rule the kernel out).
    pub fn best(g: &Geom) -> Self {
        if g.stride == 1 && direct_enabled() {
            Self::Direct
        } else {
            Self::Gemm
        }
    }
}

/// Whether stride-1 products run the direct kernel on this machine: the CPU has it and
/// `SHIP_TOOLS_CONV=gemm` does not turn it off. Read once.
pub fn direct_enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        direct::available() && std::env::var("SHIP_TOOLS_CONV").as_deref() != Ok("gemm")
    })
}

/// Whether this CPU has the direct kernels at all (whatever `SHIP_TOOLS_CONV` says).
#[cfg(test)]
pub fn direct_available() -> bool {
    direct::available()
}

/// Forward: out [B, Cout, OH, OW] = conv(x, w) + bias, on the [`ConvPath::best`] kernel.
pub fn forward(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    forward_with(x, w, bias, g, ConvPath::best(g))
}

/// [`forward`] on a chosen kernel ([`ConvPath::Direct`] needs stride 1 and AVX2 + FMA).
pub fn forward_with(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    path: ConvPath,
) -> Vec<f32> {
    match path {
        ConvPath::Direct => direct::conv(x, direct::Taps::plain(w, g), bias, g),
        ConvPath::Gemm => forward_gemm(x, w, bias, g),
    }
}

fn forward_gemm(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    let (op, ow, ip) = (g.out_plane(), g.ow(), g.in_plane());
    let mut out = vec![0f32; g.out_len()];
    let dst = SendPtr(out.as_mut_ptr());
    g.tiles().into_par_iter().for_each(|(b, rows)| {
        let n = rows.len() * ow;
        let d = dst.at(b * g.cout * op + rows.start * ow);
        if let Some(bias) = bias {
            for (co, &v) in bias.iter().enumerate() {
                // SAFETY: row co of this tile: n elements inside out[b, co], this task's only.
                unsafe { std::slice::from_raw_parts_mut(d.add(co * op), n) }.fill(v);
            }
        }
        let xb = &x[b * g.cin * ip..][..g.cin * ip];
        with_cols(xb, g, rows, |cols| {
            // SAFETY: dst rows are this tile's columns of out[b] (row stride OH·OW); w is
            // [Cout, K] row-major; cols covers [K, n].
            unsafe {
                matmul(
                    (g.cout, n, g.kdim()),
                    d,
                    op,
                    bias.is_some(),
                    Mat::rows(w.as_ptr(), g.kdim()),
                    cols,
                )
            }
        });
    });
    out
}

/// How the input gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputGradPath {
    /// Stride 1, AVX2 + FMA: the direct kernel on `grad`, reading the kernel flipped in place.
    DirectFlipped,
    /// Stride 1 only: the gemm forward kernel on `grad` with the flipped kernel.
    FlippedConv,
    /// Any stride: `col2im(Wᵀ · grad)`.
    Col2im,
}

impl InputGradPath {
    /// The faster path that supports `g` (measured on the SHIP layer sizes: the flipped conv
    /// writes each input-gradient pixel once, col2im adds into it kh·kw times).
    pub fn best(g: &Geom) -> Self {
        if ConvPath::best(g) == ConvPath::Direct {
            Self::DirectFlipped
        } else if g.stride == 1 {
            Self::FlippedConv
        } else {
            Self::Col2im
        }
    }
}

/// dL/dx [B, Cin, H, W] from dL/dout [B, Cout, OH, OW].
pub fn input_grad(grad: &[f32], w: &[f32], g: &Geom, path: InputGradPath) -> Vec<f32> {
    match path {
        InputGradPath::DirectFlipped => {
            direct::conv(grad, direct::Taps::flipped(w, g), None, &g.flipped())
        }
        InputGradPath::FlippedConv => {
            assert_eq!(
                g.stride, 1,
                "the flipped-kernel input gradient needs stride 1"
            );
            forward_gemm(grad, &flip_kernel(w, g), None, &g.flipped())
        }
        InputGradPath::Col2im => input_grad_col2im(grad, w, g),
    }
}

fn input_grad_col2im(grad: &[f32], w: &[f32], g: &Geom) -> Vec<f32> {
    let (ip, op, ow, taps) = (g.in_plane(), g.out_plane(), g.ow(), g.taps());
    let mut dx = vec![0f32; g.in_len()];
    // Tasks own whole input-gradient planes (image, channel group): col2im adds into
    // overlapping rows, so splitting by channel keeps writes disjoint without locks.
    let group = 64usize.div_ceil(taps).min(g.cin);
    let tasks: Vec<_> = (0..g.batch)
        .flat_map(|b| {
            (0..g.cin)
                .step_by(group)
                .map(move |c| (b, c..(c + group).min(g.cin)))
        })
        .collect();
    let dst = SendPtr(dx.as_mut_ptr());
    tasks.into_par_iter().for_each(|(b, chans)| {
        // SAFETY: planes dx[b, chans] belong to this task only.
        let planes = unsafe {
            std::slice::from_raw_parts_mut(dst.at((b * g.cin + chans.start) * ip), chans.len() * ip)
        };
        let gb = &grad[b * g.cout * op..][..g.cout * op];
        for rows in g.row_tiles() {
            let (m, n) = (chans.len() * taps, rows.len() * ow);
            let ld = leading_dim(n);
            with_scratch(m * ld, |cols| {
                // SAFETY: cols is [m, n] (row stride ld); lhs = Wᵀ rows of these channels,
                // [m, Cout] read from W [Cout, K] with strides (1, K); rhs = grad[b] tile [Cout, n].
                unsafe {
                    matmul(
                        (m, n, g.cout),
                        cols.as_mut_ptr(),
                        ld,
                        false,
                        Mat::rows(w[chans.start * taps..].as_ptr(), g.kdim()).t(),
                        Mat::rows(gb[rows.start * ow..].as_ptr(), op),
                    )
                }
                col2im(cols, g, chans.len(), rows, planes);
            });
        }
    });
    dx
}

/// (dL/dW [Cout, K], dL/dbias [Cout]) from the input and dL/dout, on the
/// [`ConvPath::best`] kernel.
pub fn weight_grad(x: &[f32], grad: &[f32], g: &Geom) -> (Vec<f32>, Vec<f32>) {
    weight_grad_with(x, grad, g, ConvPath::best(g))
}

/// [`weight_grad`] on a chosen kernel ([`ConvPath::Direct`] needs stride 1 and AVX2 + FMA).
pub fn weight_grad_with(x: &[f32], grad: &[f32], g: &Geom, path: ConvPath) -> (Vec<f32>, Vec<f32>) {
    match path {
        ConvPath::Direct => direct::weight_grad(x, grad, g),
        ConvPath::Gemm => weight_grad_gemm(x, grad, g),
    }
}

/// Groups of tasks whose partial weight gradients are summed in a fixed order.
const REDUCE_GROUPS: usize = 32;

/// Σ over `tasks` of what `add(a, b, task)` accumulates into two zeroed buffers of `len_a` and
/// `len_b` floats: fixed groups of consecutive tasks in parallel, each group in task order, the
/// groups' sums added in group order. A rayon fold/reduce adds partial sums in whatever order
/// work-stealing produced them, which made two identical training runs differ by ~2e-4 after
/// three steps; this order depends on nothing but the shapes, so runs are reproducible at any
/// thread count.
pub(super) fn ordered_sum<T: Sync>(
    tasks: &[T],
    len_a: usize,
    len_b: usize,
    add: impl Fn(&mut [f32], &mut [f32], &T) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let per_group = tasks.len().div_ceil(REDUCE_GROUPS).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .par_chunks(per_group)
        .map(|group| {
            let (mut a, mut b) = (vec![0f32; len_a], vec![0f32; len_b]);
            for t in group {
                add(&mut a, &mut b, t);
            }
            (a, b)
        })
        .collect();
    let mut partials = partials.into_iter();
    let first = partials
        .next()
        .unwrap_or_else(|| (vec![0f32; len_a], vec![0f32; len_b]));
    partials.fold(first, |(mut a, mut b), (pa, pb)| {
        a.iter_mut().zip(&pa).for_each(|(s, v)| *s += v);
        b.iter_mut().zip(&pb).for_each(|(s, v)| *s += v);
        (a, b)
    })
}

fn weight_grad_gemm(x: &[f32], grad: &[f32], g: &Geom) -> (Vec<f32>, Vec<f32>) {
    let (ip, op, ow, kd) = (g.in_plane(), g.out_plane(), g.ow(), g.kdim());
    // Accumulated transposed, dWᵀ [K, Cout]: gemm then reads the big operand (the im2col) as
    // it lies and packs only the small gradient tile. Accumulating dW [Cout, K] directly made it
    // transpose-pack every im2col tile, a strided scalar gather that cost more than the products.
    let tiles = g.tiles();
    let (dwt, db) = ordered_sum(&tiles, g.w_len(), g.cout, |dwt, db, (b, rows)| {
        let (b, n) = (*b, rows.len() * ow);
        let gt = &grad[b * g.cout * op + rows.start * ow..];
        for (co, s) in db.iter_mut().enumerate() {
            *s += gt[co * op..][..n].iter().sum::<f32>();
        }
        let xb = &x[b * g.cin * ip..][..g.cin * ip];
        with_cols(xb, g, rows.clone(), |cols| {
            // SAFETY: dwt is [K, Cout]; lhs = cols [K, n]; rhs = grad tileᵀ [n, Cout]
            // (the tile has row stride OH·OW).
            unsafe {
                matmul(
                    (kd, g.cout, n),
                    dwt.as_mut_ptr(),
                    g.cout,
                    true,
                    cols,
                    Mat::rows(gt.as_ptr(), op).t(),
                )
            }
        });
    });
    let mut dw = vec![0f32; g.w_len()];
    for (k, row) in dwt.chunks_exact(g.cout).enumerate() {
        for (co, v) in row.iter().enumerate() {
            dw[co * kd + k] = *v;
        }
    }
    (dw, db)
}
