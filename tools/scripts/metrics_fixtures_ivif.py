#!/usr/bin/env python3
"""Reference numbers for the infrared-visible metric tests (tests/metrics_ivif.rs).

Not part of the product: it writes tests/data/metrics/ivif_samples.json (images committed in
samples/tno, fused images made here) and tests/data/metrics/ivif_tno_tang.json (published fused
outputs under ../shared/data/ivif/tno_tang, which are never committed: the test skips without
them). Each fixture records the command and package versions that produced it.

Three independent references, one per convention (definitions: shared/notes/METRICS.md):
- cddfuse: the functions of MMIF-CDDFuse `utils/Evaluator.py` (commit 40de0585), imported from
  a local copy that is NOT in this repository (it has no license). Get it from GitHub into
  /tmp and pass --evaluator. On scikit-image >= 0.20 its SSIM call is given data_range=2, the
  value 0.19 used implicitly for float input.
- default: Evaluator.py where the definitions coincide (EN, SD, SF, AG, SCD, CC, VIF, Qabf);
  MI = sklearn mutual_info_score / ln 2; SSIM = scikit-image structural_similarity with
  Gaussian weights (sigma 1.5, 11x11, population covariance, data_range 255), whose 5-px crop
  is exactly Wang's 'valid' region; PSNR in numpy; Nabf is this script's own numpy
  transcription of analysis_nabf.m / sobel_fn.m (METRICS.md §2), not third-party code.
- tang2022: this script's numpy transcription of the 2022 MATLAB code (METRICS.md §3.2, uint8
  saturation included). It is checked here against metrics_tang2022.csv (the authors' own
  numbers) on every published fused image we have, and the worst deviations are printed.

Usage (throw-away venv):
    python3 -m venv /tmp/venv-ivif
    /tmp/venv-ivif/bin/pip install numpy scipy scikit-learn scikit-image opencv-python-headless
    /tmp/venv-ivif/bin/python tools/scripts/metrics_fixtures_ivif.py \
        --evaluator /tmp/cddfuse/Evaluator.py --shared ../shared/data
"""

import argparse
import csv
import importlib.util
import json
import math
import os
import platform
import sys
from importlib.metadata import version

import numpy as np
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity
from sklearn.metrics import mutual_info_score

SAMPLE_STEMS = ["01", "03", "05"]
SAMPLE_FUSIONS = ["average", "max"]
TANG_STEMS = ["01", "05", "09"]
TANG_METHODS = ["SeAFusion", "IFCNN"]
CSV_METHODS = ["SeAFusion", "PIAFusion", "IFCNN", "U2Fusion"]
CSV_METRICS = ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "CC", "PSNR", "MSE"]


def load_evaluator(path):
    spec = importlib.util.spec_from_file_location("cddfuse_evaluator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    skimage_major_minor = tuple(int(x) for x in version("scikit-image").split(".")[:2])
    if skimage_major_minor >= (0, 20):
        # 0.19 took float input as [-1, 1] (data_range 2); >= 0.20 demands data_range.
        module.ssim = lambda x, y: structural_similarity(x, y, data_range=2)
    return module


def fuse(kind, a, b):
    """The simple fusions the Rust test recomputes: floor of the mean, or the maximum."""
    if kind == "average":
        return np.floor((a + b) / 2).astype(a.dtype)
    if kind == "max":
        return np.maximum(a, b)
    raise ValueError(kind)


# ---------------------------------------------------------------- default-convention extras
def mi_bits(f, x):
    return mutual_info_score(f.ravel(), x.ravel()) / math.log(2)


def ssim_wang(f, x):
    """Wang SSIM (Gaussian 11x11, sigma 1.5, L 255), mean over the 'valid' region."""
    return structural_similarity(
        f.astype(np.float64),
        x.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )


def ssim_wang_valid_check(f, x):
    """Same value from the full map, cropped by hand to the 11x11 'valid' region."""
    _, full = structural_similarity(
        f.astype(np.float64),
        x.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        full=True,
    )
    return full[5:-5, 5:-5].mean()


def sobel_fn(x):
    """sobel_fn.m: correlation with /8 Sobel kernels, image mirrored without the edge sample,
    each window summed as MATLAB sum(sum(.)) does: column sums first, then across. On [0,1]
    images (tang2022) the order decides ties between edge strengths, which Nabf's strict
    `g_F > g_A` tests are sensitive to."""
    xe = np.pad(x, 1, mode="reflect")
    v = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64) / 8
    h = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64) / 8
    rows, cols = x.shape

    def window_sum(k):
        total = None
        for j in range(3):
            column = None
            for i in range(3):
                term = xe[i : i + rows, j : j + cols] * k[i, j]
                column = term if column is None else column + term
            total = column if total is None else total + column
        return total

    return window_sum(v), window_sum(h)


