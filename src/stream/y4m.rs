//! YUV4MPEG2 (`.y4m`), the uncompressed stream format of `ffmpeg -f yuv4mpegpipe`, `ffplay -`
//! and GStreamer's `y4menc`/`y4mdec`: a text header line, then frames, each a `FRAME` line
//! followed by the planes. 8-bit only; colour spaces `mono`, `420jpeg`/`420paldv`/`420mpeg2`/
//! `420`, `422` and `444`.
//!
//! Decoding converts YCbCr to RGB with BT.601 (limited range unless the header says
//! `XCOLORRANGE=FULL`); encoding writes `mono` for grey frames and full-range `444` (tagged
//! `XCOLORRANGE=FULL`) for colour ones, so nothing is subsampled twice.

use std::io::{self, BufRead, Write};

use crate::imaging::Planes;

/// The stream signature.
const MAGIC: &str = "YUV4MPEG2";
/// A frame's marker.
const FRAME: &[u8] = b"FRAME";
/// The longest header or frame line accepted (real ones are under 100 bytes).
const MAX_LINE: usize = 4096;

/// Chroma layout of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// Luma only.
    Mono,
    /// Chroma halved on both axes.
    C420,
    /// Chroma halved horizontally.
    C422,
    /// Full-resolution chroma.
    C444,
}

impl Chroma {
    fn parse(tag: &str) -> Option<Chroma> {
        Some(match tag {
            "mono" => Chroma::Mono,
            "420jpeg" | "420paldv" | "420mpeg2" | "420" => Chroma::C420,
            "422" => Chroma::C422,
            "444" => Chroma::C444,
            _ => return None,
        })
    }

    /// Chroma plane size for a `width` x `height` frame (none for mono).
    fn plane(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Chroma::Mono => (0, 0),
            Chroma::C420 => (width.div_ceil(2), height.div_ceil(2)),
            Chroma::C422 => (width.div_ceil(2), height),
            Chroma::C444 => (width, height),
        }
    }
}

/// A parsed stream header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// Frames per second (`F` tag; 30 when absent).
    pub fps: f64,
    /// Chroma layout (`C` tag; 420 when absent, as the format specifies).
    pub chroma: Chroma,
    /// `XCOLORRANGE=FULL`: samples use 0..255 rather than 16..235/240.
    pub full_range: bool,
}

impl Header {
    /// Bytes of one frame's planes.
    pub fn frame_bytes(&self) -> usize {
        let (cw, ch) = self.chroma.plane(self.width, self.height);
        self.width * self.height + 2 * cw * ch
    }
}

/// What is wrong with a stream; the caller adds the file name.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The stream does not start with a valid header.
    #[error("not a YUV4MPEG2 stream: {0}")]
    Header(String),
    /// A frame is damaged; the reader resynchronised on the next `FRAME` marker.
    #[error("corrupt frame: {0}")]
    Frame(String),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one line (without the `\n`), at most [`MAX_LINE`] bytes; `None` at a clean end.
fn read_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<()>> {
    line.clear();
    let n = io::Read::take(&mut *r, MAX_LINE as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if n > MAX_LINE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    } else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream ends inside a line",
        ));
    }
    Ok(Some(()))
}

