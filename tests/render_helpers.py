"""Test-only scene builders for the renderer tests (random meshes, closed spheres, pixel-aligned grids)."""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh


def perspective(fov_y_deg: float = 40.0, aspect: float = 1.0, near: float = 0.5, far: float = 20.0) -> torch.Tensor:
    """OpenGL projection matrix ``[4, 4]`` (float64) for a camera looking down -Z."""
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2)
    return torch.tensor(
        [
            [f / aspect, 0, 0, 0],
            [0, f, 0, 0],
            [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
            [0, 0, -1, 0],
        ],
        dtype=torch.float64,
    )


def to_clip(points: torch.Tensor, proj: torch.Tensor | None = None) -> torch.Tensor:
    """Camera-space points ``[..., 3]`` -> clip ``[..., 4]`` (same dtype as ``points``)."""
    proj = perspective() if proj is None else proj
    homo = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    return homo @ proj.to(points.dtype).T


def random_scene(
    batch: int = 2, n_tri: int = 30, seed: int = 0, dtype: torch.dtype = torch.float64, size: float = 0.6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping random triangles in front of the camera: ``(pos [B, 3F, 4], tri [F, 3] int32)``.

    Each triangle has its own three vertices; a batch element differs by a random jitter, so depth order, partial
    overlap, both windings and triangles leaving the frame all occur.
    """
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(n_tri, 1, 3, generator=g, dtype=torch.float64) * torch.tensor([2.4, 2.4, 3.0]) - torch.tensor(
        [1.2, 1.2, 5.0]
    )
    offs = (torch.rand(n_tri, 3, 3, generator=g, dtype=torch.float64) - 0.5) * size * torch.tensor([1.0, 1.0, 2.0])
    pts = (centre + offs).reshape(1, -1, 3).repeat(batch, 1, 1)
    pts = pts + 0.05 * torch.randn(pts.shape, generator=g, dtype=torch.float64)
    tri = torch.arange(3 * n_tri, dtype=torch.int32).reshape(n_tri, 3)
    return to_clip(pts).to(dtype), tri


def shared_vertex_scene(seed: int = 0, n: int = 6, dtype: torch.dtype = torch.float64):
    """A jittered, tilted grid surface (shared vertices, interior and boundary edges): ``(pos [1, V, 4], tri)``."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, n + 1), torch.linspace(-1, 1, n + 1), indexing="ij")
    z = -4.0 + 0.3 * torch.sin(2 * xs) + 0.4 * ys
    pts = torch.stack([xs, ys, z], dim=-1).reshape(-1, 3).double()
    pts[:, :2] += 0.04 * torch.randn(pts.shape[0], 2, generator=g, dtype=torch.float64)
    tri = grid_triangles(n)
    return to_clip(pts[None]).to(dtype), tri


def grid_triangles(n: int) -> torch.Tensor:
    """Triangles ``[2 n^2, 3]`` int32 of an ``(n+1) x (n+1)`` vertex grid, consistently wound."""
    idx = np.arange((n + 1) * (n + 1)).reshape(n + 1, n + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return torch.from_numpy(np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)]).astype(np.int32))


def icosphere(subdivisions: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere: ``(vertices [V, 3] float64, faces [F, 3] int32)`` (closed, consistently wound)."""

    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.from_numpy(np.asarray(mesh.vertices, np.float64)), torch.from_numpy(np.asarray(mesh.faces, np.int32))
