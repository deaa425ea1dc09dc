"""Rendering a fitted face through ``ganfit.render`` (nvdiffrast's primitives) with the fitting's light models.

The rasteriser, interpolation, texture lookup and antialiasing are ``ganfit.render``'s (``import ganfit.render as
dr``); this module only wires them for the fitter: perspective camera from :class:`FitParameters`, per-pixel
normals, Phong-style ambient + directional light (or 2nd-order spherical harmonics), compositing over the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganfit.face_model import FaceModel

# Real SH basis constants (Ramamoorthi & Hanrahan) multiplied by the Lambertian convolution factors pi, 2pi/3, pi/4.
_SH_C = (0.886227, 1.023328, 1.023328, 1.023328, 0.858086, 0.858086, 0.247708, 0.858086, 0.429043)


def sh_irradiance(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Irradiance of unit normals [..., 3] under SH lighting ``sh`` [B, 9, 3] -> [..., 3] (leading dim B)."""
    x, y, z = normals.unbind(-1)
    one = torch.ones_like(x)
    basis = torch.stack(
        [
            _SH_C[0] * one,
            _SH_C[1] * y,
            _SH_C[2] * z,
            _SH_C[3] * x,
            _SH_C[4] * x * y,
            _SH_C[5] * y * z,
            _SH_C[6] * (3.0 * z * z - 1.0),
            _SH_C[7] * x * z,
            _SH_C[8] * (x * x - y * y),
        ],
        dim=-1,
    )  # [B, ..., 9]
    flat = basis.reshape(basis.shape[0], -1, 9)
    return (flat @ sh).reshape(*normals.shape[:-1], 3)


def phong_irradiance(normals: torch.Tensor, light: dict[str, torch.Tensor]) -> torch.Tensor:
    """Ambient + Lambertian directional light: ``ambient + color * max(0, n . l)`` for normals [B, ..., 3]."""
    direction = F.normalize(light["light_dir"], dim=-1)
    shape = (normals.shape[0],) + (1,) * (normals.ndim - 2) + (3,)
    cosine = (normals * direction.reshape(shape)).sum(-1, keepdim=True).clamp_min(0.0)
    return light["ambient"].reshape(shape) + light["light_color"].reshape(shape) * cosine


def irradiance(normals: torch.Tensor, light: dict[str, torch.Tensor]) -> torch.Tensor:
    """Dispatch on the light model (``sh`` key present -> spherical harmonics, else Phong-style)."""
    if "sh" in light:
        return sh_irradiance(normals, light["sh"])
    return phong_irradiance(normals, light)


@dataclass
class RenderOutput:
    """Rendered batch, all NCHW with row 0 = image top.

    image    [B, 3, H, W] face composited over the background (antialiased), [0, 1]
    mask     [B, 1, H, W] face coverage (1 on the face, no gradient)
    albedo   [B, 3, H, W] texture colour on the face (0 elsewhere)
    """

    image: torch.Tensor
    mask: torch.Tensor
    albedo: torch.Tensor


class FaceScene:
    """Renders :class:`~ganfit.face_model.FaceModel` faces with a UV texture through ``ganfit.render``.

    Args:
        face_model: the morphable model (its triangles, UVs and normals).
        context: a ``ganfit.render`` rasterizer context (``RasterizeCpuContext`` / ``RasterizeCudaContext``).
    """

    def __init__(self, face_model: FaceModel, context) -> None:
        self.face_model = face_model
        self.context = context
        self.tri = face_model.triangles.to(torch.int32).contiguous()
        self.uv_tri = face_model.uv_triangles.to(torch.int32).contiguous()
        self.uvs = face_model.uvs.contiguous()

    def render(
        self,
        clip: torch.Tensor,
        normals_cam: torch.Tensor,
        texture: torch.Tensor,
        light: dict[str, torch.Tensor],
        background: torch.Tensor | None,
        resolution: tuple[int, int],
    ) -> RenderOutput:
        """Render a batch.

        Args:
            clip: [B, V, 4] clip-space vertex positions (see :func:`ganfit.fitting.params.to_clip`).
            normals_cam: [B, V, 3] unit vertex normals in camera space.
            texture: [B, 3, R, R] albedo UV map in [0, 1] (row 0 = v 0 = top).
            light: light parameters (see :func:`irradiance`).
            background: [B, 3, H, W] image behind the face (e.g. the photo), or None for black.
            resolution: (H, W).
        """
        import ganfit.render as dr

        batch = clip.shape[0]
        clip = clip.contiguous()
        rast, _ = dr.rasterize(self.context, clip, self.tri, resolution=list(resolution))
        uv, _ = dr.interpolate(self.uvs[None].contiguous(), rast, self.uv_tri)
        albedo = dr.texture(texture.permute(0, 2, 3, 1).contiguous(), uv.contiguous(), filter_mode="linear")
        normals, _ = dr.interpolate(normals_cam.contiguous(), rast, self.tri)
        normals = F.normalize(normals, dim=-1)
        shaded = albedo * irradiance(normals, light)
        mask = (rast[..., 3:4] > 0).float()
        if background is None:
            back = torch.zeros(batch, resolution[0], resolution[1], 3, dtype=clip.dtype, device=clip.device)
        else:
            back = background.permute(0, 2, 3, 1).flip(1)  # rasteriser row 0 = image bottom
        color = torch.where(mask > 0, shaded, back)
        color = dr.antialias(color.contiguous(), rast, clip, self.tri)
        to_nchw = lambda x: x.flip(1).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        return RenderOutput(image=to_nchw(color), mask=to_nchw(mask), albedo=to_nchw(albedo * mask))


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
