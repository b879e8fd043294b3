//! The one integration test binary: CLI runs, library-level fusion checks and bad input.

mod models;
mod util;

mod bad_input;
mod fuse_cli;
mod fuser_api;
mod readme;

mod baselines;
mod eval_cli;
mod metrics_ivif;
mod metrics_pan;
