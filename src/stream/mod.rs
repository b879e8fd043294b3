//! `ship-edge stream`: live infrared + visible fusion from two cameras (or files standing in
//! for them): [`source`]s, timestamp [`pair`]ing, bounded hand-over ([`inbox`]), the threaded
//! [`pipeline`], [`sink`]s and [`stats`]. Registration and thermal AGC live in
//! [`crate::imaging::warp`] and [`crate::imaging::agc`].

pub mod inbox;
pub mod pair;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod stats;
pub mod y4m;

pub use pipeline::{Observer, StreamConfig, StreamError, run};
pub use sink::{Sink, SinkSpec};
pub use source::{Source, SourceOptions, SourceSpec};
pub use stats::{Summary, Tick};
