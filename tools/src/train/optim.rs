//! Adam with its state in our hands, and the MultiStepLR schedule (SHIP_NETWORK.md §5.1).
//!
//! candle's `AdamW` keeps its moments private, so a run could not be resumed exactly; this one
//! exposes m, v and the step count for checkpoints. The update is PyTorch's `torch.optim.Adam`
//! (L2 weight decay added to the gradient, bias corrections folded as PyTorch folds them), in
//! tensor ops so it runs on any device.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Adam hyper-parameters (the learning rate comes from the schedule each step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 penalty added to the gradient (`torch.optim.Adam`'s `weight_decay`), 0 in SHIP.
    pub weight_decay: f64,
    /// Scale the gradients down to this global L2 norm when above it, before the update
    /// (`torch.nn.utils.clip_grad_norm_`, 1e-6 guard included). None: no clipping.
    pub max_grad_norm: Option<f64>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: None,
        }
    }
}

/// PyTorch's `MultiStepLR`: the base rate times γ for every milestone already passed.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStepLr {
    pub base: f64,
    /// Optimiser steps after which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    pub gamma: f64,
}

impl MultiStepLr {
    /// The rate of optimiser step `step` (1-based). The scheduler is stepped after each
    /// update, so step m + 1 is the first at the decayed rate of milestone m.
    pub fn lr(&self, step: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m < step).count();
        self.base * self.gamma.powi(passed as i32)
    }
}

/// One parameter with its moments.
#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// Adam over named parameters; the state is (m, v) per parameter and the step count.
#[derive(Debug)]
pub struct Adam {
    cfg: AdamConfig,
    slots: Vec<Slot>,
    step: usize,
}

impl Adam {
    /// Adam over `params` (sorted by name, so the state files list them in a fixed order),
    /// moments zero.
    pub fn new(mut params: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Self> {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let z = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    name,
                    m: z.clone(),
                    v: z,
                    var,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            cfg,
            slots,
            step: 0,
        })
    }

    /// Updates done so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// One update with learning rate `lr`. A parameter without a gradient is left alone (as
    /// PyTorch skips a `None` grad), its moments untouched.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let AdamConfig {
            beta1: b1,
            beta2: b2,
            eps,
            weight_decay,
            max_grad_norm,
        } = self.cfg;
        let clip = match max_grad_norm {
            Some(max) => {
                let norm = self.grad_norm(grads)?;
                let coef = max / (norm + 1e-6);
                (coef < 1.0).then_some(coef)
            }
            None => None,
        };
        let t = self.step as i32;
        let bc1 = 1.0 - b1.powi(t);
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            let g = match clip {
                Some(c) => (g * c)?,
                None => g.clone(),
            };
            let g = if weight_decay != 0.0 {
                (g + (s.var.as_tensor() * weight_decay)?)?
            } else {
                g
            };
            // A gradient may still be attached to the step's graph (candle does not detach a
            // variable's gradient): moments built from it would keep every step's activations.
            let g = g.detach();
            s.m = ((&s.m * b1)? + (&g * (1.0 - b1))?)?;
            s.v = ((&s.v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            // p -= (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)
            let denom = ((s.v.sqrt()? / bc2_sqrt)? + eps)?;
            let update = ((&s.m / denom)? * (lr / bc1))?;
            s.var.set(&(s.var.as_tensor() - update)?)?;
        }
        Ok(())
    }

    /// The global L2 norm of the parameters' gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sum = 0.0f64;
        for s in &self.slots {
            if let Some(g) = grads.get(s.var.as_tensor()) {
                sum += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        Ok(sum.sqrt())
    }

    /// (name, m, v) of every parameter, sorted by name.
    pub fn moments(&self) -> impl Iterator<Item = (&str, &Tensor, &Tensor)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.m, &s.v))
    }

    /// Names of the parameters, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Restores the state of a checkpoint: `moment(name)` gives (m, v) for each parameter.
    pub fn restore(
        &mut self,
        step: usize,
        mut moment: impl FnMut(&str, &[usize]) -> Result<(Tensor, Tensor)>,
    ) -> Result<()> {
        for s in &mut self.slots {
            let (m, v) = moment(&s.name, s.var.as_tensor().dims())?;
            let dev = s.var.device();
            (s.m, s.v) = (m.to_device(dev)?, v.to_device(dev)?);
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn multistep_decays_after_each_milestone() {
        let s = MultiStepLr {
            base: 1e-4,
            milestones: vec![3, 5],
            gamma: 0.5,
        };
        let lrs: Vec<f64> = (1..=7).map(|t| s.lr(t) / 1e-4).collect();
        assert_eq!(lrs, [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    /// Two steps on f(p) = Σ p²/2 (gradient p) against PyTorch's Adam, worked by hand:
    /// step 1 moves every coordinate by −lr·sign(p) (m̂/√v̂ = ±1).
    #[test]
    fn first_step_moves_by_lr_times_sign() {
        let p = Var::from_vec(vec![0.5f32, -2.0, 3.0], 3, &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("p".into(), p.clone())], AdamConfig::default()).unwrap();
        let loss = (p.as_tensor().sqr().unwrap() * 0.5)
            .unwrap()
            .sum_all()
            .unwrap();
        adam.step(&loss.backward().unwrap(), 0.1).unwrap();
        let got: Vec<f32> = p.as_tensor().to_vec1().unwrap();
        for (g, want) in got.iter().zip([0.4f32, -1.9, 2.9]) {
            // eps/√v̂ shifts the step by < 1e-7 relative.
            assert!((g - want).abs() < 1e-6, "{got:?}");
        }
        assert_eq!(adam.step_count(), 1);
    }

    /// candle leaves a variable's gradient attached to the graph that made it (a conv's kernel
    /// gradient is `arg.conv2d(grad)` of the forward activation `arg`). Moments built from such
    /// a gradient held that step's whole graph, and each moment the previous one: on CUDA, where
    /// every gradient comes from candle's own ops, memory grew by a step's activations per step
    /// until CUDA_ERROR_OUT_OF_MEMORY. The moments must own no graph.
    #[test]
    fn moments_do_not_hold_the_graph_of_the_step() {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], (1, 1, 2, 2), &dev).unwrap();
        let a = Var::from_vec(
            (0..36).map(|i| i as f32 / 36.0).collect(),
            (1, 1, 6, 6),
            &dev,
        )
        .unwrap();
        let mut adam = Adam::new(vec![("w".into(), w.clone())], AdamConfig::default()).unwrap();
        for _ in 0..3 {
            // The activation is tracked (it comes from a variable), as inside a network.
            let x = (a.as_tensor() * 2.0).unwrap();
            let loss = x
                .conv2d(w.as_tensor(), 0, 1, 1, 1)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert!(
                grads.get(w.as_tensor()).unwrap().track_op(),
                "the premise: a tracked gradient"
            );
            adam.step(&grads, 0.01).unwrap();
            for (name, m, v) in adam.moments() {
                assert!(
                    !m.track_op() && !v.track_op(),
                    "{name}: a moment holds a graph"
                );
            }
        }
    }
}
