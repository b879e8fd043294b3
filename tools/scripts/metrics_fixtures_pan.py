#!/usr/bin/env python3
"""Reference values for tests/metrics_pan.rs (pan-sharpening metrics, MTF filters, interp23tap).

Not part of the product. Writes tests/data/metrics/pan_filters.json and pan_landsat7.json.

Where the numbers come from:
- "vivone": Vivone's MATLAB toolbox (DLPan-Toolbox `02-Test toolbox .../Quality_Indices/*.m`,
  `Tools/*.m`) transcribed into numpy/scipy in this file, independently of the Rust code
  (fwind1/genMTF, interp23tap, imresize bicubic, img_qi, SAM, ERGAS, SCC, q2n/onions_quality,
  D_lambda/D_s/QNR toolbox-1.0).
- "sewar": sewar 0.4.6 (pip), where its definition coincides with ours: psnr (joint MSE),
  ssim with its Gaussian filter (11, sigma 1.5, 'valid', MAX=255) = the [G] form, ergas with
  r = 1/ratio. Its sam (angles between *band* vectors, a bug in 0.4.6), uqi (ws with a ws/2
  crop) and scc (Laplacian, local) are different definitions: recorded as notes only.
- The fused images are produced by our CLI (`ship-edge pansharpen [--wald]`) and read back here
  from the 8-bit TIFFs, so both sides score identical inputs; the JSON stores each input's
  DN sum so the test can tell "the baseline changed" from "the metric is wrong".

Usage (from the repository root, with a release build):
  python3 -m venv /tmp/venv-pan && /tmp/venv-pan/bin/pip install numpy scipy sewar==0.4.6 tifffile
  /tmp/venv-pan/bin/python tools/scripts/metrics_fixtures_pan.py \
      --bin target/release/ship-edge --data ../shared/data/pansharpen/landsat7 --out tests/data/metrics
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version

import numpy as np
import scipy.ndimage as ndi
import tifffile

METHODS = ["exp", "brovey", "gihs", "gsa", "mtf-glp", "mtf-glp-hpm", "sfim"]
SCENES = {"01": METHODS, "13": ["exp", "gsa", "mtf-glp-hpm"], "25": ["exp", "gihs", "sfim"]}
RATIO = 2

# ---------------------------------------------------------------- toolbox filters (genMTF.m)


def fspecial_gaussian(n, sigma):
    m = (n - 1) / 2
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def fwind1(hd, w1):
    """MATLAB fwind1(Hd, win): Huang's rotationally symmetric window on t = -1..1, times
    fsamp2(Hd); no renormalisation (PanCollection's fir_filter_wind divides by the sum)."""
    n = len(w1)
    t = (np.arange(n) - (n - 1) / 2) * (2 / (n - 1))
    t1, t2 = np.meshgrid(t, t)
    t12 = np.sqrt(t1 * t1 + t2 * t2)
    w = np.interp(t12, t, w1)
    w[(t12 < t[0]) | (t12 > t[-1])] = 0
    h = np.rot90(np.fft.fftshift(np.fft.ifft2(np.rot90(np.fft.fftshift(np.rot90(hd, 2)), 2))), 2)
    return np.real(h * w)


def mtf_kernel(gnyq, ratio, n=41):
    alpha = math.sqrt(((n - 1) * (1 / ratio / 2)) ** 2 / (-2 * math.log(gnyq)))
    h = fspecial_gaussian(n, alpha)
    return fwind1(h / h.max(), np.kaiser(n, 0.5))


def mtf_filter(img, gnyq, ratio):
    return ndi.correlate(img, mtf_kernel(gnyq, ratio), mode="nearest")


def interp23tap(img, ratio):
    """img [bands, h, w]; interp23tap.m with log2(ratio) stages, 'circular' borders."""
    half = 2 * np.array([0.5, 0.305334091185, 0, -0.072698593239, 0, 0.021809577942, 0,
                         -0.005192756653, 0, 0.000807762146, 0, -0.000060081482])
    taps = np.concatenate([half[1:][::-1], half])
    cur, first = np.asarray(img, float), True
    for _ in range(int(round(math.log2(ratio)))):
        b, h, w = cur.shape
        up = np.zeros((b, 2 * h, 2 * w))
        o = 1 if first else 0
        up[:, o::2, o::2] = cur
        first = False
        up = ndi.correlate1d(up, taps, axis=1, mode="wrap")
        cur = ndi.correlate1d(up, taps, axis=2, mode="wrap")
    return cur


def imresize_bicubic_axis(x, scale, axis):
    """MATLAB imresize contributions(): Keys cubic, antialiased when shrinking, symmetric
    index mirroring, weights normalised."""
    n = x.shape[axis]
    out_len = int(math.ceil(n * scale))

    def cubic(v):
        a = np.abs(v)
        return ((1.5 * a ** 3 - 2.5 * a ** 2 + 1) * (a <= 1)
                + (-0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2) * ((a > 1) & (a <= 2)))

    width = 4.0
    if scale < 1:
        kernel = lambda v: scale * cubic(scale * v)  # noqa: E731
        width /= scale
    else:
        kernel = cubic
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]
    wts = kernel(u[:, None] - idx)
    wts /= wts.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(n), np.arange(n)[::-1]])
    idx = aux[np.mod(idx.astype(int) - 1, 2 * n)]
    xm = np.moveaxis(x, axis, 0)
    out = np.einsum("op,op...->o...", wts, xm[idx])
    return np.moveaxis(out, 0, axis)


