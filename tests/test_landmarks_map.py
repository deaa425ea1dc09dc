"""Tests for the derivation of the mediapipe -> iBUG-68 table (ganfit.tools.derive_mediapipe_map)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganfit.image_io import read_image
from ganfit.landmarks import detect_face
from ganfit.landmarks.mapping import default_map_path, load_mediapipe_map
from ganfit.tools.derive_mediapipe_map import (
    LOWER_LIP_IBUG,
    UPPER_LIP_IBUG,
    fit_map,
    lip_sides,
    main,
    nme,
    normalise,
)


def test_fit_recovers_a_known_convex_combination() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(-1, 1, (478, 2))

    def photos(count: int) -> np.ndarray:
        """Random per-photo affine distortion of a mean mesh plus per-point jitter: ``[count, 478, 2]``."""
        return np.stack(
            [
                base @ (np.eye(2) + 0.1 * rng.normal(size=(2, 2))) + 0.03 * rng.normal(size=(478, 2))
                for _ in range(count)
            ]
        )

    true_idx = np.stack([np.argsort(np.linalg.norm(base - base[k * 7], axis=1))[:3] for k in range(68)])
    true_w = rng.dirichlet(np.ones(3), size=68)
    train, test = photos(30), photos(10)
    target = lambda dense: np.einsum("nkjd,kj->nkd", dense[:, true_idx, :], true_w)  # noqa: E731
    indices, weights = fit_map(train, target(train), k=8, constrain_lips=False)
    assert (weights >= 0).all() and np.allclose(weights.sum(axis=1), 1.0)
    assert nme(train, target(train), indices, weights) < 5e-3
    assert nme(test, target(test), indices, weights) < 1e-2  # generalises to unseen "photos"
    nearest, one = fit_map(train, target(train), k=1, constrain_lips=False)
    assert nme(test, target(test), nearest, one) > 3 * nme(test, target(test), indices, weights)


def test_lip_sides_on_a_real_mesh(photos_root: Path) -> None:
    photo = read_image(sorted((photos_root / "frl-canada").glob("*.jpg"))[0])
    face = detect_face(photo, "mediapipe")
    dense, ibug = normalise(face.dense[None].astype(np.float64), face.landmarks[None].astype(np.float64))
    upper, lower = lip_sides(dense)
    assert not (upper & lower).any()
    # mediapipe's lip centre points: 0 outer upper, 13 inner upper, 14 inner lower, 17 outer lower.
    assert upper[[0, 13]].all() and lower[[14, 17]].all()
    assert not upper[[14, 17]].any() and not lower[[0, 13]].any()
    assert upper.sum() > 10 and lower.sum() > 10


def test_shipped_table_respects_the_lip_constraint(photos_root: Path) -> None:
    table = load_mediapipe_map()
    photo = read_image(sorted((photos_root / "frl-canada").glob("*.jpg"))[0])
    face = detect_face(photo, "mediapipe")
    dense, _ = normalise(face.dense[None].astype(np.float64), face.landmarks[None].astype(np.float64))
    upper, lower = lip_sides(dense)
    for k in UPPER_LIP_IBUG:
        assert not lower[table.indices[k][table.weights[k] > 0]].any(), k
    for k in LOWER_LIP_IBUG:
        assert not upper[table.indices[k][table.weights[k] > 0]].any(), k
    metadata = json.loads(default_map_path().read_text())
    assert metadata["fitting_set"].startswith("frl-canada")  # never fitted on the evaluation sets
    assert metadata["nme_vs_dlib"]["fitted_5fold_cv"] < metadata["nme_vs_dlib"]["nearest_point_5fold_cv"]


@pytest.mark.parametrize("k", [0, 30, 36, 45, 48, 54])
def test_table_rows_are_local(k: int, photos_root: Path) -> None:
    # Each iBUG point is a combination of mesh points close to one another (within 15% of the inter-ocular distance).
    table = load_mediapipe_map()
    photo = read_image(sorted((photos_root / "frl-canada").glob("*.jpg"))[1])
    face = detect_face(photo, "mediapipe")
    used = face.dense[table.indices[k][table.weights[k] > 0]]
    assert np.linalg.norm(used - used.mean(axis=0), axis=1).max() < 0.15 * face.inter_ocular()


@pytest.mark.slow
def test_shipped_table_is_reproduced_by_the_derivation_script(photos_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.json"
    main([f"photos={photos_root / 'frl-canada'}", f"out={out}"])
    derived, shipped = json.loads(out.read_text()), json.loads(default_map_path().read_text())
    assert derived["indices"] == shipped["indices"]
    np.testing.assert_allclose(derived["weights"], shipped["weights"], atol=2e-4)
