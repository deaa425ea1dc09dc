"""The per-photo RGB gain (exposure x white balance): it scales the render, its grey-world centre reads a real
photo's exposure and colour cast from the surround of the face (not from the face), its prior, and the detail texture
de-lit with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ganfit.fitting.detail_texture import DetailConfig, build_detail_texture
from ganfit.fitting.export import photo_camera
from ganfit.fitting.losses import exposure_prior, grey_world_log_gain
from ganfit.fitting.params import FitParameters, ParamsConfig
from ganfit.fitting.prepare import prepare_photo, stack_crops, stack_face_masks
from ganfit.fitting.shading import FaceScene
from ganfit.image_io import read_image
from ganfit.jobs.components import build_fitter
from ganfit.landmarks import detect_face

GAIN = (0.62, 0.5, 0.35)  # a dim, warm camera gain (the benchmark's dim_warm)


@pytest.fixture(scope="module")
def frl_photo(photos_root):
    """A training-split FRL London photo (studio, plain background) and its detection."""

    image = read_image(photos_root / "frl-london" / "neutral_front" / "024_03.jpg")
    return image, detect_face(image)


def _dimmed(image: np.ndarray, gain=GAIN) -> np.ndarray:
    return np.clip(image.astype(np.float64) * np.asarray(gain) + 0.5, 0, 255).astype(np.uint8)


def test_gain_scales_the_render(assets_dir, compose_fit):
    face_model = instantiate(compose_fit().face_model)
    params = FitParameters(1, ParamsConfig(texture="free", texture_resolution=32, exposure=True), (96, 96))
    with torch.no_grad():
        params.translation.copy_(torch.tensor([[0.0, 0.0, -600.0]]))
        params.log_focal.fill_(math.log(300.0))
        params.log_gain.copy_(torch.log(torch.tensor([GAIN])))
    vertices = face_model(params.ps, params.pe)
    scene = FaceScene(face_model)
    texture = torch.full((1, 3, 32, 32), 0.6)
    gained = scene.render(vertices, params.camera(), texture, params.light(), None, (96, 96))
    raw = scene.render(vertices, params.camera(), texture, params.raw_light(), None, (96, 96))
    assert float(raw.mask.detach().sum()) > 500
    expected = raw.image * torch.tensor(GAIN)[None, :, None, None]
    torch.testing.assert_close(gained.image, expected, atol=1e-5, rtol=1e-4)
    assert set(params.groups()["exposure"]) == {params.log_gain}


def test_grey_world_reads_the_surround_not_the_face(frl_photo):
    image, face = frl_photo
    photos = [prepare_photo(picture, face.landmarks, 128, dense=face.dense) for picture in (image, _dimmed(image))]
    crops, _ = stack_crops(photos)
    masks = stack_face_masks(photos)
    estimate = grey_world_log_gain(crops, masks, grey_level=0.5, max_log_gain=3.0)
    # the same scene under a dim warm gain: the estimate moves by log(gain) (8-bit rounding aside)
    torch.testing.assert_close(estimate[1] - estimate[0], torch.log(torch.tensor(GAIN)), atol=0.02, rtol=0)
    # a darker face in the same surround does not read as exposure
    dark_face = crops.clone()
    dark_face[:, :, masks[0, 0] >= 1.0] *= 0.3
    torch.testing.assert_close(grey_world_log_gain(dark_face, masks, 0.5, 3.0), estimate)
    chroma = grey_world_log_gain(crops, masks, 0.5, 3.0, level=False)
    level = grey_world_log_gain(crops, masks, 0.5, 3.0, chroma=False)
    torch.testing.assert_close(chroma.mean(1), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(chroma + level, estimate)


def test_exposure_prior():
    light = {"ambient": torch.full((3, 3), 0.6), "light_color": torch.full((3, 3), 0.4)}  # level 1
    centre = torch.log(torch.tensor([GAIN] * 3))
    offsets = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [0.1, 0.0, -0.1]])
    prior = exposure_prior(centre + offsets, centre, light, sigma=0.5, chroma_sigma=0.1, light_level_sigma=0.05)
    assert float(prior[0]) == pytest.approx(0.0, abs=1e-9)
    assert float(prior[1]) == pytest.approx((0.1 / 0.5) ** 2, rel=1e-4)  # a level offset
    assert float(prior[2]) == pytest.approx((0.01 + 0.01) / 3 / 0.01, rel=1e-4)  # a colour cast costs more
    brighter = {"ambient": light["ambient"] * 1.1, "light_color": light["light_color"] * 1.1}
    moved = exposure_prior(centre, centre, brighter, 0.5, 0.1, 0.05)
    assert float(moved[0]) == pytest.approx((math.log(1.1) / 0.05) ** 2, rel=1e-4)  # the light keeps its level


def test_detail_texture_is_delit_with_the_gain(frl_photo, assets_dir, compose_fit):
    """A dimmed, warm copy of the photo de-lit with the gained light gives the albedo the photo gives."""

    image, face = frl_photo
    cfg = compose_fit(["texture=free", "~identity", "fitting.full.steps=0", "fitting.exposure.enabled=true"])
    fitter = build_fitter(cfg)
    photo = prepare_photo(image, face.landmarks, fitter.config.resolution, dense=face.dense)
    result = fitter.fit([photo])  # stage 1: the geometry
    camera = photo_camera(photo, result.params, 0)
    config = DetailConfig(out_resolution=128)
    with torch.no_grad():
        result.params.log_gain.zero_()
        plain = build_detail_texture(
            fitter.face_model, result.vertices[0], camera, result.params.light(), image, photo.landmarks,
            result.texture[0], config,
        )  # fmt: skip
        result.params.log_gain.copy_(torch.log(torch.tensor([GAIN])))
        dim = build_detail_texture(
            fitter.face_model, result.vertices[0], camera, result.params.light(), _dimmed(image), photo.landmarks,
            result.texture[0], config,
        )  # fmt: skip
    seen = plain.confidence[0] > 0.5
    assert int(seen.sum()) > 1000
    difference = (plain.albedo - dim.albedo).abs()[:, seen]
    assert float(difference.mean()) < 4 / 255  # 8-bit rounding of the dimmed photo, de-lit
