//! Multiband images (multispectral MS, panchromatic PAN, pan-sharpened results) between a file
//! and a [`Cube`] of digital numbers (DN, `[band, row, col]` in `f64`, not rescaled).
//!
//! Input: TIFF with any number of 8- or 16-bit unsigned samples per pixel (grey, RGB(A),
//! `Multiband` such as the 6-sample Landsat-7 files, chunky or planar), decoded with the `tiff`
//! crate; PNG/JPEG (and anything else [`super::io::load`] reads) is accepted too, its `[0, 1]`
//! samples scaled back to DN. Output: TIFF, 8- or 16-bit, BlackIsZero with `bands − 1`
//! unspecified ExtraSamples (the Landsat files' layout), deflate, written atomically.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use image::error::{
    DecodingError, ImageFormatHint, ParameterError, ParameterErrorKind, UnsupportedError,
    UnsupportedErrorKind,
};
use image::{ImageError, ImageFormat};
use tiff::ColorType;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};
use tiff::tags::{ExtraSamples, Tag};

use super::geotiff::GeoTags;
use super::io::{DecodeError, EncodeError, OutputFormat, check_dir, write_atomic};
use super::{BitDepth, Limits};
use crate::dsp::Cube;

const FORMAT: &str = "TIFF";

fn is_tiff(header: &[u8]) -> bool {
    matches!(header, [b'I', b'I', 42 | 43, 0] | [b'M', b'M', 0, 42 | 43])
}

/// Decodes the image at `path` into a cube of DN (`u8` → 0–255, `u16` → 0–65535), one band per
/// sample: a 6-sample TIFF gives 6 bands, a grey image 1. The size is checked against `limits`
/// (as `bands` planes) before the pixel buffer is allocated. Errors name the file.
pub fn load_cube(path: &Path, limits: &Limits) -> Result<Cube, DecodeError> {
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => DecodeError::NotFound {
            path: path.to_path_buf(),
        },
        _ => DecodeError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut header = [0u8; 4];
    let n = read_up_to(&mut file, &mut header).map_err(io_err)?;
    if n < 4 || !is_tiff(&header) {
        return load_other(path, limits);
    }
    let file = File::open(path).map_err(io_err)?;
    let corrupt = |e: tiff::TiffError| classify(path, e);
    let mut dec = Decoder::new(BufReader::new(file))
        .map_err(corrupt)?
        .with_limits(tiff::decoder::Limits::unlimited());
    let (width, height) = dec.dimensions().map_err(corrupt)?;
    let color = dec.colortype().map_err(corrupt)?;
    let unsupported = |what: String| DecodeError::Unsupported {
        path: path.to_path_buf(),
        format: FORMAT,
        what,
    };
    let (bits, samples) = match color {
        ColorType::Gray(b) => (b, 1),
        ColorType::GrayA(b) => (b, 2),
        ColorType::RGB(b) => (b, 3),
        ColorType::RGBA(b) | ColorType::CMYK(b) => (b, 4),
        ColorType::CMYKA(b) => (b, 5),
        ColorType::Multiband {
            bit_depth,
            num_samples,
        } => (bit_depth, usize::from(num_samples)),
        other => {
            return Err(unsupported(format!(
                "{other:?} pixels; a multiband image needs 8- or 16-bit unsigned samples"
            )));
        }
    };
    if bits != 8 && bits != 16 {
        return Err(unsupported(format!(
            "{bits}-bit samples; a multiband image needs 8- or 16-bit unsigned samples"
        )));
    }
    let channels = u32::try_from(samples).unwrap_or(u32::MAX);
    if samples == 0 || !limits.allows(width, height, channels) {
        return Err(DecodeError::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            channels,
            limits: *limits,
        });
    }
    let planar = dec
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(corrupt)?
        .unwrap_or(1)
        == 2;
    let data: Vec<f64> = match dec.read_image().map_err(corrupt)? {
        DecodingResult::U8(v) => v.into_iter().map(f64::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f64::from).collect(),
        _ => {
            return Err(unsupported(
                "signed or floating-point samples; a multiband image needs 8- or 16-bit unsigned samples".into(),
            ));
        }
    };
    let (w, h) = (width as usize, height as usize);
    if data.len() != w * h * samples {
        return Err(unsupported(format!(
            "decoded {} samples, expected {w}x{h}x{samples}",
            data.len()
        )));
    }
    let cube = if planar {
        Cube::from_shape_vec((samples, h, w), data).expect("length checked")
    } else {
        Cube::from_shape_fn((samples, h, w), |(b, y, x)| data[(y * w + x) * samples + b])
    };
    Ok(cube)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Non-TIFF input through the ordinary image loader, scaled back to DN.