def nabf(f, a, b):
    """analysis_nabf.m (Shreyamsha Kumar's modified N_ABF), transcribed."""
    td, wt_min, lg = 2.0, 0.001, 1.5
    nrg, kg, sg = 0.9999, 19.0, 0.5
    nra, ka, sa = 0.9995, 22.0, 0.5
    f, a, b = (np.asarray(z, dtype=np.float64) for z in (f, a, b))

    def strength_orientation(x):
        gv, gh = sobel_fn(x)
        g = np.sqrt(gh**2 + gv**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
        return g, alpha

    g_a, a_a = strength_orientation(a)
    g_b, a_b = strength_orientation(b)
    g_f, a_f = strength_orientation(f)

    def q(gx, ax):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(
                (gx == 0) | (g_f == 0), 0.0, np.where(gx > g_f, g_f / gx, gx / g_f)
            )
        orient = np.abs(np.abs(ax - a_f) - np.pi / 2) * 2 / np.pi
        qg = nrg / (1 + np.exp(-kg * (ratio - sg)))
        qa = nra / (1 + np.exp(-ka * (orient - sa)))
        return np.sqrt(qg * qa)

    w_a = np.where(g_a >= td, g_a**lg, wt_min)
    w_b = np.where(g_b >= td, g_b**lg, wt_min)
    n = (g_f > g_a) & (g_f > g_b)
    return float(np.sum(n * ((1 - q(g_a, a_a)) * w_a + (1 - q(g_b, a_b)) * w_b)) / np.sum(w_a + w_b))


# ---------------------------------------------------------------- tang2022 transcription
def matlab_round(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def entropy_bits(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)))


def tang_mi(f, x):
    """MI_evaluation.m + Hab.m: exact marginals, joint index uint8(x)+1 saturating at 255."""
    hf = entropy_bits(np.bincount(f.ravel(), minlength=256))
    hx = entropy_bits(np.bincount(x.ravel(), minlength=256))
    fi = np.minimum(f.astype(np.int64), 254)
    xi = np.minimum(x.astype(np.int64), 254)
    joint = np.bincount((fi * 256 + xi).ravel(), minlength=256 * 256)
    return hf + hx - entropy_bits(joint)


def vifp(ref, dist, saturate):
    """vifp_mscale.m; with `saturate`, uint8 .* at scale 1 (products clipped at 255)."""
    ref = ref.astype(np.float64)
    dist = dist.astype(np.float64)
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        sd = n / 5.0
        m = (n - 1) / 2
        y, x = np.ogrid[-m : m + 1, -m : m + 1]
        win = np.exp(-(x * x + y * y) / (2 * sd * sd))
        win[win < np.finfo(win.dtype).eps * win.max()] = 0
        win /= win.sum()
        filt = lambda z: convolve2d(z, np.rot90(win, 2), mode="valid")  # noqa: E731
        if scale > 1:
            ref = filt(ref)[::2, ::2]
            dist = filt(dist)[::2, ::2]
        prod = (lambda u, v: np.minimum(u * v, 255)) if (saturate and scale == 1) else (lambda u, v: u * v)
        mu1, mu2 = filt(ref), filt(dist)
        s1 = filt(prod(ref, ref)) - mu1 * mu1
        s2 = filt(prod(dist, dist)) - mu2 * mu2
        s12 = filt(prod(ref, dist)) - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10] = 0
        sv[s1 < 1e-10] = s2[s1 < 1e-10]
        s1[s1 < 1e-10] = 0
        g[s2 < 1e-10] = 0
        sv[s2 < 1e-10] = 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g * g * s1 / (sv + 2)))
        den += np.sum(np.log10(1 + s1 / 2))
    return float(num / den)


def corr2(x, y):
    x = x - x.mean()
    y = y - y.mean()
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def conv2_same(img, kernel):
    """MATLAB conv2(img, kernel, 'same') summed in MATLAB's order (kernel columns outer, rows
    inner). On [0,1] images the rounding decides Qabf's exact-equality branch: this order
    reproduces the authors' Qabf to 1e-15, scipy's convolve2d misses by up to 1e-3."""
    rows, cols = img.shape
    p = np.pad(img, 1)
    out = np.zeros_like(img)
    for j in range(3):
        for i in range(3):
            if kernel[i, j] != 0:
                out = out + kernel[i, j] * p[2 - i : 2 - i + rows, 2 - j : 2 - j + cols]
    return out


