"""Dense landmarks: the learned embedding of mediapipe's face mesh on ICT, the loss, and the data path to the fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganfit.config import compose_config
from ganfit.config.schema import FittingConfig
from ganfit.eval.synthetic import sample_scenes
from ganfit.face_model import load_face_model
from ganfit.fitting import losses
from ganfit.fitting.dense import DENSE_POINTS, dense_point_ids, load_dense_embedding
from ganfit.fitting.objective import Objective
from ganfit.fitting.params import FitParameters, ParamsConfig
from ganfit.fitting.prepare import prepare_photo, stack_dense
from ganfit.fitting.skin_mask import MEDIAPIPE_FACE_OVAL
from ganfit.landmarks import detect_face
from ganfit.tools.learn_dense_embedding import gan_textures


def test_embedding_file_is_consistent():
    embedding = load_dense_embedding()
    ids = embedding.mediapipe_ids.numpy()
    assert 300 <= len(ids) <= 432
    assert not set(ids) & set(MEDIAPIPE_FACE_OVAL), "silhouette points must not be fixed surface points"
    assert ids.max() < 468, "iris points are not embedded"
    assert set(ids) <= set(dense_point_ids())
    assert torch.allclose(embedding.weights.sum(1), torch.ones(len(ids)), atol=1e-4)
    assert embedding.point_weight.mean().item() == pytest.approx(1.0, abs=1e-3)
    assert float(embedding.spread.median()) < 0.03  # median residual under 3 % of the face size


def test_dense_loss_counts_only_valid_visible_points():
    projected = torch.zeros(2, 4, 2)
    detected = torch.zeros(2, 4, 2)
    detected[0, 0] = torch.tensor([3.0, 4.0])  # 5 px off
    detected[1] = float("nan")  # no dense detection for photo 1
    size = torch.tensor([100.0, 100.0])
    weight = torch.ones(4)
    visible = torch.ones(2, 4)
    loss = losses.dense_landmark_loss(projected, detected, size, weight, visible)
    assert loss[0].item() == pytest.approx(25.0 / 100.0**2 / 4)
    assert loss[1].item() == 0.0 and torch.isfinite(loss).all()
    visible[0, 0] = 0.0  # the off point hidden: nothing left to pay
    assert losses.dense_landmark_loss(projected, detected, size, weight, visible)[0].item() == 0.0


def test_prepare_photo_maps_dense_like_landmarks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    landmarks = rng.uniform(100, 250, (68, 2)).astype(np.float32)
    dense = np.concatenate([landmarks, rng.uniform(100, 250, (DENSE_POINTS - 68, 2)).astype(np.float32)])
    photo = prepare_photo(image, landmarks, 128, dense=dense)
    np.testing.assert_allclose(photo.crop_dense[:68], photo.crop_landmarks, atol=1e-4)
    np.testing.assert_allclose(photo.to_original(photo.crop_dense), dense, atol=1e-3)
    bare = prepare_photo(image, landmarks, 128)
    assert bare.crop_dense is None
    stacked = stack_dense([photo, bare])
    assert stacked.shape == (2, DENSE_POINTS, 2) and torch.isnan(stacked[1]).all()
    assert stack_dense([bare]) is None


@pytest.fixture(scope="module")
def frontal_render(assets_dir):
    """The mean face rendered frontally with a shipped-GAN texture, and mediapipe's dense points on it."""

    cfg = compose_config(
        "eval_synthetic",
        ["out=unused", "n=1", "seed=77", "camera=fixed", "max_yaw_deg=0", "max_pitch_deg=0", "max_roll_deg=0",
         "shape_scale=0.5", "expression_scale=0"],
    )  # fmt: skip
    face_model = load_face_model(cfg.face_model.assets_dir)
    scenes = sample_scenes(cfg, face_model, gan_textures(1, 77))
    detection = detect_face(scenes["photos"][0])
    return face_model, scenes, detection


def test_embedding_matches_the_detector_on_a_render(frontal_render):
    """On a held-out render (seed 77, not a learning seed) the embedded points projected with the true geometry lie
    where mediapipe puts them: a median residual of a few percent of the face size."""
    face_model, scenes, detection = frontal_render
    embedding = load_dense_embedding()
    with torch.no_grad():
        vertices = face_model(scenes["ps"], scenes["pe"])
        projected = scenes["camera"].project(embedding.points(vertices), (512, 512))[0].numpy()
    detected = detection.dense[embedding.mediapipe_ids.numpy()]
    size = float(losses.face_size(torch.from_numpy(detection.landmarks)[None])[0])
    residual = np.linalg.norm(projected - detected, axis=1) / size
    assert np.median(residual) < 0.025
    assert np.percentile(residual, 90) < 0.05
    assert math.isfinite(float(residual.mean()))


def test_points_turned_away_do_not_count(assets_dir):
    """A head turned 80 degrees: the points on the far cheek face away and get no weight (visibility from the fitted
    normals), so a detector's wild guesses there cannot pull the shape."""

    face_model = load_face_model()
    objective = Objective(face_model, FittingConfig(), texture=lambda p: None)
    params = FitParameters(2, ParamsConfig(), (128, 128))
    with torch.no_grad():
        params.rotation[1, 1] = math.radians(80.0)
    vertices = face_model(params.ps, params.pe)
    projected = params.project(objective.dense_embedding.points(vertices))
    dense = torch.full((2, DENSE_POINTS, 2), float("nan"))
    dense[:, objective.dense_embedding.mediapipe_ids] = projected.detach()
    target = params.project(face_model.landmarks(vertices)).detach()
    assert objective.dense_landmark(params, vertices, dense, target).abs().max().item() < 1e-8
    embedding = objective.dense_embedding
    x = embedding.points(face_model.mean[None])[0, :, 0]
    far = x > 20.0  # the subject's left cheek: +x turns away from the camera under +80 degrees about y
    corners = face_model.mean[embedding.corner_ids]
    normal = torch.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1)
    facing = (torch.nn.functional.normalize(normal, dim=-1) @ params.camera().rotation_matrix()[1].T)[:, 2]
    away = far & (facing < 0.0)
    assert away.sum() > 0.6 * far.sum(), "most far-cheek points face away at 80 degrees"
    dense[1, embedding.mediapipe_ids[away]] += 40.0  # wrong by 40 px where the face turned away
    assert objective.dense_landmark(params, vertices, dense, target)[1].item() < 1e-8
    near = (x < -20.0) & (facing > 0.5)
    dense[1, embedding.mediapipe_ids[near]] += 40.0  # ... and where it faces the camera: that counts
    assert objective.dense_landmark(params, vertices, dense, target)[1].item() > 1e-3
