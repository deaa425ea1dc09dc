"""Identity judges of the evaluations: distances, thresholds calibrated on non-held-out FRL people, rank-1 search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganfit.assets import DATA_DIR
from ganfit.identity import load_identity_network
from ganfit.identity.api import embed_photo
from ganfit.metrics.identity import JUDGE_SPECS, comparable, judge_distance, roc_auc
from ganfit.tools.calibrate_judge import eer_threshold


def test_distances_auc_and_threshold_arithmetic() -> None:
    a, b = np.array([3.0, 4.0]), np.array([6.0, 8.0])
    assert judge_distance(a, b, "euclidean") == pytest.approx(5.0)
    assert judge_distance(a, b, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert judge_distance(a, np.array([-4.0, 3.0]), "cosine") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="metric"):
        judge_distance(a, b, "manhattan")
    unit = comparable(np.array([[3.0, 4.0], [0.0, 2.0]]), "cosine")
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0)
    assert roc_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert roc_auc(np.array([0.5]), np.array([0.5])) == 0.5
    threshold, rate = eer_threshold(np.array([0.1, 0.2]), np.array([0.4, 0.6]))
    assert threshold == pytest.approx(0.3) and rate == 0.0  # separated: the middle of the gap
    threshold, rate = eer_threshold(np.array([0.1, 0.5]), np.array([0.3, 0.6]))
    assert 0.0 < rate < 1.0 and 0.1 <= threshold <= 0.6


def test_every_judge_has_a_calibrated_threshold() -> None:
    for name, spec in JUDGE_SPECS.items():
        assert spec.threshold > 0 and spec.metric in ("euclidean", "cosine"), name


def test_faceres_threshold_separates_real_people(photos_root: Path) -> None:
    """Four FRL London people who are not held out: neutral vs smiling photo under faceres' threshold, different
    people above it (the judge of every real-photo figure; a test that fails if the threshold or port is wrong)."""

    holdout = set(json.loads((DATA_DIR / "frl_holdout.json").read_text())["holdout_ids"])
    people = [p for p in ("001", "002", "003", "004", "005", "006") if p not in holdout][:4]
    net = load_identity_network("faceres")
    spec = JUDGE_SPECS["faceres"]
    london = photos_root / "frl-london"
    neutral = [embed_photo(london / "neutral_front" / f"{p}_03.jpg", net).descriptor for p in people]
    smiling = [embed_photo(london / "smiling_front" / f"{p}_08.jpg", net).descriptor for p in people]
    for i, a in enumerate(neutral):
        for j, b in enumerate(smiling):
            distance = judge_distance(a, b, spec.metric)
            assert (distance < spec.threshold) == (i == j), (people[i], people[j], distance)
