//! Direct stride-1 convolution with AVX2 + FMA: no im2col, each output row is accumulated in
//! registers straight from a zero-padded copy of the input rows it reads.
//!
//! The gemm path spends most of its time outside the multiply on SHIP's layers: with only 16
//! output channels the gemm's n = 16 panel runs far below the FMA peak, and the im2col it
//! streams is kh·kw times the input. Here a task (image, band of output rows) first copies its
//! input rows, zero padding included, into a per-thread scratch [Cin, rows + kh − 1, Wp]; then a
//! microkernel keeps a block of 6 output channels × 16 pixels in 12 ymm accumulators and, for
//! every input channel and tap, loads 2 input vectors and broadcasts 6 weights: 12 FMAs per 8
//! loads, no edge tests in the loop. The kernel is packed per call into the order the block
//! reads it (so the input gradient's transposed, flipped kernel costs no extra pass), and 3x3 /
//! 1x1 kernels get their tap loops unrolled. The weight gradient reduces 2 output channels ×
//! 6 im2col rows over the pixels of the band, again from the padded copy.
//!
//! Out = Σ_{ci, ky, kx} w[co, ci, ky, kx] · x[ci, y + ky − ph, x + kx − pw] (+ bias[co]), the
//! same formula as the gemm path ([`super::forward`], the reference of the tests); sums run in
//! a different order, ~1e-6 relative apart.

// Elsewhere only `available` (false) is reachable; the helpers stay for one shared layout.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use std::ops::Range;

use super::Geom;

/// Output pixels per task (whole rows, at least one): 8 rows of a 128-pixel image. The padded
/// input band of a 16-channel 3×3 task is then ~90 KiB (L2), and a batch of 8 still gives 128
/// tasks to balance over the threads.
const TILE_PX: usize = 1024;

/// Pixels per ymm register.
const LANES: usize = 8;

/// Whether this CPU runs the direct kernels (x86-64 with AVX2 and FMA), detected once.
pub(in crate::nets::conv_cpu) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A kernel read in place: tap t of (output channel o, input channel i) is
/// `w[base + o·so + i·si + t·st]`, t = ky·kw + kx.
#[derive(Clone, Copy)]
pub(super) struct Taps<'a> {
    w: &'a [f32],
    base: usize,
    so: isize,
    si: isize,
    st: isize,
}

impl<'a> Taps<'a> {
    /// The kernel [Cout, Cin, kh, kw] of `g` as it lies.
    pub(super) fn plain(w: &'a [f32], g: &Geom) -> Self {
        assert_eq!(w.len(), g.w_len(), "kernel size");
        Self {
            w,
            base: 0,
            so: g.kdim() as isize,
            si: g.taps() as isize,
            st: 1,
        }
    }

    /// The kernel of the stride-1 input gradient of `g` (for the geometry [`Geom::flipped`]):
    /// channels swapped and taps reversed, w'[ci, co, t] = w[co, ci, taps − 1 − t].
    pub(super) fn flipped(w: &'a [f32], g: &Geom) -> Self {
        assert_eq!(w.len(), g.w_len(), "kernel size");
        Self {
            w,
            base: g.taps() - 1,
            so: g.taps() as isize,
            si: g.kdim() as isize,
            st: -1,
        }
    }

    /// Tap t of (output channel o, input channel i).
    fn at(&self, o: usize, i: usize, t: usize) -> f32 {
        let k =
            self.base as isize + o as isize * self.so + i as isize * self.si + t as isize * self.st;
        self.w[k as usize]
    }
}

/// Output channels per register block (see `x86::block`).
const CO_BLOCK: usize = 6;

/// Copies the kernel `w` of `g` into `dst` [Cout·Cin·kh·kw] in the order the blocks read it:
/// per block of [`CO_BLOCK`] output channels (the last one smaller), [Cin, kh, kw, channels of
/// the block]. Every broadcast then reads the next float, at an offset known at compile time.
fn pack(w: Taps, g: &Geom, dst: &mut [f32]) {
    let (kd, taps) = (g.kdim(), g.taps());
    for co in (0..g.cout).step_by(CO_BLOCK) {
        let n = (g.cout - co).min(CO_BLOCK);
        let blk = &mut dst[co * kd..][..n * kd];
        for (k, out) in blk.chunks_exact_mut(n).enumerate() {
            let (i, t) = (k / taps, k % taps);
            for (j, o) in out.iter_mut().enumerate() {
                *o = w.at(co + j, i, t);
            }
        }
    }
}

