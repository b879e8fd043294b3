//! Frame sources of `ship-edge stream`, named by a spec string:
//!
//! | spec | source |
//! |---|---|
//! | `dir:PATH` | the images in a folder, sorted by file name |
//! | `y4m:PATH`, `y4m:-` | a YUV4MPEG2 file or pipe (stdin) |
//! | `y16:PATH:WxH[:BITS]`, `y16:-:WxH` | raw little-endian 16-bit frames (thermal cores), 16 or `BITS` significant bits |
//! | `v4l2:DEV[,size=WxH][,format=F][,fps=N]` | a V4L2 camera (Linux); F is grey, y16, yuyv or mjpeg |
//!
//! Files and pipes are not live: they give frames as fast as they are taken, stamped with
//! their nominal time (`index / fps`), and the pipeline waits for them instead of dropping.
//! Cameras are live: frames are stamped on arrival and dropped when inference falls behind.

mod dir;
pub mod pixfmt;
mod raw16;
#[cfg(target_os = "linux")]
mod v4l2;
mod y4m;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::imaging::Planes;
use crate::imaging::agc::Agc;
pub use pixfmt::PixelFormat;

/// One frame as a source gives it.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The frame, `[0, 1]`, grey or RGB.
    pub image: Planes,
    /// Its time in the source's own clock (files: `index / fps`); `None` for live sources,
    /// which the pipeline stamps on arrival.
    pub timestamp: Option<Duration>,
}

/// A source failure, with what the pipeline does about it. Messages name the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// One frame is unusable (undecodable, cut short, wrong size): skipped and counted.
    #[error("{0}")]
    Corrupt(String),
    /// The device went away (unplugged, I/O error): the pipeline reconnects with back-off.
    #[error("{0}")]
    Lost(String),
    /// The source cannot be used at all (missing file, bad header, unsupported format).
    #[error("{0}")]
    Fatal(String),
}

/// Something that gives frames. Implementations block in [`next_frame`](Source::next_frame)
/// until a frame is there; the pipeline runs each source on its own thread.
pub trait Source: Send {
    /// The spec it was opened from, for messages.
    fn name(&self) -> &str;
    /// Whether frames arrive in real time (cameras) rather than on demand (files, pipes).
    fn is_live(&self) -> bool;
    /// The nominal frame rate, where the source declares one.
    fn fps(&self) -> Option<f64>;
    /// The next frame; `Ok(None)` at the end of a finite source.
    fn next_frame(&mut self) -> Result<Option<Captured>, SourceError>;
    /// Opens the device again after a [`SourceError::Lost`]. Sources that cannot come back
    /// say so with [`SourceError::Fatal`].
    fn reconnect(&mut self) -> Result<(), SourceError> {
        Err(SourceError::Fatal(format!(
            "{}: cannot reconnect",
            self.name()
        )))
    }
}

/// How to open a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceOptions {
    /// Frame rate of folder and raw Y16 sources (Y4M streams declare their own).
    pub fps: f64,
    /// Gain control of 14/16-bit thermal frames (raw Y16, V4L2 Y16).
    pub agc: Agc,
    /// Give grey frames (the IR side only uses luminance).
    pub grey: bool,
}

impl Default for SourceOptions {
    fn default() -> SourceOptions {
        SourceOptions {
            fps: 30.0,
            agc: Agc::default(),
            grey: false,
        }
    }
}

/// Where to read: `-` is stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    fn parse(s: &str) -> Input {
        if s == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(s))
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("-"),
            Input::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Camera settings of a `v4l2:` spec; unset values keep the device's current ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CameraSettings {
    /// Requested frame size.
    pub size: Option<(u32, u32)>,
    /// Requested pixel format.
    pub format: Option<PixelFormat>,
    /// Requested frame rate.
    pub fps: Option<u32>,
}

