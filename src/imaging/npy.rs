//! Raw float planes as NumPy `.npy` files (format 1.0, little-endian f32, C order), for values
//! an 8/16-bit image cannot hold: the network's unclamped output, parity dumps.

use std::io::Write;
use std::path::Path;

use super::io::{EncodeError, write_atomic};

/// Checks an `.npy` output path before any work is done (extension and directory).
pub fn check_output(path: &Path) -> Result<(), EncodeError> {
    if path.extension().and_then(|e| e.to_str()) != Some("npy") {
        return Err(EncodeError::NotNpy {
            path: path.to_path_buf(),
        });
    }
    super::io::check_dir(path)
}

/// Writes `data` (row-major `height x width`) as a float32 `.npy` array of shape (height, width).
pub fn save_f32(path: &Path, width: usize, height: usize, data: &[f32]) -> Result<(), EncodeError> {
    save_f32_shaped(path, &[height, width], data)
}

/// Writes `data` (C order) as a float32 `.npy` array of `shape`, e.g. `[bands, height, width]`.
pub fn save_f32_shaped(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), EncodeError> {
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "npy: data does not fill {shape:?}"
    );
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    // NumPy writes a one-element shape tuple as `(n,)`.
    let tuple = match dims.len() {
        1 => format!("{},", dims[0]),
        _ => dims.join(", "),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({tuple}), }}");
    // Header: magic, version 1.0, u16 length; magic + length + dict + '\n' padded to 64 bytes.
    let unpadded = 10 + dict.len() + 1;
    let header = format!(
        "{dict}{}\n",
        " ".repeat(unpadded.next_multiple_of(64) - unpadded)
    );
    let io_err = |source| EncodeError::Io {
        path: path.to_path_buf(),
        source,
    };
    write_atomic(path, |w| {
        w.write_all(b"\x93NUMPY\x01\x00").map_err(io_err)?;
        w.write_all(&(header.len() as u16).to_le_bytes())
            .map_err(io_err)?;
        w.write_all(header.as_bytes()).map_err(io_err)?;
        for v in data {
            w.write_all(&v.to_le_bytes()).map_err(io_err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_header_numpy_accepts_and_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.npy");
        save_f32(&path, 3, 2, &[0.0, 0.5, 1.0, -1.0, 2.0, 1.5]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(
            header.contains("'shape': (2, 3)") && header.contains("'<f4'"),
            "{header}"
        );
        let values: Vec<f32> = bytes[10 + hlen..]
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, [0.0, 0.5, 1.0, -1.0, 2.0, 1.5]);
    }

    #[test]
    fn writes_any_number_of_dimensions_as_numpy_spells_them() {
        let dir = tempfile::tempdir().unwrap();
        let header = |shape: &[usize]| {
            let path = dir.path().join("raw.npy");
            let n = shape.iter().product();
            save_f32_shaped(&path, shape, &vec![0.25; n]).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!(bytes.len(), 10 + hlen + 4 * n);
            std::str::from_utf8(&bytes[10..10 + hlen])
                .unwrap()
                .to_string()
        };
        assert!(header(&[6, 4, 5]).contains("'shape': (6, 4, 5)"));
        assert!(header(&[7]).contains("'shape': (7,)"));
    }

    #[test]
    fn refuses_other_extensions_and_missing_directories() {
        assert!(matches!(
            check_output(Path::new("raw.png")),
            Err(EncodeError::NotNpy { .. })
        ));
        assert!(matches!(
            check_output(Path::new("/no/such/dir/raw.npy")),
            Err(EncodeError::MissingDirectory { .. })
        ));
    }
}
