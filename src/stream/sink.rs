//! Where fused frames go: a Y4M file or stdout (for `ffplay -` or a GStreamer pipeline), or a
//! PNG sequence. Files are complete or absent: a Y4M file is written to a temp file renamed on
//! [`Sink::finish`] (also after Ctrl-C), each PNG is written atomically.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::y4m::FrameWriter;
use crate::imaging::{EncodeError, Planes, io};

/// A parsed `--out` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// `y4m:PATH`.
    Y4mFile(PathBuf),
    /// `y4m:-`.
    Y4mStdout,
    /// `png:DIR`: `DIR/frame_000000.png`, …
    PngDir(PathBuf),
}

/// An `--out` spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output `{0}`: expected y4m:PATH, y4m:- (stdout) or png:DIR")]
pub struct BadSink(pub String);

impl FromStr for SinkSpec {
    type Err = BadSink;
    fn from_str(s: &str) -> Result<SinkSpec, BadSink> {
        match s.split_once(':') {
            Some(("y4m", "-")) => Ok(SinkSpec::Y4mStdout),
            Some(("y4m", p)) if !p.is_empty() => Ok(SinkSpec::Y4mFile(p.into())),
            Some(("png", p)) if !p.is_empty() => Ok(SinkSpec::PngDir(p.into())),
            _ => Err(BadSink(s.to_string())),
        }
    }
}

impl fmt::Display for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkSpec::Y4mFile(p) => write!(f, "y4m:{}", p.display()),
            SinkSpec::Y4mStdout => f.write_str("y4m:-"),
            SinkSpec::PngDir(p) => write!(f, "png:{}", p.display()),
        }
    }
}

/// A sink failure, naming the output.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed (disk full, closed pipe, …).
    #[error("{target}: {source}")]
    Io {
        /// The output.
        target: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Encoding a PNG failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Takes fused frames in order.
pub trait Sink: Send {
    /// Writes one frame.
    fn write(&mut self, frame: &Planes) -> Result<(), SinkError>;
    /// Flushes and completes the output (renames the temp file into place; a Y4M file without
    /// frames is not created).
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

/// Opens a sink; checks the target (folder exists, writable) before any frame is fused.
/// `fps` is the rate a Y4M header announces.
pub fn open(spec: &SinkSpec, fps: f64) -> Result<Box<dyn Sink>, SinkError> {
    let io_err = |target: &Path, source| SinkError::Io {
        target: target.display().to_string(),
        source,
    };
    Ok(match spec {
        SinkSpec::Y4mStdout => Box::new(Y4mSink {
            target: "stdout".into(),
            out: Output::Stdout(BufWriter::new(std::io::stdout())),
            writer: FrameWriter::new(fps),
            frames: 0,
        }),
        SinkSpec::Y4mFile(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let tmp = tempfile::Builder::new()
                .prefix(".ship-edge-stream-")
                .suffix(".y4m.tmp")
                .tempfile_in(dir)
                .map_err(|e| io_err(path, e))?;
            Box::new(Y4mSink {
                target: path.display().to_string(),
                out: Output::File {
                    writer: BufWriter::with_capacity(1 << 20, tmp),
                    path: path.clone(),
                },
                writer: FrameWriter::new(fps),
                frames: 0,
            })
        }
        SinkSpec::PngDir(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            Box::new(PngSink {
                dir: dir.clone(),
                next: 0,
            })
        }
    })
}

enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        writer: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
    },
}

struct Y4mSink {
    target: String,
    out: Output,
    writer: FrameWriter,
    frames: u64,
}

impl Sink for Y4mSink {
    fn write(&mut self, frame: &Planes) -> Result<(), SinkError> {
        let err = |source| SinkError::Io {
            target: self.target.clone(),
            source,
        };
        match &mut self.out {
            Output::Stdout(w) => {
                self.writer.write(w, frame).map_err(err)?;
                // A viewer at the other end of the pipe wants each frame now.
                w.flush().map_err(err)?;
            }
            Output::File { writer, .. } => self.writer.write(writer, frame).map_err(err)?,
        }
        self.frames += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        let target = self.target.clone();
        let err = |source| SinkError::Io {
            target: target.clone(),
            source,
        };
        match self.out {
            Output::Stdout(mut w) => w.flush().map_err(err),
            // No frame, no file: a stream without a header is not a valid Y4M file.
            Output::File { .. } if self.frames == 0 => Ok(()),
            Output::File { writer, path } => {
                let tmp = writer.into_inner().map_err(|e| err(e.into_error()))?;
                tmp.as_file().sync_all().map_err(err)?;
                tmp.persist(&path).map_err(|e| err(e.error))?;
                Ok(())
            }
        }
    }
}

struct PngSink {
    dir: PathBuf,
    next: u64,
}

impl Sink for PngSink {
    fn write(&mut self, frame: &Planes) -> Result<(), SinkError> {
        let path = self.dir.join(format!("frame_{:06}.png", self.next));
        io::save(&path, frame)?;
        self.next += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("y4m:-".parse::<SinkSpec>().unwrap(), SinkSpec::Y4mStdout);
        assert_eq!(
            "png:out".parse::<SinkSpec>().unwrap(),
            SinkSpec::PngDir("out".into())
        );
        for bad in ["out.y4m", "mp4:x", "y4m:"] {
            assert!(
                bad.parse::<SinkSpec>()
                    .unwrap_err()
                    .to_string()
                    .contains("y4m:PATH")
            );
        }
    }

    #[test]
    fn y4m_file_appears_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.y4m");
        let mut sink = open(&SinkSpec::Y4mFile(path.clone()), 25.0).unwrap();
        sink.write(&Planes::gray(2, 2, vec![0.5; 4])).unwrap();
        assert!(!path.exists());
        sink.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"YUV4MPEG2 W2 H2 F25000:1000"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_missing_output_folder_is_an_error_naming_it() {
        let e = open(&SinkSpec::Y4mFile("/nonexistent-dir/x.y4m".into()), 30.0)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent-dir/x.y4m"), "{e}");
    }
}
