//! Images between a file and the model: decoding and encoding ([`io`]), the SHIP colour
//! conventions ([`color`]), and the planar `[0,1]` float image type they share. Never imports
//! tract.

pub mod agc;
pub mod bands;
pub mod color;
pub mod geotiff;
pub mod io;
pub mod multiband;
pub mod npy;
pub mod warp;

pub use io::{DecodeError, EncodeError, OutputFormat};

/// How many bits per sample an image had on disk; the encoder writes the same depth back
/// where the output format allows it (PNG and TIFF; JPEG is always 8-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitDepth {
    /// 8 bits per sample.
    #[default]
    Eight,
    /// 16 bits per sample.
    Sixteen,
}

/// A planar image of `f32` samples in `[0, 1]`, row-major, one `Vec` per channel.
///
/// It holds either one channel (grey) or three (R, G, B); alpha is dropped at decode time.
/// Every channel has exactly `width * height` samples.
///
/// ```
/// use ship_edge::imaging::Planes;
/// let img = Planes::gray(2, 1, vec![0.0, 1.0]);
/// assert_eq!((img.width(), img.height(), img.channel_count()), (2, 1, 1));
/// assert_eq!(img.channel(0), &[0.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    width: usize,
    height: usize,
    channels: Vec<Vec<f32>>,
    bit_depth: BitDepth,
}

impl Planes {
    /// A one-channel (grey) image.
    ///
    /// # Panics
    /// If `data.len() != width * height`.
    pub fn gray(width: usize, height: usize, data: Vec<f32>) -> Planes {
        Planes::from_channels(width, height, vec![data])
    }

    /// A three-channel image from its R, G and B planes.
    ///
    /// # Panics
    /// If any plane does not hold `width * height` samples.
    pub fn rgb(width: usize, height: usize, [r, g, b]: [Vec<f32>; 3]) -> Planes {
        Planes::from_channels(width, height, vec![r, g, b])
    }

    fn from_channels(width: usize, height: usize, channels: Vec<Vec<f32>>) -> Planes {
        let len = width
            .checked_mul(height)
            .expect("Planes: width * height overflows usize");
        for (i, c) in channels.iter().enumerate() {
            assert_eq!(
                c.len(),
                len,
                "Planes: channel {i} has {} samples, expected {width}x{height}",
                c.len()
            );
        }
        Planes {
            width,
            height,
            channels,
            bit_depth: BitDepth::Eight,
        }
    }

    /// The same image, tagged with the bit depth to write it back with.
    pub fn with_bit_depth(mut self, bit_depth: BitDepth) -> Planes {
        self.bit_depth = bit_depth;
        self
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Number of channels: 1 (grey) or 3 (RGB).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// True for a three-channel (RGB) image.
    pub fn is_rgb(&self) -> bool {
        self.channels.len() == 3
    }

    /// Channel `i` (0 = grey or R, 1 = G, 2 = B), `width * height` samples row-major.
    ///
    /// # Panics
    /// If `i >= self.channel_count()`.
    pub fn channel(&self, i: usize) -> &[f32] {
        &self.channels[i]
    }

    /// All channels.
    pub fn channels(&self) -> &[Vec<f32>] {
        &self.channels
    }

    /// The channels, consuming the image.
    pub fn into_channels(self) -> Vec<Vec<f32>> {
        self.channels
    }

    /// The bit depth the image had on disk (or was tagged with).
    pub fn bit_depth(&self) -> BitDepth {
        self.bit_depth
    }
}

/// Size budget for untrusted images, checked against the header before any pixel buffer is
/// allocated. Over the limit is an error, never a resize.
///
/// ```
/// use ship_edge::imaging::Limits;
/// let limits = Limits::default();
/// assert!(limits.allows(640, 480, 3));
/// assert!(!limits.allows(100_000, 10, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest accepted size in bytes of the decoded `f32` planes (`width * height * channels * 4`).
    pub max_bytes: u64,
}

impl Default for Limits {
    /// 16384 x 16384 pixels and 2 GiB of decoded planes.
    fn default() -> Limits {
        Limits {
            max_width: 16384,
            max_height: 16384,
            max_bytes: 2 << 30,
        }
    }
}

impl Limits {
    /// No limit at all (trusted input only).
    pub fn no_limits() -> Limits {
        Limits {
            max_width: u32::MAX,
            max_height: u32::MAX,
            max_bytes: u64::MAX,
        }
    }

    /// Whether an image of this size and channel count fits the budget (overflow counts as
    /// over the limit).
    pub fn allows(&self, width: u32, height: u32, channels: u32) -> bool {
        let bytes = u64::from(width)
            .checked_mul(u64::from(height))
            .and_then(|n| n.checked_mul(u64::from(channels)))
            .and_then(|n| n.checked_mul(4));
        width <= self.max_width
            && height <= self.max_height
            && bytes.is_some_and(|b| b <= self.max_bytes)
    }
}