thread_local! {
    /// The packed kernel of the call running on this thread, kept across calls.
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `w` packed by [`pack`], in this thread's buffer (or a fresh one if a call on
/// this thread already holds it, which only nested calls would).
fn with_packed<R>(w: Taps, g: &Geom, f: impl FnOnce(&[f32]) -> R) -> R {
    PACKED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.resize(g.w_len(), 0.0);
            pack(w, g, &mut buf);
            f(&buf)
        }
        Err(_) => {
            let mut buf = vec![0f32; g.w_len()];
            pack(w, g, &mut buf);
            f(&buf)
        }
    })
}

/// Columns of a padded scratch row: the output width rounded up to whole vectors, plus the
/// kw − 1 columns the last vector's taps read. Reads past the input are zeros of the padding.
fn padded_width(g: &Geom) -> usize {
    g.ow().next_multiple_of(LANES) + g.kw - 1
}

/// The output rows of each task of one image.
fn row_tiles(g: &Geom) -> impl Iterator<Item = Range<usize>> + use<> {
    let (oh, rows) = (g.oh(), (TILE_PX / g.ow()).max(1));
    (0..oh).step_by(rows).map(move |y| y..(y + rows).min(oh))
}

/// out [B, Cout, OH, OW] = conv(x, w) + bias for a stride-1 `g`, with the kernel read through
/// `w`. Callers check [`available`] first.
pub(super) fn conv(x: &[f32], w: Taps, bias: Option<&[f32]>, g: &Geom) -> Vec<f32> {
    assert!(
        available() && g.stride == 1,
        "direct conv: needs AVX2+FMA, stride 1"
    );
    assert_eq!(x.len(), g.in_len(), "input size");
    if let Some(b) = bias {
        assert_eq!(b.len(), g.cout, "bias size");
    }
    // Not zeroed: the blocks write every output element once (a memset would be one more
    // pass over the output).
    let mut out = Vec::<f32>::with_capacity(g.out_len());
    #[cfg(target_arch = "x86_64")]
    {
        use rayon::prelude::*;

        let tasks: Vec<_> = (0..g.batch)
            .flat_map(|b| row_tiles(g).map(move |r| (b, r)))
            .collect();
        let (ip, op) = (g.in_plane(), g.out_plane());
        let dst = super::SendPtr(out.as_mut_ptr());
        let wp = padded_width(g);
        with_packed(w, g, |packed| {
            tasks.into_par_iter().for_each(|(b, rows)| {
                let xb = &x[b * g.cin * ip..][..g.cin * ip];
                let band = rows.len() + g.kh - 1;
                super::with_scratch(g.cin * band * wp, |scratch| {
                    pad_band(xb, g, rows.start, band, wp, scratch);
                    let out = dst.at(b * g.cout * op);
                    // SAFETY: AVX2 and FMA are present (asserted above); the scratch holds the
                    // band as `pad_band` lays it out; `packed` is g's kernel packed; the output
                    // rows `rows` of image b belong to this task only.
                    unsafe { x86::band(scratch, wp, band, packed, bias, g, rows, out) }
                });
            });
        });
        // SAFETY: the tasks cover every (image, row) and `band` writes every channel and column
        // of its rows.
        unsafe { out.set_len(g.out_len()) };
    }
    out
}

