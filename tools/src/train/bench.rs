//! Training-step benchmarks: forward, backward and SGD step timed separately, medians over steps
//! after a warm-up. Two workloads: the 10-layer conv probe of issue 13 (with our CPU kernels or
//! with candle's own conv and LeakyReLU, to measure both in one binary), and a SHIP preset.
//! The loss is the mean of the output in both, so `tools/scripts/bench_train_torch.py` can run
//! the same steps in PyTorch.

use std::time::{Duration, Instant};

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Optimizer, SGD};

use crate::nets::conv_cpu::{ConvParams, candle_conv2d, conv2d};
use crate::nets::leaky_cpu::leaky_relu;
use crate::nets::{ShipConfig, build_trainable, init::Rng, is_buffer};

/// Which conv and LeakyReLU implementations the probe runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// Our gemm conv and fused LeakyReLU (`conv_cpu`, `leaky_cpu`).
    Ours,
    /// candle's own `conv2d` and composed `leaky_relu` (the "before" numbers).
    Candle,
}

/// Size and length of a benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    pub batch: usize,
    /// Square input size in pixels.
    pub crop: usize,
    /// Timed steps (the medians are taken over these).
    pub steps: usize,
    /// Untimed steps first (allocator and scratch buffers warm up).
    pub warmup: usize,
}

/// Median times of one training step.
#[derive(Debug, Clone, Copy)]
pub struct StepTimes {
    /// Forward pass including the loss.
    pub forward: Duration,
    /// `loss.backward()`.
    pub backward: Duration,
    /// Forward + backward + SGD update.
    pub step: Duration,
}

/// What a benchmark measured, with the convolution MACs of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct BenchReport {
    pub times: StepTimes,
    pub forward_macs: u64,
}

impl BenchReport {
    /// Forward GMAC/s.
    pub fn forward_gmacs(&self) -> f64 {
        self.forward_macs as f64 / self.times.forward.as_secs_f64() / 1e9
    }
    /// Training GMAC/s, counting a step as 3x the forward MACs (forward, input gradient,
    /// weight gradient).
    pub fn step_gmacs(&self) -> f64 {
        3.0 * self.forward_macs as f64 / self.times.step.as_secs_f64() / 1e9
    }
}

/// Channels, layers and LeakyReLU slope of the issue-13 probe.
pub const PROBE_CHANNELS: usize = 16;
pub const PROBE_LAYERS: usize = 10;
pub const PROBE_SLOPE: f64 = 0.2;

/// 10 x (Conv2d(16->16, 3x3, pad 1, bias) + LeakyReLU(0.2)) on [B, 16, crop, crop],
/// loss = mean, one SGD step.
pub fn bench_probe(kernels: Kernels, opts: &BenchOptions) -> Result<BenchReport> {
    let c = PROBE_CHANNELS;
    let mut rng = Rng::new(13);
    let mut uniform = |shape: &[usize], bound: f64| random(&mut rng, shape, -bound, bound);
    // PyTorch's default conv init bound, 1/sqrt(fan_in).
    let bound = 1.0 / ((c * 9) as f64).sqrt();
    let layers = (0..PROBE_LAYERS)
        .map(|_| {
            let w = Var::from_tensor(&uniform(&[c, c, 3, 3], bound)?)?;
            let b = Var::from_tensor(&uniform(&[c], bound)?)?;
            Ok((w, b))
        })
        .collect::<Result<Vec<_>>>()?;
    let x = uniform(&[opts.batch, c, opts.crop, opts.crop], 1.0)?;
    let p = ConvParams::same(3, 3);
    let forward = || -> Result<Tensor> {
        let mut y = x.clone();
        for (w, b) in &layers {
            y = match kernels {
                Kernels::Ours => leaky_relu(&conv2d(&y, w, Some(b), p)?, PROBE_SLOPE)?,
                Kernels::Candle => {
                    candle_nn::ops::leaky_relu(&candle_conv2d(&y, w, Some(b), p)?, PROBE_SLOPE)?
                }
            };
        }
        y.mean_all()
    };
    let vars = layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]);
    let times = time_steps(opts, forward, vars.collect(), &Device::Cpu)?;
    let pixels = (opts.batch * opts.crop * opts.crop) as u64;
    Ok(BenchReport {
        times,
        forward_macs: (PROBE_LAYERS * c * c * 9) as u64 * pixels,
    })
}

/// A SHIP preset on random [B, 1, crop, crop] visible and IR inputs, loss = mean of the fused
/// output, one SGD step over every learnable parameter, on `dev` (CPU or a GPU).
pub fn bench_preset(cfg: &ShipConfig, opts: &BenchOptions, dev: &Device) -> Result<BenchReport> {
    let (net, varmap) = build_trainable(cfg, 13, dev)?;
    let vars: Vec<Var> = {
        let data = varmap.data().lock().expect("varmap poisoned");
        let mut named: Vec<_> = data.iter().filter(|(k, _)| !is_buffer(k)).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    };
    let mut rng = Rng::new(13);
    let plane = |c: usize| [opts.batch, c, opts.crop, opts.crop];
    // The main stream has the task's bands (1 for IVIF, the MS bands for pan-sharpening).
    let vis = random(&mut rng, &plane(cfg.task.bands()), 0.0, 1.0)?.to_device(dev)?;
    let ir = random(&mut rng, &plane(1), 0.0, 1.0)?.to_device(dev)?;
    let times = time_steps(opts, || net.forward(&vis, &ir)?.mean_all(), vars, dev)?;
    let macs = crate::export::macs_per_pixel(&net)?;
    Ok(BenchReport {
        times,
        forward_macs: macs * (opts.batch * opts.crop * opts.crop) as u64,
    })
}

/// A CPU tensor of seeded uniform values in [lo, hi) (candle's CPU RNG cannot be seeded).
fn random(rng: &mut Rng, shape: &[usize], lo: f64, hi: f64) -> Result<Tensor> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| (lo + (hi - lo) * rng.uniform()) as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// Runs warm-up then timed SGD steps of `loss`; medians of each phase.
fn time_steps(
    opts: &BenchOptions,
    loss: impl Fn() -> Result<Tensor>,
    vars: Vec<Var>,
    dev: &Device,
) -> Result<StepTimes> {
    let mut sgd = SGD::new(vars, 1e-3)?;
    let mut samples = Vec::with_capacity(opts.steps);
    for i in 0..opts.warmup + opts.steps {
        // On the CPU candle is eager; a GPU queues its kernels, so each phase ends at a sync.
        let t0 = Instant::now();
        let l = loss()?;
        dev.synchronize()?;
        let t1 = Instant::now();
        let grads = l.backward()?;
        dev.synchronize()?;
        let t2 = Instant::now();
        sgd.step(&grads)?;
        dev.synchronize()?;
        let t3 = Instant::now();
        if !l.to_dtype(DType::F32)?.to_scalar::<f32>()?.is_finite() {
            candle_core::bail!("loss is not finite at step {i}");
        }
        if i >= opts.warmup {
            samples.push((t1 - t0, t2 - t1, t3 - t0));
        }
    }
    if samples.is_empty() {
        candle_core::bail!("no timed steps: pass --steps >= 1");
    }
    let median = |f: fn(&(Duration, Duration, Duration)) -> Duration| {
        let mut v: Vec<Duration> = samples.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    Ok(StepTimes {
        forward: median(|s| s.0),
        backward: median(|s| s.1),
        step: median(|s| s.2),
    })
}
