//! Seeded, reproducible weight initialisation.
//!
//! candle's CPU RNG cannot be seeded (notes/CANDLE.md §3), so after a model is built on a
//! `VarMap`, every variable is overwritten from our own generator. Each variable's stream is
//! derived from (seed, name), so the result does not depend on build or iteration order.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;

/// SplitMix64: small, fast, and good enough for weight initialisation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for one named stream of a seed.
    pub fn for_name(seed: u64, name: &str) -> Self {
        // FNV-1a of the name, mixed with the seed.
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x1000_0000_01b3)
        });
        Self(seed ^ h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// How one variable starts, decided from its name and shape.
fn initial_values(
    name: &str,
    dims: &[usize],
    all: &[(String, Vec<usize>)],
    rng: &mut Rng,
) -> Vec<f32> {
    let n: usize = dims.iter().product();
    let fill = |v: f32| vec![v; n];
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let in_dense = name.contains(".F.") || name.contains(".G.") || name.contains(".H.");
    match leaf {
        // Invertible 1x1 conv starts as the identity: P = I, L = U = 0, s = 1.
        "p" => (0..n)
            .map(|i| if i / dims[1] == i % dims[1] { 1.0 } else { 0.0 })
            .collect(),
        "sign_s" => fill(1.0),
        "lower" | "upper" | "log_s" => fill(0.0),
        // CDC gate starts at 0.5 (the official code leaves it uninitialised).
        "HP_branch" => fill(0.0),
        "weight" if dims.len() == 1 => fill(1.0), // LayerNorm / InstanceNorm scale
        "bias" if in_dense => fill(0.0),
        "weight" if in_dense => {
            // Xavier-normal x 0.1, as the DenseBlocks of the InvBlocks are initialised.
            let rf: usize = dims[2..].iter().product();
            let std = (2.0 / ((dims[0] + dims[1]) * rf) as f64).sqrt() * 0.1;
            (0..n).map(|_| (rng.normal() * std) as f32).collect()
        }
        _ => {
            // PyTorch's default conv init: uniform(±1/sqrt(fan_in)), bias from its weight's fan-in.
            let fan_in = if dims.len() == 4 {
                dims[1..].iter().product()
            } else {
                let w = format!("{}.weight", name.strip_suffix(".bias").unwrap_or(name));
                all.iter()
                    .find(|(k, _)| *k == w)
                    .filter(|(_, d)| d.len() == 4)
                    .map(|(_, d)| d[1..].iter().product())
                    .unwrap_or(0)
            };
            if fan_in == 0 {
                return fill(0.0);
            }
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
                .collect()
        }
    }
}

/// Overwrites every variable of `varmap` from `seed`.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().expect("varmap poisoned");
    let mut all: Vec<(String, Vec<usize>)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().dims().to_vec()))
        .collect();
    all.sort();
    for (name, dims) in &all {
        let mut rng = Rng::for_name(seed, name);
        let values = initial_values(name, dims, &all, &mut rng);
        let var = &data[name];
        let t = Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?.to_device(var.device())?;
        var.set(&t)?;
    }
    Ok(())
}
