//! Decoding image files into [`Planes`] and encoding [`Planes`] back to files, with errors
//! that say whose fault a failure is and always name the file.
//!
//! Input: PNG, TIFF or JPEG (format taken from the content, not the name), 8- or 16-bit,
//! grey, grey+alpha, RGB or RGBA. Samples are scaled to `[0, 1]` (`v / 255` or `v / 65535`);
//! alpha is dropped, so an image becomes one (grey) or three (RGB) planes.
//!
//! Output: format from the extension (`png`, `tif`/`tiff`, `jpg`/`jpeg`). PNG and TIFF keep a
//! 16-bit depth when the image carries [`BitDepth::Sixteen`]; JPEG is 8-bit, quality 95. The
//! file is written to a temporary file in the target directory and renamed into place, so an
//! error never leaves a half-written output.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::tiff::TiffEncoder;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader};

use super::{BitDepth, Limits, Planes};

/// Why an image file could not be decoded. Every variant names the file first.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file does not exist (the caller's path is wrong).
    #[error("{}: file not found", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but could not be read (permissions, a directory, an I/O failure).
    #[error("{}: cannot read the file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The content is not a PNG, TIFF or JPEG image (whatever its name says).
    #[error("{}: not a PNG, TIFF or JPEG image (unrecognised content)", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
    },
    /// A valid image in a format this runtime does not read.
    #[error("{}: {format} images are not supported: convert it to PNG, TIFF or JPEG", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: String,
    },
    /// The file starts like a supported format but is malformed or cut short (the file is at
    /// fault).
    #[error("{}: corrupt or truncated {format} file", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What the decoder found.
        #[source]
        source: ImageError,
    },
    /// A well-formed file using a feature or sample type the decoder cannot handle (e.g. a
    /// float or 1-bit TIFF).
    #[error("{}: unsupported {format} content: {what} (need 8- or 16-bit grey, grey+alpha, RGB or RGBA)", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What was found.
        what: String,
    },
    /// The header announces an image over the [`Limits`].
    #[error(
        "{}: {width}x{height} with {channels} channel(s) exceeds the image limits ({}x{} pixels, {} MiB of planes)",
        path.display(), limits.max_width, limits.max_height, limits.max_bytes >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Channels kept after decoding (1 or 3).
        channels: u32,
        /// The limits it broke.
        limits: Limits,
    },
}

/// Why an image could not be written. Every variant names the output file first.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The extension does not name a supported output format.
    #[error("{}: unknown output format: use a .png, .tif, .tiff, .jpg or .jpeg name", path.display())]
    UnknownExtension {
        /// The output file.
        path: PathBuf,
    },
    /// A raw-array output whose name does not end in `.npy`.
    #[error("{}: a raw output must be a .npy file", path.display())]
    NotNpy {
        /// The output file.
        path: PathBuf,
    },
    /// The directory the output should go into does not exist.
    #[error("{}: the output directory {} does not exist: create it first", path.display(), dir.display())]
    MissingDirectory {
        /// The output file.
        path: PathBuf,
        /// Its parent directory.
        dir: PathBuf,
    },
    /// The output path is an existing directory.
    #[error("{}: is a directory: give an output file name", path.display())]
    IsDirectory {
        /// The output path.
        path: PathBuf,
    },
    /// Creating, writing or renaming the file failed.
    #[error("{}: cannot write the file", path.display())]
    Io {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The encoder refused the image.
    #[error("{}: cannot encode the image as {format}", path.display())]
    Encode {
        /// The output file.
        path: PathBuf,
        /// The output format.
        format: OutputFormat,
        /// What the encoder said.
        #[source]
        source: ImageError,
    },
    /// The image is larger than the file format can describe.
    #[error("{}: a {width}x{height} image is too large to encode", path.display())]
    TooLarge {
        /// The output file.
        path: PathBuf,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
}

/// An output file format, chosen from the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// PNG, 8- or 16-bit.
    Png,
    /// TIFF, 8- or 16-bit.
    Tiff,
    /// JPEG, 8-bit, quality 95.
    Jpeg,
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputFormat::Png => "PNG",
            OutputFormat::Tiff => "TIFF",
            OutputFormat::Jpeg => "JPEG",
        })
    }
}

