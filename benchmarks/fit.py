"""Seconds per photo of the GANFIT fit on CPU, per preset, single photo and batched. Prints a markdown table.

    python benchmarks/fit.py [--presets fast default] [--batch 4] [--repeats 1] [--texture gan|free] [--photos DIR]
        [--load 0 1] [--threads 2] [--torch-threads 1] [--override landmarks.dense=false ...]

Uses the real config (conf/fit.yaml + conf/fitting/<preset>.yaml), real photos from GANFIT_PHOTOS (deep3d-examples),
prepared as fit.py prepares them (the 68 landmarks and, with mediapipe, the dense mesh points),
the dlib identity network and the CPU renderer; the shipped GAN texture (``--texture free``: the per-texel one).
Timing covers the optimisation (stage 1 + stage 2), not model loading, detection or export. Threads: the process thread
policy (``ganfit.threads``) with ``--threads`` numba and ``--torch-threads`` torch threads (fit.py's defaults on this
2-core machine: 2 and 1). ``--load K ...`` repeats the timings with K competing CPU-bound processes (busy loops started
and stopped here) and prints the slowdown against the first level. ``--override`` adds Hydra overrides of the fit config
to every preset (e.g. ``landmarks.dense=false``: the objective of session 3's code, for a before/after comparison with
an older tree). The table head gives the CPU model, core count and load average.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganfit.threads import apply_thread_policy  # noqa: E402  (before torch: the wait policy must reach its pool)

apply_thread_policy()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from machine import competing_load, machine_line  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["fast", "default"])
    parser.add_argument("--batch", type=int, default=4, help="photos per optimisation in the batched run")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (median reported)")
    parser.add_argument("--texture", default="gan", choices=["gan", "free"], help="texture mode (fit.py: gan)")
    parser.add_argument("--photos", default=None, help="folder of photos (default GANFIT_PHOTOS/deep3d-examples)")
    parser.add_argument("--load", type=int, nargs="+", default=[0], help="competing CPU-bound processes, per level")
    parser.add_argument("--threads", type=int, default=2, help="numba (renderer) threads")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads (fit.py's default: 1)")
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides of the fit config (key=value)")
    args = parser.parse_args()
    policy = apply_thread_policy(torch_threads=args.torch_threads, numba_threads=args.threads)
    head = [machine_line()]

    from ganfit.config import compose_config
    from ganfit.fitting.prepare import prepare_photo
    from ganfit.image_io import read_image
    from ganfit.jobs.components import build_fitter
    from ganfit.landmarks import detect_face

    folder = Path(args.photos or Path(os.environ["GANFIT_PHOTOS"]) / "deep3d-examples")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})[: args.batch]
    images = [read_image(f) for f in files]
    detections = [detect_face(image) for image in images]
    rows = []
    for preset in args.presets:
        cfg = compose_config("fit", [f"fitting={preset}", f"texture={args.texture}", *args.override])
        fitter = build_fitter(cfg)
        fitting = fitter.config
        photos = [  # as fit.py prepares them: the dense mesh points too when landmarks.dense (mediapipe's default)
            prepare_photo(
                image,
                found.landmarks,
                fitting.resolution,
                fitting.crop_scale,
                f.stem,
                dense=found.dense if cfg.landmarks.dense else None,
            )
            for image, found, f in zip(images, detections, files, strict=True)
        ]
        fitter.fit(photos[:1])  # warm-up: numba kernels, allocator
        for load in args.load:
            with competing_load(load):
                head.append(f"{load} competing: {machine_line()}")
                for batch in (1, len(photos)):
                    seconds = []
                    for _ in range(args.repeats):
                        started = time.perf_counter()
                        result = fitter.fit(photos[:batch])
                        seconds.append((time.perf_counter() - started) / batch)
                    identity = "–"  # no identity network with '~identity'
                    if "identity_cosine" in result.metrics[0]:
                        before = statistics.mean(m["identity_cosine_before_stage2"] for m in result.metrics)
                        after = statistics.mean(m["identity_cosine"] for m in result.metrics)
                        identity = f"{before:.3f} -> {after:.3f}"
                    error = statistics.mean(m["landmark_error_iod"] for m in result.metrics)
                    rows.append(
                        (
                            preset,
                            load,
                            batch,
                            fitting.resolution,
                            fitting.full.steps,
                            statistics.median(seconds),
                            identity,
                            error,
                        )
                    )
    overrides = f", overrides: {' '.join(args.override)}" if args.override else ""
    threads = f"torch threads: {torch.get_num_threads()}, numba threads: {policy.numba_threads}"
    print(f"\ntexture: {args.texture}{overrides}, {threads}; " + "; ".join(head))
    print(
        "| preset | competing processes | batch | resolution | stage-2 steps | s / photo (median) | vs first level |"
        " identity cos before -> after stage 2 | landmark error (IOD) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    first = {(r[0], r[2]): r[5] for r in rows if r[1] == args.load[0]}
    for preset, load, batch, resolution, steps, sec, identity, error in rows:
        ratio = sec / first[(preset, batch)]
        print(
            f"| {preset} | {load} | {batch} | {resolution} | {steps} | {sec:.1f} | {ratio:.2f}x |"
            f" {identity} | {error:.3f} |"
        )


if __name__ == "__main__":
    main()
