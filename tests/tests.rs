//! The one integration test binary: CLI runs, library-level fusion checks and bad input.

mod models;
mod util;

mod arch_parity;
mod bad_input;
mod bench_cli;
mod fuse_cli;
mod fuser_api;
mod int8_models;
mod ops_parity;
mod readme;
mod stream_cli;
mod stream_faults;

mod baselines;
mod eval_cli;
mod metrics_ivif;
mod metrics_pan;
mod pansharpen_model;
