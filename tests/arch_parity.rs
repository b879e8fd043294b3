//! Same image on every CPU: `ship-edge fuse` with each shipped model on a small crop of the
//! TNO sample must give the raw output recorded on x86_64, within 1e-4 before 8-bit
//! rounding, with the custom ops' SIMD kernels and with their scalar reference. CI runs this
//! natively and, for aarch64, under qemu-user (NEON kernels).
//!
//! The references live in `tests/data/arch/` with the SHA-256 of the model they came from.
//! After changing a shipped model, record them again on x86_64 with
//! `SHIP_EDGE_BLESS=1 cargo test arch_parity`.

use std::path::{Path, PathBuf};

use crate::util::{Dir, max_abs_diff};

/// Largest difference allowed against the x86_64 reference.
const TOLERANCE: f32 = 1e-4;
/// The crop: small enough for qemu, big enough for every down/up-sampling in the networks.
const CROP: (u32, u32, u32, u32) = (200, 150, 64, 48);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped IVIF models (`fuse` runs them). Pan-sharpening models have no recorded
/// aarch64 reference yet; their custom ops are the same kernels, checked here through the IVIF
/// models and in `ops_parity` against their standard-op twins.
fn shipped_models() -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = std::fs::read_dir(repo().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .filter(|p| ship_edge::model::PanModel::load(p).is_err())
        .collect();
    models.sort();
    models
}

/// Writes the crop of sample pair 01 as `ir.png` / `vis.png` into `dir`.
fn write_crop(dir: &Dir) {
    let (x, y, w, h) = CROP;
    for (src, name) in [("ir", "ir.png"), ("vi", "vis.png")] {
        let path = repo().join("samples/tno").join(src).join("01.png");
        let image = image::open(&path).unwrap();
        image.crop_imm(x, y, w, h).save(dir.join(name)).unwrap();
    }
}

/// The (height, width) and values of a float32 `.npy` written by `fuse --raw`.
fn read_npy(path: &Path) -> ((usize, usize), Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let dims: Vec<usize> = shape
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let values = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    ((dims[0], dims[1]), values)
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn fuse_matches_the_x86_reference_for_every_shipped_model() {
    let dir = Dir::new("arch-parity");
    write_crop(&dir);
    let refs = repo().join("tests/data/arch");
    let bless = std::env::var_os("SHIP_EDGE_BLESS").is_some();
    assert!(
        !bless || cfg!(target_arch = "x86_64"),
        "references are recorded on x86_64 only"
    );
    let models = shipped_models();
    assert!(!models.is_empty(), "no models/*.onnx");
    for model in models {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        // `fuse --raw` of the crop into `name`, with the custom ops' kernels forced to `isa`.
        let fuse_raw = |name: String, isa: Option<&str>| {
            let raw = dir.join(name);
            let mut cmd = dir.command();
            cmd.args([
                "fuse", "--ir", "ir.png", "--vis", "vis.png", "-o", "out.png",
            ])
            .arg_pair("--model", &model)
            .arg_pair("--raw", &raw);
            if let Some(isa) = isa {
                cmd.env(ship_edge::ops::simd::ISA_ENV, isa);
            }
            cmd.stdout();
            raw
        };
        let raw = fuse_raw(format!("{stem}.npy"), None);
        let (reference, hash) = (
            refs.join(format!("{stem}.npy")),
            refs.join(format!("{stem}.sha256")),
        );
        if bless {
            std::fs::create_dir_all(&refs).unwrap();
            std::fs::copy(&raw, &reference).unwrap();
            std::fs::write(&hash, sha256_hex(&model) + "\n").unwrap();
            continue;
        }
        let recorded = std::fs::read_to_string(&hash).unwrap_or_default();
        assert_eq!(
            recorded.trim(),
            sha256_hex(&model),
            "{}: no reference for this model file ({} missing or from another model); \
             record it on x86_64 with SHIP_EDGE_BLESS=1 cargo test arch_parity",
            model.display(),
            hash.display()
        );
        let (shape, got) = read_npy(&raw);
        let (ref_shape, want) = read_npy(&reference);
        assert_eq!(shape, ref_shape, "{stem}");
        assert_eq!(shape, (CROP.3 as usize, CROP.2 as usize), "{stem}");
        let worst = max_abs_diff(&got, &want);
        assert!(
            worst <= TOLERANCE,
            "{stem} on {}: max |Δ| {worst:e} against the x86_64 reference (tolerance {TOLERANCE:e})",
            std::env::consts::ARCH
        );
        // The scalar reference kernels of our custom ops give the same image as the SIMD ones
        // (AVX2 here, NEON under qemu).
        let (_, scalar) = read_npy(&fuse_raw(format!("{stem}.scalar.npy"), Some("scalar")));
        let scalar_worst = max_abs_diff(&scalar, &want);
        assert!(
            scalar_worst <= TOLERANCE,
            "{stem} with {}=scalar: max |Δ| {scalar_worst:e} against the x86_64 reference",
            ship_edge::ops::simd::ISA_ENV
        );
        // The output is a real fused image, not a constant that would match anything.
        let (lo, hi) = got
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(hi - lo > 0.1, "{stem}: flat output {lo}..{hi}");
    }
}
