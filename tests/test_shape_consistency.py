"""Shape consistency (``ganfit.metrics.shape_consistency``) on the real ICT model: two "fits" of a person that differ
by a pose, a scale and a small shape change are closer than two people; the mean face for everyone identifies no one
beyond chance (the floor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ganfit.face_model import load_face_model
from ganfit.metrics.scores import face_region
from ganfit.metrics.shape_consistency import shape_consistency, shape_distances


def test_same_person_fits_are_nearer_than_other_people(assets_dir: Path) -> None:
    face_model = load_face_model(assets_dir)
    region = face_region(face_model.mean, face_model.landmark_ids)
    generator = torch.Generator().manual_seed(3)
    ps, _ = face_model.sample(6, generator=generator)
    zeros = torch.zeros(6, face_model.num_expression)
    with torch.no_grad():
        probes = face_model(ps, zeros)[:, region]
        nearby = ps + 0.15 * torch.randn(ps.shape, generator=generator)  # the other photo's fit: a small change
        gallery = face_model(nearby, zeros)[:, region]
    rotation = torch.from_numpy(Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()).float()
    gallery = 1.07 * gallery @ rotation.T + torch.tensor([20.0, -5.0, 300.0])  # another pose and size
    ids = [f"p{i}" for i in range(6)]
    distances = shape_distances(probes, gallery)
    assert distances.shape == (6, 6) and np.all(distances > 0)
    result = shape_consistency(distances, ids, ids)
    assert result["rank1"] == 1.0 and result["people"] == 6 and result["chance"] == pytest.approx(1 / 6)
    assert result["ratio"] > 3.0
    assert result["same_person_median_mm"] < 1.0 < result["different_person_median_mm"]

    with torch.no_grad():
        mean = face_model(torch.zeros(6, face_model.num_shape), zeros)[:, region]
    floor = shape_consistency(shape_distances(mean, gallery), ids, ids)  # the mean face predicted for every probe
    assert floor["rank1"] == pytest.approx(1 / 6)  # every probe has the same nearest gallery shape: one is right


def test_needs_the_same_people_on_both_sides() -> None:
    with pytest.raises(ValueError, match="both sides"):
        shape_consistency(np.ones((2, 2)), ["a", "b"], ["c", "d"])
    with pytest.raises(ValueError, match=r"\[P, N, 3\]"):
        shape_distances(torch.zeros(2, 5, 3), torch.zeros(2, 4, 3))
