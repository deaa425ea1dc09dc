"""The fitted albedo of real photos and of the same photos dimmed and warmed, with the RGB gain off and on.

    python benchmarks/exposure_photos.py [--ids 024 036 043 066] [--gain 0.62 0.5 0.35] [--preset fast]
        [--steps N] [--identity]

FRL London training-split photos (none in ``ganfit/data/frl_holdout.json``) and a copy of each with every pixel
multiplied by ``--gain`` (a camera that under-exposes under tungsten light; the benchmark's ``dim_warm``) are fitted
with ``fitting.exposure.enabled`` false and true. Prints, per photo, the CIELAB mean colour of the fitted GAN albedo
over the face region (``ganfit.eval.albedo_light.mean_lab``) for the original and the dimmed photo and their CIEDE2000
difference: an albedo that does not follow the light gives the same colour for both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", nargs="+", default=["024", "036", "043", "066"])
    parser.add_argument("--gain", nargs=3, type=float, default=[0.62, 0.5, 0.35])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--identity", action="store_true", help="keep the identity terms (fit.py's default: dlib)")
    parser.add_argument("--steps", type=int, default=0, help="stage-2 steps (0: the preset's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from skimage.color import deltaE_ciede2000

    from ganfit.config import compose_config
    from ganfit.eval.albedo_light import mean_lab
    from ganfit.fitting.photos import prepare_photo
    from ganfit.image_io import read_image
    from ganfit.jobs.components import build_fitter
    from ganfit.landmarks import detect_face

    held_out = set(json.loads((ROOT / "src/ganfit/data/frl_holdout.json").read_text())["holdout_ids"])
    if held_out & set(args.ids):
        raise SystemExit(f"held-out ids {sorted(held_out & set(args.ids))}: tune on the training split only")
    folder = Path(os.environ["GANFIT_PHOTOS"]) / "frl-london" / "neutral_front"
    originals = [read_image(folder / f"{i}_03.jpg") for i in args.ids]
    dimmed = [np.clip(im * np.asarray(args.gain) + 0.5, 0, 255).astype(np.uint8) for im in originals]
    faces = [detect_face(image) for image in originals]
    rows = []
    for enabled in (False, True):
        overrides = [f"fitting={args.preset}", f"fitting.exposure.enabled={str(enabled).lower()}", "progress=false"]
        if not args.identity:
            overrides.append("~identity")
        if args.steps:
            overrides += [f"fitting.full.steps={args.steps}", f"fitting.full.warmup_steps={args.steps // 3}"]
        torch.manual_seed(0)
        fitter = build_fitter(compose_config("fit", overrides))
        fitting = fitter.config
        labs: dict[tuple[str, str], np.ndarray] = {}
        for version, images in (("original", originals), ("dimmed", dimmed)):
            photos = [
                prepare_photo(image, face.landmarks, fitting.resolution, fitting.crop_scale, dense=face.dense)
                for image, face in zip(images, faces, strict=True)
            ]
            for start in range(0, len(photos), fitting.batch_size):
                result = fitter.fit(photos[start : start + fitting.batch_size])
                for k in range(len(result.texture)):
                    labs[(args.ids[start + k], version)] = mean_lab(result.texture[k], fitter.face_model, 80.0)
        for i in args.ids:
            a, b = labs[(i, "original")], labs[(i, "dimmed")]
            rows.append(
                {
                    "id": i,
                    "gain": enabled,
                    "lab_original": a.tolist(),
                    "lab_dimmed": b.tolist(),
                    "delta_e": float(deltaE_ciede2000(a[None], b[None])[0]),
                }
            )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"preset {args.preset}, identity {'on' if args.identity else 'off'}, gain {args.gain}, load {load}")
    print("| photo | exposure gain | L*a*b* original | L*a*b* dimmed | ΔE00 |")
    print("|---|---|---|---|---|")
    for row in rows:
        a, b = (", ".join(f"{v:.1f}" for v in row[key]) for key in ("lab_original", "lab_dimmed"))
        print(f"| {row['id']} | {row['gain']} | {a} | {b} | {row['delta_e']:.2f} |")
    for enabled in (False, True):
        median = statistics.median(r["delta_e"] for r in rows if r["gain"] == enabled)
        print(f"| median | {enabled} | | | {median:.2f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
