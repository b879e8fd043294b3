//! `ship-edge fuse` and `ship-edge inspect` on real and synthetic images, checked pixel by
//! pixel against the SHIP colour conventions restated in `util::reference`.

use image::{GenericImageView, ImageBuffer, Luma, Rgb};

use crate::models::LinearModel;
use crate::util::{Dir, reference, tno_dir};

/// One 8-bit step: the output is quantised once from values computed in f32.
const TOL_8BIT: f32 = 1.0 / 255.0;

fn rgb_f32(img: &image::DynamicImage, x: u32, y: u32) -> [f32; 3] {
    let p = img.to_rgb8().get_pixel(x, y).0;
    p.map(|v| f32::from(v) / 255.0)
}

/// Expected output of the average model for one pixel: fused Y = (Y_vis + IR_ch0) / 2, visible
/// chroma kept.
fn expected_average(vis: [f32; 3], ir0: f32) -> [f32; 3] {
    let [y, cr, cb] = reference::ycrcb(vis);
    reference::rgb([0.5 * y + 0.5 * ir0, cr, cb])
}

#[test]
fn tno_pair_is_the_average() {
    let Some(tno) = tno_dir() else {
        eprintln!("skipped: no TNO samples (samples/tno or ../shared/data/ivif/tno)");
        return;
    };
    let dir = Dir::new("tno");
    let model = LinearModel::default().write(dir.join("avg.onnx"));
    let (ir_path, vis_path) = (tno.join("ir/01.png"), tno.join("vi/01.png"));
    let stdout = dir
        .command()
        .args(["fuse"])
        .arg_pair("--ir", &ir_path)
        .arg_pair("--vis", &vis_path)
        .arg_pair("-o", "out.png")
        .arg_pair("--model", &model)
        .args(["--threads", "2"])
        .stdout();
    let ir = image::open(&ir_path).unwrap();
    let vis = image::open(&vis_path).unwrap();
    let out = image::open(dir.join("out.png")).unwrap();
    assert_eq!(out.dimensions(), vis.dimensions());
    let (w, h) = out.dimensions();
    assert!(
        stdout.contains("out.png") && stdout.contains(&format!("{w}x{h}")),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let out = out.to_rgb8();
    let (ir, vis) = (ir.to_rgb8(), vis.to_rgb8());
    let mut worst = 0f32;
    for (x, y, p) in out.enumerate_pixels() {
        let ir0 = f32::from(ir.get_pixel(x, y).0[0]) / 255.0;
        let vis_px = vis.get_pixel(x, y).0.map(|v| f32::from(v) / 255.0);
        let want = expected_average(vis_px, ir0);
        for (got, want) in p.0.iter().zip(want) {
            worst = worst.max((f32::from(*got) / 255.0 - want).abs());
        }
    }
    assert!(worst <= TOL_8BIT + 1e-4, "worst pixel error {worst}");
}

fn write_rgb_pair(dir: &Dir) -> (std::path::PathBuf, std::path::PathBuf) {
    let colours = [
        [220u8, 30, 40],
        [30, 200, 60],
        [40, 50, 210],
        [230, 220, 30],
    ];
    let vis = ImageBuffer::from_fn(8, 6, |x, y| Rgb(colours[((x / 4) + 2 * (y / 3)) as usize]));
    let ir = ImageBuffer::from_fn(8, 6, |x, y| Luma([(x * 30 + y * 5) as u8]));
    let (vis_path, ir_path) = (dir.join("vis.png"), dir.join("ir.png"));
    vis.save(&vis_path).unwrap();
    ir.save(&ir_path).unwrap();
    (ir_path, vis_path)
}

#[test]
fn rgb_visible_keeps_its_colour() {
    let dir = Dir::new("rgb");
    let (ir_path, vis_path) = write_rgb_pair(&dir);
    let model = LinearModel::default().write(dir.join("avg.onnx"));
    dir.command()
        .args(["fuse"])
        .arg_pair("--ir", &ir_path)
        .arg_pair("--vis", &vis_path)
        .arg_pair("-o", "out.png")
        .arg_pair("--model", &model)
        .stdout();
    let out = image::open(dir.join("out.png")).unwrap();
    assert_eq!(out.color(), image::ColorType::Rgb8);
    let (ir, vis) = (
        image::open(&ir_path).unwrap(),
        image::open(&vis_path).unwrap(),
    );
    for (x, y, _) in out.pixels() {
        let want = expected_average(rgb_f32(&vis, x, y), rgb_f32(&ir, x, y)[0]);
        let got = rgb_f32(&out, x, y);
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= TOL_8BIT + 1e-4,
                "({x},{y}): {got:?} vs {want:?}"
            );
        }
    }
    // The red block stays red, the blue block blue.
    let [r, g, b] = rgb_f32(&out, 1, 1);
    assert!(
        r > g + 0.2 && r > b + 0.2,
        "red block became {:?}",
        [r, g, b]
    );
    let [r, g, b] = rgb_f32(&out, 1, 4);
    assert!(
        b > r + 0.2 && b > g + 0.2,
        "blue block became {:?}",
        [r, g, b]
    );
}

