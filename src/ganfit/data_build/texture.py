"""A fitted photo -> a UV albedo texture and its confidence mask.

For every texel of the face model's UV layout (rasterised once by :class:`ganfit.fitting.unwrap.UvUnwrapper`), the
fitted geometry gives its 3-D point; from that:

* **colour**: the original photo sampled (bilinear) where the point projects;
* **visibility**: the point is seen when its camera distance is within ``depth_tolerance_mm`` of the depth buffer of
  the fitted mesh rendered in the crop's camera (so the nose hides the far cheek under yaw);
* **facing**: the cosine between the surface normal and the direction to the camera (perspective); grazing texels
  smear, so the confidence ramps from 0 at ``min_facing`` to 1 at ``full_facing``;
* **albedo**: colour divided by the fitted light's shading of that normal (``light.shade(1, n)``), clamped;
* **completion**: texels not seen take their mirror texel's albedo (the UV layout is left/right symmetric: a
  horizontal flip of the image, checked by ``tests/test_data_build.py`` on the model's ``uvs`` and ``mirror_ids``)
  through :func:`ganfit.fitting.unwrap.fill_texture`, and what neither side saw (and the texels outside the UV
  layout) is filled by push-pull interpolation (a coarse-to-fine weighted average), so the image has no holes.

Units: images in [0, 1], NCHW; confidence in [0, 1]; distances in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import ganfit.render as dr
from ganfit.config.schema import UnwrapConfig
from ganfit.fitting.unwrap import UvUnwrapper, fill_texture
from ganfit.render.camera import Camera


@dataclass
class UnwrappedTexture:
    """Result for a batch of B photos.

    albedo      [B, 3, R, R] completed albedo texture in [0, 1] (row 0 = v 0 = top)
    confidence  [B, 1, R, R] how much each texel was seen in the photo (before mirroring), [0, 1]
    observed    [B, 3, R, R] photo colour divided by shading, only meaningful where confidence > 0
    coverage    [1, 1, R, R] texels the face mesh uses (1) or not (0)
    """

    albedo: torch.Tensor
    confidence: torch.Tensor
    observed: torch.Tensor
    coverage: torch.Tensor

    def visible_fraction(self, threshold: float = 0.5) -> torch.Tensor:
        """[B] fraction of the mesh's texels seen with confidence above ``threshold``."""
        used = self.coverage.sum().clamp_min(1.0)
        return ((self.confidence > threshold).float() * self.coverage).sum(dim=(1, 2, 3)) / used