def qabf_matlab(f, a, b):
    """analysis_Qabf.m, transcribed (the G = g_F branch where strengths are equal included)."""
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)

    def strength_orientation(x):
        sx, sy = conv2_same(x, h3), conv2_same(x, h1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(sx**2 + sy**2), np.where(sx == 0, np.pi / 2, np.arctan(sy / sx))

    def q(gx, ax, gf, af):
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(gx > gf, gf / gx, np.where(gx == gf, gf, gx / gf))
        orient = 1 - np.abs(ax - af) / (np.pi / 2)
        return 0.9994 / (1 + np.exp(-15 * (g - 0.5))) * 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))

    (ga, aa), (gb, ab), (gf, af) = (strength_orientation(x) for x in (a, b, f))
    return float(np.sum(q(ga, aa, gf, af) * ga + q(gb, ab, gf, af) * gb) / np.sum(ga + gb))


def tang2022(f8, a8, b8):
    """analysis_Reference.m (easy = 1, plus Nabf) on uint8 grey images."""
    f, a, b = (z.astype(np.float64) for z in (f8, a8, b8))
    f1, a1, b1 = f / 255, a / 255, b / 255
    rows, cols = f.shape
    d = np.clip(matlab_round(f - f.mean()), 0, 255)
    sd = math.sqrt(np.sum(np.minimum(d * d, 255)) / (rows * cols))
    sf = math.sqrt(np.mean(np.diff(f1, axis=0) ** 2) + np.mean(np.diff(f1, axis=1) ** 2))
    gy, gx = np.gradient(f)
    ag = float(np.sum(np.sqrt((gx**2 + gy**2) / 2)) / ((rows - 1) * (cols - 1)))
    mse = 0.5 * np.mean((f1 - a1) ** 2) + 0.5 * np.mean((f1 - b1) ** 2)
    return {
        "EN": entropy_bits(np.bincount(f8.ravel(), minlength=256)),
        "SD": sd,
        "SF": sf,
        "AG": ag,
        "MI": tang_mi(f8, a8) + tang_mi(f8, b8),
        "SCD": corr2(f1 - b1, a1) + corr2(f1 - a1, b1),
        "VIF": vifp(a8, f8, True) + vifp(b8, f8, True),
        "Qabf": qabf_matlab(f1, a1, b1),
        "CC": (corr2(a1, f1) + corr2(b1, f1)) / 2,
        "PSNR": 20 * math.log10(255 / math.sqrt(mse)),
        "MSE": float(mse),
        "Nabf": nabf(f1, a1, b1),
    }


# ---------------------------------------------------------------- per case
def cddfuse(ev, f, a, b):
    e = ev.Evaluator
    return {
        "EN": e.EN(f),
        "SD": e.SD(f),
        "SF": e.SF(f),
        "AG": e.AG(f),
        "MI": e.MI(f, a, b),
        "SCD": e.SCD(f, a, b),
        "CC": e.CC(f, a, b),
        "VIF": e.VIFF(f, a, b),
        "Qabf": e.Qabf(f, a, b),
        "SSIM": e.SSIM(f, a, b),
        "PSNR": e.PSNR(f, a, b),
    }


def default(ev, cdd, f, a, b):
    """Default convention: the coinciding cddfuse numbers plus independent references."""
    e = ev.Evaluator
    out = {k: cdd[k] for k in ["EN", "SD", "SF", "AG", "SCD", "CC", "Qabf"]}
    vif_a = vifp(a, f, False)
    vif_b = vifp(b, f, False)
    # Cross-check against Evaluator.compare_viff (which maps NaN to 1.0).
    assert abs(vif_a + vif_b - cdd["VIF"]) <= 1e-9 * abs(cdd["VIF"]), (vif_a + vif_b, cdd["VIF"])
    out["VIF"] = e.compare_viff(a, f) + e.compare_viff(b, f)
    out["MI"] = mi_bits(f, a) + mi_bits(f, b)
    s_a, s_b = ssim_wang(f, a), ssim_wang(f, b)
    assert abs(s_a - ssim_wang_valid_check(f, a)) < 1e-12 and abs(s_b - ssim_wang_valid_check(f, b)) < 1e-12
    out["SSIM"] = s_a + s_b
    f64, a64, b64 = (z.astype(np.float64) for z in (f, a, b))
    mse = 0.5 * np.mean((f64 - a64) ** 2) + 0.5 * np.mean((f64 - b64) ** 2)
    out["PSNR"] = 10 * math.log10(255.0**2 / mse)
    out["Nabf"] = nabf(f, a, b)
    return out


def as_float(d):
    return {k: float(v) for k, v in d.items()}


