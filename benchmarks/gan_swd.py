"""Multi-scale SWD (ProGAN metric) of a texture GAN against held-back real images.

    python benchmarks/gan_swd.py --real /tmp/ganfit-frl-crops/heldout \
        --reference /tmp/ganfit-frl-crops/train --ckpt outputs/train/<run>/checkpoints/last.ckpt \
        --generator outputs/train/<run>/generator.pt --untrained-like outputs/train/<run>/generator.pt

Prints a markdown table: SWD x1e3 per Laplacian level and the average, for each generator (samples at its
trained level, alpha=1, nearest-upsampled to the real images' size when lower), for an untrained generator of the
same architecture at full resolution (the "start" of training), and for real training images (the floor: real vs
real at the same sample count). N = number of held-back images; ``--repeats`` SWD seeds are averaged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganfit.gan.data import find_images, load_square_image
from ganfit.gan.generator_file import generator_from_checkpoint, load_generator
from ganfit.gan.networks import Generator
from ganfit.metrics.swd import swd


def load_folder(folder: Path, resolution: int, limit: int | None = None) -> np.ndarray:
    files = find_images(folder)[:limit]
    return np.stack([load_square_image(f, resolution).transpose(2, 0, 1) for f in files])


@torch.no_grad()
def sample(generator: Generator, n: int, resolution: int, seed: int, level: int | None = None) -> np.ndarray:
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    out = generator(z, level=level)
    if out.shape[-1] != resolution:
        mode = "area" if out.shape[-1] > resolution else "nearest"
        out = F.interpolate(out, size=(resolution, resolution), mode=mode)
    return ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="held-back real images")
    parser.add_argument("--reference", type=Path, help="training images (real-vs-real floor)")
    parser.add_argument("--ckpt", type=Path, nargs="*", default=[], help="Lightning checkpoints (EMA G)")
    parser.add_argument("--generator", type=Path, nargs="*", default=[], help="exported generator.pt files")
    parser.add_argument("--untrained-like", type=Path, help="generator.pt whose architecture to re-initialise")
    parser.add_argument("--resolution", type=int, default=64, help="evaluation resolution")
    parser.add_argument("--repeats", type=int, default=3, help="SWD seeds averaged")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    real = load_folder(args.real, args.resolution)
    n = len(real)
    rows: list[tuple[str, np.ndarray]] = []
    if args.reference:
        ref = load_folder(args.reference, args.resolution)
        rng = np.random.default_rng(0)
        rows.append(("real train images (floor)", ref[rng.choice(len(ref), n, replace=False)]))
    if args.untrained_like:
        cfg = torch.load(args.untrained_like, weights_only=True)["config"]
        g0 = Generator(**cfg).eval()
        rows.append(("untrained G (start)", sample(g0, n, args.resolution, seed=1, level=g0.max_level)))
    for ckpt in args.ckpt:
        g, prog = generator_from_checkpoint(ckpt)
        kimg = prog.get("images_seen", 0) / 1000
        label = f"{ckpt.name} EMA ({kimg:.1f} kimg, {g.resolution}px, alpha {prog.get('alpha', 1):.2f})"
        rows.append((label, sample(g, n, args.resolution, seed=1)))
    for path in args.generator:
        g = load_generator(path)
        rows.append((f"{path.name} ({g.resolution}px)", sample(g, n, args.resolution, seed=1)))
    header = None
    for label, fake in rows:
        results = [swd(real, fake, seed=s) for s in range(args.repeats)]
        per_level = np.mean([r.per_level for r in results], axis=0)
        if header is None:
            res = results[0].resolutions
            header = f"| images (N={n}) | " + " | ".join(f"SWD {r}px" for r in res) + " | SWD avg |"
            print(header)
            print("|---" * (len(res) + 2) + "|")
        avg = float(np.mean(per_level))
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in per_level) + f" | {avg:.1f} |", flush=True)


if __name__ == "__main__":
    main()