def imresize_bicubic(img, scale):
    return imresize_bicubic_axis(imresize_bicubic_axis(img, scale, 0), scale, 1)


# ---------------------------------------------------------------- reduced-resolution metrics


def window_sums(x, n):
    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1))
    c[1:, 1:] = x.cumsum(0).cumsum(1)
    return c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]


def img_qi(a, b, bs=32):
    n = bs * bs
    s1, s2 = window_sums(a, bs), window_sums(b, bs)
    s11, s22, s12 = window_sums(a * a, bs), window_sums(b * b, bs), window_sums(a * b, bs)
    mul = s1 * s2
    sq = s1 * s1 + s2 * s2
    num = 4 * (n * s12 - mul) * mul
    den1 = n * (s11 + s22) - sq
    den = den1 * sq
    q = np.ones_like(den)
    idx = (den1 == 0) & (sq != 0)
    q[idx] = 2 * mul[idx] / sq[idx]
    idx = den != 0
    q[idx] = num[idx] / den[idx]
    return q.mean()


def sam_deg(ref, fus):
    dot = (ref * fus).sum(0)
    norm = np.sqrt((ref * ref).sum(0) * (fus * fus).sum(0))
    keep = norm != 0
    return float(np.real(np.arccos(np.clip(dot[keep] / norm[keep], -1, 1))).mean() * 180 / np.pi)


def ergas(ref, fus, ratio):
    acc = sum(((ref[b] - fus[b]) ** 2).mean() / ref[b].mean() ** 2 for b in range(ref.shape[0]))
    return 100 / ratio * math.sqrt(acc / ref.shape[0])


def scc(fus, ref):
    sob = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)

    def grad(x):
        inner = x[1:-1, 1:-1]
        gy = ndi.correlate(inner, sob, mode="constant")
        gx = ndi.correlate(inner, sob.T, mode="constant")
        return np.sqrt(gx * gx + gy * gy)

    gf = np.stack([grad(b) for b in fus])
    gr = np.stack([grad(b) for b in ref])
    return float((gf * gr).sum() / math.sqrt((gf ** 2).sum()) / math.sqrt((gr ** 2).sum()))


def onion_mult(a, b):
    """onion_mult.m / onion_mult2D.m on arrays whose first axis holds the parts."""
    n = a.shape[0]
    if n == 1:
        return a * b
    half = n // 2

    def neg_tail(v):
        v = v.copy()
        v[1:] = -v[1:]
        return v

    a1, b1 = a[:half], neg_tail(a[half:])
    c, d = b[:half], neg_tail(b[half:])
    if n == 2:
        return np.stack([a1[0] * c[0] - d[0] * b1[0], a1[0] * d[0] + c[0] * b1[0]])
    r1 = onion_mult(a1, c)
    r2 = onion_mult(d, neg_tail(b1))
    r3 = onion_mult(neg_tail(a1), d)
    r4 = onion_mult(c, b1)
    return np.concatenate([r1 - r2, r3 + r4])


