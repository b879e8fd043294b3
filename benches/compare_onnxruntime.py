#!/usr/bin/env python3
"""ship-edge vs onnxruntime on the same ONNX models, sizes and thread counts.

Runs `ship-edge bench --json` for each model and size, then times the same model in
onnxruntime (CPU execution provider, all graph optimisations, `intra_op_num_threads` = the
same thread count, sequential execution) with the same warm-up and frame count and the same
synthetic frame pair, and prints one table: p50 latency of each and their ratio
(onnxruntime p50 / ship-edge p50, so > 1 means ship-edge is faster).

onnxruntime cannot run ship-edge's custom ops, so for a model whose metadata says
`ops = custom` it runs the standard-op twin exported from the same weights,
`models/portable/<same name>` (or `--portable DIR/<same name>`); ship-edge runs the model given.
Add `--same-file` to give ship-edge the portable twin too (the standard-op graph in both).

Not part of CI (it needs `pip install onnxruntime numpy`). Example:

    cargo build --release
    python3 benches/compare_onnxruntime.py --sizes boson,vga --threads 1,2 \
        models/ship_edge_ivif.onnx models/ship_rt_ivif.onnx

Pin the onnxruntime version when comparing on a board: some pip wheels crash on a
Raspberry Pi 4 (microsoft/onnxruntime#24112).
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRESETS = {"lepton": (160, 120), "boson320": (320, 256), "vga": (640, 480),
           "boson": (640, 512), "sxga": (1280, 1024)}


def frame_size(text):
    if text in PRESETS:
        return PRESETS[text]
    w, h = text.lower().split("x")
    return int(w), int(h)


def synthetic_pair(width, height):
    """The pair `ship_edge::bench::synthetic_pair` makes (same formula, float32)."""
    y, x = np.mgrid[0:height, 0:width]
    i = (y * width + x).astype(np.uint64)
    noise = (((i * 2654435761) & 0xFFFFFFFF) >> 24).astype(np.float32) / 255.0
    u = x.astype(np.float32) / width
    v = y.astype(np.float32) / height
    blob = np.exp(-((u - 0.6) ** 2 + (v - 0.4) ** 2) * 40.0)
    ir = np.minimum(0.2 + 0.7 * blob + 0.05 * noise, 1.0).astype(np.float32)
    vis = (0.3 + 0.4 * u * v + 0.2 * noise).astype(np.float32)
    return ir[None, None], vis[None, None]


def uses_custom_ops(model):
    import onnx
    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    return meta.get("ops") == "custom"


def ship_edge_bench(binary, model, size, threads, frames, warmup):
    cmd = [binary, "bench", "--model", str(model), "--size", f"{size[0]}x{size[1]}",
           "--threads", str(threads), "--frames", str(frames), "--warmup", str(warmup), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def ort_bench(model, size, threads, frames, warmup):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    start = time.perf_counter()
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - start) * 1e3
    ir, vis = synthetic_pair(*size)
    feed = {"vis_y": vis, "ir": ir}
    start = time.perf_counter()
    sess.run(None, feed)
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return {"load_ms": load_ms, "first_inference_ms": first_ms,
            "p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=pathlib.Path,
                    default=sorted((ROOT / "models").glob("*.onnx")))
    ap.add_argument("--sizes", default="boson", help="comma-separated WxH or presets")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ship-edge", default=str(ROOT / "target/release/ship-edge"),
                    help="the ship-edge binary (default: target/release/ship-edge)")
    ap.add_argument("--json", type=pathlib.Path, help="also write all results here")
    ap.add_argument("--portable", type=pathlib.Path, default=ROOT / "models/portable",
                    help="where the standard-op twins of custom-op models are")
    ap.add_argument("--same-file", action="store_true",
                    help="run the standard-op twin in ship-edge as well")
    args = ap.parse_args()
    if not pathlib.Path(args.ship_edge).is_file():
        sys.exit(f"error: {args.ship_edge} not found: run `cargo build --release` first")

    rows = []
    print(f"onnxruntime {ort.__version__}; ratio = onnxruntime p50 / ship-edge p50")
    print(f"{'model':<22} {'size':>9} {'thr':>3} {'ship-edge p50':>14} {'onnxruntime p50':>16} {'ratio':>6}")
    for model in args.models:
        peer_model = args.portable / model.name if uses_custom_ops(model) else model
        if not peer_model.is_file():
            sys.exit(f"error: {model} uses custom ops and {peer_model} (its twin) is missing")
        ours_model = peer_model if args.same_file else model
        for size in map(frame_size, args.sizes.split(",")):
            for threads in map(int, args.threads.split(",")):
                ours = ship_edge_bench(args.ship_edge, ours_model, size, threads, args.frames, args.warmup)
                peer = ort_bench(peer_model, size, threads, args.frames, args.warmup)
                ratio = peer["p50"] / ours["latency_ms"]["p50"]
                rows.append({"model": str(ours_model), "onnxruntime_model": str(peer_model), "size": list(size), "threads": threads,
                             "ship_edge": ours, "onnxruntime": peer, "ratio": ratio,
                             "onnxruntime_version": ort.__version__})
                print(f"{model.name:<22} {size[0]:>4}x{size[1]:<4} {threads:>3} "
                      f"{ours['latency_ms']['p50']:>11.1f} ms {peer['p50']:>13.1f} ms {ratio:>6.2f}",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