def push_pull_fill(colour: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Fill low-weight texels by push-pull: a weighted image pyramid, coarse estimates blended in where the weight
    is below 1.

    Args:
        colour: [B, C, H, W] colours (not premultiplied); H = W a power of two works best.
        weight: [B, 1, H, W] in [0, 1].
    Returns:
        [B, C, H, W] where texels of weight 1 keep their colour and weight 0 take the smooth estimate.
    """
    weight = weight.clamp(0.0, 1.0)
    if colour.shape[-1] <= 1 or colour.shape[-2] <= 1 or bool((weight >= 1).all()):
        return colour
    premultiplied = F.avg_pool2d(colour * weight, 2, ceil_mode=True) * 4.0
    total = F.avg_pool2d(weight, 2, ceil_mode=True) * 4.0
    coarse_colour = premultiplied / total.clamp_min(1e-6)
    coarse = push_pull_fill(coarse_colour, total.clamp(0.0, 1.0))
    up = F.interpolate(coarse, size=colour.shape[-2:], mode="bilinear", align_corners=False)
    return weight * colour + (1.0 - weight) * up


def uv_mirror_error(face_model) -> float:
    """Largest |uv(mirror(i)) - (1 - u, v)| over the face model's UV corners, in UV units: 0 when mirroring a
    texture is exactly a horizontal flip of the UV image."""
    uvs = face_model.uvs.cpu().numpy()
    tri = face_model.triangles.cpu().numpy().reshape(-1)
    uv_tri = face_model.uv_triangles.cpu().numpy().reshape(-1)
    mirror = face_model.mirror_ids.cpu().numpy()
    # per vertex one UV (the first corner that uses it); seams give several, so compare against all of them
    uv_of_vertex: dict[int, list[np.ndarray]] = {}
    for vertex, uv_index in zip(tri, uv_tri, strict=True):
        uv_of_vertex.setdefault(int(vertex), []).append(uvs[uv_index])
    worst = 0.0
    for vertex, candidates in uv_of_vertex.items():
        partner = uv_of_vertex.get(int(mirror[vertex]))
        if partner is None:
            continue
        flipped = [np.array([1.0 - c[0], c[1]]) for c in candidates]
        best = min(float(np.abs(f - p).max()) for f in flipped for p in partner)
        worst = max(worst, best)
    return worst


class PhotoUnwrapper:
    """Unwraps fitted photos into UV albedo textures (see the module docstring).

    Args:
        face_model: the morphable model used by the fit.
        config: :class:`UnwrapConfig`.
    """

    def __init__(self, face_model, config: UnwrapConfig) -> None:
        self.face_model = face_model
        self.config = config
        self.uv = UvUnwrapper(face_model, config.texture_resolution)
        self.coverage = (self.uv.rast[..., 3:4] > 0).float().permute(0, 3, 1, 2)  # [1, 1, R, R]
        self._cpu_context = None

    def _context(self, device: torch.device):
        if device.type == "cpu":
            if self._cpu_context is None:
                self._cpu_context = dr.RasterizeCpuContext()
            return self._cpu_context
        return dr.RasterizeCudaContext(device=device)

    def _texel_attributes(self, per_vertex: torch.Tensor) -> torch.Tensor:
        """Interpolate per-vertex attributes [B, V, C] over the UV raster -> [B, R, R, C] (row 0 = v 0)."""
        batch = per_vertex.shape[0]
        attributes = per_vertex[:, self.uv.uv_vertex].contiguous()
        rast = self.uv.rast.expand(batch, -1, -1, -1).contiguous()
        values, _ = dr.interpolate(attributes, rast, self.uv.uv_triangles)
        return values

    def _depth_buffer(self, camera, vertices: torch.Tensor, crop_size: int) -> tuple[torch.Tensor, float]:
        """Camera distance (mm, 0 = background) of the nearest surface per pixel of a ``depth_resolution`` render of
        the crop's camera: [B, 1, D, D] with row 0 = top, and D / crop_size."""
        side = self.config.depth_resolution
        k = side / crop_size
        scaled = Camera(rotation=camera.rotation, translation=camera.translation, focal=camera.focal * k)
        clip = scaled.to_clip(vertices, (side, side)).contiguous()
        tri = self.face_model.triangles.to(torch.int32).contiguous()
        rast, _ = dr.rasterize(self._context(vertices.device), clip, tri, (side, side))
        distance = (-scaled.to_camera(vertices)[..., 2:3]).contiguous()
        depth, _ = dr.interpolate(distance, rast, tri)
        depth = depth * (rast[..., 3:4] > 0)
        return torch.flip(depth, dims=[1]).permute(0, 3, 1, 2), k

    @torch.no_grad()
    def unwrap(
        self,
        photos: list[torch.Tensor],
        to_original: list[tuple[float, tuple[float, float]]],
        vertices: torch.Tensor,
        camera,
        light,
        crop_size: int,
        pixel_masks: list[torch.Tensor] | None = None,
    ) -> UnwrappedTexture:
        """Unwrap a fitted batch.

        Args:
            photos: B original photos, each float32 [1, 3, H_b, W_b] in [0, 1].
            to_original: per photo ``(scale, (x0, y0))`` of the crop: original = crop / scale + offset.
            vertices: [B, V, 3] fitted model-space vertices, mm.
            camera: the fit's ``ganfit.render.camera.Camera`` of the crop (principal point at its centre).
            light: the fit's light (``ganfit.render.lighting`` object with ``shade(albedo, normals)``).
            crop_size: side of the fitted crop, pixels.
            pixel_masks: optional B masks, each float32 [1, 1, H_b, W_b] in [0, 1], of the photo pixels that may
                become texture (:func:`ganfit.data_build.skin_mask.skin_mask`); the confidence is multiplied by them.
        """
        cfg = self.config
        camera_points = camera.to_camera(vertices)  # [B, V, 3] mm
        normals = self.face_model.vertex_normals(vertices) @ camera.rotation_matrix().transpose(1, 2)
        crop_pixels = camera.project(vertices, (crop_size, crop_size))  # [B, V, 2]
        texel = self._texel_attributes(torch.cat([crop_pixels, camera_points, normals], dim=-1))  # [B, R, R, 8]
        pixel, point, normal = texel[..., 0:2], texel[..., 2:5], F.normalize(texel[..., 5:8], dim=-1, eps=1e-8)

        to_eye = F.normalize(-point, dim=-1, eps=1e-8)
        facing = (normal * to_eye).sum(-1, keepdim=True)
        facing_weight = ((facing - cfg.min_facing) / max(cfg.full_facing - cfg.min_facing, 1e-6)).clamp(0, 1)

        depth, k = self._depth_buffer(camera, vertices, crop_size)
        side = depth.shape[-1]
        grid = pixel * k / side * 2.0 - 1.0
        buffer = F.grid_sample(depth, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        distance = -point[..., 2:3].permute(0, 3, 1, 2)
        visible = ((buffer > 0) & (distance <= buffer + cfg.depth_tolerance_mm)).float()

        shading = light.shade(torch.ones_like(normal), normal).clamp_min(cfg.min_shading)  # [B, R, R, 3]
        observed, inside = [], []
        for index, image in enumerate(photos):
            scale, (x0, y0) = to_original[index]
            height, width = image.shape[-2:]
            original = pixel[index : index + 1] / scale + torch.tensor([x0, y0], dtype=pixel.dtype)
            g = torch.stack([original[..., 0] / width * 2 - 1, original[..., 1] / height * 2 - 1], dim=-1)
            observed.append(F.grid_sample(image, g, mode="bilinear", padding_mode="border", align_corners=False))
            seen = (g.abs() <= 1).all(-1)[:, None].float()
            if pixel_masks is not None:
                mask = pixel_masks[index].to(image)
                seen = seen * F.grid_sample(mask, g, mode="bilinear", padding_mode="zeros", align_corners=False)
            inside.append(seen)
        colour = torch.cat(observed)  # [B, 3, R, R]
        albedo_seen = (colour / shading.permute(0, 3, 1, 2)).clamp(0.0, 1.0)
        confidence = (self.coverage * torch.cat(inside) * visible * facing_weight.permute(0, 3, 1, 2)).clamp(0.0, 1.0)

        mirror_weight = confidence.flip(-1) * (1.0 - confidence)
        symmetric = (confidence * albedo_seen + mirror_weight * albedo_seen.flip(-1)) / (
            confidence + mirror_weight
        ).clamp_min(1e-6)
        fallback = push_pull_fill(symmetric, (confidence + mirror_weight).clamp(0, 1))
        albedo = fill_texture(albedo_seen, confidence, fallback).clamp(0.0, 1.0)
        return UnwrappedTexture(albedo, confidence, albedo_seen, self.coverage)
