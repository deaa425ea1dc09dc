"""Eyes and mouth interior (ICT's inner parts): posed with the face, they close the face area's holes in renders,
and their iris/sclera colours come from the photo."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from matplotlib.path import Path as PolygonPath

from ganfit.face_model import load_face_model
from ganfit.fitting.eyes import HeadRenderer, PartColours, eye_colours, part_texture
from ganfit.fitting.shading import FaceScene
from ganfit.render.camera import Camera
from ganfit.render.pipeline import FaceRenderer

LIGHT = {
    "ambient": torch.full((1, 3), 0.6),
    "light_color": torch.full((1, 3), 0.4),
    "light_dir": torch.tensor([[0.0, 0.0, 1.0]]),
}


@pytest.fixture(scope="module")
def face_model(assets_dir):
    return load_face_model(assets_dir)


def _inside(polygon: np.ndarray, size: tuple[int, int], shrink: float = 0.1) -> np.ndarray:
    """bool [H, W]: pixel centres inside ``polygon`` [N, 2] (pixels) shrunk towards its centroid."""

    centre = polygon.mean(0)
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
    return PolygonPath(centre + (polygon - centre) * (1 - shrink)).contains_points(centres).reshape(size)


@pytest.mark.parametrize("expression", [None, "jawOpen"])
def test_no_background_inside_the_eye_and_mouth_openings(face_model, expression):
    ps, pe = face_model.zeros(1)
    if expression is not None:
        pe[0, face_model.expression_names.index(expression)] = 0.6
    size = (384, 384)
    camera = Camera(torch.tensor([[0.0, math.radians(15), 0.0]]), torch.tensor([[0.0, -20.0, -450.0]]),
                    torch.tensor([900.0]))  # fmt: skip
    texture = torch.full((1, 3, 128, 128), 0.7)
    with torch.no_grad():
        full = face_model.full_vertices(ps, pe)
        head = HeadRenderer(face_model, backend="cpu").render(
            full, camera, texture, part_texture(PartColours(), 128)[None], LIGHT, None, size
        )
        scene = FaceScene(face_model, partial(FaceRenderer.from_face_model, backend="cpu"))
        face_only = scene.render(full[:, : face_model.num_vertices], camera, texture, LIGHT, None, size)
        landmarks = camera.project(face_model.landmarks(full[:, : face_model.num_vertices]), size)[0].numpy()
    holes = [landmarks[36:42], landmarks[42:48]]
    if expression == "jawOpen":
        holes.append(landmarks[60:68])
    for polygon in holes:
        region = _inside(polygon, size)
        assert region.sum() > 20
        assert (face_only.mask[0, 0].numpy()[region] < 0.5).any(), "the face area alone is open there"
        assert head.mask[0, 0].numpy()[region].min() > 0.99, "background shows through an opening"


def test_parts_follow_shape_and_expression(face_model):
    ps, pe = face_model.zeros(1)
    neutral = face_model.parts(ps, pe)
    pe[0, face_model.expression_names.index("jawOpen")] = 1.0
    looked = face_model.parts(ps, pe)
    teeth = face_model.part_labels == 3
    assert float((looked - neutral)[0, teeth, 1].min()) < -20.0  # the lower teeth drop with the jaw (mm)
    # ICT's eyeLook* blendshapes move the eyelids only: the eyeballs keep looking ahead (no gaze in the model)
    eyeballs = face_model.part_labels >= 4
    pe[0, face_model.expression_names.index("eyeLookUp_L")] = 1.0
    assert float((face_model.parts(ps, pe) - looked)[0, eyeballs].abs().max()) < 1e-4
    ps[0, 0] = 3.0
    assert float((face_model.parts(ps, pe) - looked).abs().max()) > 0.1  # identity modes move the parts too
    full = face_model.full_vertices(ps, pe)
    assert torch.allclose(full[:, : face_model.num_vertices], face_model(ps, pe))


def test_eye_colours_come_from_the_photo(face_model):
    # render a face whose eyes have a known blue iris, then read the colour back from that "photo"
    ps, pe = face_model.zeros(1)
    full = face_model.full_vertices(ps, pe)
    size = (768, 768)
    rotation, translation, focal = torch.zeros(1, 3), torch.tensor([[0.0, -20.0, -350.0]]), torch.tensor([1800.0])
    truth = PartColours()
    truth.iris[:] = (0.15, 0.30, 0.55)
    with torch.no_grad():
        out = HeadRenderer(face_model, backend="cpu").render(
            full, Camera(rotation, translation, focal), torch.full((1, 3, 128, 128), 0.7),
            part_texture(truth, 128)[None], LIGHT, None, size,
        )  # fmt: skip
    photo = (out.image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    camera = Camera(rotation, translation, focal)
    landmarks = camera.project(face_model.landmarks(full[:, : face_model.num_vertices]), size)[0].numpy()
    colours = eye_colours(face_model, full[0], camera, LIGHT, photo, landmarks)
    assert colours.from_photo == (True, True)
    assert np.abs(colours.iris - truth.iris).max() < 0.08, colours.iris
    assert np.abs(colours.iris - PartColours().iris).max() > 0.15  # not the default brown
