//! The fusion networks in candle: configuration, layers, SHIP / SHIP++, initialisation.

pub mod config;
pub mod conv_cpu;
pub mod dft;
pub mod fft_cpu;
pub mod init;
pub mod layers;
pub mod leaky_cpu;
pub mod norm_cpu;
pub mod ship;

pub use config::{ShipConfig, Task};
pub use ship::{Ship, is_buffer};

use candle_core::{CpuStorage, DType, Device, Layout, Result};
use candle_nn::{VarBuilder, VarMap};

/// The values of a contiguous f32 CPU tensor, as our CPU custom ops read their operands; the
/// error names the op and the operand.
pub(crate) fn cpu_f32s<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
    what: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("{op}: {what} must be f32 on CPU");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: {what} must be contiguous"),
    }
}

/// Builds a trainable network on a fresh `VarMap`, initialised from `seed`.
pub fn build_trainable(cfg: &ShipConfig, seed: u64, dev: &Device) -> Result<(Ship, VarMap)> {
    let varmap = VarMap::new();
    let net = Ship::new(cfg, VarBuilder::from_varmap(&varmap, DType::F32, dev))?;
    init::seeded_init(&varmap, seed)?;
    Ok((net, varmap))
}

/// (learnable parameters, fixed buffer values) of a `VarMap`.
pub fn count_parameters(varmap: &VarMap) -> (usize, usize) {
    let data = varmap.data().lock().expect("varmap poisoned");
    data.iter().fold((0, 0), |(p, b), (name, v)| {
        let n = v.as_tensor().elem_count();
        if is_buffer(name) {
            (p, b + n)
        } else {
            (p + n, b)
        }
    })
}

/// Raw pointer that may cross rayon threads: every task writes a disjoint region (the
/// runtime's, shared with its int8 kernels).
pub(crate) use ship_edge::ops::SendPtr;

/// Helpers shared by the kernel tests.
#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{Device, Tensor};

    /// A CPU tensor of seeded uniform values in [lo, hi).
    pub fn uniform(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
        let mut rng = super::init::Rng::new(seed);
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| lo + (hi - lo) * rng.uniform() as f32)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Gradients of sum(out ⊙ probe): a random linear functional of the output.
    pub fn probe_grads(out: &Tensor, probe: &Tensor) -> candle_core::backprop::GradStore {
        (out * probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    /// max |a − b| over all elements.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }
}