fn load_other(path: &Path, limits: &Limits) -> Result<Cube, DecodeError> {
    let planes = super::io::load(path, limits)?;
    let scale = match planes.bit_depth() {
        BitDepth::Eight => 255.0,
        BitDepth::Sixteen => 65535.0,
    };
    let (w, h) = (planes.width(), planes.height());
    Ok(Cube::from_shape_fn(
        (planes.channel_count(), h, w),
        |(b, y, x)| (f64::from(planes.channel(b)[y * w + x]) * scale).round(),
    ))
}

/// Sorts a `tiff` error by who is at fault (the file, the decoder, the disk).
fn classify(path: &Path, e: tiff::TiffError) -> DecodeError {
    let path = path.to_path_buf();
    match e {
        tiff::TiffError::UnsupportedError(u) => DecodeError::Unsupported {
            path,
            format: FORMAT,
            what: u.to_string(),
        },
        tiff::TiffError::IoError(io) if io.kind() != io::ErrorKind::UnexpectedEof => {
            DecodeError::Io { path, source: io }
        }
        other => DecodeError::Corrupt {
            path,
            format: FORMAT,
            source: ImageError::Decoding(DecodingError::new(
                ImageFormatHint::Exact(ImageFormat::Tiff),
                other,
            )),
        },
    }
}

fn encode_error(path: &Path, e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Encode {
        path: path.to_path_buf(),
        format: OutputFormat::Tiff,
        source: ImageError::Encoding(image::error::EncodingError::new(
            ImageFormatHint::Exact(ImageFormat::Tiff),
            e.to_string(),
        )),
    }
}

/// The bit depth a cube of DN is stored with: 8 when every sample fits `0..=255`, else 16.
pub fn storage_bits(cube: &Cube) -> u8 {
    if cube.iter().any(|&v| v > 255.0) {
        16
    } else {
        8
    }
}

/// The largest DN of a `bits`-bit file (255 or 65535): what a pan-sharpening model's `[0, 1]`
/// range maps to.
pub fn max_dn(bits: u8) -> f64 {
    if bits <= 8 { 255.0 } else { 65535.0 }
}

/// One sample as a `bits`-bit file stores it: rounded, clamped to `0..=2^bits − 1`, NaN → 0.
pub fn quantize_sample(v: f64, bits: u8) -> f64 {
    let max = max_dn(bits);
    if v.is_nan() {
        0.0
    } else {
        v.round().clamp(0.0, max)
    }
}

/// Writes `cube` (DN) to `path` as an 8- or 16-bit TIFF (`bits`), samples rounded and clamped
/// to `0..=2^bits − 1` (NaN → 0); the file name must end in `.tif`/`.tiff`. The file is written
/// to a temporary file in the target directory and renamed into place.
pub fn save_cube(path: &Path, cube: &Cube, bits: u8) -> Result<(), EncodeError> {
    save_cube_geo(path, cube, bits, &GeoTags::default())
}