def case(ev, name, ir_rel, vi_rel, fused, a, b, f):
    cdd = as_float(cddfuse(ev, f, a, b))
    return {
        "name": name,
        "ir": ir_rel,
        "vi": vi_rel,
        "fused": fused,
        "cddfuse": cdd,
        "default": as_float(default(ev, cdd, f, a, b)),
        "tang2022": as_float(tang2022(f.astype(np.uint8), a.astype(np.uint8), b.astype(np.uint8))),
    }


def provenance(args):
    return {
        "generated_by": "tools/scripts/metrics_fixtures_ivif.py",
        "command": "python tools/scripts/metrics_fixtures_ivif.py " + " ".join(sys.argv[1:]),
        "python": platform.python_version(),
        "packages": {
            p: version(p)
            for p in ["numpy", "scipy", "scikit-image", "scikit-learn", "opencv-python-headless"]
        },
        "references": {
            "cddfuse": "MMIF-CDDFuse utils/Evaluator.py (commit 40de0585), local copy; SSIM with data_range=2",
            "default": "Evaluator.py for EN SD SF AG SCD CC Qabf VIF; sklearn mutual_info_score/ln2 for MI; "
            "skimage structural_similarity(gaussian_weights, sigma 1.5, population covariance, data_range 255) "
            "for SSIM; numpy for PSNR; Nabf = this script's transcription of analysis_nabf.m",
            "tang2022": "this script's numpy transcription of Linfeng-Tang/Image-Fusion 2022 MATLAB code "
            "(METRICS.md 3.2), checked against metrics_tang2022.csv",
        },
        "inputs": "grey 0-255 via Evaluator.image_read_cv2(path, 'GRAY') (cv2 BGR2GRAY on float32, np.round)",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluator", default="/tmp/cddfuse/Evaluator.py")
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--repo", default=".")
    parser.add_argument("--out", default="tests/data/metrics")
    args = parser.parse_args()
    ev = load_evaluator(args.evaluator)
    read = lambda p: ev.image_read_cv2(p, "GRAY")  # noqa: E731

    samples = []
    for stem in SAMPLE_STEMS:
        ir_rel, vi_rel = f"samples/tno/ir/{stem}.png", f"samples/tno/vi/{stem}.png"
        a = read(os.path.join(args.repo, ir_rel))
        b = read(os.path.join(args.repo, vi_rel))
        for kind in SAMPLE_FUSIONS:
            samples.append(case(ev, f"{stem}-{kind}", ir_rel, vi_rel, kind, a, b, fuse(kind, a, b)))
    write(args, "ivif_samples.json", {**provenance(args), "root": "repository", "cases": samples})

    tang_root = os.path.join(args.shared, "ivif", "tno_tang")
    published = []
    for method in TANG_METHODS:
        for stem in TANG_STEMS:
            ir_rel, vi_rel = f"ivif/tno_tang/ir/{stem}.png", f"ivif/tno_tang/vi/{stem}.png"
            f_rel = f"ivif/tno_tang/fused/{method}/{stem}.png"
            a = read(os.path.join(args.shared, ir_rel))
            b = read(os.path.join(args.shared, vi_rel))
            f = read(os.path.join(args.shared, f_rel))
            published.append(case(ev, f"{method}-{stem}", ir_rel, vi_rel, f_rel, a, b, f))
    write(args, "ivif_tno_tang.json", {**provenance(args), "root": "shared data (../shared/data)", "cases": published})

    check_tang_against_csv(ev, tang_root, read)


def write(args, name, obj):
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, name)
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")
    print(f"wrote {path} ({len(obj['cases'])} cases)")


def check_tang_against_csv(ev, root, read):
    """Worst deviation of the tang2022 transcription from the authors' numbers."""
    worst = {m: 0.0 for m in CSV_METRICS}
    count = 0
    with open(os.path.join(root, "metrics_tang2022.csv")) as fh:
        for row in csv.DictReader(fh):
            if row["method"] not in CSV_METHODS:
                continue
            stem = row["image"]
            a = read(os.path.join(root, "ir", f"{stem}.png")).astype(np.uint8)
            b = read(os.path.join(root, "vi", f"{stem}.png")).astype(np.uint8)
            f = read(os.path.join(root, "fused", row["method"], f"{stem}.png")).astype(np.uint8)
            got = tang2022(f, a, b)
            for m in CSV_METRICS:
                want = float(row[m])
                dev = abs(got[m] - want) if m == "Qabf" else abs(got[m] - want) / abs(want)
                worst[m] = max(worst[m], dev)
            count += 1
    print(f"tang2022 transcription vs metrics_tang2022.csv, {count} image/method pairs")
    for m, v in worst.items():
        print(f"  {m:5s} max {'abs' if m == 'Qabf' else 'rel'} deviation {v:.2e}")


if __name__ == "__main__":
    main()
