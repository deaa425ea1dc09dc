"""Perspective camera: model space (mm) -> camera space -> nvdiffrast clip space and image pixels.

Frames (the project's, see ``ganfit.face_model``):
    * Model space: millimetres, right-handed, +X to the subject's left (viewer's right), +Y up, +Z out of the face.
    * Camera space (OpenGL): ``X_c = R X + t``; the camera sits at the origin looking down -Z, x right, y up.
      A frontal view of the face is ``R = I``, ``t = (0, 0, -distance)``.
    * Image pixels (the project's): continuous ``(x right, y down)``, origin at the top-left corner of the image,
      pixel centres at ``+0.5``; with the focal length ``f`` and the principal point ``(cx, cy)`` in pixels
      (default: the image centre ``(W / 2, H / 2)``):
      ``x = cx + f X_c / (-Z_c)``, ``y = cy - f Y_c / (-Z_c)``.
    * Clip space (nvdiffrast/OpenGL): ``(2f/W X_c + (2cx/W - 1) w, 2f/H Y_c + (1 - 2cy/H) w, z_clip, w = -Z_c)``
      with the usual OpenGL depth mapping of ``[near, far]`` (mm) to NDC z in [-1, 1]. Rasterized rows are bottom-up
      (row 0 = NDC y = -1); flipping the rows of a raster gives an image whose pixel ``(row i, column j)`` is
      centred at ``(j + 0.5, i + 0.5)`` above.

This is the project's only camera: fitting, export, dataset building and evaluation all project through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, differentiable everywhere (also at zero rotation).

    Args:
        axis_angle: ``[B, 3]`` rotation vectors (axis * angle in radians).
    Returns:
        ``[B, 3, 3]`` rotation matrices.
    """
    if axis_angle.dim() != 2 or axis_angle.shape[1] != 3:
        raise ValueError(f"axis_angle must be [B, 3], got {tuple(axis_angle.shape)}")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)  # [B, 1]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    # sin(t)/t and (1 - cos(t))/t^2 with their Taylor expansions near 0.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(skew)
    return eye + a[..., None] * skew + b[..., None] * (skew @ skew)


