//! Camera pixel formats and their conversion to `[0, 1]` planes: the part of V4L2 capture that
//! does not need a device, so it is tested everywhere.

use std::fmt;
use std::str::FromStr;

use crate::imaging::agc::AgcState;
use crate::imaging::{BitDepth, Planes};

/// A V4L2 pixel format ship-edge converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// `GREY`: 8-bit luminance (thermal cores with on-board AGC).
    Grey,
    /// `Y16 `: 16-bit little-endian luminance (radiometric thermal); gain-controlled here.
    Y16,
    /// `YUYV`: packed 4:2:2 (most USB webcams uncompressed).
    Yuyv,
    /// `MJPG`: motion JPEG (USB webcams at high resolution).
    Mjpeg,
}

impl PixelFormat {
    /// All of them, in the order a camera's list is searched when none is requested.
    pub const ALL: [PixelFormat; 4] = [
        PixelFormat::Y16,
        PixelFormat::Grey,
        PixelFormat::Yuyv,
        PixelFormat::Mjpeg,
    ];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Grey => *b"GREY",
            PixelFormat::Y16 => *b"Y16 ",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    /// The format of a four-character code, if supported.
    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// Bytes per pixel of the uncompressed formats (`None` for MJPEG).
    pub fn bytes_per_pixel(self) -> Option<usize> {
        match self {
            PixelFormat::Grey => Some(1),
            PixelFormat::Y16 | PixelFormat::Yuyv => Some(2),
            PixelFormat::Mjpeg => None,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Grey => "grey",
            PixelFormat::Y16 => "y16",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Mjpeg => "mjpeg",
        })
    }
}

/// A format name that is not grey, y16, yuyv or mjpeg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pixel format `{0}` is not supported: choose grey, y16, yuyv or mjpeg")]
pub struct UnknownFormat(pub String);

