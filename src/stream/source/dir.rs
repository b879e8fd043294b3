//! `dir:PATH`: the images of a folder in file-name order, one frame each, at a nominal rate.

use std::path::{Path, PathBuf};

use super::{Captured, Source, SourceError, SourceOptions, nominal_time};
use crate::imaging::{Limits, io};

/// Extensions read as frames (case-insensitive); other files are ignored.
const FRAME_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff"];

/// An image-sequence source.
#[derive(Debug)]
pub struct DirSource {
    name: String,
    files: Vec<PathBuf>,
    next: usize,
    fps: f64,
    grey: bool,
    limits: Limits,
}

impl DirSource {
    /// Lists the folder; an empty or missing folder is fatal.
    pub fn open(dir: &Path, name: &str, opts: &SourceOptions) -> Result<DirSource, SourceError> {
        let fatal = |why: String| SourceError::Fatal(format!("{name}: {}: {why}", dir.display()));
        let entries = std::fs::read_dir(dir).map_err(|e| fatal(format!("cannot list ({e})")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        FRAME_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        if files.is_empty() {
            return Err(fatal("holds no PNG, JPEG or TIFF images".into()));
        }
        files.sort();
        Ok(DirSource {
            name: name.to_string(),
            files,
            next: 0,
            fps: opts.fps,
            grey: opts.grey,
            limits: Limits::default(),
        })
    }
}

impl Source for DirSource {
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
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let index = self.next as u64;
        self.next += 1;
        let image = io::load(path, &self.limits)
            .map_err(|e| SourceError::Corrupt(format!("{}: frame {index}: {e}", self.name)))?;
        let image = if self.grey && image.is_rgb() {
            let y = crate::imaging::color::split_visible(&image).0;
            crate::imaging::Planes::gray(image.width(), image.height(), y)
        } else {
            image
        };
        Ok(Some(Captured {
            image,
            timestamp: Some(nominal_time(index, self.fps)),
        }))
    }
}