/// (dL/dW [Cout, Cin·kh·kw], dL/dbias [Cout]) of a stride-1 `g` from the input `x` and dL/dout
/// `grad`: dW[co, ci, ky, kx] = Σ_{b, y, x} grad[b, co, y, x] · x[b, ci, y + ky − ph, x + kx − pw].
/// Each task pads its input band as [`conv`] does; the microkernel then reduces 4 output channels
/// × 3 kernel columns (12 ymm accumulators) over all pixels of the band. Callers check
/// [`available`] first.
pub(super) fn weight_grad(x: &[f32], grad: &[f32], g: &Geom) -> (Vec<f32>, Vec<f32>) {
    assert!(
        available() && g.stride == 1,
        "direct conv: needs AVX2+FMA, stride 1"
    );
    assert_eq!(x.len(), g.in_len(), "input size");
    assert_eq!(grad.len(), g.out_len(), "gradient size");
    #[cfg(target_arch = "x86_64")]
    {
        let tasks: Vec<_> = (0..g.batch)
            .flat_map(|b| row_tiles(g).map(move |r| (b, r)))
            .collect();
        let (ip, op, ow) = (g.in_plane(), g.out_plane(), g.ow());
        let wp = padded_width(g);
        super::ordered_sum(&tasks, g.w_len(), g.cout, |dw, db, (b, rows)| {
            let b = *b;
            let gb = &grad[b * g.cout * op..][..g.cout * op];
            for (s, plane) in db.iter_mut().zip(gb.chunks_exact(op)) {
                *s += sum(&plane[rows.start * ow..rows.end * ow]);
            }
            let xb = &x[b * g.cin * ip..][..g.cin * ip];
            let band = rows.len() + g.kh - 1;
            super::with_scratch(g.cin * band * wp, |scratch| {
                pad_band(xb, g, rows.start, band, wp, scratch);
                // SAFETY: AVX2 and FMA are present (asserted above); the scratch holds the
                // band as `pad_band` lays it out; `gb` is image b of the gradient.
                unsafe { x86::band_weight_grad(scratch, wp, band, gb, g, rows.clone(), dw) }
            });
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    (vec![0f32; g.w_len()], vec![0f32; g.cout])
}

/// Σ v, in 8 interleaved partial sums (vectorised, and more accurate than one running sum).
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        acc.iter_mut().zip(c).for_each(|(a, x)| *a += x);
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Copies input rows y0 − ph .. y0 − ph + band of image `xb` [Cin, H, W] into `scratch`
/// [Cin, band, wp], with zeros for the rows and columns outside the input (column c holds input
/// column c − pw).
fn pad_band(xb: &[f32], g: &Geom, y0: usize, band: usize, wp: usize, scratch: &mut [f32]) {
    for (ci, plane) in scratch.chunks_exact_mut(band * wp).enumerate() {
        let src = &xb[ci * g.in_plane()..][..g.in_plane()];
        for (r, row) in plane.chunks_exact_mut(wp).enumerate() {
            let iy = (y0 + r).checked_sub(g.ph).filter(|&iy| iy < g.h);
            let Some(iy) = iy else {
                row.fill(0.0);
                continue;
            };
            row[..g.pw].fill(0.0);
            row[g.pw..g.pw + g.w].copy_from_slice(&src[iy * g.w..][..g.w]);
            row[g.pw + g.w..].fill(0.0);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{CO_BLOCK, Geom, LANES};

    /// Where one register block reads and writes.
    #[derive(Clone, Copy)]
    struct Block {
        /// Scratch at (channel 0, band row of output row y, column x).
        src: *const f32,
        /// Scratch channel and row strides.
        src_cs: usize,
        src_rs: usize,
        /// The packed kernel of this block of output channels, [Cin, kh, kw, CO].
        w: *const f32,
        /// Output at (co, y, x), and its channel stride.
        out: *mut f32,
        out_cs: usize,
        /// Valid lanes of the last vector (1..=8).
        tail: usize,
    }

    impl Block {
        /// The same block moved to output column x.
        fn at(self, x: usize) -> Self {
            Self {
                // SAFETY: x < OW, inside the scratch row and the output row.
                src: unsafe { self.src.add(x) },
                out: unsafe { self.out.add(x) },
                ..self
            }
        }
    }

    /// All output channels of output rows `rows` of one image (`out` at its channel 0, row 0),
    /// from the padded band in `scratch` [Cin, band, wp] and the kernel packed by `pack`.
    ///
    /// # Safety
    /// AVX2 and FMA must be present; `scratch` must be the band of `rows` laid out by
    /// `pad_band`; `out` must be an image of g's output that nobody else writes in these rows.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn band(
        scratch: &[f32],
        wp: usize,
        band: usize,
        packed: &[f32],
        bias: Option<&[f32]>,
        g: &Geom,
        rows: Range<usize>,
        out: *mut f32,
    ) {
        assert!(scratch.len() >= g.cin * band * wp && packed.len() == g.w_len());
        // 3x3 and 1x1 (every SHIP layer but the 1x5 / 5x1 ones) with the tap loops unrolled.
        match (g.kh, g.kw) {
            (3, 3) => unsafe { band_k::<3>(scratch, wp, band, packed, bias, g, rows, out) },
            (1, 1) => unsafe { band_k::<1>(scratch, wp, band, packed, bias, g, rows, out) },
            _ => unsafe { band_k::<0>(scratch, wp, band, packed, bias, g, rows, out) },
        }
    }

    /// [`band`] for a K x K kernel (K = 0: any kh x kw, read from `g`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn band_k<const K: usize>(
        scratch: &[f32],
        wp: usize,
        band: usize,
        packed: &[f32],
        bias: Option<&[f32]>,
        g: &Geom,
        rows: Range<usize>,
        out: *mut f32,
    ) {
        let (ow, op, kd) = (g.ow(), g.out_plane(), g.kdim());
        for (t, y) in rows.enumerate() {
            let mut co = 0;
            while co < g.cout {
                let n = (g.cout - co).min(CO_BLOCK);
                // SAFETY: in range by the caller's contract: co + n <= Cout, t < rows.
                let blk = unsafe {
                    Block {
                        src: scratch.as_ptr().add(t * wp),
                        src_cs: band * wp,
                        src_rs: wp,
                        w: packed.as_ptr().add(co * kd),
                        out: out.add(co * op + y * ow),
                        out_cs: op,
                        tail: LANES,
                    }
                };
                let b = bias.map(|b| &b[co..co + n]);
                // SAFETY: forwarded.
                unsafe {
                    match n {
                        6 => row::<6, K>(blk, b, g),
                        5 => row::<5, K>(blk, b, g),
                        4 => row::<4, K>(blk, b, g),
                        3 => row::<3, K>(blk, b, g),
                        2 => row::<2, K>(blk, b, g),
                        _ => row::<1, K>(blk, b, g),
                    }
                }
                co += n;
            }
        }
    }

    /// One output row of CO channels: blocks of 16 pixels, then one of 8 or 16 for the rest (its
    /// last vector masked when OW is not a multiple of 8).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn row<const CO: usize, const K: usize>(blk: Block, bias: Option<&[f32]>, g: &Geom) {
        let ow = g.ow();
        let mut x = 0;
        // SAFETY (all blocks): x + 8·NV <= OW rounded up to 8, inside the scratch row and, with
        // the mask, inside the output row.
        while ow - x >= 2 * LANES {
            unsafe { block::<CO, 2, K>(blk.at(x), bias, g) };
            x += 2 * LANES;
        }
        let rem = ow - x;
        let blk = Block {
            tail: (rem + LANES - 1) % LANES + 1,
            ..blk.at(x)
        };
        match rem.div_ceil(LANES) {
            0 => {}
            1 => unsafe { block::<CO, 1, K>(blk, bias, g) },
            _ => unsafe { block::<CO, 2, K>(blk, bias, g) },
        }
    }

    /// CO output channels × NV vectors of pixels, kept in CO·NV ymm accumulators over every
    /// input channel and tap. With CO·NV = 6·2 the loop needs 12 accumulators, 2 input vectors
    /// and 1 broadcast weight: 15 of the 16 ymm registers (4 × 3 measured ~30% slower: with
    /// its 3 input vectors LLVM spills an accumulator).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn block<const CO: usize, const NV: usize, const K: usize>(
        b: Block,
        bias: Option<&[f32]>,
        g: &Geom,
    ) {
        let (kh, kw) = if K > 0 { (K, K) } else { (g.kh, g.kw) };
        // SAFETY: every pointer below stays inside the scratch, packed kernel and output
        // regions the caller of `band` vouched for.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NV]; CO];
            if let Some(bias) = bias {
                for (a, &v) in acc.iter_mut().zip(bias) {
                    *a = [_mm256_set1_ps(v); NV];
                }
            }
            let mut w = b.w;
            for i in 0..g.cin {
                let src = b.src.add(i * b.src_cs);
                for ky in 0..kh {
                    let src = src.add(ky * b.src_rs);
                    for kx in 0..kw {
                        let xs: [__m256; NV] =
                            std::array::from_fn(|v| _mm256_loadu_ps(src.add(kx + v * LANES)));
                        for (j, a) in acc.iter_mut().enumerate() {
                            let wj = _mm256_broadcast_ss(&*w.add(j));
                            for (a, x) in a.iter_mut().zip(&xs) {
                                *a = _mm256_fmadd_ps(*x, wj, *a);
                            }
                        }
                        w = w.add(CO);
                    }
                }
            }
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(b.tail as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            for (j, a) in acc.iter().enumerate() {
                let out = b.out.add(j * b.out_cs);
                for (v, a) in a.iter().enumerate() {
                    let p = out.add(v * LANES);
                    if v + 1 < NV || b.tail == LANES {
                        _mm256_storeu_ps(p, *a);
                    } else {
                        _mm256_maskstore_ps(p, mask, *a);
                    }
                }
            }
        }
    }

    /// Adds dW [Cout, K] of the output rows `rows` of one image into `dw`, from the padded band
    /// in `scratch` [Cin, band, wp] and the gradient image `grad` [Cout, OH, OW].
    ///
    /// # Safety
    /// AVX2 and FMA must be present; `scratch` must be the band of `rows` laid out by
    /// `pad_band`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn band_weight_grad(
        scratch: &[f32],
        wp: usize,
        band: usize,
        grad: &[f32],
        g: &Geom,
        rows: Range<usize>,
        dw: &mut [f32],
    ) {
        let (ow, op, kd, taps) = (g.ow(), g.out_plane(), g.kdim(), g.taps());
        assert!(grad.len() == g.cout * op && dw.len() == g.cout * kd);
        // Scratch offset of the first pixel that im2col row k reads.
        let off = |k: usize| {
            let (ci, t) = (k / taps, k % taps);
            ci * band * wp + t / g.kw * wp + t % g.kw
        };
        let wb = WgradBand {
            src: scratch.as_ptr(),
            src_rs: wp,
            grad: grad[rows.start * ow..].as_ptr(),
            grad_cs: op,
            ow,
            rows: rows.len(),
        };
        let mut co = 0;
        while co < g.cout {
            let n = (g.cout - co).min(2);
            let gwb = WgradBand {
                // SAFETY: channel co of the gradient image.
                grad: unsafe { wb.grad.add(co * op) },
                ..wb
            };
            let mut k = 0;
            while k < kd {
                let m = (kd - k).min(6);
                let dst = &mut dw[co * kd + k..];
                // SAFETY: the offsets of im2col rows k..k + m lie in the band; the gradient has
                // channels co..co + n.
                unsafe {
                    match (n, m) {
                        (2, 6) => wgrad::<2, 6>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (2, 5) => wgrad::<2, 5>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (2, 4) => wgrad::<2, 4>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (2, 3) => wgrad::<2, 3>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (2, 2) => wgrad::<2, 2>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (2, _) => wgrad::<2, 1>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (_, 6) => wgrad::<1, 6>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (_, 5) => wgrad::<1, 5>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (_, 4) => wgrad::<1, 4>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (_, 3) => wgrad::<1, 3>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        (_, 2) => wgrad::<1, 2>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                        _ => wgrad::<1, 1>(gwb, std::array::from_fn(|i| off(k + i)), dst, kd),
                    }
                }
                k += m;
            }
            co += n;
        }
    }

    /// The pixels one weight-gradient block reduces over.
    #[derive(Clone, Copy)]
    struct WgradBand {
        /// Scratch at channel 0, band row 0, column 0, and its row stride.
        src: *const f32,
        src_rs: usize,
        /// Gradient at (first channel of the block, first output row), and its channel stride.
        grad: *const f32,
        grad_cs: usize,
        ow: usize,
        rows: usize,
    }

    /// dw[j·kd + k] += Σ_pixels grad[j] · im2col row `offs[k]`, for CO gradient channels × NK
    /// im2col rows, in CO·NK ymm accumulators.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn wgrad<const CO: usize, const NK: usize>(
        b: WgradBand,
        offs: [usize; NK],
        dw: &mut [f32],
        kd: usize,
    ) {
        // SAFETY: every load stays inside the band (x + 8 <= OW rounded up to 8, plus the tap
        // offset) and the gradient rows of the block; the tail's gradient loads are masked.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NK]; CO];
            let rem = b.ow % LANES;
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(rem as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            for r in 0..b.rows {
                let src = b.src.add(r * b.src_rs);
                let grad = b.grad.add(r * b.ow);
                // One input vector live at a time: 12 accumulators + 2 gradients + 1 input.
                let step = |acc: &mut [[__m256; NK]; CO], gs: [__m256; CO], x: usize| {
                    for (k, &off) in offs.iter().enumerate() {
                        let xv = _mm256_loadu_ps(src.add(off + x));
                        for (a, gv) in acc.iter_mut().zip(&gs) {
                            a[k] = _mm256_fmadd_ps(*gv, xv, a[k]);
                        }
                    }
                };
                let mut x = 0;
                while x + LANES <= b.ow {
                    let gs = std::array::from_fn(|j| _mm256_loadu_ps(grad.add(j * b.grad_cs + x)));
                    step(&mut acc, gs, x);
                    x += LANES;
                }
                if rem != 0 {
                    // Masked-off lanes load 0, so the band's columns past OW add nothing.
                    let gs = std::array::from_fn(|j| {
                        _mm256_maskload_ps(grad.add(j * b.grad_cs + x), mask)
                    });
                    step(&mut acc, gs, x);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                for (k, a) in a.iter().enumerate() {
                    dw[j * kd + k] += hsum(*a);
                }
            }
        }
    }

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}
