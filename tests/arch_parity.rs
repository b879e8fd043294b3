//! Same image on every CPU: `ship-edge fuse` with each shipped IVIF model on a small crop of
//! the TNO sample, and `ship-edge pansharpen` with each shipped pan-sharpening model on a small
//! crop of the Landsat-7 sample, must give the raw output recorded on x86_64, within 1e-4
//! before rounding, with the custom ops' SIMD kernels and with their scalar reference. CI runs
//! this natively and, for aarch64, under qemu-user (NEON kernels).
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

/// The shipped models, IVIF (`fuse` runs them) or pan-sharpening (`pansharpen`).
fn shipped_models(pan: bool) -> Vec<PathBuf> {
    let mut models: Vec<PathBuf> = std::fs::read_dir(repo().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        // An int8 model's u8 rounding may flip where the f32 parts differ in the last ulp, so
        // it cannot match to 1e-4 across CPUs; `int8_models.rs` checks it on every CPU instead.
        .filter(|p| !crate::int8_models::is_quantized(p))
        .filter(|p| ship_edge::model::PanModel::load(p).is_ok() == pan)
        .collect();
    models.sort();
    models
}

/// PAN pixels of the pan-sharpening crop per side: the ratio-2 model gets 40 MS pixels, more
/// than its 32-pixel tile, so it runs four blended tiles; the ratio-4 model gets 20.
const PAN_CROP: usize = 80;

/// Writes `ms.tif` / `pan.tif` for `model` into `dir`: a crop of Landsat sample 01 with the
/// model's band count (bands 1..=b) and ratio. The sample is ratio 2; for ratio 4 the MS crop
/// is degraded by 2 more (Wald's filters), as `eval --ratio 4` makes its pairs.
fn write_pan_crop(dir: &Dir, model: &ship_edge::model::PanModel) {
    use ship_edge::imaging::multiband::{load_cube, save_cube};
    use ship_edge::pansharpen::{Sensor, wald};
    let sample = repo().join("samples/landsat7");
    let limits = ship_edge::imaging::Limits::default();
    let ms = load_cube(&sample.join("ms/01.tif"), &limits).unwrap();
    let pan = load_cube(&sample.join("pan/01.tif"), &limits).unwrap();
    let (r, b) = (model.ratio(), model.bands());
    let side = PAN_CROP;
    let (y0, x0) = (160, 200); // PAN pixels, even
    let ms = ms
        .slice(ndarray::s![
            ..b,
            y0 / 2..(y0 + side) / 2,
            x0 / 2..(x0 + side) / 2
        ])
        .to_owned();
    let ms = match r {
        2 => ms,
        4 => wald::degrade_ms(&ms, 2, &Sensor::from_name("landsat7").unwrap()),
        _ => panic!("no crop for ratio {r}"),
    };
    let pan = pan
        .slice(ndarray::s![.., y0..y0 + side, x0..x0 + side])
        .to_owned();
    save_cube(&dir.join("ms.tif"), &ms, 8).unwrap();
    save_cube(&dir.join("pan.tif"), &pan, 8).unwrap();
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

/// The shape and values of a float32 `.npy` written by `fuse --raw` or `pansharpen --raw`.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
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
    (dims, values)
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a model on the crop and returns its `--raw` file: `name`, with the custom ops' kernels
/// forced to `isa` when given.
type RawRun<'a> = dyn Fn(String, Option<&str>) -> PathBuf + 'a;

/// `ship-edge ARGS --model MODEL --raw DIR/name` in `dir` (the kernels forced to `isa` when
/// given); returns the raw file.
fn run_raw(dir: &Dir, args: &[&str], model: &Path, name: String, isa: Option<&str>) -> PathBuf {
    let raw = dir.join(name);
    let mut cmd = dir.command();
    cmd.args(args)
        .arg_pair("--model", model)
        .arg_pair("--raw", &raw);
    if let Some(isa) = isa {
        cmd.env(ship_edge::ops::simd::ISA_ENV, isa);
    }
    cmd.stdout();
    raw
}

/// Checks `model`'s raw output against the x86_64 reference in `tests/data/arch/` (or records
/// it with `SHIP_EDGE_BLESS`), with the SIMD and the scalar kernels.
fn check_against_reference(model: &Path, shape: &[usize], run: &RawRun<'_>) {
    let refs = repo().join("tests/data/arch");
    let bless = std::env::var_os("SHIP_EDGE_BLESS").is_some();
    assert!(
        !bless || cfg!(target_arch = "x86_64"),
        "references are recorded on x86_64 only"
    );
    let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
    let raw = run(format!("{stem}.npy"), None);
    let (reference, hash) = (
        refs.join(format!("{stem}.npy")),
        refs.join(format!("{stem}.sha256")),
    );
    if bless {
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::copy(&raw, &reference).unwrap();
        std::fs::write(&hash, sha256_hex(model) + "\n").unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&hash).unwrap_or_default();
    assert_eq!(
        recorded.trim(),
        sha256_hex(model),
        "{}: no reference for this model file ({} missing or from another model); \
         record it on x86_64 with SHIP_EDGE_BLESS=1 cargo test arch_parity",
        model.display(),
        hash.display()
    );
    let (got_shape, got) = read_npy(&raw);
    let (ref_shape, want) = read_npy(&reference);
    assert_eq!(got_shape, ref_shape, "{stem}");
    assert_eq!(got_shape, shape, "{stem}");
    let worst = max_abs_diff(&got, &want);
    assert!(
        worst <= TOLERANCE,
        "{stem} on {}: max |Δ| {worst:e} against the x86_64 reference (tolerance {TOLERANCE:e})",
        std::env::consts::ARCH
    );
    // The scalar reference kernels of our custom ops give the same image as the SIMD ones
    // (AVX2 here, NEON under qemu).
    let (_, scalar) = read_npy(&run(format!("{stem}.scalar.npy"), Some("scalar")));
    let scalar_worst = max_abs_diff(&scalar, &want);
    assert!(
        scalar_worst <= TOLERANCE,
        "{stem} with {}=scalar: max |Δ| {scalar_worst:e} against the x86_64 reference",
        ship_edge::ops::simd::ISA_ENV
    );
    // The output is a real image, not a constant that would match anything.
    let (lo, hi) = got
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(hi - lo > 0.1, "{stem}: flat output {lo}..{hi}");
}

#[test]
fn fuse_matches_the_x86_reference_for_every_shipped_model() {
    let dir = Dir::new("arch-parity");
    write_crop(&dir);
    let models = shipped_models(false);
    assert!(!models.is_empty(), "no IVIF models/*.onnx");
    for model in models {
        let args = [
            "fuse", "--ir", "ir.png", "--vis", "vis.png", "-o", "out.png",
        ];
        let fuse_raw = |name: String, isa: Option<&str>| run_raw(&dir, &args, &model, name, isa);
        check_against_reference(&model, &[CROP.3 as usize, CROP.2 as usize], &fuse_raw);
    }
}

#[test]
fn pansharpen_matches_the_x86_reference_for_every_shipped_pan_model() {
    let models = shipped_models(true);
    assert!(!models.is_empty(), "no pan-sharpening models/*.onnx");
    for model in models {
        let loaded = ship_edge::model::PanModel::load(&model).unwrap();
        let dir = Dir::new(&format!(
            "arch-parity-{}",
            model.file_stem().unwrap().to_string_lossy()
        ));
        write_pan_crop(&dir, &loaded);
        let args = [
            "pansharpen",
            "--ms",
            "ms.tif",
            "--pan",
            "pan.tif",
            "-o",
            "out.tif",
        ];
        let sharpen_raw = |name: String, isa: Option<&str>| run_raw(&dir, &args, &model, name, isa);
        check_against_reference(&model, &[loaded.bands(), PAN_CROP, PAN_CROP], &sharpen_raw);
    }
}
