//! `v4l2:DEV`: a V4L2 camera through `linuxvideo` (plain ioctls, no system libraries), mmap
//! streaming, frames converted by [`super::pixfmt`]. Frames are stamped on arrival.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linuxvideo::format::{Format, PixFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, Device, Fract};

use super::pixfmt::{self, Layout, PixelFormat};
use super::{CameraSettings, Captured, Source, SourceError, SourceOptions};
use crate::imaging::agc::AgcState;

/// A camera that delivers nothing for this long is treated as lost and reopened.
const NO_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one `poll` waits.
const POLL_MS: i32 = 250;

/// A V4L2 capture source.
pub struct V4l2Source {
    name: String,
    device: PathBuf,
    settings: CameraSettings,
    grey: bool,
    agc: AgcState,
    layout: Layout,
    stream: ReadStream,
}

impl V4l2Source {
    /// Opens the device, negotiates format, size and rate, and starts streaming.
    pub fn open(
        device: &Path,
        settings: &CameraSettings,
        name: &str,
        opts: &SourceOptions,
    ) -> Result<V4l2Source, SourceError> {
        let (stream, layout) = start(device, settings, name).map_err(SourceError::Fatal)?;
        Ok(V4l2Source {
            name: name.to_string(),
            device: device.to_path_buf(),
            settings: settings.clone(),
            grey: opts.grey,
            agc: AgcState::new(opts.agc, 16),
            layout,
            stream,
        })
    }
}

/// Opens and configures the camera; the error names the device and says what it offers.
fn start(
    device: &Path,
    settings: &CameraSettings,
    name: &str,
) -> Result<(ReadStream, Layout), String> {
    let fail = |what: &str, e: std::io::Error| format!("{name}: {}: {what}: {e}", device.display());
    let dev = Device::open(device).map_err(|e| fail("cannot open", e))?;
    let offered: Vec<[u8; 4]> = dev
        .formats(BufType::VIDEO_CAPTURE)
        .filter_map(|f| f.ok().map(|f| f.pixel_format().as_fourcc()))
        .collect();
    let supported: Vec<PixelFormat> = offered
        .iter()
        .filter_map(|&c| PixelFormat::from_fourcc(c))
        .collect();
    let offered_names = || {
        offered
            .iter()
            .map(|c| String::from_utf8_lossy(c).trim().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let format = match settings.format {
        Some(f) if supported.contains(&f) => f,
        Some(f) => {
            return Err(format!(
                "{name}: {} does not offer {f} (it offers: {})",
                device.display(),
                offered_names()
            ));
        }
        None => PixelFormat::ALL
            .into_iter()
            .find(|f| supported.contains(f))
            .ok_or_else(|| {
                format!(
                    "{name}: {} offers none of grey, y16, yuyv, mjpeg (it offers: {})",
                    device.display(),
                    offered_names()
                )
            })?,
    };
    let Format::VideoCapture(current) = dev
        .format(BufType::VIDEO_CAPTURE)
        .map_err(|e| fail("cannot read the format", e))?
    else {
        return Err(format!(
            "{name}: {} is not a capture device",
            device.display()
        ));
    };
    let (w, h) = settings.size.unwrap_or((current.width(), current.height()));
    let fourcc = linuxvideo::format::PixelFormat::from_fourcc(format.fourcc());
    let capture = dev
        .video_capture(PixFormat::new(w, h, fourcc))
        .map_err(|e| fail("cannot set the format", e))?;
    let got = capture.format();
    if got.pixel_format().as_fourcc() != format.fourcc() {
        return Err(format!(
            "{name}: {} switched to {} instead of {format}",
            device.display(),
            String::from_utf8_lossy(&got.pixel_format().as_fourcc())
        ));
    }
    if let Some(fps) = settings.fps {
        capture
            .set_frame_interval(Fract::new(1, fps))
            .map_err(|e| fail("cannot set the frame rate", e))?;
    }
    let layout = Layout {
        format,
        width: got.width() as usize,
        height: got.height() as usize,
        stride: got.bytes_per_line() as usize,
    };
    let stream = capture
        .into_stream()
        .map_err(|e| fail("cannot start streaming", e))?;
    Ok((stream, layout))
}

impl Source for V4l2Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_live(&self) -> bool {
        true
    }

    fn fps(&self) -> Option<f64> {
        self.settings.fps.map(f64::from)
    }

    fn next_frame(&mut self) -> Result<Option<Captured>, SourceError> {
        let lost = |why: String| {
            SourceError::Lost(format!("{}: {}: {why}", self.name, self.device.display()))
        };
        let since = Instant::now();
        // Wait with poll so a silent camera is noticed instead of blocking forever.
        loop {
            let mut pfd = libc::pollfd {
                fd: self.stream.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(lost(format!("poll failed: {e}")));
            }
            if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(lost("the device went away".into()));
            }
            if r > 0 {
                break;
            }
            if since.elapsed() > NO_FRAME_TIMEOUT {
                return Err(lost(format!(
                    "no frame for {} s",
                    NO_FRAME_TIMEOUT.as_secs()
                )));
            }
        }
        let (layout, grey, agc) = (self.layout, self.grey, &mut self.agc);
        let converted = self
            .stream
            .dequeue(|buf| {
                Ok(if buf.is_error() {
                    Err("the driver flagged the buffer as damaged".to_string())
                } else {
                    pixfmt::convert(&buf, &layout, agc, grey)
                })
            })
            .map_err(|e| lost(format!("dequeue failed: {e}")))?;
        match converted {
            Ok(image) => Ok(Some(Captured {
                image,
                timestamp: None,
            })),
            Err(why) => Err(SourceError::Corrupt(format!("{}: {why}", self.name))),
        }
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        // A stream that failed to start is retried by the pipeline's back-off (Lost, not Fatal):
        // a replugged camera takes a moment to reappear.
        let (stream, layout) =
            start(&self.device, &self.settings, &self.name).map_err(SourceError::Lost)?;
        self.stream = stream;
        self.layout = layout;
        Ok(())
    }
}
