"""Face rendering pipeline: mesh + UV texture + camera + light -> image, mask and projected points.

``FaceRenderer`` runs, per batch: model -> clip space (:class:`~ganfit.render.camera.Camera`), ``rasterize``,
``interpolate`` of UVs (through the face model's own UV triangles, so UV seams are exact) and of vertex normals,
``texture`` lookup (bilinear, clamp), shading (:mod:`ganfit.render.lighting`), compositing over the background,
``antialias`` (which also gives the silhouette its position gradients) and a flip to top-row-first images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganfit.render import ops
from ganfit.render.camera import Camera
from ganfit.render.lighting import DirectionalLight, SphericalHarmonicsLight

BACKENDS = ("auto", "cpu", "nvdiffrast")


@dataclass
class RenderOutput:
    """Result of :meth:`FaceRenderer.forward`: NCHW images, top row first (like photos). The project's only render
    record: fitting, export and evaluation all receive this.

    Attributes:
        image: ``[B, 3, H, W]`` float rendered colour composited over the background, antialiased.
        mask: ``[B, 1, H, W]`` float coverage of the face in [0, 1] (antialiased at the silhouette).
        rast: ``[B, H, W, 4]`` the raw rasterizer output, nvdiffrast's bottom-up row order (row 0 = image bottom).
        camera: the camera used.
        resolution: ``(height, width)``.
        appearance_image: ``[B, 3, H, W]`` the same values as :attr:`image`, with gradients to the texture, the
            light and the background only (none to the vertices, normals or camera); only when the render was asked
            for it (``appearance_copy=True``), else None.
    """

    image: torch.Tensor
    mask: torch.Tensor
    rast: torch.Tensor
    camera: Camera
    resolution: tuple[int, int]
    appearance_image: torch.Tensor | None = None

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Model-space points ``[B, N, 3]`` mm -> pixel coordinates ``[B, N, 2]`` in :attr:`image` (x right, y down,
        origin at the top-left corner, pixel centres at +0.5)."""
        return self.camera.project(points, self.resolution)


