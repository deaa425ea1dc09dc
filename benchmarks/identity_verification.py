"""Face verification on FRL London (neutral vs smiling) for every identity network and input convention.

    python benchmarks/identity_verification.py [--nets mobileface,faceres,...] [--landmarks mediapipe]

80 people: ``$GANFIT_PHOTOS/frl-london/neutral_front/NNN_03.jpg`` against ``smiling_front/NNN_08.jpg``: 80 same-person
pairs (the diagonal) and 6320 different-person pairs. Landmarks come from :func:`ganfit.landmarks.detect_face` and
chips from :mod:`ganfit.identity.align` (our alignment, as in fitting); they are cached in
``$GANFIT_CACHE/bench/frl_london_<backend>.npz``. For each TF.js network, each candidate convention (channel order,
scale, mean) and each crop (template zoom) the script prints ROC AUC of "smaller cosine distance = same person" with
the medians of both distributions and the gap between the largest same and the smallest different distance; dlib (its
own convention, Euclidean distance) is printed beside them. The chosen defaults are in
``ganfit.identity.tfjs_nets.TFJS_NETWORKS``; the table is recorded in docs/identity.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from ganfit.identity import load_identity_network
from ganfit.identity.align import AlignmentTemplate, arcface_template, estimate_alignment, get_template, warp_to_chip
from ganfit.identity.api import image_to_tensor
from ganfit.identity.tfjs_nets import IMAGENET_MEAN_BGR, InputConvention, TfjsFaceNet, load_tfjs_network
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face

_IMAGENET_MEAN_RGB = tuple(reversed(IMAGENET_MEAN_BGR))
_HALF = (255.0 / 128.0, 127.5 / 128.0)  # (255 x - 127.5) / 128 = x * 1.992 - 0.996

CONVENTIONS: dict[str, InputConvention] = {
    "RGB x255": InputConvention(False, 255.0),
    "BGR x255": InputConvention(True, 255.0),
    "RGB x1": InputConvention(False, 1.0),
    "RGB (255x-127.5)/128": InputConvention(False, _HALF[0], (_HALF[1],) * 3),
    "BGR (255x-127.5)/128": InputConvention(True, _HALF[0], (_HALF[1],) * 3),
    "RGB x255 - ImageNet mean": InputConvention(False, 255.0, _IMAGENET_MEAN_RGB),
    "BGR x255 - ImageNet mean": InputConvention(True, 255.0, IMAGENET_MEAN_BGR),
}
CANDIDATES: dict[str, tuple[list[str], list[float]]] = {  # network -> (conventions, template zooms)
    "mobileface": (["RGB x255", "BGR x255", "RGB x1"], [1.0, 0.9]),
    "mobilefacenet": (["RGB x1", "RGB (255x-127.5)/128", "BGR (255x-127.5)/128", "RGB x255"], [1.0]),
    "faceres": (
        ["BGR x255 - ImageNet mean", "RGB x255 - ImageNet mean", "BGR x255", "RGB (255x-127.5)/128"],
        [1.0, 0.8, 0.65],
    ),
    "faceres-deep": (["BGR x255 - ImageNet mean", "RGB x255 - ImageNet mean"], [1.0, 0.8, 0.65]),
}


def roc_auc(same: np.ndarray, different: np.ndarray) -> float:
    """P(d_same < d_different), ties counted half."""
    s, d = np.asarray(same, np.float64)[:, None], np.asarray(different, np.float64)[None, :]
    return float((s < d).mean() + 0.5 * (s == d).mean())


def london_landmarks(photos: Path, backend: str) -> tuple[list[Path], list[Path], np.ndarray, np.ndarray]:
    """Paths of the 80 neutral / smiling photos and their ``[80, 68, 2]`` landmarks (cached)."""
    root = photos / "frl-london"
    neutral = sorted((root / "neutral_front").glob("*_03.jpg"))
    smiling = [root / "smiling_front" / f"{p.name.split('_')[0]}_08.jpg" for p in neutral]
    cache = Path(os.environ.get("GANFIT_CACHE") or Path.home() / ".cache" / "ganfit") / "bench"
    cache_file = cache / f"frl_london_{backend}.npz"
    if cache_file.is_file():
        data = np.load(cache_file)
        return neutral, smiling, data["neutral"], data["smiling"]
    lm = [
        np.stack([detect_face(read_image(p), backend=backend).landmarks for p in paths]) for paths in (neutral, smiling)
    ]
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(cache_file, neutral=lm[0], smiling=lm[1])
    return neutral, smiling, lm[0], lm[1]


def chips_for(paths: list[Path], landmarks: np.ndarray, template: AlignmentTemplate) -> torch.Tensor:
    """``[N, 3, S, S]`` chips in [0, 1] cut with our alignment."""
    out = []
    for path, lm in zip(paths, landmarks, strict=True):
        image = read_image(path)
        theta = estimate_alignment(np.asarray(lm, np.float32)[None], image.shape[:2], template)
        out.append(warp_to_chip(image_to_tensor(image), theta, template.chip_size))
    return torch.cat(out)


@torch.no_grad()
def embed(net: torch.nn.Module, chips: torch.Tensor, batch: int = 16) -> np.ndarray:
    return torch.cat([net(chips[i : i + batch]) for i in range(0, len(chips), batch)]).double().numpy()


def score(a: np.ndarray, b: np.ndarray, metric: str) -> dict[str, float]:
    """Distances neutral i vs smiling j; ``metric`` is ``cosine`` (1 - cos) or ``euclidean``."""
    if metric == "cosine":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        dist = 1.0 - a @ b.T
    else:
        dist = np.linalg.norm(a[:, None] - b[None], axis=-1)
    same = np.diag(dist)
    different = dist[~np.eye(len(a), dtype=bool)]
    return {
        "auc": roc_auc(same, different),
        "same": float(np.median(same)),
        "diff": float(np.median(different)),
        "gap": float(different.min() - same.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default="dlib," + ",".join(CANDIDATES), help="comma-separated networks")
    parser.add_argument("--landmarks", default="mediapipe", choices=("mediapipe", "dlib"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photos = Path(os.environ["GANFIT_PHOTOS"])
    neutral, smiling, lm_n, lm_s = london_landmarks(photos, args.landmarks)
    print(
        f"FRL London, {len(neutral)} people, neutral_front/NNN_03 vs smiling_front/NNN_08, landmarks "
        f"{args.landmarks}; load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| network | crop (template, zoom) | input convention | ROC AUC | median same | median different | "
        "min different - max same |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for name in args.nets.split(","):
        t0 = time.perf_counter()
        if name == "dlib":
            net = load_identity_network("dlib")
            tpl = get_template("dlib")
            a, b = (embed(net, chips_for(p, lm, tpl)) for p, lm in ((neutral, lm_n), (smiling, lm_s)))
            r = score(a, b, "euclidean")
            print(
                f"| dlib | dlib 150 | RGB x255 - dlib mean, /256 (Euclidean) | {r['auc']:.4f} | {r['same']:.3f} | "
                f"{r['diff']:.3f} | {r['gap']:+.3f} |",
                flush=True,
            )
            continue
        conventions, zooms = CANDIDATES[name]
        base = load_tfjs_network(name)
        for zoom in zooms:
            tpl = arcface_template(base.chip_size, zoom, f"arcface{base.chip_size}x{zoom:g}")
            chips = [chips_for(p, lm, tpl) for p, lm in ((neutral, lm_n), (smiling, lm_s))]
            for conv in conventions:
                net = TfjsFaceNet(
                    base.spec,
                    base.graph.steps,
                    {k: v.detach().numpy() for k, v in base.graph.params.items()},
                    CONVENTIONS[conv],
                )
                net.eval().requires_grad_(False)
                r = score(embed(net, chips[0]), embed(net, chips[1]), "cosine")
                print(
                    f"| {name} | arcface {base.chip_size}, zoom {zoom:g} | {conv} (cosine) | {r['auc']:.4f} | "
                    f"{r['same']:.3f} | {r['diff']:.3f} | {r['gap']:+.3f} |",
                    flush=True,
                )
        print(f"<!-- {name}: {time.perf_counter() - t0:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