/// Parses the header line of a stream.
pub fn read_header(r: &mut impl BufRead) -> Result<Header, Y4mError> {
    let mut line = Vec::new();
    match read_line(r, &mut line) {
        Ok(Some(())) => {}
        Ok(None) => return Err(Y4mError::Header("the stream is empty".into())),
        Err(e) => return Err(Y4mError::Header(format!("no header line ({e})"))),
    }
    let text = String::from_utf8_lossy(&line);
    let mut tags = text.split(' ');
    if tags.next() != Some(MAGIC) {
        return Err(Y4mError::Header(format!(
            "it does not start with `{MAGIC}`"
        )));
    }
    let (mut width, mut height) = (None, None);
    let mut header = Header {
        width: 0,
        height: 0,
        fps: 30.0,
        chroma: Chroma::C420,
        full_range: false,
    };
    let bad = |what: &str, v: &str| Y4mError::Header(format!("bad {what} `{v}`"));
    for tag in tags.filter(|t| !t.is_empty()) {
        let (key, value) = tag.split_at(1);
        match key {
            "W" => width = Some(value.parse::<usize>().map_err(|_| bad("width", value))?),
            "H" => height = Some(value.parse::<usize>().map_err(|_| bad("height", value))?),
            "F" => {
                let (n, d) = value
                    .split_once(':')
                    .ok_or_else(|| bad("frame rate", value))?;
                let (n, d) = (n.parse::<f64>(), d.parse::<f64>());
                match (n, d) {
                    (Ok(n), Ok(d)) if n > 0.0 && d > 0.0 => header.fps = n / d,
                    _ => return Err(bad("frame rate", value)),
                }
            }
            "C" => {
                header.chroma = Chroma::parse(value).ok_or_else(|| {
                    Y4mError::Header(format!(
                        "colour space `{value}` is not supported (8-bit mono, 420*, 422 or 444)"
                    ))
                })?
            }
            "X" => header.full_range |= value == "COLORRANGE=FULL",
            _ => {} // interlacing, aspect ratio, comments: not needed
        }
    }
    match (width, height) {
        (Some(w), Some(h)) if w > 0 && h > 0 && w.checked_mul(h).is_some_and(|n| n <= 1 << 28) => {
            header.width = w;
            header.height = h;
            Ok(header)
        }
        _ => Err(Y4mError::Header("missing or invalid W and H tags".into())),
    }
}

/// Reads frames of a stream whose header has been read.
#[derive(Debug)]
pub struct FrameReader {
    header: Header,
    line: Vec<u8>,
    buf: Vec<u8>,
    /// [`resync`](FrameReader::resync) consumed a `FRAME` marker: the next line is its rest.
    after_marker: bool,
}

impl FrameReader {
    /// A reader for frames of `header`.
    pub fn new(header: Header) -> FrameReader {
        FrameReader {
            header,
            line: Vec::new(),
            buf: vec![0; header.frame_bytes()],
            after_marker: false,
        }
    }

    /// The stream's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next frame as grey (mono streams, or `grey_only`) or RGB planes; `Ok(None)` at the
    /// end. A frame without its marker or cut short is a [`Y4mError::Frame`]; after one the
    /// reader skips to the next marker, so one damaged frame costs one frame.
    pub fn next(
        &mut self,
        r: &mut impl BufRead,
        grey_only: bool,
    ) -> Result<Option<Planes>, Y4mError> {
        match read_line(r, &mut self.line) {
            Ok(None) => return Ok(None),
            Ok(Some(())) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Y4mError::Frame(
                    "the stream ends inside a frame header".into(),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.resync(r)?;
                return Err(Y4mError::Frame("frame header line too long".into()));
            }
            Err(e) => return Err(e.into()),
        }
        if !std::mem::take(&mut self.after_marker) && !self.line.starts_with(FRAME) {
            self.resync(r)?;
            return Err(Y4mError::Frame(format!(
                "expected a `FRAME` line, found {:?}",
                String::from_utf8_lossy(&self.line[..self.line.len().min(16)])
            )));
        }
        if let Err(e) = r.read_exact(&mut self.buf) {
            return match e.kind() {
                io::ErrorKind::UnexpectedEof => Err(Y4mError::Frame(format!(
                    "the stream ends inside a frame ({} bytes expected)",
                    self.buf.len()
                ))),
                _ => Err(e.into()),
            };
        }
        Ok(Some(self.decode(grey_only)))
    }

    /// Skips bytes up to and including the next `FRAME` marker (or to the end); the next
    /// [`next`](FrameReader::next) then reads the rest of that marker's line.
    fn resync(&mut self, r: &mut impl BufRead) -> io::Result<()> {
        let mut matched = 0;
        loop {
            let available = r.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            let mut consumed = 0;
            for &b in available {
                consumed += 1;
                // No byte of the marker repeats its first one, so a mismatch restarts at 0 or 1.
                matched = if b == FRAME[matched] {
                    matched + 1
                } else {
                    usize::from(b == FRAME[0])
                };
                if matched == FRAME.len() {
                    r.consume(consumed);
                    self.after_marker = true;
                    return Ok(());
                }
            }
            r.consume(consumed);
        }
    }

