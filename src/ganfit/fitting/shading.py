"""The fitter's view of ``ganfit.render``: the fitting's light parameters as a renderer light, and a scene that
renders faces of one face model at any resolution with the configured renderer. All rendering is
``ganfit.render.pipeline.FaceRenderer``'s; images are NCHW (``ganfit.render.pipeline.RenderOutput``).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from ganfit.face_model import FaceModel
from ganfit.render.camera import Camera
from ganfit.render.lighting import DirectionalLight, SphericalHarmonicsLight
from ganfit.render.pipeline import FaceRenderer, RenderOutput

RendererFactory = Callable[..., FaceRenderer]
"""``factory(face_model, (height, width)) -> FaceRenderer``, e.g. ``hydra.utils.instantiate(cfg.renderer)``
(``conf/renderer/*.yaml`` are partial ``FaceRenderer.from_face_model`` nodes)."""


def make_light(light: dict[str, torch.Tensor]) -> DirectionalLight | SphericalHarmonicsLight:
    """A renderer light from the fitting's light parameters (``FitParameters.light()``; ``sh`` -> spherical
    harmonics, else ambient + directional)."""
    if "sh" in light:
        return SphericalHarmonicsLight(coeffs=light["sh"])
    return DirectionalLight(ambient=light["ambient"], diffuse=light["light_color"], direction=light["light_dir"])


class FaceScene:
    """Renders faces of ``face_model``, one ``FaceRenderer`` per output resolution, built on demand.

    Args:
        face_model: the morphable model (topology, UVs, normals).
        make_renderer: renderer factory (default: ``FaceRenderer.from_face_model`` with its defaults).
    """

    def __init__(self, face_model: FaceModel, make_renderer: RendererFactory | None = None) -> None:
        self.face_model = face_model
        self.make_renderer = make_renderer or FaceRenderer.from_face_model
        self._renderers: dict[tuple[int, int], FaceRenderer] = {}

    def renderer(self, resolution: tuple[int, int]) -> FaceRenderer:
        key = (int(resolution[0]), int(resolution[1]))
        if key not in self._renderers:
            renderer = self.make_renderer(self.face_model, key)
            self._renderers[key] = renderer.to(self.face_model.mean.device)
        return self._renderers[key]

    def render(
        self,
        vertices: torch.Tensor,
        camera: Camera,
        texture: torch.Tensor,
        light: dict[str, torch.Tensor],
        background: torch.Tensor | None,
        resolution: tuple[int, int],
        appearance_copy: bool = False,
    ) -> RenderOutput:
        """Render a batch.

        Args:
            vertices: [B, V, 3] model-space vertices, mm.
            camera: the cameras for an image of ``resolution``.
            texture: [B, 3, R, R] albedo UV map in [0, 1] (row 0 = v 0 = top).
            light: the fitting's light parameters (see :func:`make_light`).
            background: [B, 3, H, W] image behind the face (e.g. the photo), or None for black.
            resolution: (H, W).
            appearance_copy: also give ``appearance_image``, the image with gradients to texture, light and background
                only (``FaceRenderer.forward``).
        Returns:
            image [B, 3, H, W] and mask [B, 1, H, W] (NCHW, top row first).
        """
        normals = self.face_model.vertex_normals(vertices)
        renderer = self.renderer(resolution)
        return renderer(vertices, normals, texture, camera, make_light(light), background, appearance_copy)


def uv_coverage_mask(face_model: FaceModel, resolution: int) -> np.ndarray:
    """Which texels of a ``resolution``^2 UV map the face mesh uses: float32 [R, R] in {0, 1} (row 0 = v 0).

    Filled from the UV triangles with OpenCV (slightly dilated so bilinear lookups at seams see used texels).
    """
    uv = face_model.uvs.cpu().numpy() * resolution
    triangles = uv[face_model.uv_triangles.cpu().numpy()]  # [F, 3, 2]
    mask = np.zeros((resolution, resolution), np.uint8)
    shift = 4
    points = np.round((triangles - 0.5) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, list(points), 1, lineType=cv2.LINE_8, shift=shift)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return mask.astype(np.float32)