impl OutputFormat {
    /// The format named by `path`'s extension (case-insensitive).
    ///
    /// ```
    /// use ship_edge::imaging::OutputFormat;
    /// assert_eq!(OutputFormat::from_path("a/b.TIF".as_ref()).unwrap(), OutputFormat::Tiff);
    /// assert!(OutputFormat::from_path("out.bmp".as_ref()).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<OutputFormat, EncodeError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(OutputFormat::Png),
            Some("tif" | "tiff") => Ok(OutputFormat::Tiff),
            Some("jpg" | "jpeg") => Ok(OutputFormat::Jpeg),
            _ => Err(EncodeError::UnknownExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Checks that `path` can be written as an image: a known extension, an existing parent
/// directory, not a directory itself. Call it before any expensive work so a typo in the
/// output name fails fast.
pub fn check_output(path: &Path) -> Result<OutputFormat, EncodeError> {
    let format = OutputFormat::from_path(path)?;
    check_dir(path)?;
    Ok(format)
}

/// Checks that `path` can be created: not a directory, and its directory exists. Lets a
/// command fail before long work rather than after it.
pub fn check_dir(path: &Path) -> Result<(), EncodeError> {
    if path.is_dir() {
        return Err(EncodeError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let dir = output_dir(path);
    if !dir.is_dir() {
        return Err(EncodeError::MissingDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn output_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Jpeg => "JPEG",
        _ => "image",
    }
}

/// Decodes the image at `path` into planes in `[0, 1]`, refusing anything over `limits`
/// before allocating pixels.
pub fn load(path: &Path, limits: &Limits) -> Result<Planes, DecodeError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => DecodeError::NotFound {
            path: path.to_path_buf(),
        },
        _ => DecodeError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|source| DecodeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Tiff | ImageFormat::Jpeg)) => f,
        Some(other) => {
            return Err(DecodeError::UnsupportedFormat {
                path: path.to_path_buf(),
                format: format!("{other:?}").to_uppercase(),
            });
        }
        None => {
            return Err(DecodeError::NotAnImage {
                path: path.to_path_buf(),
            });
        }
    };
    let name = format_name(format);
    let fail = |e: ImageError| classify(path, name, e);

    let mut reader = reader;
    // Width and height are checked by us below (typed error); the decoder only gets the
    // allocation budget, for what it allocates beyond the output buffer.
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_bytes);
    reader.limits(image_limits);
    let decoder = reader.into_decoder().map_err(fail)?;

    let (width, height) = decoder.dimensions();
    let kept = if decoder.color_type().has_color() {
        3
    } else {
        1
    };
    if !limits.allows(width, height, kept) {
        return Err(DecodeError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            channels: kept,
            limits: *limits,
        });
    }
    let image = DynamicImage::from_decoder(decoder).map_err(fail)?;
    to_planes(image).map_err(|what| DecodeError::Unsupported {
        path: path.to_path_buf(),
        format: name,
        what,
    })
}

/// Sorts an `image` error by who is at fault.
fn classify(path: &Path, format: &'static str, e: ImageError) -> DecodeError {
    let path = path.to_path_buf();
    match e {
        ImageError::Limits(_) => DecodeError::Unsupported {
            path,
            format,
            what: format!("decoding would exceed the memory limit ({e})"),
        },
        ImageError::Unsupported(u) => DecodeError::Unsupported {
            path,
            format,
            what: u.to_string(),
        },
        ImageError::IoError(io) if io.kind() != io::ErrorKind::UnexpectedEof => {
            DecodeError::Io { path, source: io }
        }
        other => DecodeError::Corrupt {
            path,
            format,
            source: other,
        },
    }
}

