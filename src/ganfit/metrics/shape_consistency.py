"""Real-photo shape consistency: do two fits of the same person have closer neutral shapes than fits of two
different people? A signal no loss of the fit sees (the fits never compare shapes across photos).

For probe fits (e.g. each FRL-London person's neutral photo) and gallery fits (their smiling photo), the neutral
shapes ``fm(ps, 0)`` are compared pairwise by the RMS per-vertex distance over the face region after a similarity
alignment (rotation, translation, uniform scale; as the NoW benchmark aligns). Reported: the median same-person and
different-person distances, their ratio, and shape-only rank-1 identification (each probe's nearest gallery shape
has its person); chance is 1 / people, which is also what the mean-face prediction scores (every distance equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ganfit.metrics.scores import rigid_align


def shape_distances(probes: torch.Tensor, gallery: torch.Tensor) -> np.ndarray:
    """[P, G] RMS distance (mm) between each probe shape and each gallery shape after the similarity alignment of
    the probe onto the gallery shape.

    Args:
        probes: [P, N, 3] neutral shapes over the evaluated vertices, mm.
        gallery: [G, N, 3] the same for the gallery fits.
    """
    if probes.ndim != 3 or gallery.ndim != 3 or probes.shape[1:] != gallery.shape[1:]:
        raise ValueError(f"need [P, N, 3] and [G, N, 3] shapes, got {tuple(probes.shape)}, {tuple(gallery.shape)}")
    rows = []
    for probe in probes:
        aligned = rigid_align(probe[None].expand_as(gallery), gallery, scale=True)
        rows.append((aligned - gallery).square().sum(-1).mean(-1).sqrt())
    return torch.stack(rows).numpy() if rows else np.zeros((0, len(gallery)))


def shape_consistency(distances: np.ndarray, probe_ids: list[str], gallery_ids: list[str]) -> dict[str, Any]:
    """Same/different-person medians (mm), their ratio, and rank-1 identification from ``distances`` [P, G]
    (``shape_distances``); ``matches`` lists (probe id, nearest gallery id)."""
    distances = np.asarray(distances, np.float64)
    same = np.array([[p == g for g in gallery_ids] for p in probe_ids], bool)
    if not same.any() or same.all():
        raise ValueError("shape consistency needs people with a photo on both sides and more than one person")
    nearest = distances.argmin(1)
    matches = [(probe_ids[i], gallery_ids[int(j)]) for i, j in enumerate(nearest)]
    same_median = float(np.median(distances[same]))
    different_median = float(np.median(distances[~same]))
    return {
        "people": len(set(gallery_ids)),
        "probes": len(probe_ids),
        "chance": 1.0 / len(set(gallery_ids)),
        "rank1": float(np.mean([p == g for p, g in matches])),
        "same_person_median_mm": same_median,
        "different_person_median_mm": different_median,
        "ratio": different_median / max(same_median, 1e-12),
        "matches": matches,
    }


__all__ = ["shape_consistency", "shape_distances"]