impl FromStr for PixelFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<PixelFormat, UnknownFormat> {
        match s.to_ascii_lowercase().as_str() {
            "grey" | "gray" => Ok(PixelFormat::Grey),
            "y16" => Ok(PixelFormat::Y16),
            "yuyv" | "yuy2" => Ok(PixelFormat::Yuyv),
            "mjpeg" | "mjpg" => Ok(PixelFormat::Mjpeg),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// A camera buffer's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Pixel format.
    pub format: PixelFormat,
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// Bytes per row (at least `width * bytes_per_pixel`; ignored for MJPEG).
    pub stride: usize,
}

/// Converts one buffer into planes: grey when `grey` is set or the format has no colour, RGB
/// otherwise. `agc` scales Y16 counts. The error says what is wrong with the buffer (a frame
/// to skip, not a reason to stop).
pub fn convert(
    data: &[u8],
    layout: &Layout,
    agc: &mut AgcState,
    grey: bool,
) -> Result<Planes, String> {
    let Layout {
        format,
        width,
        height,
        stride,
    } = *layout;
    if let Some(bpp) = format.bytes_per_pixel() {
        let row = width * bpp;
        if stride < row {
            return Err(format!(
                "stride {stride} is shorter than a {width}-pixel {format} row"
            ));
        }
        let needed = stride * (height - 1) + row;
        if data.len() < needed {
            return Err(format!(
                "{format} buffer holds {} bytes, a {width}x{height} frame needs {needed}",
                data.len()
            ));
        }
    }
    let rows = || (0..height).map(move |y| &data[y * stride..]);
    Ok(match format {
        PixelFormat::Grey => {
            let mut y = Vec::with_capacity(width * height);
            rows().for_each(|r| y.extend(r[..width].iter().map(|&v| f32::from(v) / 255.0)));
            Planes::gray(width, height, y)
        }
        PixelFormat::Y16 => {
            let mut counts = Vec::with_capacity(width * height);
            rows().for_each(|r| {
                counts.extend(
                    r[..2 * width]
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]])),
                )
            });
            let mut y = Vec::with_capacity(width * height);
            agc.apply(&counts, width, height, &mut y);
            Planes::gray(width, height, y).with_bit_depth(BitDepth::Sixteen)
        }
        PixelFormat::Yuyv => {
            let n = width * height;
            let mut planes = [
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            ];
            for r in rows() {
                for x in 0..width {
                    let pair = &r[(x / 2) * 4..];
                    let luma = pair[if x % 2 == 0 { 0 } else { 2 }];
                    // Webcams send BT.601 limited range.
                    let yy = ((f32::from(luma) - 16.0) / 219.0).clamp(0.0, 1.0);
                    if grey {
                        planes[0].push(yy);
                        continue;
                    }
                    let u = (f32::from(pair[1]) - 128.0) / 224.0;
                    let v = (f32::from(pair[3]) - 128.0) / 224.0;
                    planes[0].push((yy + 1.402 * v).clamp(0.0, 1.0));
                    planes[1].push((yy - 0.344_136 * u - 0.714_136 * v).clamp(0.0, 1.0));
                    planes[2].push((yy + 1.772 * u).clamp(0.0, 1.0));
                }
            }
            if grey {
                let [y, ..] = planes;
                Planes::gray(width, height, y)
            } else {
                Planes::rgb(width, height, planes)
            }
        }
        PixelFormat::Mjpeg => {
            let img = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                .map_err(|e| format!("MJPEG frame does not decode: {e}"))?;
            if (img.width() as usize, img.height() as usize) != (width, height) {
                return Err(format!(
                    "MJPEG frame is {}x{}, the camera announced {width}x{height}",
                    img.width(),
                    img.height()
                ));
            }
            if grey {
                let l = img.to_luma8();
                Planes::gray(
                    width,
                    height,
                    l.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
                )
            } else {
                let rgb = img.to_rgb8();
                let channel = |c: usize| {
                    rgb.pixels()
                        .map(|p| f32::from(p.0[c]) / 255.0)
                        .collect::<Vec<_>>()
                };
                Planes::rgb(width, height, [channel(0), channel(1), channel(2)])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::agc::Agc;

    fn layout(format: PixelFormat, width: usize, height: usize, stride: usize) -> Layout {
        Layout {
            format,
            width,
            height,
            stride,
        }
    }

    #[test]
    fn names_and_fourccs() {
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
            assert_eq!(f.to_string().parse::<PixelFormat>().unwrap(), f);
        }
        assert_eq!(PixelFormat::from_fourcc(*b"H264"), None);
    }

    #[test]
    fn grey_rows_honour_the_stride() {
        // 3x2 frame in rows of 4 bytes (one byte of padding each).
        let data = [0, 51, 255, 99, 102, 153, 204, 99];
        let mut agc = AgcState::new(Agc::Linear, 8);
        let p = convert(&data, &layout(PixelFormat::Grey, 3, 2, 4), &mut agc, false).unwrap();
        assert_eq!(p.channel(0), &[0.0, 0.2, 1.0, 0.4, 0.6, 0.8]);
    }

    #[test]
    fn y16_goes_through_the_agc() {
        let counts: [u16; 4] = [1000, 2000, 3000, 16383];
        let data: Vec<u8> = counts.iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut agc = AgcState::new(Agc::Linear, 14);
        let p = convert(&data, &layout(PixelFormat::Y16, 2, 2, 4), &mut agc, true).unwrap();
        assert!((p.channel(0)[1] - 2000.0 / 16383.0).abs() < 1e-6);
        assert_eq!(p.channel(0)[3], 1.0);
        assert_eq!(p.bit_depth(), BitDepth::Sixteen);
    }

    #[test]
    fn yuyv_decodes_grey_and_colour() {
        // Two pixels: Y0 U Y1 V, mid-grey chroma, luma black and white (limited range).
        let data = [16, 128, 235, 128];
        let mut agc = AgcState::new(Agc::Linear, 8);
        let l = layout(PixelFormat::Yuyv, 2, 1, 4);
        let grey = convert(&data, &l, &mut agc, true).unwrap();
        assert_eq!(grey.channel(0), &[0.0, 1.0]);
        let rgb = convert(&data, &l, &mut agc, false).unwrap();
        assert!(rgb.is_rgb() && rgb.channel(2)[1] > 0.99);
        // Strong red: V high.
        let red = convert(&[81, 90, 81, 240], &l, &mut agc, false).unwrap();
        assert!(
            red.channel(0)[0] > 0.9 && red.channel(1)[0] < 0.1,
            "{red:?}"
        );
    }

    #[test]
    fn short_or_garbled_buffers_are_errors() {
        let mut agc = AgcState::new(Agc::Linear, 8);
        let e = convert(
            &[0; 10],
            &layout(PixelFormat::Yuyv, 4, 2, 8),
            &mut agc,
            false,
        )
        .unwrap_err();
        assert!(e.contains("needs 16"), "{e}");
        let e = convert(
            &[0; 8],
            &layout(PixelFormat::Grey, 4, 2, 3),
            &mut agc,
            false,
        )
        .unwrap_err();
        assert!(e.contains("stride"), "{e}");
        let e = convert(
            &[0xFF, 0xD8, 0, 1],
            &layout(PixelFormat::Mjpeg, 4, 2, 0),
            &mut agc,
            false,
        )
        .unwrap_err();
        assert!(e.contains("MJPEG"), "{e}");
    }

    #[test]
    fn mjpeg_decodes_and_checks_the_size() {
        let img = image::GrayImage::from_fn(16, 8, |x, _| image::Luma([(x * 16) as u8]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let mut agc = AgcState::new(Agc::Linear, 8);
        let p = convert(&jpeg, &layout(PixelFormat::Mjpeg, 16, 8, 0), &mut agc, true).unwrap();
        assert!((p.channel(0)[15] - 240.0 / 255.0).abs() < 0.05);
        let e = convert(&jpeg, &layout(PixelFormat::Mjpeg, 32, 8, 0), &mut agc, true).unwrap_err();
        assert!(e.contains("16x8"), "{e}");
    }
}