    fn decode(&self, grey_only: bool) -> Planes {
        let Header {
            width,
            height,
            chroma,
            full_range,
            ..
        } = self.header;
        let n = width * height;
        let luma = &self.buf[..n];
        if chroma == Chroma::Mono || grey_only {
            let y = luma.iter().map(|&v| luma_level(v, full_range)).collect();
            return Planes::gray(width, height, y);
        }
        let (cw, ch) = chroma.plane(width, height);
        let (cb, cr) = self.buf[n..].split_at(cw * ch);
        let (sx, sy) = (width.div_ceil(cw), height.div_ceil(ch));
        let mut rgb = [
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        ];
        for y in 0..height {
            for x in 0..width {
                let ci = (y / sy) * cw + x / sx;
                let yy = luma_level(luma[y * width + x], full_range);
                let (u, v) = (
                    chroma_level(cb[ci], full_range),
                    chroma_level(cr[ci], full_range),
                );
                rgb[0].push((yy + 1.402 * v).clamp(0.0, 1.0));
                rgb[1].push((yy - 0.344_136 * u - 0.714_136 * v).clamp(0.0, 1.0));
                rgb[2].push((yy + 1.772 * u).clamp(0.0, 1.0));
            }
        }
        Planes::rgb(width, height, rgb)
    }
}

/// A luma sample in `[0, 1]`.
fn luma_level(v: u8, full: bool) -> f32 {
    if full {
        f32::from(v) / 255.0
    } else {
        ((f32::from(v) - 16.0) / 219.0).clamp(0.0, 1.0)
    }
}

/// A chroma sample centred on 0, in `[-0.5, 0.5]`.
fn chroma_level(v: u8, full: bool) -> f32 {
    if full {
        (f32::from(v) - 128.0) / 255.0
    } else {
        ((f32::from(v) - 128.0) / 224.0).clamp(-0.5, 0.5)
    }
}

/// Writes frames as a YUV4MPEG2 stream (header on the first frame).
#[derive(Debug)]
pub struct FrameWriter {
    fps: (u32, u32),
    header: Option<(usize, usize, bool)>,
    buf: Vec<u8>,
}

impl FrameWriter {
    /// A writer announcing `fps` frames per second (as a rational with denominator 1000).
    pub fn new(fps: f64) -> FrameWriter {
        let num = (fps.clamp(0.001, 1000.0) * 1000.0).round() as u32;
        FrameWriter {
            fps: (num, 1000),
            header: None,
            buf: Vec::new(),
        }
    }

