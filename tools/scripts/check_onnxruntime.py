#!/usr/bin/env python3
"""Prove that an exported ship-edge ONNX model gives the same output in onnxruntime as in tract.

For each IR/visible pair it runs the model in onnxruntime (CPU), runs `ship-edge fuse --raw` (tract)
on the same pair, and compares the raw fused Y (before clamping) pixel by pixel.

    pip install onnxruntime numpy pillow
    cargo build --release
    python3 tools/scripts/check_onnxruntime.py models/portable/ship_edge_ivif.onnx samples/tno --tol 1e-4
    # onnxruntime on the standard-op twin, ship-edge on the shipped custom-op model:
    python3 tools/scripts/check_onnxruntime.py models/portable/ship_edge_ivif.onnx samples/tno \
        --ship-edge-model models/ship_edge_ivif.onnx

onnxruntime cannot run ship-edge's custom ops (metadata `ops = custom`): give it the
standard-op export (`ship-tools export --ops standard`, or the twin in models/portable/).

Exit status 0 when every pair is within --tol (max abs error), 1 otherwise.
Not part of CI: the product never depends on Python.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image


def luma(path):
    """Y = 0.299 R + 0.587 G + 0.114 B in [0,1] (grey images: the value itself)."""
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return (0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]).astype(np.float32)


def ir_plane(path):
    """Channel 0 of the IR image in [0,1] (the official SHIP convention)."""
    img = np.asarray(Image.open(path), dtype=np.float32)
    if img.ndim == 3:
        img = img[..., 0]
    return img / 255.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("pairs", help="folder with ir/ and vi/")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ship-edge", default="target/release/ship-edge")
    ap.add_argument("--ship-edge-model", help="model ship-edge runs (default: the same file)")
    args = ap.parse_args()
    ours_model = args.ship_edge_model or args.model

    model = onnx.load(args.model)
    if {p.key: p.value for p in model.metadata_props}.get("ops") == "custom":
        sys.exit(f"error: {args.model} uses ship-edge's custom ops, which onnxruntime cannot run; "
                 f"pass its standard-op twin (models/portable/, or ship-tools export --ops standard)")
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    worst = 0.0
    for name in sorted(os.listdir(os.path.join(args.pairs, "ir"))):
        ir_path = os.path.join(args.pairs, "ir", name)
        vi_path = os.path.join(args.pairs, "vi", name)
        vis, ir = luma(vi_path), ir_plane(ir_path)
        t0 = time.perf_counter()
        ref = sess.run(["fused"], {"vis_y": vis[None, None], "ir": ir[None, None]})[0][0, 0]
        t_ort = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as d:
            raw = os.path.join(d, "raw.npy")
            subprocess.run(
                [args.ship_edge, "fuse", "--ir", ir_path, "--vis", vi_path, "--model", ours_model,
                 "--threads", str(args.threads), "-o", os.path.join(d, "out.png"), "--raw", raw],
                check=True, stdout=subprocess.DEVNULL)
            ours = np.load(raw)
        err = float(np.abs(ours.reshape(ref.shape) - ref).max())
        worst = max(worst, err)
        print(f"{name}: {ref.shape[1]}x{ref.shape[0]} max|tract - onnxruntime| = {err:.2e} "
              f"(onnxruntime {t_ort * 1e3:.0f} ms)")
    print(f"worst {worst:.2e}, tolerance {args.tol:.0e}: {'OK' if worst <= args.tol else 'FAIL'}")
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