/// A parsed source spec (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// `dir:PATH`.
    Dir(PathBuf),
    /// `y4m:PATH` or `y4m:-`.
    Y4m(Input),
    /// `y16:PATH:WxH[:BITS]`.
    Y16 {
        /// Where the frames come from.
        input: Input,
        /// Frame width.
        width: usize,
        /// Frame height.
        height: usize,
        /// Significant bits per sample (14 for most radiometric cores, 16 by default).
        bits: u32,
    },
    /// `v4l2:DEV[,size=WxH][,format=F][,fps=N]`.
    V4l2 {
        /// The device node.
        device: PathBuf,
        /// Requested settings.
        settings: CameraSettings,
    },
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Dir(p) => write!(f, "dir:{}", p.display()),
            SourceSpec::Y4m(i) => write!(f, "y4m:{i}"),
            SourceSpec::Y16 {
                input,
                width,
                height,
                bits,
            } => write!(f, "y16:{input}:{width}x{height}:{bits}"),
            SourceSpec::V4l2 { device, settings } => {
                write!(f, "v4l2:{}", device.display())?;
                if let Some((w, h)) = settings.size {
                    write!(f, ",size={w}x{h}")?;
                }
                if let Some(p) = settings.format {
                    write!(f, ",format={p}")?;
                }
                if let Some(r) = settings.fps {
                    write!(f, ",fps={r}")?;
                }
                Ok(())
            }
        }
    }
}

/// A source spec that does not parse; the message shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "source `{spec}`: {reason} (expected dir:PATH, y4m:PATH|-, y16:PATH|-:WxH[:BITS] or v4l2:DEV[,size=WxH][,format=grey|y16|yuyv|mjpeg][,fps=N])"
)]
pub struct BadSpec {
    /// The spec as given.
    pub spec: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `WxH` (both at least 1).
pub fn parse_size(s: &str) -> Option<(usize, usize)> {
    let (w, h) = s.split_once(['x', 'X'])?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

impl FromStr for SourceSpec {
    type Err = BadSpec;
    fn from_str(spec: &str) -> Result<SourceSpec, BadSpec> {
        let bad = |reason: &str| BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("no `kind:` prefix"))?;
        if rest.is_empty() {
            return Err(bad("no path after the prefix"));
        }
        match kind {
            "dir" => Ok(SourceSpec::Dir(PathBuf::from(rest))),
            "y4m" => Ok(SourceSpec::Y4m(Input::parse(rest))),
            "y16" => {
                // Split from the right: the path itself may contain ':'.
                let mut parts = rest.rsplitn(3, ':').collect::<Vec<_>>();
                parts.reverse();
                let joined;
                let (path, size, bits) = match parts.as_slice() {
                    [p, s] => (*p, *s, None),
                    // `a:b:WxH` is a path with a colon and no bits.
                    [p, s, b] if parse_size(b).is_some() => {
                        joined = format!("{p}:{s}");
                        (joined.as_str(), *b, None)
                    }
                    [p, s, b] => (*p, *s, Some(*b)),
                    _ => return Err(bad("expected y16:PATH:WxH[:BITS]")),
                };
                let (width, height) = parse_size(size)
                    .ok_or_else(|| bad("the frame size must be WxH, e.g. 160x120"))?;
                let bits = match bits {
                    None => 16,
                    Some(b) => b
                        .parse::<u32>()
                        .ok()
                        .filter(|b| (8..=16).contains(b))
                        .ok_or_else(|| {
                            bad("BITS must be 8..16 (14 for Lepton/Boson radiometric output)")
                        })?,
                };
                if path.is_empty() {
                    return Err(bad("no path"));
                }
                Ok(SourceSpec::Y16 {
                    input: Input::parse(path),
                    width,
                    height,
                    bits,
                })
            }
            "v4l2" => {
                let mut parts = rest.split(',');
                let device = PathBuf::from(parts.next().unwrap_or_default());
                let mut settings = CameraSettings::default();
                for opt in parts {
                    let (k, v) = opt
                        .split_once('=')
                        .ok_or_else(|| bad("options are key=value"))?;
                    match k {
                        "size" => {
                            let (w, h) = parse_size(v).ok_or_else(|| bad("size must be WxH"))?;
                            settings.size = Some((w as u32, h as u32));
                        }
                        "format" => {
                            settings.format = Some(
                                v.parse()
                                    .map_err(|e: pixfmt::UnknownFormat| bad(&e.to_string()))?,
                            )
                        }
                        "fps" => {
                            settings.fps = Some(
                                v.parse()
                                    .ok()
                                    .filter(|&f| f > 0)
                                    .ok_or_else(|| bad("fps must be a positive integer"))?,
                            )
                        }
                        _ => return Err(bad(&format!("unknown option `{k}` (size, format, fps)"))),
                    }
                }
                Ok(SourceSpec::V4l2 { device, settings })
            }
            _ => Err(bad(&format!("unknown kind `{kind}`"))),
        }
    }
}

/// Opens the source a spec names. Failures that make the source unusable (a missing folder,
/// a bad header, no camera) are [`SourceError::Fatal`] and name the spec.
pub fn open(
    spec: &SourceSpec,
    name: &str,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Dir(path) => Box::new(dir::DirSource::open(path, name, opts)?),
        SourceSpec::Y4m(input) => Box::new(y4m::Y4mSource::open(input, name, opts)?),
        SourceSpec::Y16 {
            input,
            width,
            height,
            bits,
        } => Box::new(raw16::Y16Source::open(
            input,
            name,
            (*width, *height),
            *bits,
            opts,
        )?),
        #[cfg(target_os = "linux")]
        SourceSpec::V4l2 { device, settings } => {
            Box::new(v4l2::V4l2Source::open(device, settings, name, opts)?)
        }
        #[cfg(not(target_os = "linux"))]
        SourceSpec::V4l2 { .. } => {
            return Err(SourceError::Fatal(format!(
                "{name}: V4L2 cameras are only supported on Linux"
            )));
        }
    })
}

