"""Unwrapping a photo into UV space recovers the texture a face was rendered with (where it is seen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit.face_model import load_face_model
from ganfit.fitting import losses
from ganfit.fitting.params import FitParameters, ParamsConfig
from ganfit.fitting.shading import FaceScene
from ganfit.fitting.unwrap import UvUnwrapper, fill_texture
from ganfit.render.camera import Camera


def test_unwrap_recovers_rendered_texture(assets_dir):
    face_model = load_face_model(assets_dir)
    size, texels = 256, 64
    # smooth asymmetric test texture: red ramps with u, green with v, blue constant
    v, u = torch.meshgrid(torch.linspace(0, 1, texels), torch.linspace(0, 1, texels), indexing="ij")
    texture = torch.stack([0.2 + 0.6 * u, 0.2 + 0.6 * v, torch.full_like(u, 0.5)])[None]
    camera = Camera(torch.tensor([[0.0, 0.3, 0.0]]), torch.tensor([[0.0, 0.0, -700.0]]), torch.tensor([900.0]))
    light = {"ambient": torch.ones(1, 3), "light_color": torch.zeros(1, 3), "light_dir": torch.tensor([[0.0, 0, 1]])}
    vertices = face_model(*face_model.zeros(1))
    with torch.no_grad():
        image = FaceScene(face_model).render(vertices, camera, texture, light, None, (size, size)).image
        normals = face_model.vertex_normals(vertices) @ camera.rotation_matrix().transpose(1, 2)
        pixels = camera.project(vertices, (size, size))
        colour, weight = UvUnwrapper(face_model, texels).unwrap(image, pixels, normals[..., 2], min_facing=0.5)
    seen = weight[0, 0] > 0.5
    assert seen.float().mean() > 0.1  # the front of the face is seen well at 17 degrees of yaw
    error = (colour[0] - texture[0]).abs().amax(0)[seen]
    assert float(np.median(error.numpy())) < 0.02
    # the far side (subject's left, turned away) is less seen than the near side; filling completes the map
    filled = fill_texture(colour, weight, torch.tensor([[0.0, 0.0, 1.0]]))
    assert torch.isfinite(filled).all() and filled.shape == (1, 3, texels, texels)


def test_sh_lighting_renders_and_gets_gradients(assets_dir):
    """The spherical-harmonics light option goes through the renderer and receives gradients."""

    face_model = load_face_model(assets_dir)
    params = FitParameters(2, ParamsConfig(texture="free", texture_resolution=32, lighting="sh"), (96, 96))
    with torch.no_grad():
        params.translation[:, 2] = -1500.0
    vertices = face_model(params.ps, params.pe)
    out = FaceScene(face_model).render(vertices, params.camera(), params.uv_texture, params.light(), None, (96, 96))
    face = out.mask > 0.5
    assert face.float().mean() > 0.05
    # constant band 0.8 / Y00 with albedo 0.5 -> colour 0.4 where the face is covered
    covered = face.expand(-1, 3, -1, -1)
    assert float(out.image.detach()[covered].mean()) == pytest.approx(0.4, abs=0.02)
    (out.image.mean() + losses.light_prior(params.light()).sum()).backward()
    assert params.sh.grad is not None and params.sh.grad.abs().sum() > 0