class FaceRenderer(nn.Module):
    """Differentiable renderer of a textured face mesh with fixed topology.

    Args:
        triangles: ``[F, 3]`` int vertex indices (the face model's ``triangles``).
        uvs: ``[T, 2]`` float texture coordinates in texture-image convention (u right, v down, (0, 0) = top-left
            texel corner of the texture image).
        uv_triangles: ``[F, 3]`` int indices into ``uvs`` per triangle corner.
        resolution: output ``(height, width)`` in pixels.
        backend: ``'cpu'`` (numba backend), ``'nvdiffrast'`` (CUDA) or ``'auto'`` (nvdiffrast for CUDA tensors
            when available, else CPU).
        antialias: run analytic antialiasing (needed for silhouette gradients w.r.t. geometry).
        texture_boundary: ``texture`` boundary mode for the UV lookup.
    """

    def __init__(
        self,
        triangles: torch.Tensor | np.ndarray,
        uvs: torch.Tensor | np.ndarray,
        uv_triangles: torch.Tensor | np.ndarray,
        resolution: tuple[int, int] | list[int],
        backend: str = "auto",
        antialias: bool = True,
        texture_boundary: str = "clamp",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"FaceRenderer: backend must be one of {BACKENDS}, got {backend!r}")
        tri = torch.as_tensor(np.asarray(triangles), dtype=torch.int32)
        uv_tri = torch.as_tensor(np.asarray(uv_triangles), dtype=torch.int32)
        uv = torch.as_tensor(np.asarray(uvs), dtype=torch.float32)
        if tri.dim() != 2 or tri.shape[1] != 3 or uv_tri.shape != tri.shape:
            raise ValueError(
                f"FaceRenderer: triangles and uv_triangles must both be [F, 3], got {tuple(tri.shape)} and "
                f"{tuple(uv_tri.shape)}"
            )
        if uv.dim() != 2 or uv.shape[1] != 2 or int(uv_tri.max()) >= uv.shape[0]:
            raise ValueError(f"FaceRenderer: uvs must be [T, 2] covering uv_triangles' indices, got {tuple(uv.shape)}")
        height, width = (int(r) for r in resolution)
        if height <= 0 or width <= 0:
            raise ValueError(f"FaceRenderer: resolution must be positive (height, width), got {resolution!r}")
        self.resolution = (height, width)
        self.backend = backend
        self.use_antialias = antialias
        self.texture_boundary = texture_boundary
        self.register_buffer("triangles", tri, persistent=False)
        self.register_buffer("uv_triangles", uv_tri, persistent=False)
        self.register_buffer("uvs", uv, persistent=False)
        self._topology = ops.antialias_construct_topology_hash(tri) if antialias else None
        self._cpu_ctx = ops.RasterizeCpuContext(output_db=False)
        self._cuda_ctx: ops.RasterizeCudaContext | None = None

    @classmethod
    def from_face_model(cls, face_model: nn.Module, resolution: tuple[int, int] | list[int], **kwargs) -> FaceRenderer:
        """Build from a :class:`ganfit.face_model.FaceModel` (its ``triangles``, ``uvs``, ``uv_triangles``)."""
        return cls(
            face_model.triangles.cpu(), face_model.uvs.cpu(), face_model.uv_triangles.cpu(), resolution, **kwargs
        )

    def _context(self, device: torch.device):
        use_cuda = self.backend == "nvdiffrast" or (self.backend == "auto" and device.type == "cuda")
        if not use_cuda:
            if device.type != "cpu":
                raise ops.BackendUnavailableError(f"FaceRenderer(backend='cpu') needs CPU tensors, got {device}")
            return self._cpu_ctx
        if self._cuda_ctx is None:
            self._cuda_ctx = ops.RasterizeCudaContext(device=device)
        return self._cuda_ctx

    def forward(
        self,
        vertices: torch.Tensor,
        normals: torch.Tensor,
        texture: torch.Tensor,
        camera: Camera,
        lighting: DirectionalLight | SphericalHarmonicsLight,
        background: torch.Tensor | None = None,
        appearance_copy: bool = False,
    ) -> RenderOutput:
        """Render a batch.

        Args:
            vertices: ``[B, V, 3]`` model-space positions in mm.
            normals: ``[B, V, 3]`` model-space vertex normals (normalised after interpolation; e.g.
                ``FaceModel.vertex_normals(vertices)``, differentiable).
            texture: ``[B, 3, Ht, Wt]`` (or ``[1, 3, Ht, Wt]``) float albedo in [0, 1], texture-image convention
                (row 0 = top = v 0), e.g. ``G(z) * 0.5 + 0.5``.
            camera: the cameras (rotation, translation mm, focal px); see :mod:`ganfit.render.camera`.
            lighting: :class:`DirectionalLight` or :class:`SphericalHarmonicsLight` (camera-space directions).
            background: optional ``[B, 3, H, W]`` image (top row first) behind the face; black when None.
            appearance_copy: also return :attr:`RenderOutput.appearance_image`, the image with the geometry's
                gradients cut (what rendering detached vertices and camera would give) from the same rasterization:
                only the texture lookup, shading and antialiasing run twice.

        Returns:
            :class:`RenderOutput` with ``image [B, 3, H, W]``, ``mask [B, 1, H, W]`` (top row first) and ``project``.
        """
        batch = vertices.shape[0]
        if vertices.dim() != 3 or vertices.shape[2] != 3:
            raise ValueError(f"FaceRenderer: vertices must be [B, V, 3] mm, got {tuple(vertices.shape)}")
        if normals.shape != vertices.shape:
            raise ValueError(
                f"FaceRenderer: normals {tuple(normals.shape)} must match vertices {tuple(vertices.shape)}"
            )
        if texture.dim() != 4 or texture.shape[1] != 3 or texture.shape[0] not in (1, batch):
            raise ValueError(f"FaceRenderer: texture must be [B, 3, Ht, Wt] (NCHW), got {tuple(texture.shape)}")
        if camera.batch_size != batch:
            raise ValueError(f"FaceRenderer: camera batch {camera.batch_size} != vertices batch {batch}")
        height, width = self.resolution
        if background is not None and background.shape != (batch, 3, height, width):
            raise ValueError(
                f"FaceRenderer: background must be [B, 3, H, W] = {(batch, 3, height, width)}, "
                f"got {tuple(background.shape)}"
            )
        ctx = self._context(vertices.device)
        tri = self.triangles
        clip = camera.to_clip(vertices, self.resolution).contiguous()
        rast, _ = ops.rasterize(ctx, clip, tri, self.resolution, grad_db=False)
        uv, _ = ops.interpolate(self.uvs[None].to(vertices.dtype), rast, self.uv_triangles)
        albedo = ops.texture(
            texture.permute(0, 2, 3, 1).contiguous(), uv, filter_mode="linear", boundary_mode=self.texture_boundary
        )
        normals_cam = normals @ camera.rotation_matrix().transpose(1, 2)
        pixel_normals, _ = ops.interpolate(normals_cam.contiguous(), rast, tri)
        pixel_normals = torch.nn.functional.normalize(pixel_normals, dim=-1, eps=1e-8)
        colour = lighting.shade(albedo, pixel_normals)
        covered = (rast[..., 3:4] > 0).to(colour.dtype)
        if background is None:
            back = torch.zeros_like(colour)
        else:
            back = torch.flip(background.to(colour.dtype).permute(0, 2, 3, 1), dims=[1])  # raster's bottom-up rows
        layers = self._composite(ctx, colour, covered, back, rast, clip)
        appearance = None
        if appearance_copy:
            albedo = ops.texture(
                texture.permute(0, 2, 3, 1).contiguous(),
                uv.detach(),
                filter_mode="linear",
                boundary_mode=self.texture_boundary,
            )
            colour = lighting.shade(albedo, pixel_normals.detach())
            appearance = self._composite(ctx, colour, covered, back, rast.detach(), clip.detach())[:, :3].contiguous()
        return RenderOutput(
            image=layers[:, :3].contiguous(),
            mask=layers[:, 3:4].contiguous(),
            rast=rast,
            camera=camera,
            resolution=self.resolution,
            appearance_image=appearance,
        )

    def _composite(
        self,
        ctx,
        colour: torch.Tensor,
        covered: torch.Tensor,
        back: torch.Tensor,
        rast: torch.Tensor,
        clip: torch.Tensor,
    ) -> torch.Tensor:
        """``colour`` [B, H, W, 3] over ``back`` where ``covered`` [B, H, W, 1], antialiased, with the coverage as a
        4th channel: NCHW ``[B, 4, H, W]``, top row first."""
        layers = torch.cat([torch.where(covered > 0, colour, back), covered], dim=-1)
        if self.use_antialias:
            tri = self.triangles
            layers = ops.antialias(layers.contiguous(), rast, clip, tri, topology_hash=self._topology_for(ctx, tri))
        return torch.flip(layers, dims=[1]).permute(0, 3, 1, 2)  # top row first, like photos; NCHW

    def _topology_for(self, ctx, tri: torch.Tensor):
        if isinstance(ctx, ops.RasterizeCpuContext):
            return self._topology
        return None  # nvdiffrast builds its own hash on the device
