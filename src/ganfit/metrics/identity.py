"""Identity scores with a judge network: the distance each network is compared with, and its same-person threshold.

dlib's descriptors are compared by Euclidean distance (its documented threshold 0.6); the TF.js-ported networks by
cosine distance ``1 - cos``, thresholds at the equal error rate on FRL London's NON-held-out people
(``python -m ganfit.tools.calibrate_judge``; the held-out people that evaluations report on were never used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JudgeSpec:
    """How a network's descriptors are compared: ``metric`` (``euclidean`` | ``cosine``) and the same-person
    ``threshold`` of that distance (below = same person)."""

    metric: str
    threshold: float
    source: str


CALIBRATION = "EER on 70 non-held-out FRL London people, neutral vs smiling (python -m ganfit.tools.calibrate_judge)"
JUDGE_SPECS: dict[str, JudgeSpec] = {
    # dlib's own 0.6 (its documented threshold); FRL's EER point would be 0.46 (AUC 1.0000, EER 0.000)
    "dlib": JudgeSpec("euclidean", 0.6, "dlib's documented threshold"),
    # AUC 0.9996, EER 0.014 (same median 0.17, different median 0.91)
    "mobileface": JudgeSpec("cosine", 0.6320, CALIBRATION),
    # AUC 1.0000, separated: the middle of the gap (same max 0.213, different min 0.341)
    "faceres": JudgeSpec("cosine", 0.2768, CALIBRATION),
    # AUC 1.0000, separated: the middle of the gap (same max 0.156, different min 0.184)
    "faceres-deep": JudgeSpec("cosine", 0.1697, CALIBRATION),
}


def judge_distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """Distance of two raw descriptors [D] under ``metric``."""
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if metric == "euclidean":
        return float(np.linalg.norm(a - b))
    if metric == "cosine":
        return float(1.0 - a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    raise ValueError(f"unknown descriptor metric {metric!r} (euclidean | cosine)")


def comparable(descriptors: np.ndarray, metric: str) -> np.ndarray:
    """Descriptors [N, D] made comparable by Euclidean nearest-neighbour search (cosine: L2-normalised)."""
    descriptors = np.asarray(descriptors, np.float64)
    if metric == "cosine":
        return descriptors / np.maximum(np.linalg.norm(descriptors, axis=-1, keepdims=True), 1e-12)
    return descriptors


def roc_auc(same: np.ndarray, different: np.ndarray) -> float:
    """Probability that a random same-person distance is below a random different-person one (ties count half)."""
    same = np.asarray(same, np.float64).reshape(-1, 1)
    different = np.asarray(different, np.float64).reshape(1, -1)
    return float(np.mean((same < different) + 0.5 * (same == different)))