fn to_planes(image: DynamicImage) -> Result<Planes, String> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let n8 = |v: &u8| f32::from(*v) / 255.0;
    let n16 = |v: &u16| f32::from(*v) / 65535.0;
    let (channels, depth) = match &image {
        DynamicImage::ImageLuma8(b) => (planar(b.as_raw(), 1, 1, n8), BitDepth::Eight),
        DynamicImage::ImageLumaA8(b) => (planar(b.as_raw(), 2, 1, n8), BitDepth::Eight),
        DynamicImage::ImageRgb8(b) => (planar(b.as_raw(), 3, 3, n8), BitDepth::Eight),
        DynamicImage::ImageRgba8(b) => (planar(b.as_raw(), 4, 3, n8), BitDepth::Eight),
        DynamicImage::ImageLuma16(b) => (planar(b.as_raw(), 1, 1, n16), BitDepth::Sixteen),
        DynamicImage::ImageLumaA16(b) => (planar(b.as_raw(), 2, 1, n16), BitDepth::Sixteen),
        DynamicImage::ImageRgb16(b) => (planar(b.as_raw(), 3, 3, n16), BitDepth::Sixteen),
        DynamicImage::ImageRgba16(b) => (planar(b.as_raw(), 4, 3, n16), BitDepth::Sixteen),
        other => return Err(format!("{:?} samples", other.color())),
    };
    let planes = match <[Vec<f32>; 3]>::try_from(channels) {
        Ok(rgb) => Planes::rgb(w, h, rgb),
        Err(mut grey) => Planes::gray(w, h, grey.remove(0)),
    };
    Ok(planes.with_bit_depth(depth))
}

