"""The detector-matched landmark embedding of the ICT mesh (ganfit.tools.learn_landmark_embedding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganfit.face_model import load_embedding, load_face_model
from ganfit.render.camera import frontal_camera
from ganfit.tools.learn_landmark_embedding import snap_to_surface, surface_points


def test_shipped_embedding_is_valid(assets_dir: Path) -> None:
    ids, weights = load_embedding("default")
    ict = load_face_model()
    assert ids.shape == (68, 3) and np.allclose(weights.sum(1), 1.0, atol=1e-4) and (weights >= 0).all()
    assert (ids[:17] == ict.landmark_ids.numpy()[:17, None]).all()  # jaw points stay ICT's (slid by the loss)
    learned = load_face_model(landmark_embedding="default")
    mean = ict.mean[None]
    shift = (learned.landmarks(mean) - ict.landmarks(mean)).norm(dim=-1)[0]
    assert float(shift[:17].max()) == 0.0
    assert 0.3 < float(shift[17:].median()) < 4.0 and float(shift.max()) < 10.0  # a correction, not a new layout
    # the learned points keep the landmarks' layout: the nose tip (30) in front of the eye corners, eyes level
    points = learned.landmarks(mean)[0]
    assert float(points[30, 2]) > float(points[[36, 45], 2].max()) + 10.0
    assert abs(float(points[36, 1] - points[45, 1])) < 3.0
    # differentiable w.r.t. the vertices
    vertices = mean.clone().requires_grad_(True)
    learned.landmarks(vertices).sum().backward()
    assert vertices.grad is not None and float(vertices.grad.abs().sum()) > 0


def test_surface_points_recover_projected_vertices(assets_dir: Path) -> None:
    fm = load_face_model()
    size = 512
    vertices = fm.mean[None]
    camera = frontal_camera(1, (size, size))
    landmarks = fm.landmarks(vertices)
    pixels = camera.project(landmarks, (size, size)).numpy()
    points = surface_points(fm, np.zeros((1, size, size, 3), np.uint8), vertices, camera, pixels)[0]
    found = np.isfinite(points[:, 0])
    inner = np.arange(17, 68)
    assert found[inner].mean() > 0.9  # the eyelid points may sit over the eye holes: nearest covered pixel
    error = np.linalg.norm(points[found] - landmarks[0].numpy()[found], axis=1)
    assert np.median(error) < 0.5 and error[np.isin(np.flatnonzero(found), inner)].max() < 3.0  # ~1 px = 0.3 mm
    # snapping surface points back gives the same points
    ids, weights = snap_to_surface(fm, landmarks[0, inner].double().numpy())
    snapped = (torch.from_numpy(weights)[..., None] * fm.mean[torch.from_numpy(ids)]).sum(1)
    assert float((snapped - landmarks[0, inner]).norm(dim=-1).max()) < 1e-3
