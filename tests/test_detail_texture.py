"""The detail texture (ganfit.fitting.detail_texture) on the real ICT model: visibility under yaw, de-lighting of a
render with known albedo and light, mirror fill of a half-out-of-frame face, the GAN fill's local colour matching,
and (slow) the seam check on a real photo's fit."""

from __future__ import annotations

import math
from functools import partial

import cv2
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from ganfit.face_model import load_face_model
from ganfit.fitting.detail_texture import DetailConfig, build_detail_texture, locally_matched
from ganfit.fitting.export import photo_camera
from ganfit.fitting.prepare import prepare_photo
from ganfit.fitting.shading import FaceScene
from ganfit.image_io import read_image
from ganfit.jobs.components import build_fitter
from ganfit.landmarks import detect_face
from ganfit.render.camera import Camera
from ganfit.render.pipeline import FaceRenderer

PHONG = {
    "ambient": torch.tensor([[0.45, 0.42, 0.40]]),
    "light_color": torch.tensor([[0.55, 0.50, 0.42]]),
    "light_dir": torch.tensor([[0.5, 0.3, 0.8]]),
}


@pytest.fixture(scope="module")
def face_model(assets_dir):
    return load_face_model(assets_dir)


def _albedo(size: int = 256) -> torch.Tensor:
    """A known, left/right symmetric albedo [3, R, R]: skin-like colour with smooth stripes."""
    v, u = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    stripes = 0.5 + 0.5 * torch.cos(2 * math.pi * 6 * (u - 0.5)) * torch.cos(2 * math.pi * 4 * v)
    base = torch.tensor([0.75, 0.55, 0.45])[:, None, None]
    return (base * (0.75 + 0.25 * stripes)).clamp(0, 1)