def onions_quality(d1, d2):
    d1, d2 = d1.astype(float), d2.astype(float)
    d2[1:] = -d2[1:]
    nb, h, w = d1.shape
    npix = h * w
    k = npix / (npix - 1)
    for i in range(nb):
        s, t = d1[i].mean(), d1[i].std(ddof=1)
        if t == 0:
            t = np.finfo(float).eps
        d1[i] = (d1[i] - s) / t + 1
        if s == 0:
            d2[i] = d2[i] - s + 1 if i == 0 else -(-d2[i] - s + 1)
        else:
            d2[i] = (d2[i] - s) / t + 1 if i == 0 else -((-d2[i] - s) / t + 1)
    m1, m2 = d1.mean(axis=(1, 2)), d2.mean(axis=(1, 2))
    q1m, q2m = math.sqrt((m1 ** 2).sum()), math.sqrt((m2 ** 2).sum())
    int1 = k * (d1 ** 2).sum(0).mean()
    int2 = k * (d2 ** 2).sum(0).mean()
    t3 = int1 + int2 - k * (q1m ** 2 + q2m ** 2)
    mean_bias = 2 * q1m * q2m / (q1m ** 2 + q2m ** 2)
    if t3 == 0:
        q = np.zeros(nb)
        q[-1] = mean_bias
        return q
    qu = onion_mult(d1, d2)
    qm = onion_mult(m1, m2)
    qv = k * qu.mean(axis=(1, 2))
    return (qv - k * qm) * mean_bias * (2 / t3)


def q2n(ref, fus, bs=32):
    nb, h, w = ref.shape
    ph, pw = -(-h // bs) * bs, -(-w // bs) * bs

    def prep(x):
        x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w)), mode="symmetric")
        x = np.clip(np.floor(x + 0.5), 0, 65535)  # uint16(): round half up for x >= 0
        n2 = 1 << (nb - 1).bit_length()
        return np.concatenate([x, np.zeros((n2 - nb, ph, pw))]) if n2 > nb else x

    r, f = prep(ref), prep(fus)
    vals = [np.sqrt((onions_quality(r[:, j:j + bs, i:i + bs], f[:, j:j + bs, i:i + bs]) ** 2).sum())
            for j in range(0, ph, bs) for i in range(0, pw, bs)]
    return float(np.mean(vals))


def reduced_vivone(fus, ref, ratio):
    mse = ((fus - ref) ** 2).mean()
    return {
        "PSNR": 20 * math.log10(255 / math.sqrt(mse)),
        "SAM": sam_deg(ref, fus),
        "ERGAS": ergas(ref, fus, ratio),
        "SCC": scc(fus, ref),
        "Q": float(np.mean([img_qi(ref[b], fus[b]) for b in range(ref.shape[0])])),
        "Q2n": q2n(ref, fus),
    }


# ---------------------------------------------------------------- full resolution (QNR.m)


def uqi(x, y):
    x, y = x.ravel(), y.ravel()
    mx, my = x.mean(), y.mean()
    c = np.cov(x, y)
    return 4 * c[0, 1] * mx * my / (c[0, 0] + c[1, 1]) / (mx ** 2 + my ** 2)


def block_q(a, b, s=32):
    h, w = a.shape
    return float(np.mean([uqi(a[j:j + s, i:i + s], b[j:j + s, i:i + s])
                          for j in range(0, h, s) for i in range(0, w, s)]))


def full_vivone(fus, ms, pan, ratio):
    ms_up = interp23tap(ms, ratio)
    pan_filt = interp23tap(imresize_bicubic(pan, 1 / ratio)[None], ratio)[0]
    nb = fus.shape[0]
    dl = np.mean([abs(block_q(fus[i], fus[j]) - block_q(ms_up[i], ms_up[j]))
                  for i in range(nb - 1) for j in range(i + 1, nb)])
    ds = np.mean([abs(block_q(fus[i], pan) - block_q(ms_up[i], pan_filt)) for i in range(nb)])
    return {"D_lambda": float(dl), "D_s": float(ds), "QNR": float((1 - dl) * (1 - ds))}


# ---------------------------------------------------------------- driver


def read_cube(path):
    a = tifffile.imread(path).astype(float)
    return a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)


