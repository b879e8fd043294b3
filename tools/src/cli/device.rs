//! `--device cpu|cuda`, shared by the commands that run a network.

use anyhow::{Context, bail};
use candle_core::Device;
use clap::ValueEnum;

/// Where a command runs the network.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    /// GPU 0; needs a `--features cuda` build.
    Cuda,
}

impl DeviceArg {
    /// Opens the device, or says how to get a build that can.
    pub fn open(self) -> anyhow::Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda if !cfg!(feature = "cuda") => bail!(
                "--device cuda: this ship-tools was built without CUDA; rebuild with \
                 `cargo build --release -p ship-tools --features cuda` (needs nvcc, and \
                 CUDA_COMPUTE_CAP on a machine without a GPU; see the README)"
            ),
            DeviceArg::Cuda => Device::new_cuda(0).context(
                "--device cuda: cannot open GPU 0 (is a driver with the CUDA libraries installed?)",
            ),
        }
    }
}
