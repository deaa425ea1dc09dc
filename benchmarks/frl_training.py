"""Shared by the benchmarks that fit FRL London training-split photos (exposure_photos.py, loss_mask.py): the
common options, the photos (never a held-out person), the fit overrides and a fitter per variant."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from ganfit.assets import DATA_DIR
from ganfit.config import compose_config
from ganfit.fitting.fitter import Fitter
from ganfit.fitting.prepare import PreparedPhoto, prepare_photo
from ganfit.image_io import read_image
from ganfit.jobs.components import build_fitter
from ganfit.landmarks import FaceDetection, detect_face


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--ids, --preset, --identity, --steps, --threads, --json."""
    parser.add_argument("--ids", nargs="+", default=["024", "036", "043", "066"])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--identity", action="store_true", help="keep the identity terms (fit.py's default: dlib)")
    parser.add_argument("--steps", type=int, default=0, help="stage-2 steps (0: the preset's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")


def training_photos(ids: list[str]) -> tuple[list[np.ndarray], list[FaceDetection]]:
    """The neutral FRL London photos ``<id>_03.jpg`` (uint8 [H, W, 3]) and their detections; refuses held-out ids."""
    held_out = set(json.loads((DATA_DIR / "frl_holdout.json").read_text())["holdout_ids"])
    if held_out & set(ids):
        raise SystemExit(f"held-out ids {sorted(held_out & set(ids))}: tune on the training split only")
    folder = Path(os.environ["GANFIT_PHOTOS"]) / "frl-london" / "neutral_front"
    images = [read_image(folder / f"{i}_03.jpg") for i in ids]
    return images, [detect_face(image) for image in images]


def variant_fitter(args: argparse.Namespace, overrides: list[str]) -> Fitter:
    """The fitter of ``fit.yaml`` with ``--preset``, ``--identity``, ``--steps`` and the variant's ``overrides``."""
    full = [f"fitting={args.preset}", "progress=false", *overrides]
    if not args.identity:
        full.append("~identity")
    if args.steps:
        full += [f"fitting.full.steps={args.steps}", f"fitting.full.warmup_steps={args.steps // 3}"]
    torch.manual_seed(0)
    return build_fitter(compose_config("fit", full))


def prepare_all(fitter: Fitter, images: list[np.ndarray], faces: list[FaceDetection]) -> list[PreparedPhoto]:
    """Crops of the photos at the fitter's resolution."""
    fitting = fitter.config
    return [
        prepare_photo(image, face.landmarks, fitting.resolution, fitting.crop_scale, dense=face.dense)
        for image, face in zip(images, faces, strict=True)
    ]
