"""A plain vectorised-PyTorch z-buffer renderer, the "for scale" baseline of ``benchmarks/render.py --baseline``.

What a PyTorch user would write without a compiled rasterizer: every (triangle, pixel of its bounding box) candidate
pair as one tensor, screen-space edge functions, a z-buffer by ``scatter_reduce(amin)`` of packed (depth, triangle
id) keys, then — differentiably, for the covered pixels only — perspective-correct barycentrics from the clip-space
positions, UV and normal interpolation, a bilinear lookup of the texture with ``grid_sample``, and Lambert shading.
No antialiasing (so no silhouette gradients). Gradients reach the clip positions (through the barycentrics), the
vertex normals and the texture.

Conventions are those of ``ganfit.render``: clip space ``[B, V, 4]``, raster row 0 at NDC y = -1 (bottom-up),
pixel centres at +0.5, texture ``[B, Ht, Wt, C]`` with uv (0, 0) at the outer corner of texel row 0 / column 0.

:func:`shaded_workload` builds the same per-image job for both renderers (ganfit: rasterize + interpolate UVs and
normals + texture + the same Lambert + antialias), fwd+bwd to the vertices and the texture.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

import ganfit.render as dr
from ganfit.render.camera import frontal_camera

_KEY_EMPTY = torch.iinfo(torch.int64).max


def rasterize_ids(clip: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
    """Front triangle per pixel by a vectorised z-buffer (no gradients): ``[B, H, W]`` int64, -1 where empty.

    Args:
        clip: ``[B, V, 4]`` clip-space positions.
        tri: ``[F, 3]`` int64 vertex indices.
        resolution: ``(H, W)``.
    """
    height, width = resolution
    n_batch, n_tri = clip.shape[0], tri.shape[0]
    with torch.no_grad():
        w = clip[..., 3]
        px = (clip[..., 0] / w + 1.0) * (0.5 * width)
        py = (clip[..., 1] / w + 1.0) * (0.5 * height)
        zn = clip[..., 2] / w
        corners = torch.stack([px, py, zn], dim=-1)[:, tri]  # [B, F, 3 (corner), 3 (x, y, z)]
        visible = (w[:, tri] > 0).all(-1)
        lo = torch.ceil(corners[..., :2].amin(2) - 0.5).clamp(min=0)  # [B, F, 2] first pixel (x, y)
        hi = torch.minimum(torch.floor(corners[..., :2].amax(2) - 0.5), torch.tensor([width - 1.0, height - 1.0]))
        size = (hi - lo + 1).clamp(min=0).long()  # [B, F, 2]
        counts = (size[..., 0] * size[..., 1] * visible).reshape(-1)
        item = torch.repeat_interleave(torch.arange(counts.numel()), counts)  # flat (b, f) per candidate
        local = torch.arange(item.numel()) - (torch.cumsum(counts, 0) - counts)[item]
        # One gather per candidate: its triangle's corners (9) and box origin and width (3).
        table = torch.cat([corners.reshape(-1, 9), lo.reshape(-1, 2), size[..., :1].reshape(-1, 1).float()], dim=1)
        rec = table[item]
        vx, vy, vz = rec[:, 0:9:3], rec[:, 1:9:3], rec[:, 2:9:3]
        bwi = rec[:, 11].long()
        ix = rec[:, 9].long() + local % bwi
        iy = rec[:, 10].long() + torch.div(local, bwi, rounding_mode="floor")
        sx = ix.float() + 0.5
        sy = iy.float() + 0.5
        # Screen-space barycentrics via edge functions; either winding (no culling).
        e0 = (vx[:, 1] - sx) * (vy[:, 2] - sy) - (vx[:, 2] - sx) * (vy[:, 1] - sy)
        e1 = (vx[:, 2] - sx) * (vy[:, 0] - sy) - (vx[:, 0] - sx) * (vy[:, 2] - sy)
        e2 = (vx[:, 0] - sx) * (vy[:, 1] - sy) - (vx[:, 1] - sx) * (vy[:, 0] - sy)
        area = e0 + e1 + e2
        inside = (area != 0) & (e0 * area >= 0) & (e1 * area >= 0) & (e2 * area >= 0)
        z = (e0 * vz[:, 0] + e1 * vz[:, 1] + e2 * vz[:, 2]) / area
        inside &= (z >= -1) & (z <= 1)
        item, z = item[inside], z[inside]
        pixel = (item // n_tri) * (height * width) + iy[inside] * width + ix[inside]
        # Packed key: depth in the high bits (order-preserving for z in [-1, 1]), triangle id in the low 32.
        key = (((z + 1.0) * (0.5 * 2**30)).long() << 32) | (item % n_tri)
        zbuf = torch.full((n_batch * height * width,), _KEY_EMPTY, dtype=torch.int64)
        zbuf.scatter_reduce_(0, pixel, key, reduce="amin")
        ids = torch.where(zbuf == _KEY_EMPTY, -1, zbuf & 0xFFFFFFFF)
    return ids.reshape(n_batch, height, width)


def render_lambert(
    clip: torch.Tensor,
    tri: torch.Tensor,
    normals: torch.Tensor,
    uvs: torch.Tensor,
    uv_tri: torch.Tensor,
    tex: torch.Tensor,
    light: torch.Tensor,
    resolution: tuple[int, int],
) -> torch.Tensor:
    """Textured, Lambert-shaded image ``[B, H, W, 3]`` (raster rows bottom-up, black background), differentiable
    w.r.t. ``clip [B, V, 4]``, ``normals [B, V, 3]`` and ``tex [B, Ht, Wt, 3]``; ``uvs [T, 2]``, ``uv_tri [F, 3]``,
    ``light [3]`` (unit direction towards the light; ambient 0.3, diffuse 0.7)."""
    height, width = resolution
    n_batch = clip.shape[0]
    ids = rasterize_ids(clip, tri, resolution)
    b_idx, y_idx, x_idx = torch.nonzero(ids >= 0, as_tuple=True)
    t = ids[b_idx, y_idx, x_idx]
    v = clip[b_idx[:, None], tri[t]]  # [N, 3, 4]
    w = v[..., 3]
    px = (v[..., 0] / w + 1.0) * (0.5 * width)
    py = (v[..., 1] / w + 1.0) * (0.5 * height)
    sx = (x_idx + 0.5).to(clip.dtype)[:, None]
    sy = (y_idx + 0.5).to(clip.dtype)[:, None]
    ax, ay = px - sx, py - sy
    lam = torch.stack(
        [
            ax[:, 1] * ay[:, 2] - ax[:, 2] * ay[:, 1],
            ax[:, 2] * ay[:, 0] - ax[:, 0] * ay[:, 2],
            ax[:, 0] * ay[:, 1] - ax[:, 1] * ay[:, 0],
        ],
        dim=-1,
    )
    lam = lam / w  # perspective correction: screen barycentrics over w, renormalised
    bary = lam / lam.sum(-1, keepdim=True)
    uv = (bary[..., None] * uvs[uv_tri[t]]).sum(1)  # [N, 2]
    nrm = F.normalize((bary[..., None] * normals[b_idx[:, None], tri[t]]).sum(1), dim=-1)
    grid = torch.zeros(n_batch, height, width, 2, dtype=clip.dtype).index_put((b_idx, y_idx, x_idx), uv * 2.0 - 1.0)
    albedo = F.grid_sample(tex.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False)
    lambert = 0.3 + 0.7 * (nrm @ light.to(clip.dtype)).clamp(min=0.0)
    shade = torch.zeros(n_batch, height, width, dtype=clip.dtype).index_put((b_idx, y_idx, x_idx), lambert)
    return albedo.permute(0, 2, 3, 1) * shade[..., None]


def shaded_workload(fm, batch: int, resolution: tuple[int, int], backend: str) -> Callable[[], torch.Tensor]:
    """A fwd+bwd closure: the mean ICT face ``batch`` times, vertex normals (torch), rasterize, perspective-correct
    UV and normal interpolation, 512x512 RGB texture (bilinear, clamp), Lambert; ``backend`` ``"ganfit"`` adds
    ``ganfit.render``'s antialiasing, ``"torch"`` is :func:`render_lambert`. Returns the rendered image."""
    g = torch.Generator().manual_seed(0)
    verts0 = fm.mean[None].expand(batch, -1, -1).contiguous()
    camera = frontal_camera(batch, resolution)
    tex0 = torch.rand(batch, 512, 512, 3, generator=g)
    weight = torch.rand(batch, *resolution, 3, generator=g)
    light = F.normalize(torch.tensor([0.3, 0.4, 1.0]), dim=0)
    tri = fm.triangles.long()
    tri32 = fm.triangles.to(torch.int32)
    uv_tri, uv_tri32 = fm.uv_triangles.long(), fm.uv_triangles.to(torch.int32)
    uvs = fm.uvs
    ctx = dr.RasterizeCpuContext(output_db=False)
    topo = dr.antialias_construct_topology_hash(tri32)

    def run() -> torch.Tensor:
        verts = verts0.detach().requires_grad_(True)
        tex = tex0.detach().requires_grad_(True)
        clip = camera.to_clip(verts, resolution).contiguous()
        normals = fm.vertex_normals(verts)
        if backend == "torch":
            image = render_lambert(clip, tri, normals, uvs, uv_tri, tex, light, resolution)
        else:
            rast, _ = dr.rasterize(ctx, clip, tri32, resolution)
            uv, _ = dr.interpolate(uvs[None], rast, uv_tri32)
            nrm, _ = dr.interpolate(normals, rast, tri32)
            albedo = dr.texture(tex, uv, filter_mode="linear", boundary_mode="clamp")
            lambert = 0.3 + 0.7 * (F.normalize(nrm, dim=-1) @ light).clamp(min=0.0)
            image = albedo * (lambert[..., None] * (rast[..., 3:] > 0))
            image = dr.antialias(image, rast, clip, tri32, topology_hash=topo)
        (image * weight).sum().backward()
        return image.detach()

    return run
