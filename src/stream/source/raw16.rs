//! `y16:PATH:WxH[:BITS]`: raw 16-bit little-endian frames back to back, as thermal cores
//! (FLIR Lepton/Boson, Guide, …) and their capture tools write them; gain-controlled to
//! `[0, 1]` by the stream's AGC.

use std::io::{BufRead, ErrorKind, Read};

use super::{Captured, Input, Source, SourceError, SourceOptions, nominal_time, reader};
use crate::imaging::agc::AgcState;
use crate::imaging::{BitDepth, Planes};

/// A raw Y16 source.
pub struct Y16Source {
    name: String,
    input: Box<dyn BufRead + Send>,
    size: (usize, usize),
    fps: f64,
    index: u64,
    bytes: Vec<u8>,
    counts: Vec<u16>,
    agc: AgcState,
}

impl Y16Source {
    /// Opens the file or pipe.
    pub fn open(
        input: &Input,
        name: &str,
        size: (usize, usize),
        bits: u32,
        opts: &SourceOptions,
    ) -> Result<Y16Source, SourceError> {
        Ok(Y16Source {
            name: name.to_string(),
            input: reader(input, name)?,
            size,
            fps: opts.fps,
            index: 0,
            bytes: vec![0; size.0 * size.1 * 2],
            counts: Vec::with_capacity(size.0 * size.1),
            agc: AgcState::new(opts.agc, bits),
        })
    }
}

/// Fills `buf` as far as the input allows; returns the bytes read (short only at the end).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Source for Y16Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_live(&self) -> bool {
        false
    }

    fn fps(&self) -> Option<f64> {
        Some(self.fps)
    }

    fn next_frame(&mut self) -> Result<Option<Captured>, SourceError> {
        let index = self.index;
        let n = read_full(&mut self.input, &mut self.bytes)
            .map_err(|e| SourceError::Fatal(format!("{}: {e}", self.name)))?;
        if n == 0 {
            return Ok(None);
        }
        self.index += 1;
        if n < self.bytes.len() {
            return Err(SourceError::Corrupt(format!(
                "{}: frame {index} is cut short ({n} of {} bytes: is the size {}x{} right?)",
                self.name,
                self.bytes.len(),
                self.size.0,
                self.size.1
            )));
        }
        self.counts.clear();
        self.counts.extend(
            self.bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]])),
        );
        let mut y = Vec::with_capacity(self.counts.len());
        self.agc
            .apply(&self.counts, self.size.0, self.size.1, &mut y);
        Ok(Some(Captured {
            image: Planes::gray(self.size.0, self.size.1, y).with_bit_depth(BitDepth::Sixteen),
            timestamp: Some(nominal_time(index, self.fps)),
        }))
    }
}
