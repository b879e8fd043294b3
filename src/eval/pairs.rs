//! Pairing image files across directories by file stem (`ir/01.png` with `vi/01.jpg`), the
//! way fusion datasets and published outputs are laid out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::EvalError;

/// File extensions treated as images (lower case).
const IMAGE_EXTENSIONS: &[&str] = &["png", "tif", "tiff", "jpg", "jpeg", "bmp"];

/// The image files of `dir` by stem, sorted by stem. Other files (a README, a CSV) are
/// skipped; two images with the same stem are an error.
pub fn images_by_stem(dir: &Path) -> Result<BTreeMap<String, PathBuf>, EvalError> {
    let read_err = |source| EvalError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image || !path.is_file() {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if let Some(first) = out.get(&stem) {
            let name = |p: &Path| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(EvalError::AmbiguousStem {
                dir: dir.to_path_buf(),
                stem,
                first: name(first),
                second: name(&path),
            });
        }
        out.insert(stem, path);
    }
    if out.is_empty() {
        return Err(EvalError::NoImages {
            dir: dir.to_path_buf(),
        });
    }
    Ok(out)
}

/// One input of a dataset: its stem and one file per input directory (in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The shared file stem, e.g. `"01"`.
    pub stem: String,
    /// The files, one per directory passed to [`pair_dirs`].
    pub files: Vec<PathBuf>,
}

/// Pairs the images of `dirs` by stem. Every directory must hold exactly the same stems:
/// an image without a counterpart is an error naming it and the directory that lacks it.
pub fn pair_dirs(dirs: &[&Path]) -> Result<Vec<Pair>, EvalError> {
    let listings = dirs
        .iter()
        .map(|d| images_by_stem(d))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, listing) in listings.iter().enumerate() {
        for (j, other) in listings.iter().enumerate() {
            if let Some((_, file)) = listing.iter().find(|(stem, _)| !other.contains_key(*stem)) {
                debug_assert_ne!(i, j);
                return Err(EvalError::MissingPair {
                    file: file.clone(),
                    dir: dirs[j].to_path_buf(),
                });
            }
        }
    }
    Ok(listings[0]
        .keys()
        .map(|stem| Pair {
            stem: stem.clone(),
            files: listings.iter().map(|l| l[stem].clone()).collect(),
        })
        .collect())
}

/// The file of each pair in a directory of already-fused results: every pair needs one
/// (extra files are ignored, since published result sets often cover more images).
pub fn fused_files(dir: &Path, pairs: &[Pair]) -> Result<Vec<PathBuf>, EvalError> {
    let listing = images_by_stem(dir)?;
    pairs
        .iter()
        .map(|p| {
            listing
                .get(&p.stem)
                .cloned()
                .ok_or_else(|| EvalError::MissingPair {
                    file: p.files[0].clone(),
                    dir: dir.to_path_buf(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        dir
    }

    #[test]
    fn pairs_by_stem_across_extensions() {
        let ir = dir_with(&["01.png", "02.png", "notes.txt"]);
        let vi = dir_with(&["02.jpg", "01.JPG"]);
        let pairs = pair_dirs(&[ir.path(), vi.path()]).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].stem, "01");
        assert!(pairs[1].files[1].ends_with("02.jpg"));
    }

    #[test]
    fn a_missing_counterpart_names_the_file() {
        let ir = dir_with(&["01.png", "02.png"]);
        let vi = dir_with(&["01.png"]);
        let err = pair_dirs(&[ir.path(), vi.path()]).unwrap_err().to_string();
        assert!(
            err.contains("02.png") && err.contains("no counterpart"),
            "{err}"
        );
        let err = pair_dirs(&[vi.path(), ir.path()]).unwrap_err().to_string();
        assert!(err.contains("02.png"), "{err}");
    }

    #[test]
    fn ambiguous_and_empty_directories_are_errors() {
        let d = dir_with(&["01.png", "01.tif"]);
        assert!(matches!(
            images_by_stem(d.path()),
            Err(EvalError::AmbiguousStem { .. })
        ));
        let e = dir_with(&["readme.md"]);
        assert!(matches!(
            images_by_stem(e.path()),
            Err(EvalError::NoImages { .. })
        ));
        let missing = Path::new("/nonexistent/ship-edge-eval");
        assert!(matches!(
            images_by_stem(missing),
            Err(EvalError::ReadDir { .. })
        ));
    }

    #[test]
    fn fused_directories_may_hold_more_images() {
        let ir = dir_with(&["01.png"]);
        let vi = dir_with(&["01.png"]);
        let pairs = pair_dirs(&[ir.path(), vi.path()]).unwrap();
        let fused = dir_with(&["01.png", "99.png"]);
        assert_eq!(fused_files(fused.path(), &pairs).unwrap().len(), 1);
        let short = dir_with(&["99.png"]);
        assert!(fused_files(short.path(), &pairs).is_err());
    }
}