def _render(face_model, albedo, yaw_deg: float, size: tuple[int, int], light=PHONG):
    """Render the mean face (RGB uint8 [H, W, 3]) and return it with its camera (principal point = image centre)."""

    rotation = torch.tensor([[0.0, math.radians(yaw_deg), 0.0]])
    translation = torch.tensor([[0.0, -20.0, -600.0]])
    focal = torch.tensor([2.2 * size[1]])
    scene = FaceScene(face_model, partial(FaceRenderer.from_face_model, backend="cpu"))
    camera = Camera(rotation, translation, focal, principal=torch.tensor([[size[1] / 2, size[0] / 2]]))
    out = scene.render(face_model.mean[None], camera, albedo[None], light, None, size)
    image = (out.image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return image, camera, out.mask[0, 0].numpy()


def _landmarks(face_model, camera: Camera, size: tuple[int, int] = (768, 768)) -> np.ndarray:
    return camera.project(face_model.landmarks(face_model.mean[None]), size)[0].numpy()


def _texel(face_model, vertex_ids: np.ndarray, resolution: int) -> np.ndarray:
    """Texel (row, col) of each vertex's first UV."""
    tri = face_model.triangles.numpy().reshape(-1)
    uv_tri = face_model.uv_triangles.numpy().reshape(-1)
    first = {}
    for vertex, uv_index in zip(tri, uv_tri, strict=True):
        first.setdefault(int(vertex), int(uv_index))
    uv = face_model.uvs.numpy()[[first[int(v)] for v in vertex_ids]]
    return np.clip((uv[:, ::-1] * resolution).astype(int), 0, resolution - 1)


def test_the_gan_fill_takes_the_colour_balance_of_the_nearest_seen_texels() -> None:
    """Two seen patches whose photo colour is the GAN's times different tints: with ``gan_tone="local"`` each unseen
    texel next to a patch takes that patch's tint and keeps the GAN's fine pattern; one gain (``"gain"``) gives
    both sides the same average tint."""
    size = 128
    v, u = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = (((u // 2) + (v // 2)) % 2).float()  # fine detail, 2-texel squares
    gan = (torch.tensor([0.6, 0.45, 0.4])[:, None, None] * (0.9 + 0.2 * checker))[None]  # [1, 3, R, R]
    warm, cool = torch.tensor([1.25, 1.0, 0.85]), torch.tensor([0.85, 1.0, 1.2])
    left, right = (u < 32).float(), (u >= 96).float()  # seen columns; 32..95 unseen
    observed = gan * (left * warm[:, None, None] + right * cool[:, None, None] + (1 - left - right))[None]
    weight = (left + right)[None, None]
    local = locally_matched(gan, observed, weight, factor=8, limit=1.5)
    single = gan * ((observed * weight).sum((0, 2, 3)) / (gan * weight).sum((0, 2, 3)))[None, :, None, None]
    near_left, near_right = local[0, :, :, 34:38], local[0, :, :, 90:94]
    tint_left = (near_left / gan[0, :, :, 34:38]).mean((1, 2))
    tint_right = (near_right / gan[0, :, :, 90:94]).mean((1, 2))
    assert torch.allclose(tint_left, warm, atol=0.06), tint_left
    assert torch.allclose(tint_right, cool, atol=0.06), tint_right
    one = (single[0] / gan[0]).mean((1, 2))
    assert torch.allclose(one, (single[0, :, :, 34:38] / gan[0, :, :, 34:38]).mean((1, 2)), atol=1e-4)  # flat
    assert float((one - warm).abs().max()) > 0.1 and float((one - cool).abs().max()) > 0.1
    # the GAN's own 2-texel checker survives in the unseen middle (it is not averaged away)
    middle = local[0, 1, :, 56:72]
    contrast = float((middle * checker[:, 56:72]).sum() / checker[:, 56:72].sum())
    contrast -= float((middle * (1 - checker[:, 56:72])).sum() / (1 - checker[:, 56:72]).sum())
    assert contrast > 0.05


def test_texel_behind_the_nose_is_not_seen_at_strong_yaw(face_model):
    image, camera, _ = _render(face_model, _albedo(), yaw_deg=50.0, size=(768, 768))
    config = DetailConfig(out_resolution=512, use_skin_mask=False)
    result = build_detail_texture(
        face_model, face_model.mean, camera, PHONG, image, _landmarks(face_model, camera), _albedo(64), config
    )
    # Independent occlusion test on vertices: facing the camera, but a nose vertex closer to the camera projects
    # within half a millimetre's worth of pixels onto it.
    points = camera.to_camera(face_model.mean[None])[0]
    normals = face_model.vertex_normals(face_model.mean[None])[0] @ camera.rotation_matrix()[0].T
    facing = (normals * torch.nn.functional.normalize(-points, dim=-1)).sum(-1).numpy()
    pixels = camera.camera_to_pixels(points[None], (768, 768))[0].numpy()
    depth = -points[:, 2].numpy()
    nose = np.flatnonzero(face_model.mean[:, 2].numpy() > face_model.mean[:, 2].numpy().max() - 25.0)

    tree = cKDTree(pixels[nose])
    candidates = np.flatnonzero((facing > 0.7) & (np.abs(face_model.mean[:, 0].numpy()) < 40))
    hidden, shown = [], []
    for vertex in candidates:
        near = tree.query_ball_point(pixels[vertex], r=2.0)
        if any(depth[nose[j]] < depth[vertex] - 15.0 for j in near):
            hidden.append(vertex)
        elif not near:
            shown.append(vertex)
    assert len(hidden) >= 5, "the yawed view should hide some camera-facing vertices behind the nose"
    confidence = result.confidence[0].numpy()
    hidden_texels = _texel(face_model, np.array(hidden), 512)
    assert confidence[hidden_texels[:, 0], hidden_texels[:, 1]].max() < 0.05
    shown_texels = _texel(face_model, np.array(shown), 512)
    assert np.median(confidence[shown_texels[:, 0], shown_texels[:, 1]]) > 0.5


def test_delighting_recovers_the_known_albedo(face_model):
    truth = _albedo()
    image, camera, _ = _render(face_model, truth, yaw_deg=0.0, size=(1024, 1024))
    config = DetailConfig(out_resolution=512, use_skin_mask=False)
    flat = torch.full((3, 64, 64), 0.5)
    result = build_detail_texture(
        face_model, face_model.mean, camera, PHONG, image, _landmarks(face_model, camera), flat, config
    )
    up = torch.nn.functional.interpolate(truth[None], size=(512, 512), mode="bilinear", align_corners=False)[0]
    seen = result.confidence[0] > 0.8
    assert seen.float().mean() > 0.1
    error = (result.albedo - up).abs().mean(0)[seen]
    assert float(error.median()) < 0.02, float(error.median())
    # with the light ignored (white ambient 1), the same texels are far off: the test measures de-lighting
    white = {"ambient": torch.ones(1, 3), "light_color": torch.zeros(1, 3), "light_dir": torch.tensor([[0.0, 0, 1]])}
    unlit = build_detail_texture(
        face_model, face_model.mean, camera, white, image, _landmarks(face_model, camera), flat, config
    )
    assert float((unlit.albedo - up).abs().mean(0)[seen].median()) > 3 * float(error.median())


def test_mirror_fills_a_half_out_of_frame_face(face_model):
    truth = _albedo()
    wide, camera, _ = _render(face_model, truth, yaw_deg=0.0, size=(768, 1536))
    # Keep the right half of the picture: the face centre sits on the left edge, half the face is out of frame.
    image = np.ascontiguousarray(wide[:, 768:])
    cropped = Camera(camera.rotation, camera.translation, camera.focal, principal=torch.tensor([[0.0, 384.0]]))
    config = DetailConfig(out_resolution=512, use_skin_mask=False)
    flat = torch.full((3, 64, 64), 0.2)
    result = build_detail_texture(
        face_model, face_model.mean, cropped, PHONG, image, _landmarks(face_model, cropped), flat, config
    )
    up = torch.nn.functional.interpolate(truth[None], size=(512, 512), mode="bilinear", align_corners=False)[0]
    mirrored = (result.mirror[0] > 0.8) & (result.confidence[0] < 0.01)
    assert mirrored.float().mean() > 0.05, "half the face is out of frame: its mirror side must fill it"
    error = (result.albedo - up).abs().mean(0)[mirrored]
    assert float(error.median()) < 0.03, float(error.median())
    assert float((flat.mean() - up[:, mirrored].mean()).abs()) > 0.2  # the GAN fallback would be far off


def _gradient(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float32).mean(-1)
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:] = np.abs(np.diff(grey, axis=1))
    gy[1:] = np.abs(np.diff(grey, axis=0))
    return np.hypot(gx, gy)


@pytest.mark.slow
def test_no_seam_at_the_blend_borders_of_a_real_fit(face_model, photos_root, compose_fit):
    """Seam check: mean gradient magnitude of the texture across the blend borders <= 1.5x that inside the seen
    region, on a real photo's (shrunk) fit; a hard composite of the same layers fails the same check."""

    path = photos_root / "frl-london" / "neutral_front" / "001_03.jpg"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    fitter = build_fitter(compose_fit(["fitting=fast"]))
    fitting = fitter.config
    image = read_image(path)
    photo = prepare_photo(image, detect_face(image).landmarks, fitting.resolution, fitting.crop_scale)
    fit = fitter.fit([photo])
    light = {k: v[:1].detach() for k, v in fit.params.light().items()}
    result = build_detail_texture(
        fitter.face_model, fit.vertices[0], photo_camera(photo, fit.params, 0), light, photo.image,
        photo.landmarks, fit.texture[0], DetailConfig(out_resolution=1024),
    )  # fmt: skip
    weights = torch.cat([result.confidence, result.mirror, (1 - result.confidence - result.mirror).clamp_min(0)])
    label = weights.argmax(0).numpy()
    used = cv2.erode(result.coverage[0].numpy().astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    change = np.zeros_like(used)
    change[:, 1:] |= label[:, 1:] != label[:, :-1]
    change[1:] |= label[1:] != label[:-1]
    border = cv2.dilate(change.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & used
    inside = cv2.erode((result.confidence[0].numpy() > 0.9).astype(np.uint8), np.ones((17, 17), np.uint8))
    inside = inside.astype(bool) & used
    assert border.sum() > 1000 and inside.sum() > 10000

    def ratio(albedo: torch.Tensor) -> float:
        texture = (albedo.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        gradient = _gradient(texture)
        return float(gradient[border].mean() / gradient[inside].mean())

    blended = ratio(result.albedo)
    assert blended <= 1.5, blended
    # the GAN layer pasted hard where it dominates shows the seam the multi-band blend removes
    hard = torch.where(torch.from_numpy(label == 2)[None], result.gan, result.albedo)
    assert ratio(hard) > blended


def test_the_seen_region_reaches_skin_coloured_neck_but_not_eyes_or_backdrop(photos_root) -> None:
    """``skin_colour``: on a real studio photo the detail texture may take the neck below the jaw outline (the
    face's own skin colour), never the eyes or the backdrop; without it, nothing beyond the face outline."""
    from ganfit.fitting.detail_texture import photo_weights

    photo = read_image(sorted((photos_root / "frl-london" / "neutral_front").glob("*.jpg"))[0])
    photo = cv2.resize(photo, (photo.shape[1] // 3, photo.shape[0] // 3), interpolation=cv2.INTER_AREA)
    marks = detect_face(photo).landmarks
    covered = np.ones(photo.shape[:2], bool)
    covered[[0, -1]] = covered[:, [0, -1]] = False  # the silhouette ramp needs an outline
    chin, iod = marks[8], float(np.linalg.norm(marks[45] - marks[36]))
    neck = (int(chin[1] + 0.3 * iod), int(chin[0]))  # (row, column) just below the chin
    eye = tuple(int(v) for v in marks[36:42].mean(0)[::-1])
    corner = (int(0.15 * photo.shape[0]), int(0.08 * photo.shape[1]))  # the grey backdrop, far from the border
    extended = photo_weights(covered, marks, 1.0, DetailConfig(), photo)
    plain = photo_weights(covered, marks, 1.0, DetailConfig(skin_colour=False), photo)
    assert extended[neck] > 0.5 and plain[neck] == 0.0
    assert extended[eye] == 0.0 and extended[corner] == 0.0
    assert (extended >= plain - 1e-6).all() and extended.mean() > 1.2 * plain.mean()