/// Opens `input` for buffered reading.
fn reader(input: &Input, name: &str) -> Result<Box<dyn std::io::BufRead + Send>, SourceError> {
    Ok(match input {
        Input::Stdin => Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
        Input::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| {
                SourceError::Fatal(format!("{name}: cannot open {}: {e}", p.display()))
            })?;
            Box::new(std::io::BufReader::with_capacity(1 << 20, f))
        }
    })
}

/// The nominal time of frame `index` at `fps`.
fn nominal_time(index: u64, fps: f64) -> Duration {
    Duration::from_secs_f64(index as f64 / fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            "dir:a/b".parse::<SourceSpec>().unwrap(),
            SourceSpec::Dir("a/b".into())
        );
        assert_eq!(
            "y4m:-".parse::<SourceSpec>().unwrap(),
            SourceSpec::Y4m(Input::Stdin)
        );
        assert_eq!(
            "y16:lepton.raw:160x120:14".parse::<SourceSpec>().unwrap(),
            SourceSpec::Y16 {
                input: Input::File("lepton.raw".into()),
                width: 160,
                height: 120,
                bits: 14
            }
        );
        assert_eq!(
            "y16:c:/x.raw:640x512".parse::<SourceSpec>().unwrap(),
            SourceSpec::Y16 {
                input: Input::File("c:/x.raw".into()),
                width: 640,
                height: 512,
                bits: 16
            }
        );
        assert_eq!(
            "v4l2:/dev/video2,size=640x512,format=y16,fps=30"
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::V4l2 {
                device: "/dev/video2".into(),
                settings: CameraSettings {
                    size: Some((640, 512)),
                    format: Some(PixelFormat::Y16),
                    fps: Some(30)
                }
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        for (spec, why) in [
            ("frames/", "prefix"),
            ("http:x", "unknown kind"),
            ("y16:a.raw", "y16:PATH:WxH"),
            ("y16:a.raw:160x0", "WxH"),
            ("y16:a.raw:160x120:20", "BITS"),
            ("v4l2:/dev/video0,format=h264", "h264"),
            ("v4l2:/dev/video0,gain=3", "unknown option"),
            ("dir:", "no path"),
        ] {
            let e = spec.parse::<SourceSpec>().unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("dir:PATH"), "{spec}: {e}");
        }
    }
}
