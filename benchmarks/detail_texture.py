"""Seconds per photo of the detail texture (``ganfit.fitting.detail_texture.build_detail_texture``) on CPU.

    python benchmarks/detail_texture.py [--photos 2] [--resolutions 512 1024 2048] [--repeats 5] [--threads 2]
        [--skin-colour on off]

Fits real FRL London photos (GANFIT_PHOTOS/frl-london/neutral_front, 1024x1024) once with a short schedule of the
real config (``fitting=fast``, stage 2 cut to 12 steps: the geometry only has to be plausible for timing), then
times the detail step alone (visibility raster, masks, sampling, de-lighting, mirror, Laplacian blend) at each
resolution and ``skin_colour`` setting (``DetailConfig.skin_colour``: the mask's extension to the skin-coloured
pixels; the settings interleaved per call, so both see the same load) after one warm-up call (the warm-up pays
numba compilation and the per-resolution UV raster, once per process). Prints a markdown table of medians: wall
time, and CPU time of this process (all threads; on a machine shared with other jobs the wall time grows with the
load, the CPU time much less). Report machine load (``/proc/loadavg``) with the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skin-colour", nargs="+", choices=["on", "off"], default=["on", "off"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from ganfit.config import compose_config
    from ganfit.fitting.detail_texture import DetailConfig, build_detail_texture
    from ganfit.fitting.export import photo_camera
    from ganfit.fitting.prepare import prepare_photo
    from ganfit.image_io import read_image
    from ganfit.jobs.components import build_fitter
    from ganfit.landmarks import detect_face

    folder = Path(os.environ["GANFIT_PHOTOS"]) / "frl-london" / "neutral_front"
    files = sorted(folder.glob("*.jpg"))[: args.photos]
    cfg = compose_config("fit", ["fitting=fast", "fitting.full.steps=12", "fitting.full.warmup_steps=4"])
    fitter = build_fitter(cfg)
    fitting = fitter.config
    photos = []
    for path in files:
        image = read_image(path)
        photos.append(prepare_photo(image, detect_face(image).landmarks, fitting.resolution, fitting.crop_scale))
    result = fitter.fit(photos)
    rows = []
    for resolution in args.resolutions:
        configs = {name: DetailConfig(out_resolution=resolution, skin_colour=name == "on") for name in args.skin_colour}
        times: dict[str, list[float]] = {name: [] for name in configs}
        cpu_times: dict[str, list[float]] = {name: [] for name in configs}
        for index, photo in enumerate(photos):
            camera = photo_camera(photo, result.params, index)
            light = {k: v[index : index + 1].detach() for k, v in result.params.light().items()}
            call = (fitter.face_model, result.vertices[index], camera, light, photo.image, photo.landmarks)
            for config in configs.values():
                build_detail_texture(*call, result.texture[index], config)  # warm-up
            for _ in range(args.repeats):
                for name, config in configs.items():  # interleaved
                    started, cpu = time.perf_counter(), time.process_time()
                    build_detail_texture(*call, result.texture[index], config)
                    times[name].append(time.perf_counter() - started)
                    cpu_times[name].append(time.process_time() - cpu)
        for name in configs:
            wall, cpu = times[name], cpu_times[name]
            rows.append((resolution, name, statistics.median(wall), max(wall), statistics.median(cpu), len(wall)))
    load = Path("/proc/loadavg").read_text().split()[:3]
    header = f"torch threads {args.threads}, load {' '.join(load)}"
    print(f"| out_resolution | skin_colour | median wall s / photo | max wall s | median CPU s | calls | {header} |")
    print("|---|---|---|---|---|---|---|")
    for resolution, name, median, worst, cpu, count in rows:
        print(f"| {resolution} | {name} | {median:.3f} | {worst:.3f} | {cpu:.3f} | {count} | |")


if __name__ == "__main__":
    main()