    /// Writes one frame. Every frame must have the first frame's size and channel count.
    pub fn write(&mut self, w: &mut impl Write, frame: &Planes) -> io::Result<()> {
        let shape = (frame.width(), frame.height(), frame.is_rgb());
        match self.header {
            None => {
                let c = if shape.2 {
                    "444 XCOLORRANGE=FULL"
                } else {
                    "mono XCOLORRANGE=FULL"
                };
                writeln!(
                    w,
                    "{MAGIC} W{} H{} F{}:{} Ip A1:1 C{c}",
                    shape.0, shape.1, self.fps.0, self.fps.1
                )?;
                self.header = Some(shape);
            }
            Some(s) if s != shape => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "frame is {}x{} {}, the stream was started with {}x{} {}",
                        shape.0,
                        shape.1,
                        if shape.2 { "RGB" } else { "grey" },
                        s.0,
                        s.1,
                        if s.2 { "RGB" } else { "grey" }
                    ),
                ));
            }
            Some(_) => {}
        }
        let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        // Chroma zero is code 128 in full-range 8-bit, so grey pixels round-trip exactly.
        let qc = |c: f32| (128.0 + c * 255.0).round().clamp(0.0, 255.0) as u8;
        self.buf.clear();
        if frame.is_rgb() {
            let (r, g, b) = (frame.channel(0), frame.channel(1), frame.channel(2));
            let ycc = |i: usize| {
                let y = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i];
                (y, (b[i] - y) / 1.772, (r[i] - y) / 1.402)
            };
            let n = frame.width() * frame.height();
            self.buf.extend((0..n).map(|i| q(ycc(i).0)));
            self.buf.extend((0..n).map(|i| qc(ycc(i).1)));
            self.buf.extend((0..n).map(|i| qc(ycc(i).2)));
        } else {
            self.buf.extend(frame.channel(0).iter().map(|&v| q(v)));
        }
        w.write_all(FRAME)?;
        w.write_all(b"\n")?;
        w.write_all(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn header(tags: &str) -> Result<Header, Y4mError> {
        read_header(&mut Cursor::new(format!("{tags}\n").into_bytes()))
    }

    #[test]
    fn headers_parse_and_bad_ones_say_why() {
        let h = header("YUV4MPEG2 W640 H512 F25:1 Ip A1:1 C420jpeg XYSCSS=420JPEG").unwrap();
        assert_eq!(
            (h.width, h.height, h.fps, h.chroma),
            (640, 512, 25.0, Chroma::C420)
        );
        assert_eq!(h.frame_bytes(), 640 * 512 * 3 / 2);
        assert_eq!(header("YUV4MPEG2 W5 H3 Cmono").unwrap().frame_bytes(), 15);
        assert_eq!(
            header("YUV4MPEG2 W5 H3 C420").unwrap().frame_bytes(),
            15 + 2 * 3 * 2
        );
        for (bad, why) in [
            ("RIFF W1 H1", "YUV4MPEG2"),
            ("YUV4MPEG2 W640", "W and H"),
            ("YUV4MPEG2 W640 H480 C420p10", "not supported"),
            ("YUV4MPEG2 W640 H480 F30:0", "frame rate"),
        ] {
            let e = header(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn grey_and_colour_frames_round_trip() {
        let grey = Planes::gray(3, 2, vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let colour = Planes::rgb(
            2,
            2,
            [
                vec![1.0, 0.0, 0.0, 0.5],
                vec![0.0, 1.0, 0.0, 0.5],
                vec![0.0, 0.0, 1.0, 0.5],
            ],
        );
        for frame in [grey, colour] {
            let mut bytes = Vec::new();
            let mut w = FrameWriter::new(30.0);
            w.write(&mut bytes, &frame).unwrap();
            w.write(&mut bytes, &frame).unwrap();
            let mut r = Cursor::new(bytes);
            let h = read_header(&mut r).unwrap();
            let mut reader = FrameReader::new(h);
            for _ in 0..2 {
                let back = reader.next(&mut r, false).unwrap().unwrap();
                assert_eq!(back.channel_count(), frame.channel_count());
                for c in 0..frame.channel_count() {
                    for (a, b) in back.channel(c).iter().zip(frame.channel(c)) {
                        assert!((a - b).abs() < 0.01, "{a} vs {b}");
                    }
                }
            }
            assert!(reader.next(&mut r, false).unwrap().is_none());
        }
    }

    #[test]
    fn a_damaged_frame_costs_one_frame() {
        let frame = Planes::gray(4, 1, vec![0.5; 4]);
        let mut bytes = Vec::new();
        let mut w = FrameWriter::new(30.0);
        for _ in 0..3 {
            w.write(&mut bytes, &frame).unwrap();
        }
        // Break the second frame's marker.
        let second = bytes
            .windows(5)
            .enumerate()
            .filter(|(_, s)| *s == FRAME)
            .nth(1)
            .unwrap()
            .0;
        bytes[second] = b'X';
        let mut r = Cursor::new(bytes);
        let mut reader = FrameReader::new(read_header(&mut r).unwrap());
        assert!(reader.next(&mut r, false).unwrap().is_some());
        assert!(matches!(
            reader.next(&mut r, false),
            Err(Y4mError::Frame(_))
        ));
        assert!(reader.next(&mut r, false).unwrap().is_some());
        assert!(reader.next(&mut r, false).unwrap().is_none());
    }

    #[test]
    fn a_truncated_last_frame_is_reported() {
        let mut bytes = b"YUV4MPEG2 W4 H4 Cmono\nFRAME\n".to_vec();
        bytes.extend([0u8; 10]);
        let mut r = Cursor::new(bytes);
        let mut reader = FrameReader::new(read_header(&mut r).unwrap());
        let e = reader.next(&mut r, false).unwrap_err().to_string();
        assert!(e.contains("ends inside a frame"), "{e}");
        assert!(reader.next(&mut r, false).unwrap().is_none());
    }
}