/// Splits interleaved samples (`stride` per pixel) into the first `keep` planes.
fn planar<T>(samples: &[T], stride: usize, keep: usize, norm: impl Fn(&T) -> f32) -> Vec<Vec<f32>> {
    (0..keep)
        .map(|c| samples.iter().skip(c).step_by(stride).map(&norm).collect())
        .collect()
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn to_u16(v: f32) -> u16 {
    (v.clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// Interleaves the planes (1 or 3) into one sample buffer.
fn interleave<T: Copy>(planes: &Planes, quant: impl Fn(f32) -> T) -> Vec<T> {
    let c = planes.channel_count();
    let n = planes.width() * planes.height();
    let mut out = Vec::with_capacity(n * c);
    for i in 0..n {
        for ch in planes.channels() {
            out.push(quant(ch[i]));
        }
    }
    out
}

/// Encodes `image` to `path` (format from the extension; samples clamped to `[0, 1]`),
/// through a temporary file in the same directory renamed into place.
pub fn save(path: &Path, image: &Planes) -> Result<(), EncodeError> {
    let format = check_output(path)?;
    let too_large = || EncodeError::TooLarge {
        path: path.to_path_buf(),
        width: image.width(),
        height: image.height(),
    };
    let w = u32::try_from(image.width()).map_err(|_| too_large())?;
    let h = u32::try_from(image.height()).map_err(|_| too_large())?;
    let sixteen = image.bit_depth() == BitDepth::Sixteen && format != OutputFormat::Jpeg;
    let dynamic = match (image.is_rgb(), sixteen) {
        (false, false) => {
            ImageBuffer::from_raw(w, h, interleave(image, to_u8)).map(DynamicImage::ImageLuma8)
        }
        (true, false) => {
            ImageBuffer::from_raw(w, h, interleave(image, to_u8)).map(DynamicImage::ImageRgb8)
        }
        (false, true) => {
            ImageBuffer::from_raw(w, h, interleave(image, to_u16)).map(DynamicImage::ImageLuma16)
        }
        (true, true) => {
            ImageBuffer::from_raw(w, h, interleave(image, to_u16)).map(DynamicImage::ImageRgb16)
        }
    }
    .ok_or_else(too_large)?;

    write_atomic(path, |writer| {
        let encoded = match format {
            OutputFormat::Png => dynamic.write_with_encoder(PngEncoder::new(writer)),
            OutputFormat::Tiff => dynamic.write_with_encoder(TiffEncoder::new(writer)),
            OutputFormat::Jpeg => {
                dynamic.write_with_encoder(JpegEncoder::new_with_quality(writer, 95))
            }
        };
        encoded.map_err(|source| EncodeError::Encode {
            path: path.to_path_buf(),
            format,
            source,
        })
    })
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, then rename): a
/// report or sidecar file is either complete or absent.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), EncodeError> {
    write_atomic(path, |w| {
        w.write_all(bytes).map_err(|source| EncodeError::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

/// Writes an output file through a temp file in its directory, renamed into place only when
/// `write` succeeded: a failed or interrupted write never leaves a partial file at `path`.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let io_err = |source| EncodeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ship-edge-")
        .suffix(".tmp")
        .tempfile_in(output_dir(path))
        .map_err(io_err)?;
    {
        let mut writer = BufWriter::new(tmp.as_file_mut());
        write(&mut writer)?;
        writer.flush().map_err(io_err)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Temp files are created 0600; an output is an ordinary file.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io_err)?;
    }
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, phase: f32) -> Vec<f32> {
        (0..w * h)
            .map(|i| (i as f32 * 0.37 + phase) % 1.0)
            .collect()
    }

    #[test]
    fn roundtrip_png_tiff_8_and_16_bit() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (7, 5);
        let rgb = Planes::rgb(w, h, [ramp(w, h, 0.0), ramp(w, h, 0.3), ramp(w, h, 0.6)]);
        for (name, depth, tol) in [
            ("a.png", BitDepth::Eight, 0.5 / 255.0),
            ("b.tif", BitDepth::Eight, 0.5 / 255.0),
            ("c.png", BitDepth::Sixteen, 0.5 / 65535.0),
            ("d.tiff", BitDepth::Sixteen, 0.5 / 65535.0),
        ] {
            let img = rgb.clone().with_bit_depth(depth);
            let path = dir.path().join(name);
            save(&path, &img).unwrap();
            let back = load(&path, &Limits::default()).unwrap();
            assert_eq!(back.bit_depth(), depth, "{name}");
            assert_eq!(
                (back.width(), back.height(), back.channel_count()),
                (w, h, 3),
                "{name}"
            );
            for (a, b) in back
                .channels()
                .iter()
                .flatten()
                .zip(img.channels().iter().flatten())
            {
                // Quantisation to the bit depth: at most half a step off (+ float slack).
                assert!((a - b).abs() <= tol + 1e-6, "{name}: {a} vs {b}");
            }
        }
        // Nothing but the outputs is left in the directory (temp files were renamed).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn jpeg_is_written_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let img = Planes::gray(16, 16, vec![0.5; 256]);
        let path = dir.path().join("g.jpg");
        save(&path, &img).unwrap();
        let back = load(&path, &Limits::default()).unwrap();
        assert_eq!(back.channel_count(), 1);
        // A flat image survives JPEG almost exactly (DC term only).
        assert!(
            back.channel(0)
                .iter()
                .all(|v| (v - 0.5).abs() <= 2.0 / 255.0)
        );
    }

    #[test]
    fn output_checks_name_the_file() {
        let e = check_output(Path::new("out.bmp")).unwrap_err();
        assert!(matches!(e, EncodeError::UnknownExtension { .. }));
        assert!(e.to_string().starts_with("out.bmp: "), "{e}");
        let e = check_output(Path::new("/no/such/dir/out.png")).unwrap_err();
        assert!(matches!(e, EncodeError::MissingDirectory { .. }), "{e}");
        assert!(check_output(Path::new("out.png")).is_ok());
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        save(&path, &Planes::gray(64, 32, vec![0.0; 64 * 32])).unwrap();
        let tight = Limits {
            max_width: 32,
            ..Limits::default()
        };
        let e = load(&path, &tight).unwrap_err();
        assert!(
            matches!(
                e,
                DecodeError::TooLarge {
                    width: 64,
                    height: 32,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn alpha_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let rgba =
            image::RgbaImage::from_fn(3, 2, |x, _| image::Rgba([255, 0, (x * 100) as u8, 7]));
        rgba.save(dir.path().join("rgba.png")).unwrap();
        let la = image::GrayAlphaImage::from_fn(3, 2, |x, _| image::LumaA([(x * 50) as u8, 0]));
        la.save(dir.path().join("la.png")).unwrap();
        let rgb = load(&dir.path().join("rgba.png"), &Limits::default()).unwrap();
        assert_eq!(rgb.channel_count(), 3);
        assert_eq!(rgb.channel(0), &[1.0; 6]);
        assert_eq!(rgb.channel(2)[1], 100.0 / 255.0);
        let grey = load(&dir.path().join("la.png"), &Limits::default()).unwrap();
        assert_eq!(grey.channel_count(), 1);
        assert_eq!(grey.channel(0)[2], 100.0 / 255.0);
    }

    #[test]
    fn missing_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.png");
        assert!(matches!(
            load(&missing, &Limits::default()),
            Err(DecodeError::NotFound { .. })
        ));
        let garbage = dir.path().join("garbage.png");
        std::fs::write(&garbage, b"this is not an image at all").unwrap();
        assert!(matches!(
            load(&garbage, &Limits::default()),
            Err(DecodeError::NotAnImage { .. })
        ));
    }
}
