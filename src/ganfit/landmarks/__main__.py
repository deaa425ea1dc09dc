"""Command line: detect faces and landmarks in photos.

    ganfit landmarks photos=[A.jpg,B.jpg] [backend=mediapipe|dlib] [json=OUT.json] [overlay=DIR]

(= ``python -m ganfit.landmarks ...``; one photo: ``photos=[A.jpg]``.) Prints one line per face (``photo face k:
box=(...) score=... backend=...``); ``json=`` writes every face's box, score and 68 landmarks (pixels, iBUG order);
``overlay=DIR`` writes ``DIR/<photo stem>_landmarks.png`` with the
boxes and points drawn (both written atomically). A photo that cannot be read or has no face is reported and
skipped. Exit codes: 0 every photo done, 1 some photo failed, 2 bad usage (an unknown key, an output that cannot be
written: one line), 130 Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import MISSING
from PIL import Image, ImageDraw

from ganfit.args import parse_args
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


@dataclass
class LandmarksArgs:
    """The keys of ``ganfit landmarks``."""

    photos: list[str] = field(default=MISSING, metadata={"help": "photo files: [a.jpg,b.jpg]"})
    backend: str = field(default="mediapipe", metadata={"help": "landmark backend", "choices": BACKENDS})
    json: Path | None = field(default=None, metadata={"help": "write all detections to this JSON file"})
    overlay: Path | None = field(default=None, metadata={"help": "write <stem>_landmarks.png overlays here"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(LandmarksArgs, argv, prog="ganfit landmarks", doc=__doc__.split("\n\n")[0])
    if not args.photos:
        raise SystemExit("photos=[...] names no photo; give photos=[a.jpg,b.jpg]")

    results: dict[str, list[dict]] = {}
    failed = 0
    for photo in map(Path, args.photos):
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
