//! ship-edge: an edge runtime for SHIP multi-modal image fusion networks (infrared + visible,
//! pan-sharpening) exported to ONNX and run with tract.
//!
//! The data path for one infrared + visible frame:
//! decode ([`imaging::io`]) → split the visible image into Y + chroma ([`imaging::color`]) →
//! run the model ([`model`], through [`Fuser`]) → clamp, merge the chroma back, encode.
//!
//! ```no_run
//! use ship_edge::{FuseOptions, Fuser, imaging::{self, Limits}};
//! # fn main() -> ship_edge::Result<()> {
//! let fuser = Fuser::with_options("models/ship_edge_ivif.onnx", FuseOptions { threads: 2 })?;
//! let ir = imaging::io::load("ir.png".as_ref(), &Limits::default())?;
//! let vis = imaging::io::load("vis.png".as_ref(), &Limits::default())?;
//! imaging::io::save("fused.png".as_ref(), &fuser.fuse(&ir, &vis)?)?;
//! # Ok(()) }
//! ```
//!
//! The library never prints or exits; errors name the file they concern.

pub mod baselines;
pub mod bench;
pub mod dsp;
mod error;
pub mod eval;
mod fuser;
pub mod imaging;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod pansharpen;
pub mod stream;

pub use error::{Error, Result};
pub use fuser::{FuseOptions, FusedImage, Fuser};
pub use model::Task;
