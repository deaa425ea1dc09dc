"""The fitter's view of ``ganfit.render``: turn :class:`FitParameters` into the renderer's camera and light and
render NCHW images for the losses. All rendering is ``ganfit.render.pipeline.FaceRenderer``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganfit.face_model import FaceModel


@dataclass
class RenderOutput:
    """Rendered batch, NCHW, row 0 = image top.

    image  [B, 3, H, W] face composited over the background (antialiased), [0, 1]
    mask   [B, 1, H, W] face coverage in [0, 1] (antialiased at the silhouette)
    """

    image: torch.Tensor
    mask: torch.Tensor


def make_light(light: dict[str, torch.Tensor]):
    """``ganfit.render.lighting`` light from the fitting's light parameters (``sh`` key -> spherical harmonics)."""
    from ganfit.render.lighting import DirectionalLight, SphericalHarmonicsLight

    if "sh" in light:
        return SphericalHarmonicsLight(coeffs=light["sh"])
    return DirectionalLight(ambient=light["ambient"], diffuse=light["light_color"], direction=light["light_dir"])


def make_camera(rotation: torch.Tensor, translation: torch.Tensor, focal: torch.Tensor):
    """``ganfit.render.camera.Camera`` (principal point at the image centre) from axis-angle, mm, pixels."""
    from ganfit.render.camera import Camera

    return Camera(rotation=rotation, translation=translation, focal=focal)


class FaceScene:
    """Renders faces of ``face_model`` through a ``FaceRenderer`` (one per output resolution, built on demand).

    Args:
        face_model: the morphable model (topology, UVs, normals).
        renderer_options: keyword arguments of ``FaceRenderer.from_face_model`` other than the resolution
            (``backend``, ``antialias``, ``texture_boundary``), e.g. from ``conf/renderer/*.yaml``.
    """

    def __init__(self, face_model: FaceModel, **renderer_options) -> None:
        self.face_model = face_model
        self.options = {k: v for k, v in renderer_options.items() if k not in ("_target_", "resolution")}
        self._renderers: dict[tuple[int, int], torch.nn.Module] = {}

    def renderer(self, resolution: tuple[int, int]):
        key = (int(resolution[0]), int(resolution[1]))
        if key not in self._renderers:
            from ganfit.render.pipeline import FaceRenderer

            renderer = FaceRenderer.from_face_model(self.face_model, key, **self.options)
            self._renderers[key] = renderer.to(self.face_model.mean.device)
        return self._renderers[key]

    def render(
        self,
        vertices: torch.Tensor,
        camera,
        texture: torch.Tensor,
        light: dict[str, torch.Tensor],
        background: torch.Tensor | None,
        resolution: tuple[int, int],
    ) -> RenderOutput:
        """Render a batch.

        Args:
            vertices: [B, V, 3] model-space vertices, mm.
            camera: ``ganfit.render.camera.Camera`` for an image of ``resolution``.
            texture: [B, 3, R, R] albedo UV map in [0, 1] (row 0 = v 0 = top).
            light: the fitting's light parameters (see :func:`make_light`).
            background: [B, 3, H, W] image behind the face (e.g. the photo), or None for black.
            resolution: (H, W).
        """
        normals = self.face_model.vertex_normals(vertices)
        back = None if background is None else background.permute(0, 2, 3, 1)
        out = self.renderer(resolution)(
            vertices, normals, texture.permute(0, 2, 3, 1), camera, make_light(light), background=back
        )
        return RenderOutput(
            image=out.image.permute(0, 3, 1, 2).contiguous(), mask=out.mask.permute(0, 3, 1, 2).contiguous()
        )


def uv_coverage_mask(face_model: FaceModel, resolution: int) -> np.ndarray:
    """Which texels of a ``resolution``^2 UV map the face mesh uses: float32 [R, R] in {0, 1} (row 0 = v 0).

    Filled from the UV triangles with OpenCV (slightly dilated so bilinear lookups at seams see used texels).
    """
    import cv2

    uv = face_model.uvs.cpu().numpy() * resolution
    triangles = uv[face_model.uv_triangles.cpu().numpy()]  # [F, 3, 2]
    mask = np.zeros((resolution, resolution), np.uint8)
    shift = 4
    points = np.round((triangles - 0.5) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, list(points), 1, lineType=cv2.LINE_8, shift=shift)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return mask.astype(np.float32)
