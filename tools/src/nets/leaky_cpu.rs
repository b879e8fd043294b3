//! LeakyReLU (and ReLU, slope 0) in one pass for candle's CPU backend, with a one-pass gradient.
//!
//! candle's `leaky_relu` is five tensor ops forward and more backward (about 0.8 s per step of
//! the 10-layer probe, notes/CANDLE.md §4). Here y = x if x > 0 else slope·x is one parallel map,
//! and its backward one more: dL/dx = dL/dy · (1 if x > 0 else slope). At x == 0 exactly the
//! gradient is `slope` (candle's composition splits it 0.5 / 0.5). ONNX twin: `LeakyRelu`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: enough work to amortise the task, small enough to balance.
const CHUNK: usize = 1 << 15;

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::cpu_f32s(s, l, "leaky_relu", what)
}

struct LeakyRelu(f32);

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "ship-leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let slope = self.0;
        let y: Vec<f32> = f32s(s, l, "input")?
            .par_iter()
            .with_min_len(CHUNK)
            .map(|&x| if x > 0.0 { x } else { slope * x })
            .collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(
            &grad.contiguous()?,
            &LeakyReluGrad(self.0),
        )?))
    }
}

/// (x, dL/dy) -> dL/dx.
struct LeakyReluGrad(f32);

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "ship-leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g, slope) = (f32s(xs, xl, "input")?, f32s(gs, gl, "gradient")?, self.0);
        if x.len() != g.len() {
            candle_core::bail!("leaky_relu grad: {:?} vs {:?}", xl.shape(), gl.shape());
        }
        let dx: Vec<f32> = x
            .par_iter()
            .zip(g)
            .with_min_len(CHUNK)
            .map(|(&x, &g)| if x > 0.0 { g } else { slope * g })
            .collect();
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// LeakyReLU with the given slope: the fused op for CPU f32, candle's composition elsewhere.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(LeakyRelu(slope as f32))
    } else {
        candle_nn::ops::leaky_relu(x, slope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::testing::{max_diff, probe_grads, uniform};
    use candle_core::Var;

    /// Forward and gradient against candle's composed `leaky_relu` (and `relu` for slope 0), on a
    /// non-contiguous input spanning several rayon chunks. Random values are never exactly 0, where
    /// the two conventions differ; elsewhere both are exact, so the tolerance is f32 rounding.
    #[test]
    fn matches_candle_composition_with_gradient() {
        for slope in [0.2, 0.1, 0.0] {
            let base = Var::from_tensor(&uniform(&[3, 70_001], 5, -1.0, 1.0)).unwrap();
            let x = base.t().unwrap();
            let probe = uniform(&[70_001, 3], 6, -1.0, 1.0);
            let ours = leaky_relu(&x, slope).unwrap();
            let theirs = if slope == 0.0 {
                x.relu().unwrap()
            } else {
                candle_nn::ops::leaky_relu(&x, slope).unwrap()
            };
            assert!(max_diff(&ours, &theirs) < 1e-7, "forward, slope {slope}");
            let (g1, g2) = (probe_grads(&ours, &probe), probe_grads(&theirs, &probe));
            let (a, b) = (g1.get(&base).unwrap(), g2.get(&base).unwrap());
            assert!(max_diff(a, b) < 1e-7, "gradient, slope {slope}");
        }
    }
}
