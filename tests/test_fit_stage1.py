"""Fitting without the renderer: parameters, camera, landmark loss and stage 1 (alignment) on the real model."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from ganfit.config.compose import ConfigUsageError
from ganfit.face_model import load_face_model
from ganfit.fitting import losses
from ganfit.fitting.fitter import Fitter, fixed_expression_ids
from ganfit.fitting.params import solve_pnp
from ganfit.fitting.prepare import PreparedPhoto, prepare_photo
from ganfit.image_io import read_image
from ganfit.jobs.components import fitting_config
from ganfit.landmarks import detect_face
from ganfit.render.camera import Camera, axis_angle_to_matrix


@pytest.fixture(scope="module")
def face_model(assets_dir):
    return load_face_model(assets_dir)


def test_axis_angle_matches_cv2_rodrigues():
    rotvec = torch.tensor([[0.3, -0.2, 0.9], [0.0, 0.0, 0.0], [1e-5, 0.0, 0.0]], dtype=torch.float64)
    for row, matrix in zip(rotvec, axis_angle_to_matrix(rotvec), strict=True):
        expected, _ = cv2.Rodrigues(row.numpy())
        np.testing.assert_allclose(matrix.numpy(), expected, atol=1e-9)


def test_principal_point_projection_and_clip_space_agree():
    """The camera's principal point: an explicit image centre equals the default; an off-centre one shifts the
    projection by exactly the offset, and the clip-space coordinates the rasterizer sees agree with it."""
    points = torch.tensor([[[10.0, 20.0, 30.0], [-30.0, -5.0, 0.0]]])
    rotation, translation, focal = (
        torch.tensor([[0.1, 0.3, 0.0]]),
        torch.tensor([[0.0, 5.0, -900.0]]),
        torch.tensor([600.0]),
    )
    centred = Camera(rotation, translation, focal).project(points, (180, 200))
    explicit = Camera(rotation, translation, focal, principal=torch.tensor([[100.0, 90.0]])).project(points, (180, 200))
    np.testing.assert_allclose(centred.numpy(), explicit.numpy(), rtol=1e-6)
    assert centred[0, 0, 1] < centred[0, 1, 1]  # +Y up in model space is towards the top of the image
    shifted_camera = Camera(rotation, translation, focal, principal=torch.tensor([[130.0, 70.0]]))
    shifted = shifted_camera.project(points, (180, 200))
    np.testing.assert_allclose((shifted - centred).numpy(), [[[30.0, -20.0], [30.0, -20.0]]], atol=1e-4)
    clip = shifted_camera.to_clip(points, (180, 200))
    ndc = clip[..., :2] / clip[..., 3:]
    from_ndc = torch.stack([(ndc[..., 0] + 1) / 2 * 200, (1 - ndc[..., 1]) / 2 * 180], -1)
    np.testing.assert_allclose(from_ndc.numpy(), shifted.numpy(), atol=1e-3)


def test_pnp_recovers_pose(face_model):
    landmarks = face_model.landmarks(face_model.mean[None])
    rotation = torch.tensor([[0.1, 0.5, -0.05]])
    translation = torch.tensor([[12.0, -4.0, -900.0]])
    camera = Camera(rotation, translation, torch.tensor([700.0]), principal=torch.tensor([[256.0, 240.0]]))
    pixels = camera.project(landmarks, (480, 512))
    rvec, tvec = solve_pnp(landmarks[0].numpy(), pixels[0].numpy(), 700.0, (256.0, 240.0))
    np.testing.assert_allclose(rvec, rotation[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(tvec, translation[0].numpy(), atol=0.5)


def test_jaw_contour_slides_to_the_silhouette():
    """A detected jaw point lying on the projected contour chain costs nothing even between chain vertices."""
    chain = torch.tensor([[[0.0, 0.0], [0.0, 10.0], [5.0, 20.0]]])
    points = torch.tensor([[[0.0, 4.0], [2.5, 15.0], [3.0, 5.0]]])
    distance = losses.point_to_polyline(points, chain)
    np.testing.assert_allclose(distance.numpy(), [[0.0, 0.0, 3.0]], atol=1e-5)


def test_losses_are_per_photo():
    ps = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert losses.shape_prior(ps).shape == (2,)
    on_shell = torch.nn.functional.normalize(torch.randn(3, 512), dim=1) * math.sqrt(512)
    assert losses.latent_prior(on_shell).max() < 1e-6
    assert losses.latent_prior(torch.zeros(1, 512)).item() == pytest.approx(1.0)


def test_stage1_recovers_synthetic_landmarks(face_model, compose_fit):
    """Landmarks projected from known parameters (incl. 35 deg yaw) are re-fitted to < 3% of the eye distance."""
    cfg = compose_fit()
    fitting = fitting_config(cfg.fitting)
    batch, size = 3, fitting.resolution
    ps, pe = face_model.sample(batch, torch.Generator().manual_seed(3), expression_scale=0.4)
    rotation = torch.tensor([[0.05, 0.6, 0.02], [0.0, 0.0, 0.0], [-0.1, -0.3, 0.05]])
    translation = torch.tensor([[5.0, -3.0, -900.0]]).repeat(batch, 1)
    focal = torch.full((batch,), fitting.focal_factor * size)
    with torch.no_grad():
        vertices = face_model(ps, pe)
        points = Camera(rotation, translation, focal).project(face_model.landmarks(vertices), (size, size))
    blank = np.zeros((size, size, 3), np.uint8)
    photos = [
        PreparedPhoto(f"s{i}", None, blank, points[i].numpy(), blank, points[i].numpy(), 1.0, (0.0, 0.0))
        for i in range(batch)
    ]
    result = Fitter(face_model, fitting).fit(photos)
    errors = [m["landmark_error_iod"] for m in result.metrics]
    assert max(errors) < 0.03, errors
    first = result.history[0]["landmark"]
    last = result.history[-1]["landmark"]
    assert np.all(last < first)


def test_stage1_on_real_photos(face_model, photos_root, compose_fit):
    """Detected landmarks of real photos (one batch) are matched to < 5% of the eye distance by stage 1."""

    cfg = compose_fit()
    fitting = fitting_config(cfg.fitting)
    files = sorted((photos_root / "deep3d-examples").glob("*.jpg"))[:3]
    photos = []
    for path in files:
        image = read_image(path)
        detection = detect_face(image)
        photos.append(
            prepare_photo(image, detection.landmarks, fitting.resolution, fitting.crop_scale, path.stem, path)
        )
    result = Fitter(face_model, fitting).fit(photos)
    errors = [m["landmark_error_iod"] for m in result.metrics]
    assert np.mean(errors) < 0.05, errors


def test_a_known_focal_length_starts_the_camera(face_model, compose_fit):
    """A photo's own focal factor (from EXIF) sets the start focal and the PnP distance; others get the preset's."""
    fitting = fitting_config(compose_fit().fitting)
    size = fitting.resolution
    landmarks = face_model.landmarks(face_model.mean[None])
    camera = Camera(torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -250.0]]), torch.tensor([0.7 * size]))
    points = camera.project(landmarks, (size, size))[0].numpy()
    blank = np.zeros((size, size, 3), np.uint8)
    known = PreparedPhoto("known", None, blank, points, blank, points, 1.0, (0.0, 0.0), focal_factor=0.7)
    preset = PreparedPhoto("preset", None, blank, points, blank, points, 1.0, (0.0, 0.0))
    params = Fitter(face_model, fitting).init_params([known, preset])
    assert params.focal[0].item() == pytest.approx(0.7 * size, rel=1e-5)
    assert params.focal[1].item() == pytest.approx(fitting.focal_factor * size, rel=1e-5)
    assert params.translation[0, 2].item() == pytest.approx(-250.0, abs=5.0)  # the true distance from PnP
    assert params.translation[1, 2].item() < -400.0  # the same face read with a longer lens: farther


def test_fixed_expressions_stay_at_zero(face_model, photos_root, compose_fit):
    """``fitting.fixed_expressions`` (fnmatch patterns of ICT blendshape names) keeps those columns of ``pe`` at 0
    through stage 1 while the others move; a pattern that matches nothing is refused when the fitter is built."""
    names = face_model.expression_names
    fitting = fitting_config(compose_fit(["fitting.fixed_expressions=[eyeLook*,jawOpen]"]).fitting)
    fixed = fixed_expression_ids(names, list(fitting.fixed_expressions))
    assert sorted(names[i] for i in fixed) == sorted([n for n in names if n.startswith("eyeLook")] + ["jawOpen"])
    path = photos_root / "frl-london" / "smiling_front" / "001_08.jpg"
    image = read_image(path)
    photo = prepare_photo(image, detect_face(image).landmarks, fitting.resolution, fitting.crop_scale, path.stem, path)
    pe = Fitter(face_model, fitting).fit([photo]).params.pe.detach()
    assert torch.all(pe[:, fixed] == 0)
    assert pe.abs().sum() > 0  # the other blendshapes were fitted (a smile)
    with pytest.raises(ConfigUsageError, match="eyeLok"):  # fit.py: one line, exit 2, before any photo is fitted
        Fitter(face_model, fitting_config(compose_fit(["fitting.fixed_expressions=[eyeLok*]"]).fitting))
