"""Photo -> UV texture unwrapping: for every texel of the face's UV map, the photo colour where its 3-D point
projects, with a visibility weight. Used to initialise the free texture after stage 1 (and reusable by the dataset
builder).

The UV layout is rasterised once with ``ganfit.render`` (positions = UVs, so the raster IS the texture image:
NDC y = 2 v - 1 puts v = 0 on raster row 0 = texture row 0); per fit, the projected positions and facing of the
vertices are interpolated over it and the photo is sampled with ``grid_sample``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import ganfit.render as dr
from ganfit.face_model import FaceModel


class UvUnwrapper:
    """Unwraps photos into the UV layout of ``face_model`` at ``resolution`` x ``resolution`` texels.

    Args:
        face_model: the morphable model (UVs, UV triangles, triangles).
        resolution: texture side R.
    """

    def __init__(self, face_model: FaceModel, resolution: int) -> None:
        device = face_model.uvs.device
        self.resolution = resolution
        self.uv_triangles = face_model.uv_triangles.to(torch.int32).contiguous()
        # vertex index of each UV index (a UV belongs to one vertex; a vertex may have several UVs at seams)
        uv_vertex = torch.zeros(face_model.uvs.shape[0], dtype=torch.int64, device=device)
        uv_vertex[face_model.uv_triangles.reshape(-1)] = face_model.triangles.reshape(-1)
        self.uv_vertex = uv_vertex
        uv = face_model.uvs
        clip = torch.stack(
            [uv[:, 0] * 2 - 1, uv[:, 1] * 2 - 1, torch.zeros_like(uv[:, 0]), torch.ones_like(uv[:, 0])], -1
        )
        context = dr.RasterizeCpuContext() if device.type == "cpu" else dr.RasterizeCudaContext(device=device)
        with torch.no_grad():
            self.rast, _ = dr.rasterize(context, clip[None].contiguous(), self.uv_triangles, (resolution, resolution))

    def unwrap(
        self, images: torch.Tensor, pixels: torch.Tensor, facing: torch.Tensor, min_facing: float = 0.15
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Texture colours and visibility weights.

        Args:
            images: [B, 3, H, W] photos in [0, 1].
            pixels: [B, V, 2] projected vertex positions in pixels of ``images``.
            facing: [B, V] camera-space z of the unit vertex normals (1 = facing the camera, < 0 = turned away).
            min_facing: texels facing the camera less than this get weight 0 (grazing views smear).
        Returns:
            ``colour [B, 3, R, R]`` and ``weight [B, 1, R, R]`` in [0, 1] (0 = not seen in the photo).
        """
        batch = images.shape[0]
        height, width = images.shape[-2:]
        attributes = torch.cat([pixels, facing[..., None]], dim=-1)[:, self.uv_vertex].contiguous()  # [B, T, 3]
        rast = self.rast.expand(batch, -1, -1, -1).contiguous()
        values, _ = dr.interpolate(attributes, rast, self.uv_triangles)  # [B, R, R, 3]
        covered = (rast[..., 3:4] > 0).to(images.dtype)
        grid = torch.stack([values[..., 0] / width * 2 - 1, values[..., 1] / height * 2 - 1], dim=-1)
        colour = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = ((grid.abs() <= 1).all(-1, keepdim=True)).to(images.dtype)
        visible = ((values[..., 2:3] - min_facing) / (1 - min_facing)).clamp(0, 1)
        weight = (covered * inside * visible).permute(0, 3, 1, 2)
        return colour, weight


def fill_texture(colour: torch.Tensor, weight: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Blend an unwrapped texture into a complete one: seen texels keep the photo's colour, unseen ones take their
    mirror image's (the UV layout is left/right symmetric: a horizontal flip) and then ``fallback``.

    Args:
        colour: [B, 3, R, R]; weight: [B, 1, R, R] in [0, 1]; fallback: [B, 3] or [B, 3, R, R].
    """
    if fallback.ndim == 2:
        fallback = fallback[:, :, None, None].expand_as(colour)
    mirrored = colour.flip(-1)
    mirror_weight = weight.flip(-1) * (1 - weight)
    blended = weight * colour + mirror_weight * mirrored
    total = weight + mirror_weight
    return blended + (1 - total).clamp(0, 1) * fallback
