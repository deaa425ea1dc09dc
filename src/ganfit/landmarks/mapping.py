"""The project's table mapping mediapipe's 478 face-mesh points to the 68 iBUG points.

Each iBUG point is a convex combination (non-negative weights summing to 1) of a few mesh points:
``ibug[k] = sum_j weights[k, j] * mesh[indices[k, j]]``. The table lives in ``data/mediapipe_to_ibug68.json`` at the
repository root (or next to this module in an installed wheel) and was fitted against dlib's 68-point predictor on
the CC BY Face Research Lab Canada photos by ``python -m ganfit.tools.derive_mediapipe_map`` (see
``docs/landmarks.md`` for how and why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ganfit.landmarks.types import LandmarkModelNotFoundError

__all__ = ["MAP_FILENAME", "MediapipeToIbugMap", "default_map_path", "load_mediapipe_map"]

MAP_FILENAME = "mediapipe_to_ibug68.json"


@dataclass(frozen=True, eq=False)
class MediapipeToIbugMap:
    """``indices`` int64 ``[68, K]`` into the 478 mesh points; ``weights`` float32 ``[68, K]``, rows sum to 1."""

    indices: np.ndarray
    weights: np.ndarray

    def apply(self, dense: np.ndarray) -> np.ndarray:
        """Map mesh points ``[..., 478, D]`` to iBUG-68 ``[..., 68, D]`` (float32)."""
        dense = np.asarray(dense, dtype=np.float32)
        gathered = dense[..., self.indices, :]  # [..., 68, K, D]
        return np.einsum("...kjd,kj->...kd", gathered, self.weights).astype(np.float32)


def default_map_path() -> Path:
    """Where the table is: next to this module (installed wheel) or in the repository's ``data/`` folder."""
    here = Path(__file__).resolve().parent
    candidates = [here / MAP_FILENAME, here.parent / "data" / MAP_FILENAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise LandmarkModelNotFoundError(
        f"mediapipe-to-iBUG68 table {MAP_FILENAME!r} not found in {[str(c.parent) for c in candidates]}; it is part "
        "of the package (ganfit/data/); regenerate it with `python -m ganfit.tools.derive_mediapipe_map`"
    )


@lru_cache(maxsize=4)
def load_mediapipe_map(path: Path | None = None) -> MediapipeToIbugMap:
    """Load (and cache) the mapping table; ``path=None`` uses :func:`default_map_path`."""
    path = default_map_path() if path is None else Path(path)
    try:
        table = json.loads(path.read_text())
        indices = np.asarray(table["indices"], dtype=np.int64)
        weights = np.asarray(table["weights"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise LandmarkModelNotFoundError(f"{path}: cannot read the mediapipe-to-iBUG68 table ({exc})") from None
    if indices.shape != weights.shape or indices.ndim != 2 or indices.shape[0] != 68:
        raise LandmarkModelNotFoundError(
            f"{path}: indices/weights must both be [68, K], got {indices.shape} and {weights.shape}"
        )
    if indices.min() < 0 or indices.max() >= 478 or not np.allclose(weights.sum(axis=1), 1.0, atol=1e-3):
        raise LandmarkModelNotFoundError(f"{path}: indices must be in [0, 478) and each weight row must sum to 1")
    return MediapipeToIbugMap(indices=indices, weights=weights / weights.sum(axis=1, keepdims=True))
