//! The custom ops' kernels against memory bandwidth, at the `edge` model's shape (8 channels
//! of 640x512) on one thread:
//! - `triad`: y = a·s + b over the same bytes (read two planes sets, write one), the
//!   STREAM-style bandwidth reference the other numbers are read against;
//! - `high_order_gate/ISA`: LayerNorm over channels · r (reads f, r; writes y), per kernel table
//!   this CPU runs;
//! - `global_interaction/ISA`: the per-plane circular convolution (reads v, r; writes a), which
//!   is FFT-bound rather than memory-bound.
//!
//! Throughput is the bytes each moves at minimum (3 x 8 x 640 x 512 x 4 = 31.5 MB).
//! `cargo bench --bench ops`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ship_edge::ops::fft2::{self, Plan, Workspace};
use ship_edge::ops::simd;

const C: usize = 8;
const H: usize = 512;
const W: usize = 640;

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 9) as f32 / 8_388_608.0)
        .collect()
}

fn ops(c: &mut Criterion) {
    let n = C * H * W;
    let bytes = (3 * n * std::mem::size_of::<f32>()) as u64;
    let (a, b) = (data(n, 1), data(n, 2));
    let (weight, bias) = (data(C, 3), data(C, 4));
    let mut group = c.benchmark_group(format!("ops/{C}x{W}x{H}"));
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);

    let mut y = vec![0f32; n];
    group.bench_function("triad", |bench| {
        bench.iter(|| {
            for ((y, a), b) in y.iter_mut().zip(&a).zip(&b) {
                *y = a * 0.5 + b;
            }
            black_box(&mut y);
        })
    });

    for kernels in simd::available() {
        let mut x = a.clone();
        group.bench_function(
            format!("high_order_gate/{}", kernels.isa.as_str()),
            |bench| {
                bench.iter(|| {
                    // In place, as the op runs: refresh x from a first would double the traffic,
                    // and the gate's output stays finite when applied repeatedly.
                    (kernels.gate)(black_box(&mut x), &b, &weight, &bias, 1e-5);
                })
            },
        );
    }

    let plan = Plan::new(H, W);
    let mut ws = Workspace::new(&plan);
    for kernels in simd::available() {
        let mut v = a.clone();
        group.bench_function(
            format!("global_interaction/{}", kernels.isa.as_str()),
            |bench| {
                bench.iter(|| {
                    v.copy_from_slice(&a);
                    for (plane, r) in v.chunks_mut(H * W).zip(b.chunks(H * W)) {
                        fft2::circular_conv(&plan, &mut ws, plane, r, kernels.complex_mul);
                    }
                    black_box(&mut v);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
