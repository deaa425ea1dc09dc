"""The synthetic benchmark's honest parts: the random truth camera, the dense points passed to the fit, and the
face parts of the region-wise shape errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit.config import compose_config
from ganfit.eval import synthetic
from ganfit.face_model import load_face_model
from ganfit.fitting.dense import DENSE_POINTS
from ganfit.metrics.regions import FACE_PARTS, face_parts
from ganfit.metrics.scores import face_region


def test_random_camera_covers_the_bands_with_real_cameras() -> None:
    cfg = compose_config("eval_synthetic", ["out=unused", "n=12", "seed=0"])
    cameras = synthetic.sample_cameras(cfg, 12)
    spec = cfg.camera_distribution
    names = [b.name for b in spec.bands]
    assert sorted(cameras["band"].tolist()) == sorted(names * 4)  # dealt out evenly
    for band in spec.bands:
        pick = cameras["band"] == band.name
        distance, factor = cameras["distance_mm"][pick], cameras["focal_factor"][pick]
        assert ((distance >= band.min_mm) & (distance <= band.max_mm)).all()
        equiv = factor * spec.frame_mm
        assert ((equiv >= band.focal_equiv_mm[0] - 1e-6) & (equiv <= band.focal_equiv_mm[1] + 1e-6)).all()
    selfie = cameras["band"] == "selfie"
    assert cameras["focal_factor"][selfie].max() < 0.8  # a phone's short lens, not the fit's initial 1.5
    fill = cameras["focal_factor"] * synthetic.FACE_WIDTH_MM / cameras["distance_mm"]
    assert (fill > 0.15).all() and (fill < 0.8).all()
    again = synthetic.sample_cameras(cfg, 12)
    np.testing.assert_array_equal(again["distance_mm"], cameras["distance_mm"])  # seeded
    other = synthetic.sample_cameras(compose_config("eval_synthetic", ["out=unused", "seed=1"]), 12)
    assert not np.allclose(other["distance_mm"], cameras["distance_mm"])


def test_fixed_camera_is_the_old_one() -> None:
    cfg = compose_config("eval_synthetic", ["out=unused", "camera=fixed"])
    cameras = synthetic.sample_cameras(cfg, 3)
    np.testing.assert_allclose(cameras["focal_factor"], 1.5)
    np.testing.assert_allclose(cameras["distance_mm"], 1.5 * 150.0 / 0.45)
    assert set(cameras["band"].tolist()) == {"fixed"}


@pytest.fixture(scope="module")
def scene(assets_dir: Path):
    """One synthetic face (random camera, seed 3), rendered and detected as the benchmark does."""
    cfg = compose_config("eval_synthetic", ["out=unused", "n=1", "seed=3", "max_yaw_deg=10"])
    face_model = load_face_model(cfg.face_model.assets_dir)
    truth = synthetic.sample_scenes(cfg, face_model, [])
    detections, fallbacks = synthetic.detect_scenes(truth["photos"], truth["landmarks"], "mediapipe")
    assert fallbacks == 0
    return cfg, face_model, truth, detections


def test_benchmark_photos_carry_dense_points_when_the_fit_uses_them(scene) -> None:
    """fitting=default has the dense-landmark term on (landmarks.dense=true): the benchmark's photos must carry the
    detector's dense points (as fit.py's do), the 68-only variant and landmarks.dense=false none."""
    cfg, _, truth, detections = scene
    variant = synthetic.variant_config("landmarks_only", cfg)
    assert variant.landmarks.dense and variant.fitting.align.weights.dense_landmark > 0
    (photo,) = synthetic.variant_photos(variant, truth, detections, [0])
    assert photo.crop_dense is not None and photo.crop_dense.shape == (DENSE_POINTS, 2)
    np.testing.assert_allclose(photo.to_original(photo.crop_dense), detections[0].dense, atol=1e-2)
    (full,) = synthetic.variant_photos(synthetic.variant_config("full", cfg), truth, detections, [0])
    assert full.crop_dense is not None
    (bare,) = synthetic.variant_photos(synthetic.variant_config("landmarks_68_only", cfg), truth, detections, [0])
    assert bare.crop_dense is None
    off = compose_config("eval_synthetic", ["out=unused", "n=1", "landmarks.dense=false"])
    (none,) = synthetic.variant_photos(synthetic.variant_config("full", off), truth, detections, [0])
    assert none.crop_dense is None


def test_known_focal_hands_the_fit_the_true_focal_length(scene) -> None:
    """known_focal=true: the benchmark's photos start the fit at the truth camera's focal (what a photo's EXIF focal
    length does in fit.py); by default they carry none (the preset's start)."""
    cfg, _, truth, detections = scene
    (unknown,) = synthetic.variant_photos(synthetic.variant_config("full", cfg), truth, detections, [0])
    assert unknown.focal_factor is None
    known = compose_config("eval_synthetic", ["out=unused", "n=1", "seed=3", "known_focal=true"])
    (photo,) = synthetic.variant_photos(synthetic.variant_config("full", known), truth, detections, [0])
    assert photo.focal_factor == pytest.approx(float(truth["focal_factor"][0]))


def test_truth_distance_matches_the_drawn_camera(scene) -> None:
    cfg, _, truth, _ = scene
    drawn = synthetic.sample_cameras(cfg, 1)
    # the face centre sits at the drawn distance along the axis, moved sideways by at most 15 mm
    assert truth["distance_mm"][0] == pytest.approx(drawn["distance_mm"][0], abs=0.05 * drawn["distance_mm"][0])
    np.testing.assert_allclose(truth["camera"].focal.numpy(), drawn["focal_factor"] * int(cfg.image_size), rtol=1e-6)


def test_face_parts(assets_dir: Path) -> None:
    model = load_face_model()
    region = face_region(model.mean, model.landmark_ids, 95.0)
    with torch.no_grad():
        marks = model.landmarks(model.mean[None])[0]
    parts = face_parts(model.mean, model.triangles, marks, region)
    assert set(parts) == set(FACE_PARTS)
    vertices = model.mean[region].numpy()
    total = np.zeros(len(region), dtype=int)
    for name, mask in parts.items():
        assert mask.shape == (len(region),) and mask.sum() > 150, name
        total += mask
    assert total.max() == 1, "the parts are disjoint"
    assert total.sum() < 0.7 * len(region), "eyes, chin and jaw sides belong to no part"
    nose, mouth, forehead, cheeks = (vertices[parts[p]] for p in ("nose", "mouth", "forehead", "cheeks"))
    m = marks.numpy()
    assert abs(nose[:, 0].mean()) < 2.0 and nose[:, 2].max() == pytest.approx(m[30, 2], abs=3.0)  # the tip
    assert (forehead[:, 1] > m[17:27, 1].min() + 9.0).all() and forehead[:, 1].mean() > m[17:27, 1].max()
    assert mouth[:, 1].mean() == pytest.approx(m[48:60, 1].mean(), abs=5.0)
    left, right = (cheeks[:, 0] > 0).sum(), (cheeks[:, 0] < 0).sum()
    assert abs(left - right) < 0.1 * len(cheeks)  # both sides, as the mesh is symmetric
    assert (np.abs(cheeks[:, 0]) > 12.0).all()  # beside the nose, not on it


def test_several_views_of_a_face_share_its_shape_and_texture(assets_dir: Path) -> None:
    cfg = compose_config("eval_synthetic", ["out=unused", "n=2", "views=2", "seed=4", "image_size=128"])
    face_model = load_face_model(cfg.face_model.assets_dir)
    truth = synthetic.sample_scenes(cfg, face_model, [])
    assert truth["photos"].shape[0] == 4 and truth["face_of"].tolist() == [0, 0, 1, 1]
    ps, pe, texture = truth["ps"], truth["pe"], truth["texture"]
    assert torch.equal(ps[0], ps[1]) and torch.equal(ps[2], ps[3]) and not torch.equal(ps[0], ps[2])
    assert torch.equal(texture[0], texture[1]) and not torch.equal(texture[1], texture[2])
    assert not torch.equal(pe[0], pe[1]) and not np.allclose(truth["angles_deg"][0], truth["angles_deg"][1])
    assert not np.array_equal(truth["photos"][0], truth["photos"][1])  # another pose, light and camera
    single = synthetic.sample_scenes(compose_config("eval_synthetic", ["out=unused", "n=2", "seed=4"]), face_model, [])
    assert single["face_of"].tolist() == [0, 1]
