"""Command line: detect faces and landmarks in photos.

    python -m ganfit.landmarks PHOTO [PHOTO ...] [--backend mediapipe|dlib] [--json OUT.json] [--overlay DIR]

Prints one line per face (``photo face k: box=(...) score=... backend=...``); ``--json`` writes every face's box,
score and 68 landmarks (pixels, iBUG order); ``--overlay DIR`` writes ``DIR/<photo stem>_landmarks.png`` with the
boxes and points drawn (both written atomically). A photo that cannot be read or has no face is reported and
skipped. Exit codes: 0 every photo done, 1 some photo failed, 2 bad usage (an unknown option, an output that cannot be
written: one line), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ganfit.atomic import atomic_save, atomic_write_text
from ganfit.exit_codes import run_command
from ganfit.image_io import ImageInputError, read_image
from ganfit.landmarks.api import BACKENDS, detect_faces
from ganfit.landmarks.types import FaceDetection, LandmarkError


def draw_overlay(image: np.ndarray, faces: list[FaceDetection]) -> Image.Image:
    """The photo with each face's box (green for the largest, yellow otherwise) and 68 points (red) drawn."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius = max(1.0, 0.004 * max(image.shape[:2]))
    for index, face in enumerate(faces):
        draw.rectangle(face.box, outline=(0, 255, 0) if index == 0 else (255, 255, 0), width=max(1, int(radius)))
        for x, y in face.landmarks:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 0, 0))
    return canvas


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganfit.landmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+", type=Path, help="photo files")
    parser.add_argument("--backend", choices=BACKENDS, default="mediapipe", help="landmark backend")
    parser.add_argument("--json", type=Path, help="write all detections to this JSON file")
    parser.add_argument("--overlay", type=Path, help="write <stem>_landmarks.png overlays into this folder")
    args = parser.parse_args(argv)

    results: dict[str, list[dict]] = {}
    failed = 0
    for photo in args.photos:
        try:
            image = read_image(photo)
            faces = detect_faces(image, args.backend, name=str(photo))
            if not faces:
                raise LandmarkError(f"{photo}: no face found by the {args.backend} detector")
        except (ImageInputError, LandmarkError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        results[str(photo)] = [
            {
                "box": [round(v, 2) for v in f.box],
                "score": round(f.score, 4),
                "landmarks": f.landmarks.round(2).tolist(),
            }
            for f in faces
        ]
        for index, face in enumerate(faces):
            box = ", ".join(f"{v:.1f}" for v in face.box)
            print(f"{photo} face {index}: box=({box}) score={face.score:.3f} backend={face.backend}")
        if args.overlay:
            overlay = draw_overlay(image, faces)
            atomic_save(args.overlay / f"{photo.stem}_landmarks.png", lambda f, o=overlay: o.save(f, format="PNG"))
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
