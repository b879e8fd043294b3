//! `y4m:PATH` / `y4m:-`: a YUV4MPEG2 file or pipe (see [`crate::stream::y4m`]).

use std::io::BufRead;

use super::{Captured, Input, Source, SourceError, SourceOptions, nominal_time, reader};
use crate::stream::y4m::{FrameReader, Y4mError, read_header};

/// A Y4M source.
pub struct Y4mSource {
    name: String,
    input: Box<dyn BufRead + Send>,
    frames: FrameReader,
    index: u64,
    grey: bool,
}

impl Y4mSource {
    /// Opens the stream and reads its header (a bad header is fatal).
    pub fn open(input: &Input, name: &str, opts: &SourceOptions) -> Result<Y4mSource, SourceError> {
        let mut r = reader(input, name)?;
        let header =
            read_header(&mut r).map_err(|e| SourceError::Fatal(format!("{name}: {input}: {e}")))?;
        Ok(Y4mSource {
            name: name.to_string(),
            input: r,
            frames: FrameReader::new(header),
            index: 0,
            grey: opts.grey,
        })
    }
}

impl Source for Y4mSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_live(&self) -> bool {
        false
    }

    fn fps(&self) -> Option<f64> {
        Some(self.frames.header().fps)
    }

    fn next_frame(&mut self) -> Result<Option<Captured>, SourceError> {
        let index = self.index;
        self.index += 1;
        match self.frames.next(&mut self.input, self.grey) {
            Ok(Some(image)) => Ok(Some(Captured {
                image,
                timestamp: Some(nominal_time(index, self.frames.header().fps)),
            })),
            Ok(None) => Ok(None),
            Err(e @ Y4mError::Frame(_)) => Err(SourceError::Corrupt(format!(
                "{}: frame {index}: {e}",
                self.name
            ))),
            Err(e) => Err(SourceError::Fatal(format!("{}: {e}", self.name))),
        }
    }
}
