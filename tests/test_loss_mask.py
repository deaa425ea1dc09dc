"""``fitting.photo_mask``: on a real studio photo the fitted model's ears, forehead and neck cover background, and the
pixel loss's mask leaves those pixels out (the photo's face mask, extended by its skin colour, times the render's
coverage)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit.fitting.objective import masked
from ganfit.fitting.prepare import prepare_photo, stack_crops, stack_face_masks, stack_loss_masks
from ganfit.image_io import read_image
from ganfit.jobs.components import build_fitter
from ganfit.landmarks import detect_face


@pytest.fixture(scope="module")
def stage1(photos_root, assets_dir, compose_fit):
    """A training-split FRL London photo (plain light background) fitted by stage 1 only, rendered over its crop."""

    image = read_image(photos_root / "frl-london" / "neutral_front" / "036_03.jpg")
    face = detect_face(image)
    fitter = build_fitter(compose_fit(["texture=free", "~identity", "fitting.full.steps=0"]))
    photo = prepare_photo(image, face.landmarks, fitter.config.resolution, dense=face.dense)
    result = fitter.fit([photo])
    crops, target = stack_crops([photo])
    with torch.no_grad():
        rendered = fitter.objective.render(result.params, result.vertices, fitter.texture(result.params), crops)
    loss_masks = stack_loss_masks([photo], stack_face_masks([photo]), colour=True)
    return fitter, result, photo, crops, target, loss_masks, rendered


def _background(crop: np.ndarray) -> np.ndarray:
    """bool [S, S]: pixels of the studio backdrop (within 20/255 of the median colour of the crop's outer columns
    in its upper half, beside the head)."""
    half, side = crop.shape[0] // 2, 4
    backdrop = np.median(np.concatenate([crop[:half, :side], crop[:half, -side:]]).reshape(-1, 3), axis=0)
    return np.abs(crop.astype(np.float64) - backdrop).max(-1) < 20


def test_loss_mask_excludes_background_the_render_covers(stage1):
    _, _, photo, _, _, face_masks, rendered = stage1
    covered = rendered.mask[0, 0].numpy() > 0.5
    background = _background(photo.crop)
    covered_background = covered & background
    assert int(covered_background.sum()) > 30  # the model's ears / forehead reach over the backdrop
    loss_mask = masked(rendered.mask, face_masks)[0, 0].numpy()
    assert float(loss_mask[covered_background].max()) == 0.0
    assert float(rendered.mask[0, 0].numpy()[covered_background].min()) > 0.5  # without the photo mask they count
    cheeks = photo.crop_landmarks[[2, 31, 48]].mean(0).astype(int)  # the face itself still counts
    assert loss_mask[cheeks[1], cheeks[0]] == pytest.approx(1.0)
    below_chin = photo.crop_landmarks[8] + np.array([0.0, 0.15]) * (
        photo.crop_landmarks[16, 0] - photo.crop_landmarks[0, 0]
    )
    x, y = below_chin.astype(int)
    assert loss_mask[y, x] > 0.5  # so does the neck the photo shows (skin colour), though outside the face outline


def test_pixel_term_ignores_the_photo_outside_the_mask(stage1):
    fitter, result, _, crops, target, face_masks, _ = stage1
    changed = torch.where(face_masks > 0, crops, torch.rand_like(crops))
    references = fitter.objective.references(crops, target)
    with torch.no_grad():
        args = (result.params, crops, target, references)
        same = fitter.objective.full_terms(*args, photo_mask=face_masks).pixel
        other = fitter.objective.full_terms(result.params, changed, target, references, photo_mask=face_masks).pixel
        unmasked = fitter.objective.full_terms(result.params, changed, target, references).pixel
        plain = fitter.objective.full_terms(*args).pixel
    torch.testing.assert_close(same, other, atol=2e-4, rtol=0)  # antialiasing mixes the outline with neighbours
    assert float((unmasked - plain).abs()) > 1e-3  # without the mask the background would count
