//! Scoring fusion methods on a dataset: pair the input files by stem ([`pairs`]), run every
//! method on every pair (a classical baseline, an ONNX model, or a directory of images some
//! other tool already fused), score the results ([`ivif`], [`pan`]) and summarise them in a
//! [`Report`] with per-metric means and mean ranks, as papers compare methods.
//!
//! The library never prints: long runs report progress through a callback.

pub mod ivif;
pub mod pairs;
pub mod pan;
mod report;

use std::path::{Path, PathBuf};

pub use report::{MethodScores, Report, best_index, format_value, metric_columns};

use crate::imaging::DecodeError;

/// Why an evaluation could not run. Every variant names the file or directory at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A directory could not be listed.
    #[error("{}: cannot list the directory: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A directory holds no image files.
    #[error("{}: no image files (expected .png, .tif, .tiff, .jpg, .jpeg or .bmp)", dir.display())]
    NoImages {
        /// The directory.
        dir: PathBuf,
    },
    /// Two files in one directory share a stem, so pairing by stem is ambiguous.
    #[error("{}: files {first} and {second} share the stem {stem:?}; keep one", dir.display())]
    AmbiguousStem {
        /// The directory.
        dir: PathBuf,
        /// The shared stem.
        stem: String,
        /// One file name.
        first: String,
        /// The other file name.
        second: String,
    },
    /// An input has no counterpart in another directory.
    #[error("{} has no counterpart in {}: every image needs a file with the same stem there", file.display(), dir.display())]
    MissingPair {
        /// The file without a partner.
        file: PathBuf,
        /// Where its partner should be.
        dir: PathBuf,
    },
    /// Two images that must have the same size do not.
    #[error("{}: {got} but {expected} was expected (the size of {})", file.display(), reference.display())]
    SizeMismatch {
        /// The file with the wrong size.
        file: PathBuf,
        /// Its size, e.g. "640x480".
        got: String,
        /// The expected size.
        expected: String,
        /// The file that sets the expected size.
        reference: PathBuf,
    },
    /// An image file has the wrong number of bands (channels).
    #[error("{}: {got} bands, expected {expected}", file.display())]
    BandCount {
        /// The file.
        file: PathBuf,
        /// Bands found.
        got: usize,
        /// Bands expected.
        expected: String,
    },
    /// A file could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A method failed on one input (the message names the method and the file).
    #[error("{method} on {}: {message}", file.display())]
    Method {
        /// The method's name.
        method: String,
        /// The input it failed on.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The evaluation was asked for something it cannot do (e.g. no methods).
    #[error("{0}")]
    Invalid(String),
}

/// Progress of a long evaluation: called after each image pair with `(done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// For each source, its file per pair when it is a directory of fused images.
pub type FusedFiles = Vec<Option<Vec<PathBuf>>>;

/// Checks that there is at least one source and that their names (the report's keys) are
/// distinct; `usage` lists the options that add sources.
fn check_sources<'a>(
    names: impl IntoIterator<Item = &'a str>,
    usage: &str,
) -> Result<(), EvalError> {
    let names: Vec<&str> = names.into_iter().collect();
    if names.is_empty() {
        return Err(EvalError::Invalid(format!(
            "nothing to evaluate: give at least one {usage}"
        )));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(EvalError::Invalid(format!(
                "two methods are named {name:?}: name them apart (NAME=PATH)"
            )));
        }
    }
    Ok(())
}

/// The fused file of every pair for each source that reads a directory (`None` for the
/// others), so that a missing file fails before any method runs.
fn fused_file_lists<'a>(
    dirs: impl IntoIterator<Item = Option<&'a Path>>,
    pairs: &[pairs::Pair],
) -> Result<FusedFiles, EvalError> {
    dirs.into_iter()
        .map(|dir| dir.map(|d| pairs::fused_files(d, pairs)).transpose())
        .collect()
}

/// Scores by source, then pair, then metric: `rows[source][pair][metric]`.
type SourceRows = Vec<Vec<Vec<f64>>>;

/// Scores every pair with `score_pair` (one row of metric values per source, in source
/// order) and regroups them per source: `rows[source][pair]`.
fn score_pairs<T>(
    pairs: &[pairs::Pair],
    sources: usize,
    progress: Progress<'_>,
    mut score_pair: impl FnMut(usize, &pairs::Pair) -> Result<(Vec<Vec<f64>>, T), EvalError>,
) -> Result<(SourceRows, Vec<T>), EvalError> {
    let mut rows: SourceRows = vec![Vec::with_capacity(pairs.len()); sources];
    let mut extras = Vec::with_capacity(pairs.len());
    for (i, pair) in pairs.iter().enumerate() {
        let (scores, extra) = score_pair(i, pair)?;
        for (row, s) in rows.iter_mut().zip(scores) {
            row.push(s);
        }
        extras.push(extra);
        progress(i + 1, pairs.len());
    }
    Ok((rows, extras))
}
