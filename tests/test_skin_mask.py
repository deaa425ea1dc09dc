"""The unwrap's skin mask: mediapipe index loops and the mask on a real photo, for both landmark backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mediapipe.python.solutions import face_mesh_connections

from ganfit.data_build.skin_mask import (
    MEDIAPIPE_FACE_OVAL,
    MEDIAPIPE_INNER_LIPS,
    MEDIAPIPE_LEFT_EYE,
    MEDIAPIPE_RIGHT_EYE,
    skin_mask,
)
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face


@pytest.mark.parametrize(
    ("loop", "edge_set"),
    [
        (MEDIAPIPE_FACE_OVAL, "FACEMESH_FACE_OVAL"),
        (MEDIAPIPE_INNER_LIPS, "FACEMESH_LIPS"),
        (MEDIAPIPE_RIGHT_EYE, "FACEMESH_RIGHT_EYE"),
        (MEDIAPIPE_LEFT_EYE, "FACEMESH_LEFT_EYE"),
    ],
)
def test_loops_follow_mediapipe_edges(loop: tuple[int, ...], edge_set: str) -> None:
    edges = {frozenset(edge) for edge in getattr(face_mesh_connections, edge_set)}
    closed = list(zip(loop, loop[1:] + loop[:1], strict=True))
    assert len(set(loop)) == len(loop)
    assert all(frozenset(pair) in edges for pair in closed)


@pytest.mark.parametrize("backend", ["mediapipe", "dlib"])
def test_mask_on_a_real_photo(photos_root: Path, backend: str) -> None:
    image = read_image(photos_root / "frl-london" / "smiling_front" / "005_08.jpg")
    face = detect_face(image, backend=backend)
    mask = skin_mask(image.shape[:2], face.landmarks, face.dense)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0

    def at(point: np.ndarray) -> float:
        x, y = np.floor(point).astype(int)
        return float(mask[y, x])

    lm = face.landmarks
    iod = float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))
    cheek = (lm[2] + lm[31] + lm[48]) / 3.0  # between jaw, nostril and mouth corner
    assert at(cheek) == 1.0
    assert at(lm[27:31].mean(0)) == 1.0  # nose bridge
    assert at(lm[36:42].mean(0)) == 0.0 and at(lm[42:48].mean(0)) == 0.0  # eyes
    assert at(lm[60:68].mean(0)) == 0.0  # inside the mouth (a smiling photo: teeth)
    assert at(lm[8] + np.array([0.0, 0.3 * iod])) == 0.0  # below the chin: neck / collar
    assert at(np.array([2.0, 2.0])) == 0.0  # the photo's corner: background
    # the face is mostly kept: skin area ~ a few IOD^2
    assert 1.5 * iod**2 < float(mask.sum()) < 6.0 * iod**2
