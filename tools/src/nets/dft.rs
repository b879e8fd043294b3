//! The order-1 global interaction, irfft2(rfft2(v) * rfft2(r)) per channel, written as matmuls
//! with cos/sin matrices: candle has no FFT, and the matmul form is differentiable.
//!
//! With C_jk = cos(2πjk/N) and S_jk = sin(2πjk/N) (symmetric), the forward DFT of a channel x is
//! Re = C_H x C_W − S_H x S_W and Im = −(S_H x C_W + C_H x S_W); the real inverse of a spectrum P is
//! (1/HW)(C_H P_re C_W − S_H P_im C_W − S_H P_re S_W − C_H P_im S_W). The result is the 2-D circular
//! convolution of v and r within each channel (PyTorch's default normalisation).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use candle_core::{Device, Result, Tensor};

type Mats = (Tensor, Tensor);

/// cos/sin matrices of size n on `dev`, built once per (n, device) and shared.
fn dft_mats(n: usize, dev: &Device) -> Result<Mats> {
    static CACHE: OnceLock<Mutex<HashMap<(usize, String), Mats>>> = OnceLock::new();
    let key = (n, format!("{:?}", dev.location()));
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.lock().expect("dft cache poisoned").get(&key) {
        return Ok(m.clone());
    }
    let (mut c, mut s) = (Vec::with_capacity(n * n), Vec::with_capacity(n * n));
    for j in 0..n {
        for k in 0..n {
            // Reduce jk mod n first: keeps the angle small and the f64 -> f32 values exact-ish.
            let a = 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
            c.push(a.cos() as f32);
            s.push(a.sin() as f32);
        }
    }
    let m = (
        Tensor::from_vec(c, (n, n), dev)?,
        Tensor::from_vec(s, (n, n), dev)?,
    );
    cache
        .lock()
        .expect("dft cache poisoned")
        .insert(key, m.clone());
    Ok(m)
}

/// x [n, a, b] @ m [b, b] -> [n, a, b].
fn right(x: &Tensor, m: &Tensor) -> Result<Tensor> {
    let (n, a, b) = x.dims3()?;
    x.reshape((n * a, b))?.matmul(m)?.reshape((n, a, b))
}

/// [n, a, b] -> [n, b, a], contiguous.
fn t(x: &Tensor) -> Result<Tensor> {
    x.transpose(1, 2)?.contiguous()
}

/// Spectrum of x [n, H, W], returned transposed as ([n, W, H] re, [n, W, H] im).
fn forward_dft(x: &Tensor, cw: &Tensor, sw: &Tensor, ch: &Tensor, sh: &Tensor) -> Result<Mats> {
    let a = t(&right(x, cw)?)?;
    let b = t(&right(x, sw)?)?;
    let re = (right(&a, ch)? - right(&b, sh)?)?;
    let im = (right(&a, sh)? + right(&b, ch)?)?.neg()?;
    Ok((re, im))
}

/// Per-channel 2-D circular convolution of two NCHW tensors of the same shape: real FFTs on the
/// CPU ([`super::fft_cpu`]), the matmul DFT elsewhere (CUDA).
pub fn circular_conv(v: &Tensor, r: &Tensor) -> Result<Tensor> {
    if v.device().is_cpu() && v.dtype() == candle_core::DType::F32 {
        super::fft_cpu::circular_conv(v, r)
    } else {
        circular_conv_matmul(v, r)
    }
}

/// The matmul-DFT form of [`circular_conv`]: differentiable on any device.
pub fn circular_conv_matmul(v: &Tensor, r: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = v.dims4()?;
    if r.dims4()? != (b, c, h, w) {
        candle_core::bail!(
            "circular_conv: shapes differ, {:?} vs {:?}",
            v.dims(),
            r.dims()
        );
    }
    let dev = v.device();
    let (ch, sh) = dft_mats(h, dev)?;
    let (cw, sw) = dft_mats(w, dev)?;
    let v = v.reshape((b * c, h, w))?;
    let r = r.reshape((b * c, h, w))?;
    let (vr, vi) = forward_dft(&v, &cw, &sw, &ch, &sh)?;
    let (rr, ri) = forward_dft(&r, &cw, &sw, &ch, &sh)?;
    let pr = ((&vr * &rr)? - (&vi * &ri)?)?;
    let pi = ((&vr * &ri)? + (&vi * &rr)?)?;
    // Inverse along H (still transposed), then along W; keep the real part only.
    let u = t(&(right(&pr, &ch)? - right(&pi, &sh)?)?)?;
    let z = t(&(right(&pr, &sh)? + right(&pi, &ch)?)?)?;
    let out = ((right(&u, &cw)? - right(&z, &sw)?)? / (h * w) as f64)?;
    out.reshape((b, c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct O((HW)^2) circular convolution, the definition.
    fn naive(v: &[f32], r: &[f32], h: usize, w: usize) -> Vec<f32> {
        let mut out = vec![0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0f64;
                for i in 0..h {
                    for j in 0..w {
                        let (yy, xx) = ((y + h - i) % h, (x + w - j) % w);
                        acc += v[i * w + j] as f64 * r[yy * w + xx] as f64;
                    }
                }
                out[y * w + x] = acc as f32;
            }
        }
        out
    }

    #[test]
    fn matches_direct_circular_convolution_on_odd_sizes() -> Result<()> {
        let (h, w) = (7, 10);
        let v: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let r: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 53 % 19) as f32 - 9.0) / 5.0)
            .collect();
        let vt = Tensor::from_vec(v.clone(), (1, 2, h, w), &Device::Cpu)?;
        let rt = Tensor::from_vec(r.clone(), (1, 2, h, w), &Device::Cpu)?;
        let got = circular_conv_matmul(&vt, &rt)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for ch in 0..2 {
            let s = ch * h * w..(ch + 1) * h * w;
            let want = naive(&v[s.clone()], &r[s.clone()], h, w);
            for (a, b) in got[s].iter().zip(&want) {
                // f32 matmul rounding on values up to ~30: 1e-4 absolute is ~3e-6 relative.
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
        Ok(())
    }
}
