//! Speed of the infrared-visible metrics: `evaluate` on one 640x480 triple in each convention
//! (the bar: under 100 ms per pair in release). The images are a 640x480 crop of the
//! TNO sample pair 01 and their mean as the fused image.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::s;
use ship_edge::dsp::Image;
use ship_edge::imaging::{Limits, io};
use ship_edge::metrics::ivif::{Convention, evaluate, grey};

fn crop_640x480(name: &str) -> Image {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples/tno")
        .join(name);
    let img = grey(&io::load(&path, &Limits::default()).expect("samples/tno image"));
    img.slice(s![..480, ..640]).to_owned()
}

fn ivif(c: &mut Criterion) {
    let a = crop_640x480("ir/01.png");
    let b = crop_640x480("vi/01.png");
    let f = ((&a + &b) / 2.0).mapv(f64::floor);
    let mut group = c.benchmark_group("ivif_evaluate_640x480");
    group.sample_size(20);
    for convention in Convention::ALL {
        group.bench_function(convention.name(), |bench| {
            bench
                .iter(|| evaluate(convention, black_box(&f), black_box(&a), black_box(&b)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, ivif);
criterion_main!(benches);
