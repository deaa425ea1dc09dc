"""The photo's face mask in the loss (``fitting.photo_mask``), off vs on, on FRL London training-split photos.

    python benchmarks/loss_mask.py [--ids 024 036 043 066] [--preset fast] [--steps N] [--identity] [--threads 2]

Fits the photos (GANFIT_PHOTOS/frl-london/neutral_front/<id>_03.jpg; none of them in the held-out list
``ganfit/data/frl_holdout.json``) with the real config, once with ``fitting.photo_mask=false`` and once with ``true``,
renders each fit at the photo's resolution (long side capped at 512) and prints, per photo and as medians:

* ``L1 render``: mean absolute colour error photo vs render inside the render's opaque region (the evaluation's
  masked L1, ``ganfit.metrics.scores.masked_photometric_error``);
* ``L1 face``: the same inside the render's region times the photo's face mask (``ganfit.fitting.skin_mask``);
* ``backdrop``: fraction of the render's opaque pixels that show the studio backdrop in the photo (within 20/255 of
  the median colour of the photo's outer columns in its upper half): model surface over background;
* ``NME``: landmark error of the fit over the inter-ocular distance (against the detected landmarks).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from frl_training import add_common_arguments, prepare_all, training_photos, variant_fitter

from ganfit.fitting.export import render_full
from ganfit.fitting.skin_mask import skin_mask
from ganfit.metrics.scores import masked_photometric_error


def backdrop_mask(photo: np.ndarray, tolerance: float = 20.0) -> np.ndarray:
    """bool [H, W]: pixels within ``tolerance`` of the backdrop colour (median of the outer columns, upper half)."""
    half, side = photo.shape[0] // 2, max(2, photo.shape[1] // 64)
    colour = np.median(np.concatenate([photo[:half, :side], photo[:half, -side:]]).reshape(-1, 3), axis=0)
    return np.abs(photo.astype(np.float64) - colour).max(-1) < tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--variants", nargs="+", default=["off", "face", "colour"], help="off | face | colour")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images, faces = training_photos(args.ids)
    rows = []
    for mask_on in args.variants:
        overrides = []
        if mask_on != "off":
            overrides += ["fitting.photo_mask=true", f"fitting.photo_mask_colour={str(mask_on == 'colour').lower()}"]
        fitter = variant_fitter(args, overrides)
        fitting = fitter.config
        photos = prepare_all(fitter, images, faces)
        for start in range(0, len(photos), fitting.batch_size):
            batch = photos[start : start + fitting.batch_size]
            result = fitter.fit(batch)
            for k, photo in enumerate(batch):
                rgba, shown, scale = render_full(fitter, photo, k, result, max_side=512)
                opaque = rgba[..., 3] > 127
                face = skin_mask(shown.shape[:2], photo.landmarks * scale, None) > 0.5
                rows.append(
                    {
                        "id": args.ids[start + k],
                        "photo_mask": mask_on,
                        "l1_render": masked_photometric_error(rgba[..., :3], shown, opaque),
                        "l1_face": masked_photometric_error(rgba[..., :3], shown, opaque & face),
                        "backdrop": float((opaque & backdrop_mask(shown)).sum() / max(1, opaque.sum())),
                        "nme": float(result.metrics[k]["landmark_error_iod"]),
                    }
                )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    identity = "on" if args.identity else "off"
    steps = fitter.config.full.steps
    print(f"preset {args.preset}, stage-2 steps {steps}, identity {identity}, threads {args.threads}, load {load}")
    print("| photo | photo_mask | L1 render | L1 face | backdrop | NME |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['id']} | {row['photo_mask']} | {row['l1_render']:.4f} | {row['l1_face']:.4f} "
            f"| {row['backdrop']:.4f} | {row['nme']:.4f} |"
        )
    for mask_on in args.variants:
        mine = [r for r in rows if r["photo_mask"] == mask_on]
        medians = [statistics.median(r[key] for r in mine) for key in ("l1_render", "l1_face", "backdrop", "nme")]
        print(f"| median | {mask_on} | " + " | ".join(f"{m:.4f}" for m in medians) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