/// [`save_cube`] with GeoTIFF georeferencing tags (a GeoTIFF when `geo` is not empty).
pub fn save_cube_geo(path: &Path, cube: &Cube, bits: u8, geo: &GeoTags) -> Result<(), EncodeError> {
    let format = OutputFormat::from_path(path)?;
    if format != OutputFormat::Tiff {
        return Err(EncodeError::Encode {
            path: path.to_path_buf(),
            format,
            source: ImageError::Unsupported(UnsupportedError::from_format_and_kind(
                ImageFormatHint::Name(format.to_string()),
                UnsupportedErrorKind::GenericFeature(
                    "multiband images: name the output .tif or .tiff".into(),
                ),
            )),
        });
    }
    if bits != 8 && bits != 16 {
        return Err(EncodeError::Encode {
            path: path.to_path_buf(),
            format,
            source: ImageError::Parameter(ParameterError::from_kind(ParameterErrorKind::Generic(
                format!("{bits}-bit output requested: use 8 or 16"),
            ))),
        });
    }
    check_dir(path)?;
    let (bands, h, w) = cube.dim();
    let too_large = || EncodeError::TooLarge {
        path: path.to_path_buf(),
        width: w,
        height: h,
    };
    let wu = u32::try_from(w).map_err(|_| too_large())?;
    let hu = u32::try_from(h).map_err(|_| too_large())?;
    if cube.is_empty() {
        return Err(too_large());
    }
    let quant = |v: f64| quantize_sample(v, bits);
    // Interleave (chunky): pixel-major, band-minor.
    let mut samples = Vec::with_capacity(cube.len());
    for y in 0..h {
        for x in 0..w {
            for b in 0..bands {
                samples.push(quant(cube[[b, y, x]]));
            }
        }
    }
    let extra = vec![ExtraSamples::Unspecified; bands - 1];
    write_atomic(path, |writer| {
        let mut enc = TiffEncoder::new(writer)
            .map_err(|e| encode_error(path, e))?
            .with_compression(Compression::Deflate(DeflateLevel::default()));
        let result = if bits == 8 {
            let data: Vec<u8> = samples.iter().map(|&v| v as u8).collect();
            let mut img = enc
                .new_image::<colortype::Gray8>(wu, hu)
                .map_err(|e| encode_error(path, e))?;
            if !extra.is_empty() {
                img.extra_samples(&extra)
                    .map_err(|e| encode_error(path, e))?;
            }
            geo.write(img.encoder())
                .map_err(|e| encode_error(path, e))?;
            img.write_data(&data)
        } else {
            let data: Vec<u16> = samples.iter().map(|&v| v as u16).collect();
            let mut img = enc
                .new_image::<colortype::Gray16>(wu, hu)
                .map_err(|e| encode_error(path, e))?;
            if !extra.is_empty() {
                img.extra_samples(&extra)
                    .map_err(|e| encode_error(path, e))?;
            }
            geo.write(img.encoder())
                .map_err(|e| encode_error(path, e))?;
            img.write_data(&data)
        };
        result.map_err(|e| encode_error(path, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_8_and_16_bit_any_band_count() {
        let dir = tempfile::tempdir().unwrap();
        for (bands, bits, max) in [
            (6usize, 8u8, 255.0),
            (1, 16, 65535.0),
            (3, 8, 255.0),
            (5, 16, 65535.0),
        ] {
            let cube = Cube::from_shape_fn((bands, 7, 9), |(b, y, x)| {
                (b * 40 + y * 9 + x) as f64 * max / 120.0 - 3.4 + 0.3 * (x % 3) as f64
            });
            let path = dir.path().join(format!("c{bands}_{bits}.tif"));
            save_cube(&path, &cube, bits).unwrap();
            let back = load_cube(&path, &Limits::default()).unwrap();
            assert_eq!(back.dim(), cube.dim());
            for (a, b) in back.iter().zip(&cube) {
                assert_eq!(*a, b.round().clamp(0.0, max), "{bands} bands, {bits} bits");
            }
            // Saving what was loaded gives the same file content back.
            save_cube(&path, &back, bits).unwrap();
            assert_eq!(load_cube(&path, &Limits::default()).unwrap(), back);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.tif");
        let e = load_cube(&missing, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.tif") && e.contains("not found"), "{e}");
        let bad = dir.path().join("bad.tif");
        std::fs::write(&bad, b"II*\0garbage").unwrap();
        let e = load_cube(&bad, &Limits::default()).unwrap_err().to_string();
        assert!(e.contains("bad.tif"), "{e}");
        let cube = Cube::zeros((6, 4, 4));
        let e = save_cube(&dir.path().join("x.png"), &cube, 8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.png"), "{e}");
        assert!(save_cube(&dir.path().join("x.tif"), &cube, 12).is_err());
        let small = Limits {
            max_width: 2,
            ..Limits::default()
        };
        save_cube(&dir.path().join("y.tif"), &cube, 8).unwrap();
        let e = load_cube(&dir.path().join("y.tif"), &small)
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.tif") && e.contains("exceeds"), "{e}");
    }
}
