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
import statistics
from pathlib import Path

import numpy as np
import torch
from frl_training import add_common_arguments, prepare_all, training_photos, variant_fitter
from skimage.color import deltaE_ciede2000

from ganfit.eval.albedo_light import mean_lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--gain", nargs=3, type=float, default=[0.62, 0.5, 0.35])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    originals, faces = training_photos(args.ids)
    dimmed = [np.clip(im * np.asarray(args.gain) + 0.5, 0, 255).astype(np.uint8) for im in originals]
    rows = []
    for enabled in (False, True):
        fitter = variant_fitter(args, [f"fitting.exposure.enabled={str(enabled).lower()}"])
        fitting = fitter.config
        labs: dict[tuple[str, str], np.ndarray] = {}
        for version, images in (("original", originals), ("dimmed", dimmed)):
            photos = prepare_all(fitter, images, faces)
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
