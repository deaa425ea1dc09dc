"""Texture GAN speed on CPU: training throughput per growing level, and the fitting-budget G cost.

    python benchmarks/gan_throughput.py [--configs cpu frl_crops paper] [--iters 5] [--threads 2]

Table 1: training img/s per level (one iteration = the module's D step with WGAN-GP on real+fake+interpolates,
then the G step, then the EMA update; Adam on both; batch 16; fade-in alpha 0.5 so both heads run; median of
``--iters`` after one warm-up). Lightning's per-step overhead is not included.
Table 2: parameters and G forward+backward time (batch 1, median) at the full resolution, which is what fitting
pays per iteration (the lower-resolution path only adds an average pool).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ganfit.gan.loss import d_loss, g_loss
from ganfit.gan.networks import Discriminator, Generator, level_of, update_ema

CONFIGS = {  # name: (resolution, fmap_base, fmap_max) -- as conf/gan/progan.yaml and conf/experiment/*.yaml
    "cpu": (128, 2048, 128),
    "frl_crops": (64, 512, 64),
    "paper": (512, 8192, 512),
}


def train_iter_seconds(G: Generator, D: Discriminator, G_ema: Generator, level: int, batch: int, iters: int) -> float:
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    res = 4 * 2**level
    alpha = 0.5 if level > 0 else 1.0
    real = torch.rand(batch, 3, res, res) * 2 - 1
    critic = lambda x: D(x, level, alpha)
    times = []
    for i in range(iters + 1):
        t = time.perf_counter()
        with torch.no_grad():
            fake = G(torch.randn(batch, G.latent_dim), level, alpha)
        loss, _ = d_loss("wgan_gp", critic, real, fake)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        loss = g_loss("wgan_gp", critic, G(torch.randn(batch, G.latent_dim), level, alpha))
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        update_ema(G_ema, G, 0.999)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def g_fwd_bwd_ms(G: Generator, iters: int) -> float:
    z = torch.randn(1, G.latent_dim, requires_grad=True)  # fitting optimises z
    times = []
    for i in range(iters + 1):
        t = time.perf_counter()
        G(z).square().mean().backward()
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["cpu", "frl_crops"], choices=sorted(CONFIGS))
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per cell (after 1 warm-up)")
    parser.add_argument("--batch", type=int, default=16, help="images per iteration")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--max-level-res", type=int, default=128, help="skip training levels above this size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}\n")
    print("| config | level | resolution | G channels | training img/s | s/iteration |")
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        res, base, fmax = CONFIGS[name]
        G, D, G_ema = Generator(res, 512, base, fmax), Discriminator(res, base, fmax), Generator(res, 512, base, fmax)
        for level in range(level_of(min(res, args.max_level_res)) + 1):
            sec = train_iter_seconds(G, D, G_ema, level, args.batch, args.iters)
            r = 4 * 2**level
            print(
                f"| {name} | {level} | {r}x{r} | {G.channels[level]} | {args.batch / sec:.1f} | {sec:.2f} |", flush=True
            )
    print("\n| config | resolution | G params | D params | G fwd+bwd, batch 1 (ms) |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        res, base, fmax = CONFIGS[name]
        G, D = Generator(res, 512, base, fmax), Discriminator(res, base, fmax)
        n_g = sum(p.numel() for p in G.parameters()) / 1e6
        n_d = sum(p.numel() for p in D.parameters()) / 1e6
        ms = g_fwd_bwd_ms(G, args.iters)
        print(f"| {name} | {res}x{res} | {n_g:.2f} M | {n_d:.2f} M | {ms:.0f} |", flush=True)


if __name__ == "__main__":
    main()
