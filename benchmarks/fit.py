"""Seconds per photo of the GANFIT fit on CPU, per preset, single photo and batched. Prints a markdown table.

    python benchmarks/fit.py [--presets fast default] [--batch 4] [--repeats 1] [--texture gan|free] [--photos DIR]

Uses the real config (conf/fit.yaml + conf/fitting/<preset>.yaml), real photos from GANFIT_PHOTOS (deep3d-examples),
the dlib identity network and the CPU renderer; the shipped GAN texture (``--texture free``: the per-texel one).
Timing covers the optimisation (stage 1 + stage 2), not model loading, detection or export. torch uses 2 threads.
Report machine load with the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["fast", "default"])
    parser.add_argument("--batch", type=int, default=4, help="photos per optimisation in the batched run")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (median reported)")
    parser.add_argument("--texture", default="gan", choices=["gan", "free"], help="texture mode (fit.py: gan)")
    parser.add_argument("--photos", default=None, help="folder of photos (default GANFIT_PHOTOS/deep3d-examples)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    from ganfit.config import compose_config
    from ganfit.fitting.photos import prepare_photo
    from ganfit.image_io import read_image
    from ganfit.jobs.components import build_fitter
    from ganfit.landmarks import detect_face

    folder = Path(args.photos or Path(os.environ["GANFIT_PHOTOS"]) / "deep3d-examples")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})[: args.batch]
    images = [read_image(f) for f in files]
    marks = [detect_face(image).landmarks for image in images]
    rows = []
    for preset in args.presets:
        cfg = compose_config("fit", [f"fitting={preset}", f"texture={args.texture}"])
        fitter = build_fitter(cfg)
        fitting = fitter.config
        photos = [
            prepare_photo(image, mark, fitting.resolution, fitting.crop_scale, f.stem)
            for image, mark, f in zip(images, marks, files, strict=True)
        ]
        fitter.fit(photos[:1])  # warm-up: numba kernels, allocator
        for batch in (1, len(photos)):
            seconds = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = fitter.fit(photos[:batch])
                seconds.append((time.perf_counter() - started) / batch)
            cos_before = statistics.mean(m["identity_cosine_before_stage2"] for m in result.metrics)
            cos_after = statistics.mean(m["identity_cosine"] for m in result.metrics)
            error = statistics.mean(m["landmark_error_iod"] for m in result.metrics)
            rows.append(
                (
                    preset,
                    batch,
                    fitting.resolution,
                    fitting.full.steps,
                    statistics.median(seconds),
                    cos_before,
                    cos_after,
                    error,
                )
            )
    load = os.getloadavg()
    print(
        f"\ntexture: {args.texture}, CPU threads: {torch.get_num_threads()}, load average at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(
        "| preset | batch | resolution | stage-2 steps | s / photo (median) | identity cos before -> after stage 2 |"
        " landmark error (IOD) |"
    )
    print("|---|---|---|---|---|---|---|")
    for preset, batch, resolution, steps, sec, before, after, error in rows:
        print(
            f"| {preset} | {batch} | {resolution} | {steps} | {sec:.1f} | {before:.3f} -> {after:.3f} | {error:.3f} |"
        )


if __name__ == "__main__":
    main()