#[test]
fn grey_visible_gives_grey_output_in_every_format() {
    let dir = Dir::new("grey");
    let vis = ImageBuffer::from_fn(9, 7, |x, y| Luma([(x * 25 + y) as u8]));
    let ir = ImageBuffer::from_fn(9, 7, |x, y| Luma([(255 - x * 20 - y * 3) as u8]));
    vis.save(dir.join("vis.png")).unwrap();
    ir.save(dir.join("ir.tif")).unwrap();
    LinearModel::default().write(dir.join("avg.onnx"));
    for out in ["out.png", "out.tif", "out.jpg"] {
        dir.command()
            .args([
                "fuse", "--ir", "ir.tif", "--vis", "vis.png", "--model", "avg.onnx", "-o", out,
            ])
            .stdout();
        let img = image::open(dir.join(out)).unwrap();
        assert_eq!(img.color(), image::ColorType::L8, "{out}");
        assert_eq!(img.dimensions(), (9, 7), "{out}");
        if out != "out.jpg" {
            let img = img.to_luma8();
            for (x, y, p) in img.enumerate_pixels() {
                let want = (f32::from(vis.get_pixel(x, y).0[0])
                    + f32::from(ir.get_pixel(x, y).0[0]))
                    / 2.0;
                assert!(
                    (f32::from(p.0[0]) - want).abs() <= 1.0,
                    "{out} ({x},{y}): {} vs {want}",
                    p.0[0]
                );
            }
        }
    }
}

#[test]
fn sixteen_bit_png_in_sixteen_bit_out() {
    let dir = Dir::new("png16");
    let vis: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(10, 4, |x, y| Luma([(x * 6000 + y * 7) as u16]));
    let ir: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(10, 4, |x, y| Luma([(65535 - x * 5000 - y) as u16]));
    vis.save(dir.join("vis16.png")).unwrap();
    ir.save(dir.join("ir16.png")).unwrap();
    LinearModel::default().write(dir.join("avg.onnx"));
    dir.command()
        .args([
            "fuse",
            "--ir",
            "ir16.png",
            "--vis",
            "vis16.png",
            "--model",
            "avg.onnx",
            "-o",
            "out.png",
        ])
        .stdout();
    let out = image::open(dir.join("out.png")).unwrap();
    assert_eq!(out.color(), image::ColorType::L16);
    let out = out.to_luma16();
    for (x, y, p) in out.enumerate_pixels() {
        let want = (f64::from(vis.get_pixel(x, y).0[0]) + f64::from(ir.get_pixel(x, y).0[0])) / 2.0;
        // One 16-bit step: the mean of two integers is quantised once.
        assert!(
            (f64::from(p.0[0]) - want).abs() <= 1.0,
            "({x},{y}): {} vs {want}",
            p.0[0]
        );
    }
}

#[test]
fn inspect_prints_the_contract() {
    let dir = Dir::new("inspect");
    LinearModel::default().write(dir.join("avg.onnx"));
    let out = dir.command().args(["inspect", "avg.onnx"]).stdout();
    for want in [
        "vis_y: f32 [1,1,H,W]",
        "ir: f32 [1,1,H,W]",
        "fused: f32 [1,1,H,W]",
        "task = ivif",
        "architecture = linear-test",
        "Add 2",
        "Mul 2",
        "ops (4 nodes)",
        "parameters: 3",
        "ai.onnx 17",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Op counts are sorted by name.
    assert!(out.find("Add 2").unwrap() < out.find("Mul 2").unwrap());
}

/// An int8 model: inspect counts its int8 convolutions, and those the loader fuses with the
/// ops behind them.
#[test]
fn inspect_reports_the_int8_convolutions_and_their_fusion() {
    let dir = Dir::new("inspect_int8");
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ship_rt_ivif_int8.onnx");
    let out = dir
        .command()
        .args(["inspect", model.to_str().unwrap()])
        .stdout();
    let line = |prefix: &str| -> Vec<usize> {
        let line = out
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"));
        // The words that are whole numbers (not the 8 of "int8").
        line.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    let int8 = line("int8: ");
    assert!(int8[0] > 0 && int8[0] < int8[1], "{int8:?}");
    // Every int8 convolution of the file is either fused (f32 out, or u8 through its
    // activation) or feeds a shared u8 tensor; the two forms together cover most of them.
    let fused = line("at load: ");
    let (dequantizing, requantizing) = (fused[0], fused[1]);
    assert!(
        dequantizing > 0 && requantizing > 0 && dequantizing + requantizing <= int8[0],
        "{fused:?} of {int8:?}"
    );
    assert!(
        (dequantizing + requantizing) * 4 >= int8[0] * 3,
        "{fused:?} of {int8:?}"
    );
}

#[test]
fn help_and_usage_errors() {
    let dir = Dir::new("help");
    let help = dir.command().args(["fuse", "--help"]).stdout();
    for flag in ["--ir", "--vis", "--output", "--model", "--threads"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let err = dir.command().args(["fuse", "--vis", "v.png"]).fails_with(2);
    assert!(err.contains("--ir"), "{err}");
    let err = dir
        .command()
        .args(["fuse", "--ir", "a.png", "--vis", "b.png", "--threads", "0"])
        .fails_with(2);
    assert!(err.contains("--threads"), "{err}");
}
