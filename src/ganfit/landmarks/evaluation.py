"""Readers for reference landmark files and landmark error metrics (used by tests and benchmarks/landmarks.py).

Reference formats:
- WebMorph / Psychomorph ``.tem`` (Face Research Lab sets): first line the point count N, then N lines ``x y``
  (pixels, origin top-left), then line/contour definitions that we ignore. In the FRL template the first two points
  are the hand-placed pupil centres: point 0 is the pupil on the image's LEFT (subject's right eye), point 1 the one on
  the image's right (checked on all 80 ``frl-london/neutral_front`` files: ``x0 < x1`` everywhere).
- Deep3DFaceRecon ``detections/*.txt``: five lines ``x y`` in the MTCNN order: eye on the image left, eye on the
  image right, nose tip, mouth corner on the image left, mouth corner on the image right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["nme", "pupil_error", "read_five_points", "read_tem"]


def read_tem(path: Path | str) -> np.ndarray:
    """Points of a WebMorph ``.tem`` file as float64 ``[N, 2]`` (x, y) pixels."""
    lines = Path(path).read_text().split("\n")
    count = int(lines[0].strip())
    points = np.array([[float(v) for v in line.split()[:2]] for line in lines[1 : 1 + count]], dtype=np.float64)
    if points.shape != (count, 2):
        raise ValueError(f"{path}: expected {count} points, got array {points.shape}")
    return points


def read_five_points(path: Path | str) -> np.ndarray:
    """A Deep3DFaceRecon 5-point file as float64 ``[5, 2]``."""
    points = np.loadtxt(path, dtype=np.float64).reshape(-1, 2)
    if points.shape != (5, 2):
        raise ValueError(f"{path}: expected 5 points, got {points.shape[0]}")
    return points


def nme(predicted: np.ndarray, reference: np.ndarray, normaliser: float) -> float:
    """Mean Euclidean point error ``[P, 2]`` vs ``[P, 2]`` divided by ``normaliser`` (e.g. inter-ocular distance)."""
    return float(np.linalg.norm(np.asarray(predicted) - np.asarray(reference), axis=-1).mean() / normaliser)


def pupil_error(eyes: np.ndarray, pupils: np.ndarray) -> float:
    """Mean eye-centre error of ``eyes`` ``[2, 2]`` vs ``pupils`` ``[2, 2]``, divided by the inter-pupil distance."""
    return nme(eyes, pupils, float(np.linalg.norm(pupils[1] - pupils[0])))