def filters_fixture():
    cases = []
    for g, r in [(0.3, 2), (0.15, 2), (0.3, 4), (0.22, 4)]:
        k = mtf_kernel(g, r)
        cases.append({"gnyq": g, "ratio": r, "sum": float(k.sum()), "row20": k[20].tolist(),
                      "row10": k[10].tolist(), "pancollection_sum": 1.0})
    src = np.array([[[(7 * y + 3 * x + 5 * b) % 11 + 0.25 * x for x in range(6)] for y in range(5)]
                    for b in range(2)], float)
    pan = np.array([[((y * 13 + x * 7) % 17) + 0.5 * y for x in range(24)] for y in range(20)], float)
    return {
        "kaiser41": np.kaiser(41, 0.5).tolist(),
        "mtf": cases,
        "interp_input": src.tolist(),
        "interp23tap_r2": interp23tap(src, 2).tolist(),
        "interp23tap_r4": interp23tap(src, 4).tolist(),
        "imresize_input": pan.tolist(),
        "imresize_bicubic_half": imresize_bicubic(pan, 0.5).tolist(),
        "imresize_bicubic_quarter": imresize_bicubic(pan, 0.25).tolist(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/ship-edge")
    ap.add_argument("--data", default="../shared/data/pansharpen/landsat7")
    ap.add_argument("--out", default="tests/data/metrics")
    args = ap.parse_args()
    import sewar.full_ref as sw

    provenance = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": version("scipy"),
        "sewar": version("sewar"),
        "tifffile": version("tifffile"),
    }
    with open(os.path.join(args.out, "pan_filters.json"), "w") as f:
        json.dump({"provenance": provenance, **filters_fixture()}, f)

    scenes = []
    with tempfile.TemporaryDirectory() as tmp:
        for scene, methods in SCENES.items():
            ms_path = os.path.join(args.data, "ms", scene + ".tif")
            pan_path = os.path.join(args.data, "pan", scene + ".tif")
            ms, pan = read_cube(ms_path), read_cube(pan_path)[0]
            entry = {"scene": scene, "methods": {}}
            for m in methods:
                rr, fr = os.path.join(tmp, f"{m}_rr.tif"), os.path.join(tmp, f"{m}_fr.tif")
                base = [args.bin, "pansharpen", "--ms", ms_path, "--pan", pan_path, "--method", m]
                subprocess.run(base + ["--wald", "-o", rr], check=True, capture_output=True)
                subprocess.run(base + ["-o", fr], check=True, capture_output=True)
                f_rr, f_fr = read_cube(rr), read_cube(fr)
                red = reduced_vivone(f_rr, ms, RATIO)
                gt, pr = np.moveaxis(ms, 0, -1), np.moveaxis(f_rr, 0, -1)
                ssim_g = sw.ssim(gt, pr, ws=11, MAX=255, mode="valid",
                                 fltr_specs=dict(fltr=sw.Filter.GAUSSIAN, sigma=1.5, ws=11))[0]
                red["SSIM"] = float(ssim_g)
                sewar = {"PSNR": float(sw.psnr(gt, pr, MAX=255)), "SSIM": float(ssim_g),
                         "ERGAS": float(sw.ergas(gt, pr, r=1 / RATIO))}
                notes = {"sewar_sam_band_vectors_rad": float(sw.sam(gt, pr)),
                         "sewar_uqi_ws32": float(sw.uqi(gt, pr, ws=32))}
                entry["methods"][m] = {
                    "reduced_input_sum": float(f_rr.sum()),
                    "full_input_sum": float(f_fr.sum()),
                    "reduced": red,
                    "reduced_sewar": sewar,
                    "full": full_vivone(f_fr, ms, pan, RATIO),
                    "other_variants": notes,
                }
                print(scene, m, red, entry["methods"][m]["full"], file=sys.stderr)
            scenes.append(entry)
    notes = {
        "forms": "Vivone toolbox transcriptions (this script) are the reference for SAM (degrees, zero-norm pixels excluded), ERGAS (100/r), SCC (Sobel, interior, un-centred global), Q (img_qi 32x32 sliding), Q2n (q2n.m incl. uint16 cast, Q8 for 6 bands), D_lambda/D_s/QNR (toolbox 1.0, S=32 blocks, P~ = interp23tap(imresize(P,1/r) bicubic)). PSNR ([G], joint MSE, peak 255) and SSIM ([G], Gaussian 11/1.5 valid, L=255, band mean) also checked against sewar, which coincides.",
        "disagreements": "sewar 0.4.6 sam() takes angles between whole-band vectors (loops over bands, not pixels), uqi() uses a ws/2 crop of a 'same' map and scc() a Laplacian high-pass with local 8x8 correlation: different definitions, values kept under other_variants. PanCollection 0.3.6 (read, not run: it imports torch) normalises the MTF kernel to sum 1 (MATLAB fwind1 does not: sums in pan_filters.json), uses pi = 3.14159256 and NaN angles as 0 in SAM, population std and eps 1e-8 in Q2n's norm_blocco, and its q2n crashes when the band count must be zero-padded (np.concatenate(gt, dif, axis=-1)).",
        "phase": "MS sample (i,j) at PAN (2i+1, 2j+1): imresize nearest keeps 0-based r*u + r/2, interp23tap puts samples back there.",
    }
    with open(os.path.join(args.out, "pan_landsat7.json"), "w") as f:
        json.dump({"provenance": provenance, "ratio": RATIO, "sensor": "other", "peak": 255,
                   "dim_cut": 0, "notes": notes, "scenes": scenes}, f, indent=1)


if __name__ == "__main__":
    main()
