#!/usr/bin/env python3
"""PyTorch CPU twin of `ship-tools bench-train`: the same training steps, the same output format.

Two workloads, as in the Rust command:
- `--probe`: the issue-13 probe, 10 x (Conv2d(16->16, 3x3, pad 1, bias) + LeakyReLU(0.2)) on
  [B, 16, crop, crop] uniform(-1, 1) inputs, init uniform(+-1/sqrt(144)).
- `--preset ship|ship++|edge`: a port of the *forward structure* of `tools/src/nets/ship.rs`
  (same modules, widths, kernel sizes, orders and SHIP++ switches, the CDC and LU 1x1 convs folded
  the same way, the order-1 interaction with torch.fft), for timing only: no weight names, no
  parity with the Rust network is claimed. Inputs uniform [0, 1] of [B, 1, crop, crop].
In both, loss = mean of the output, SGD lr 1e-3; forward (incl. the loss), backward and the
whole step (forward + backward + SGD) are timed separately, medians over --steps after --warmup.

Run it in a throw-away venv (never commit the venv), right after the candle runs:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch   # or --index-url https://download.pytorch.org/whl/cpu
    cargo build --release -p ship-tools
    target/release/ship-tools bench-train --probe --kernels candle
    target/release/ship-tools bench-train --probe
    /tmp/torchvenv/bin/python tools/scripts/bench_train_torch.py --probe --threads 2
    target/release/ship-tools bench-train --preset edge
    /tmp/torchvenv/bin/python tools/scripts/bench_train_torch.py --preset edge --threads 2
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS, LAYERS, SLOPE = 16, 10, 0.2

# Presets of tools/src/nets/config.rs: width C, blocks L, orders N, edge blocks, growth,
# channel InvBlock, and the three SHIP++ switches (cross-order attention, integration, residual).
PRESETS = {
    "ship": dict(c=16, blocks=3, orders=4, edge_blocks=2, growth=16, inv=True, pp=False),
    "ship++": dict(c=16, blocks=3, orders=4, edge_blocks=2, growth=16, inv=True, pp=True),
    "edge": dict(c=8, blocks=2, orders=3, edge_blocks=1, growth=8, inv=False, pp=False),
    "rt": dict(c=4, blocks=1, orders=2, edge_blocks=1, growth=4, inv=False, pp=False),
}
CDC_THETA, INV_CLAMP, HIN_SLOPE, DENSE_SLOPE = 0.8, 0.8, 0.1, 0.2
HV_TAPS, DG_TAPS = [1, 3, 4, 5, 7], [0, 2, 4, 6, 8]


def probe() -> nn.Module:
    layers = []
    for _ in range(LAYERS):
        conv = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=True)
        bound = 1.0 / (CHANNELS * 9) ** 0.5
        nn.init.uniform_(conv.weight, -bound, bound)
        nn.init.uniform_(conv.bias, -bound, bound)
        layers += [conv, nn.LeakyReLU(SLOPE)]
    return nn.Sequential(*layers)


def conv(a, b, k):
    return nn.Conv2d(a, b, k, padding=k // 2)


class Blk(nn.Module):
    """Conv(a->b) -> ReLU -> Conv(b->b); 3x3 refresh block, or 1x1 attention MLP."""

    def __init__(self, a, b, k=3, hidden=None):
        super().__init__()
        self.c1, self.c2 = conv(a, hidden or b, k), conv(hidden or b, b, k)

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))


class Cdc(nn.Module):
    """Cross / diagonal central-difference taps with a learned gate, folded into one 3x3 conv."""

    def __init__(self, c):
        super().__init__()
        self.h = nn.Parameter(torch.randn(c, c, 1, 5) * 0.1)
        self.d = nn.Parameter(torch.randn(c, c, 1, 5) * 0.1)
        self.hp = nn.Parameter(torch.zeros(1))

    def kernel(self):
        c = self.h.shape[0]

        def branch(w, taps):
            w = w.reshape(c * c, 5)
            k = w.new_zeros(c * c, 9).index_copy(1, torch.tensor(taps, device=w.device), w)
            k[:, 4] = k[:, 4] - CDC_THETA * w.sum(1)
            return k

        g = torch.sigmoid(self.hp)
        k = g * branch(self.h, HV_TAPS) + (1 - g) * branch(self.d, DG_TAPS)
        eye = k.new_zeros(c * c, 9)
        eye[:, 4] = torch.eye(c, device=k.device).reshape(-1)
        return (k + eye).reshape(c, c, 3, 3)

    def forward(self, x):
        return F.conv2d(x, self.kernel(), padding=1)


class EdgeBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.process, self.res, self.cdc = conv(c, c, 3), Blk(c, c), Cdc(c)

    def forward(self, x):
        t = self.process(x)
        return self.res(t) + self.cdc(t)


class ChannelNorm(nn.Module):
    """Per-pixel LayerNorm over channels, with bias."""

    def __init__(self, c):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.ones(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = ((x - mu) ** 2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.w + self.b


def circular_conv(v, r):
    hw = v.shape[-2:]
    return torch.fft.irfft2(torch.fft.rfft2(v) * torch.fft.rfft2(r), s=hw)


class Spatial(nn.Module):
    def __init__(self, p):
        super().__init__()
        c, n = p["c"], p["orders"]
        self.norms = nn.ModuleList(ChannelNorm(c) for _ in range(n))
        self.fused = nn.ModuleList(Blk(c, c) for _ in range(n - 1))
        self.infrared = nn.ModuleList(Blk(c, c) for _ in range(n - 1))
        self.integrate = conv(n * c, c, 1) if p["pp"] else None
        self.pp = p["pp"]

    def forward(self, v, r):
        f = self.norms[0](circular_conv(v, r)) * r
        rk, orders = r, [f]
        for norm, fused, infrared in zip(self.norms[1:], self.fused, self.infrared):
            rk = infrared(rk + f if self.pp else rk)
            nxt = norm(fused(f)) * rk
            f = nxt + f if self.pp else nxt
            orders.append(f)
        top = self.integrate(torch.cat(orders, 1)) if self.integrate else f
        return top + v, rk


class Hin(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.identity, self.conv1, self.conv2 = conv(a, b, 1), conv(a, b, 3), conv(b, b, 3)
        self.norm = nn.InstanceNorm2d(b // 2, affine=True)
        self.half = b // 2

    def forward(self, x):
        o = self.conv1(x)
        o = torch.cat([self.norm(o[:, : self.half]), o[:, self.half :]], 1)
        o = F.leaky_relu(self.conv2(F.leaky_relu(o, HIN_SLOPE)), HIN_SLOPE)
        return o + self.identity(x)


class Dense(nn.Module):
    def __init__(self, a, b, gc):
        super().__init__()
        self.c1, self.c2, self.c3 = Hin(a, gc), Hin(gc, gc), conv(a + 2 * gc, b, 3)

    def forward(self, x):
        x1 = F.leaky_relu(self.c1(x), DENSE_SLOPE)
        x2 = F.leaky_relu(self.c2(x1), DENSE_SLOPE)
        return F.leaky_relu(self.c3(torch.cat([x, x1, x2], 1)), DENSE_SLOPE)


class InvBlock(nn.Module):
    """LU-parameterised invertible 1x1 conv (folded per step), then the affine coupling."""

    def __init__(self, total, split, gc):
        super().__init__()
        rest = total - split
        self.lower = nn.Parameter(torch.zeros(total, total))
        self.upper = nn.Parameter(torch.zeros(total, total))
        self.log_s = nn.Parameter(torch.zeros(total))
        self.register_buffer("p", torch.eye(total))
        self.f, self.g, self.h = Dense(rest, split, gc), Dense(split, rest, gc), Dense(split, rest, gc)
        self.split = split

    def forward(self, x):
        n = self.log_s.shape[0]
        eye = torch.eye(n, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.log_s))
        z = F.conv2d(x, (self.p @ lower @ upper).reshape(n, n, 1, 1))
        z1, z2 = z[:, : self.split], z[:, self.split :]
        y1 = z1 + self.f(z2)
        s = INV_CLAMP * (2 * torch.sigmoid(self.h(y1)) - 1)
        return torch.cat([y1, z2 * torch.exp(s) + self.g(y1)], 1)


class Channel(nn.Module):
    def __init__(self, p):
        super().__init__()
        c, n, pp = p["c"], p["orders"], p["pp"]
        c2 = 2 * c
        self.att0 = Blk(c2, c2, k=1, hidden=c)
        self.atts = nn.ModuleList(
            Blk(c2 * k if pp else c2, c2, k=1, hidden=c) for k in range(1, n)
        )
        self.fused = nn.ModuleList(Blk(c2, c2) for _ in range(n - 1))
        self.integrate = conv(n * c2, c2, 1) if pp else None
        self.inv = InvBlock(c2, c, p["growth"]) if p["inv"] else None
        self.out = conv(c2, c, 1)
        self.pp = pp

    def forward(self, vs, rs):
        x = torch.cat([vs, rs], 1)
        a = torch.softmax(self.att0(x.mean((2, 3), keepdim=True)), 1)
        g = x * a
        atts, orders = [a], [g]
        for mlp, fused in zip(self.atts, self.fused):
            a = torch.softmax(mlp(torch.cat(atts, 1) if self.pp else a), 1)
            nxt = fused(g) * a
            g = nxt + g if self.pp else nxt
            atts.append(a)
            orders.append(g)
        if self.integrate:
            g = self.integrate(torch.cat(orders, 1))
        if self.inv:
            g = self.inv(g)
        return self.out(g) + vs


class CaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.process, self.du = Blk(c, c), Blk(c, c, k=1, hidden=c // 4)

    def forward(self, x):
        y = self.process(x).mean((2, 3), keepdim=True)
        return x + torch.sigmoid(self.du(y)) * y


class Ship(nn.Module):
    def __init__(self, p):
        super().__init__()
        c = p["c"]

        def fe():
            return nn.Sequential(conv(1, c, 1), *(EdgeBlock(c) for _ in range(p["edge_blocks"])))

        self.vis, self.inf = fe(), fe()
        self.spatial = nn.ModuleList(Spatial(p) for _ in range(p["blocks"]))
        self.channel = nn.ModuleList(Channel(p) for _ in range(p["blocks"]))
        total = p["blocks"] * c
        self.post_inv = InvBlock(total, total // 2, p["growth"])
        self.post_conv = conv(total, c, 1)
        self.refine = nn.Sequential(conv(c, c, 3), CaLayer(c), CaLayer(c), conv(c, 1, 3))

    def forward(self, vis, ir):
        v, r, outs = self.vis(vis), self.inf(ir), []
        for spatial, channel in zip(self.spatial, self.channel):
            vs, r = spatial(v, r)
            v = channel(vs, r)
            outs.append(v)
        return self.refine(self.post_conv(self.post_inv(torch.cat(outs, 1))))


def conv_macs_per_pixel(net: nn.Module) -> int:
    """Conv MACs per output pixel, counting every conv weight once per pixel (as `ship-tools info`,
    whose per-pixel count includes the 1x1 convs on pooled vectors the same way)."""
    total = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Conv2d))
    total += sum(m.h.shape[0] ** 2 * 9 for m in net.modules() if isinstance(m, Cdc))
    total += sum(m.log_s.shape[0] ** 2 for m in net.modules() if isinstance(m, InvBlock))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--probe", action="store_true", help="the 10-layer conv probe")
    what.add_argument("--preset", choices=sorted(PRESETS), help="a SHIP preset")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (as `bench-train --device`)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    # A GPU queues its kernels: each phase ends at a sync, as in the Rust command.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    torch.set_num_threads(args.threads)
    torch.manual_seed(13)
    pixels = args.batch * args.crop * args.crop
    if args.probe:
        net = probe().to(dev)
        x = torch.rand(args.batch, CHANNELS, args.crop, args.crop) * 2 - 1
        inputs = (x.to(dev),)
        macs = LAYERS * CHANNELS * CHANNELS * 9 * pixels
        title = f"probe {LAYERS}x (conv3x3 {CHANNELS}->{CHANNELS} + LeakyReLU {SLOPE})"
    else:
        net = Ship(PRESETS[args.preset]).to(dev)
        shape = (args.batch, 1, args.crop, args.crop)
        inputs = (torch.rand(shape).to(dev), torch.rand(shape).to(dev))
        macs = conv_macs_per_pixel(net) * pixels
        title = f"preset {args.preset} on {dev}"
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)

    samples = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = net(*inputs).mean()
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t3 = time.perf_counter()
        if not torch.isfinite(loss):
            raise SystemExit(f"loss is not finite at step {i}")
        if i >= args.warmup:
            samples.append((t1 - t0, t2 - t1, t3 - t0))

    fwd, bwd, step = (statistics.median(s[k] for s in samples) for k in range(3))
    print(
        f"torch {torch.__version__} {title}, batch {args.batch} crop {args.crop}, "
        f"{torch.get_num_threads()} threads, median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"forward   {fwd * 1e3:9.1f} ms  {macs / fwd / 1e9:6.1f} GMAC/s")
    print(f"backward  {bwd * 1e3:9.1f} ms")
    print(
        f"step      {step * 1e3:9.1f} ms  {3 * macs / step / 1e9:6.1f} GMAC/s (3x forward MACs)"
        f"  {1 / step:.2f} steps/s"
    )


if __name__ == "__main__":
    main()
