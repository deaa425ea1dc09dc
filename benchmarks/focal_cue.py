"""Can the landmarks tell the focal length? Stage-1 fits of synthetic faces under the random truth camera.

    python benchmarks/focal_cue.py [--seed 1] [--n 12] [--oracle]

Renders ``n`` faces as ``python -m ganfit.eval.synthetic`` does (``camera=random``: selfie / near / portrait bands,
flat skin tones; use a tuning seed, never the reported seed 0), detects them with mediapipe (``--oracle``: the true
projected landmarks instead, no dense points) and runs the landmark stage of ``fitting=default`` (rigid + align, no
renderer) four ways: the default start (focal 1.5 x the long side, free); the true focal frozen; the true focal
free (what a photo's EXIF focal length gives); and a per-face pick among fixed focal lengths by the lowest final
stage-1 loss (priors included). Prints the rigid and similarity-aligned median shape error (mm, over all vertices
of all faces, as eval.synthetic), the median camera-distance error, and the detector's bias per band (inner NME,
detected / true jaw width and outer-eye-corner distance). Results: docs/evaluation.md (session 7).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from hydra.utils import instantiate

from ganfit.args import compose_command
from ganfit.eval.synthetic import camera_distance, detect_scenes, sample_scenes, variant_config, variant_photos
from ganfit.fitting.fitter import Fitter
from ganfit.fitting.prepare import stack_crops, stack_dense
from ganfit.jobs.components import fitting_config
from ganfit.landmarks import FaceDetection
from ganfit.landmarks.types import interocular_distance
from ganfit.metrics.scores import face_region, shape_error_mm

CANDIDATES = (0.6, 0.8, 1.1, 1.5, 2.1, 3.0)  # focal length / long side tried by the per-face pick


def _frozen(config, focal_factor: float | None = None):  # noqa: ANN001, ANN202 (FittingConfig)
    rigid = dataclasses.replace(config.rigid, lr=dataclasses.replace(config.rigid.lr, focal=0.0))
    align = dataclasses.replace(config.align, lr=dataclasses.replace(config.align.lr, focal=0.0))
    changes = {"rigid": rigid, "align": align}
    if focal_factor is not None:
        changes["focal_factor"] = focal_factor
    return config.replace(**changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--oracle", action="store_true", help="fit the true projected landmarks")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = compose_command("eval_synthetic", [f"seed={args.seed}", f"n={args.n}", "out=unused"], prog="focal_cue")
    face_model = instantiate(cfg.face_model)
    truth = sample_scenes(cfg, face_model, [])
    if args.oracle:
        size = float(cfg.image_size)
        detections = [FaceDetection((0.0, 0.0, size, size), 0.0, marks) for marks in truth["landmarks"]]
    else:
        detections, _ = detect_scenes(truth["photos"], truth["landmarks"], "mediapipe")
    variant = variant_config("full", cfg)
    photos = variant_photos(variant, truth, detections, list(range(args.n)))
    _, target = stack_crops(photos)
    dense = stack_dense(photos)
    region = face_region(face_model.mean, face_model.landmark_ids)
    base = fitting_config(variant.fitting)
    zeros = torch.zeros(args.n, face_model.num_expression)
    with torch.no_grad():
        neutral_true = face_model(truth["ps"], zeros)

    known = [dataclasses.replace(p, focal_factor=float(f)) for p, f in zip(photos, truth["focal_factor"], strict=True)]

    def fit(config, true_focal: bool = False) -> dict[str, np.ndarray]:  # noqa: ANN001
        fitter = Fitter(face_model, config, scene=None)
        result = fitter.fit(known if true_focal else photos)
        with torch.no_grad():
            loss = fitter.objective.alignment_terms(result.params, target, dense).total(config.align.weights)
            neutral = face_model(result.params.ps, zeros)
            distance = camera_distance(result.params.camera(), face_model.landmarks(result.vertices).mean(1))
        return {
            "loss": loss.numpy(),
            "rigid": shape_error_mm(neutral, neutral_true, region).numpy(),  # [n, vertices]
            "similarity": shape_error_mm(neutral, neutral_true, region, scale=True).numpy(),
            "ratio": distance.numpy() / truth["distance_mm"],
        }

    rows = {
        "default start (1.5, free)": fit(base),
        "true focal, frozen": fit(_frozen(base), true_focal=True),
        "true focal, free": fit(base, true_focal=True),
    }
    fixed = [fit(_frozen(base, factor)) for factor in CANDIDATES]
    pick = np.stack([f["loss"] for f in fixed]).argmin(0)
    rows["per-face pick by landmark loss"] = {
        key: np.stack([f[key] for f in fixed])[pick, np.arange(args.n)] for key in ("rigid", "similarity", "ratio")
    }
    print(f"seed {args.seed}, n {args.n}, {'true projected' if args.oracle else 'detected'} landmarks, stage 1 only")
    print("| stage-1 fit | rigid (mm) | similarity (mm) | median abs(d_fit / d_true - 1) |\n|---|---|---|---|")
    for name, row in rows.items():
        error = np.median(np.abs(row["ratio"] - 1))
        print(f"| {name} | {np.median(row['rigid']):.2f} | {np.median(row['similarity']):.2f} | {error:.0%} |")
    print("picked focal factors:", np.array(CANDIDATES)[pick], "true:", np.round(truth["focal_factor"], 2))
    print(
        "\n| band | faces | inner NME | jaw width det / true | eye-corner distance det / true |\n|---|---|---|---|---|"
    )
    for band in dict.fromkeys(truth["band"]):
        picked = [i for i in range(args.n) if truth["band"][i] == band]
        inner, width, eyes = [], [], []
        for i in picked:
            found, true = detections[i].landmarks, truth["landmarks"][i]
            inner.append(np.linalg.norm(found[17:] - true[17:], axis=1).mean() / interocular_distance(true[None])[0])
            width.append(np.linalg.norm(found[16] - found[0]) / np.linalg.norm(true[16] - true[0]))
            eyes.append(np.linalg.norm(found[45] - found[36]) / np.linalg.norm(true[45] - true[36]))
        print(f"| {band} | {len(picked)} | {np.median(inner):.3f} | {np.median(width):.3f} | {np.median(eyes):.3f} |")


if __name__ == "__main__":
    main()
