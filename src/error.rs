//! The crate's error type: one variant per module error, plus the mistakes only the
//! fusion step can see (a pair of different sizes, a buffer of the wrong length).

use crate::imaging::{DecodeError, EncodeError};
use crate::model::ModelError;

/// Everything the library can fail with. Variants that touch a file name it first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input image could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An output image could not be written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The model could not be loaded, checked or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The infrared and visible images differ in size.
    #[error(
        "IR is {ir_width}x{ir_height} but visible is {vis_width}x{vis_height}: the pair must be the same size (register the IR onto the visible frame first)"
    )]
    SizeMismatch {
        /// IR width.
        ir_width: usize,
        /// IR height.
        ir_height: usize,
        /// Visible width.
        vis_width: usize,
        /// Visible height.
        vis_height: usize,
    },
    /// A raw plane passed to [`Fuser::fuse_y`](crate::Fuser::fuse_y) has the wrong length.
    #[error("`{name}` has {len} samples, expected {width}x{height} = {}", width.saturating_mul(*height))]
    BufferSize {
        /// Which buffer.
        name: &'static str,
        /// Its length.
        len: usize,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