@dataclass
class Camera:
    """A batch of pinhole cameras (see the module docstring for frames).

    Attributes:
        rotation: ``[B, 3, 3]`` rotation matrix or ``[B, 3]`` axis-angle (radians), model -> camera.
        translation: ``[B, 3]`` in mm, model -> camera (``X_c = R X + t``).
        focal: ``[B]`` focal length in pixels (same for x and y; square pixels).
        principal: ``[B, 2]`` principal point ``(cx, cy)`` in pixels of the rendered image, or None for the image
            centre of whatever resolution is rendered (the fitting's square crop).
        near: near clipping distance in mm (points closer than this to the camera are clipped).
        far: far clipping distance in mm.
    """

    rotation: torch.Tensor
    translation: torch.Tensor
    focal: torch.Tensor
    principal: torch.Tensor | None = None
    near: float = 10.0
    far: float = 10000.0

    def __post_init__(self) -> None:
        batch = self.translation.shape[0]
        if self.translation.shape != (batch, 3):
            raise ValueError(f"Camera.translation must be [B, 3] mm, got {tuple(self.translation.shape)}")
        if self.rotation.shape not in ((batch, 3), (batch, 3, 3)):
            raise ValueError(
                f"Camera.rotation must be [B, 3, 3] or axis-angle [B, 3] with B={batch}, "
                f"got {tuple(self.rotation.shape)}"
            )
        if self.focal.shape != (batch,):
            raise ValueError(f"Camera.focal must be [B] pixels, got {tuple(self.focal.shape)}")
        if self.principal is not None and self.principal.shape != (batch, 2):
            raise ValueError(f"Camera.principal must be [B, 2] pixels or None, got {tuple(self.principal.shape)}")
        if not 0 < self.near < self.far:
            raise ValueError(f"Camera needs 0 < near < far (mm), got near={self.near}, far={self.far}")

    @property
    def batch_size(self) -> int:
        return self.translation.shape[0]

    def principal_point(self, resolution: tuple[int, int]) -> torch.Tensor:
        """``[B, 2]`` principal point ``(cx, cy)`` in pixels for an image of ``(height, width)``."""
        if self.principal is not None:
            return self.principal
        height, width = resolution
        centre = torch.tensor([width / 2.0, height / 2.0], dtype=self.focal.dtype, device=self.focal.device)
        return centre.expand(self.batch_size, 2)

    def detached(self) -> Camera:
        """The same camera with every tensor detached (no gradient reaches the pose or the focal length)."""
        return Camera(
            rotation=self.rotation.detach(),
            translation=self.translation.detach(),
            focal=self.focal.detach(),
            principal=None if self.principal is None else self.principal.detach(),
            near=self.near,
            far=self.far,
        )

    def select(self, index: int) -> Camera:
        """Camera ``index`` of the batch, as a batch of one."""
        pick = slice(index, index + 1)
        return Camera(
            rotation=self.rotation[pick],
            translation=self.translation[pick],
            focal=self.focal[pick],
            principal=None if self.principal is None else self.principal[pick],
            near=self.near,
            far=self.far,
        )

    def rotation_matrix(self) -> torch.Tensor:
        """``[B, 3, 3]`` model -> camera rotation."""
        return axis_angle_to_matrix(self.rotation) if self.rotation.dim() == 2 else self.rotation

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """Model-space points ``[B, N, 3]`` mm -> camera space ``[B, N, 3]`` mm."""
        _check_points(points, self.batch_size)
        return points @ self.rotation_matrix().transpose(1, 2) + self.translation[:, None, :]

    def to_clip(self, points: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """Model-space points ``[B, N, 3]`` -> clip space ``[B, N, 4]`` for an image of ``(height, width)``."""
        return self.camera_to_clip(self.to_camera(points), resolution)

    def camera_to_clip(self, camera_points: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """Camera-space points ``[B, ..., 3]`` mm -> clip space ``[B, ..., 4]``. Clip space depends only on the
        image's aspect, so a raster of any size with that aspect (a smaller work buffer) sees the same image."""
        height, width = resolution
        shape = (camera_points.shape[0],) + (1,) * (camera_points.dim() - 2)
        f = self.focal.reshape(shape)
        n, fa = self.near, self.far
        w = -camera_points[..., 2]
        x = camera_points[..., 0] * (2 * f / width)
        y = camera_points[..., 1] * (2 * f / height)
        if self.principal is not None:  # off-centre principal point: shift in NDC, times w
            x = x + (2 * self.principal[:, 0].reshape(shape) / width - 1) * w
            y = y + (1 - 2 * self.principal[:, 1].reshape(shape) / height) * w
        z = camera_points[..., 2] * ((fa + n) / (n - fa)) + 2 * fa * n / (n - fa)
        return torch.stack([x, y, z, w], dim=-1)

    def project(self, points: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """Model-space points ``[B, N, 3]`` -> pixel coordinates ``[B, N, 2]`` (x right, y down, top-left origin,
        pixel centres at +0.5) in an image of ``(height, width)``. Points behind the camera give meaningless values.
        """
        return self.camera_to_pixels(self.to_camera(points), resolution)

    def camera_to_pixels(self, camera_points: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """Camera-space points ``[B, ..., 3]`` mm -> pixels ``[B, ..., 2]`` of an image of ``(height, width)``."""
        shape = (camera_points.shape[0],) + (1,) * (camera_points.dim() - 2)
        depth = (-camera_points[..., 2]).clamp(min=1e-3)  # distance in front of the camera, mm
        f = self.focal.reshape(shape)
        principal = self.principal_point(resolution)
        x = principal[:, 0].reshape(shape) + f * camera_points[..., 0] / depth
        y = principal[:, 1].reshape(shape) - f * camera_points[..., 1] / depth
        return torch.stack([x, y], dim=-1)


def _check_points(points: torch.Tensor, batch: int) -> None:
    if points.dim() != 3 or points.shape[2] != 3 or points.shape[0] != batch:
        raise ValueError(f"points must be [B={batch}, N, 3] in mm, got {tuple(points.shape)}")


def frontal_camera(
    batch: int,
    resolution: tuple[int, int],
    distance: float = 600.0,
    face_width: float = 180.0,
    fill: float = 0.7,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Camera:
    """A camera looking straight at the model's origin from ``distance`` mm along +Z.

    The focal length makes an object ``face_width`` mm wide span ``fill`` of the image width.
    """
    height, width = resolution
    focal = fill * width * distance / face_width
    return Camera(
        rotation=torch.eye(3, dtype=dtype, device=device).expand(batch, 3, 3).clone(),
        translation=torch.tensor([0.0, 0.0, -distance], dtype=dtype, device=device).expand(batch, 3).clone(),
        focal=torch.full((batch,), focal, dtype=dtype, device=device),
    )
