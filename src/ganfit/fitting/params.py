"""Batched GANFIT fitting parameters: shape, expression, texture, camera and illumination.

Frames and units (the project's conventions, see ``ganfit.face_model``):
    * model space in mm; camera space ``X_c = R X + t`` with the camera at the origin looking down -Z, +Y up;
    * the perspective camera has a focal length ``f`` in pixels and a principal point ``(cx, cy)`` in pixels of the
      fitted image (origin top-left, x right, y down, pixel centres at +0.5), so a point projects to
      ``x = cx + f X_c.x / (-X_c.z)``, ``y = cy - f X_c.y / (-X_c.z)``;
    * the fitted image is the square face crop, whose centre is the principal point; :meth:`FitParameters.camera`
      is a ``ganfit.render.camera.Camera`` (the project's one camera), which also maps the fit back to the photo.

Every parameter carries the batch dimension ``B`` (one row per photo); photos are fitted together as one batch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ganfit.render.camera import Camera

logger = logging.getLogger(__name__)

LATENT_DIM = 512
SH_COEFFS = 9
SH_Y00 = 0.5 / math.sqrt(math.pi)  # constant SH basis function
SH_START_IRRADIANCE = 0.8  # irradiance of the constant SH band the fit starts from


@dataclass(frozen=True)
class ParamsConfig:
    """Sizes and options of :class:`FitParameters` (from the fitting config)."""

    num_shape: int = 100  # shape coefficients, std units
    num_expression: int = 53  # ARKit blendshape weights
    texture: str = "free"  # "free" (per-texel UV map) or "gan" (generator latent)
    texture_resolution: int = 256  # side of the free UV texture optimised (free mode)
    latent_dim: int = LATENT_DIM  # GAN latent size (gan mode)
    lighting: str = "phong"  # "phong" (ambient + one directional light, coloured) or "sh" (2nd-order SH, 9 x RGB)
    exposure: bool = False  # a per-photo RGB gain (exposure x white balance) on top of the light


class FitParameters(nn.Module):
    """All per-photo unknowns of GANFIT as ``nn.Parameter``s with a leading batch dimension ``B``.

    Attributes:
        ps           [B, 100] shape coefficients (std units)
        pe           [B, 53]  expression weights (ARKit, nominally in [0, 1])
        pt           [B, 512] GAN latent (``texture="gan"``) or None
        uv_texture   [B, 3, R, R] free albedo UV map in [0, 1] (``texture="free"``; row 0 = v 0 = top) or None
        rotation     [B, 3]   axis-angle, radians (model -> camera)
        translation  [B, 3]   mm (model -> camera); a face in front of the camera has translation z < 0
        log_focal    [B]      log of the focal length in pixels
        principal    [B, 2]   principal point in pixels (a buffer: the image centre, as ganfit.render.camera)
        ambient      [B, 3]   ambient light colour (phong)
        light_color  [B, 3]   directional light colour (phong)
        light_dir    [B, 3]   direction towards the light in camera space (phong; normalised at use)
        sh           [B, 9, 3] spherical-harmonics coefficients per colour (sh)
        log_gain     [B, 3]   log of the RGB gain (exposure x white balance) multiplying the shaded face
                              (``exposure``) or None
        gain_centre  [B, 3]   a buffer: the log gain's prior centre (the grey-world estimate; zeros by default)
    """

    def __init__(self, batch: int, config: ParamsConfig, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.image_size = image_size
        height, width = image_size
        self.ps = nn.Parameter(torch.zeros(batch, config.num_shape))
        self.pe = nn.Parameter(torch.zeros(batch, config.num_expression))
        if config.texture == "gan":
            self.pt: nn.Parameter | None = nn.Parameter(torch.zeros(batch, config.latent_dim))
            self.uv_texture: nn.Parameter | None = None
        elif config.texture == "free":
            self.pt = None
            size = config.texture_resolution
            self.uv_texture = nn.Parameter(torch.full((batch, 3, size, size), 0.5))
        else:
            raise ValueError(f"texture must be 'free' or 'gan', got {config.texture!r}")
        self.rotation = nn.Parameter(torch.zeros(batch, 3))
        self.translation = nn.Parameter(torch.tensor([0.0, 0.0, -1000.0]).repeat(batch, 1))
        self.log_focal = nn.Parameter(torch.full((batch,), math.log(2.0 * max(height, width))))
        self.register_buffer("principal", torch.tensor([width / 2.0, height / 2.0]).repeat(batch, 1))
        if config.lighting == "phong":
            self.ambient = nn.Parameter(torch.full((batch, 3), 0.6))
            self.light_color = nn.Parameter(torch.full((batch, 3), 0.4))
            self.light_dir = nn.Parameter(torch.tensor([0.0, 0.0, 1.0]).repeat(batch, 1))
            self.sh = None
        elif config.lighting == "sh":
            sh = torch.zeros(batch, SH_COEFFS, 3)
            sh[:, 0] = SH_START_IRRADIANCE / SH_Y00  # constant band (ganfit.render.lighting's basis)
            self.sh = nn.Parameter(sh)
            self.ambient = self.light_color = self.light_dir = None
        else:
            raise ValueError(f"lighting must be 'phong' or 'sh', got {config.lighting!r}")
        self.log_gain: nn.Parameter | None = nn.Parameter(torch.zeros(batch, 3)) if config.exposure else None
        self.register_buffer("gain_centre", torch.zeros(batch, 3))

    @property
    def batch(self) -> int:
        return int(self.ps.shape[0])

    @property
    def focal(self) -> torch.Tensor:
        """Focal length [B] in pixels."""
        return self.log_focal.exp()

    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups for per-group learning rates: camera, shape, expression, texture, light, exposure."""
        light = [p for p in (self.ambient, self.light_color, self.light_dir, self.sh) if p is not None]
        texture = [p for p in (self.pt, self.uv_texture) if p is not None]
        return {
            "rotation": [self.rotation],
            "translation": [self.translation],
            "focal": [self.log_focal],
            "shape": [self.ps],
            "expression": [self.pe],
            "texture": texture,
            "light": light,
            "exposure": [self.log_gain] if self.log_gain is not None else [],
        }

    @property
    def gain(self) -> torch.Tensor | None:
        """The RGB gain [B, 3] (exposure x white balance), or None without ``exposure``."""
        return None if self.log_gain is None else self.log_gain.exp()

    def raw_light(self) -> dict[str, torch.Tensor]:
        """The light parameters without the gain (what the light prior sees)."""
        if self.sh is not None:
            return {"sh": self.sh}
        return {"ambient": self.ambient, "light_color": self.light_color, "light_dir": self.light_dir}

    def light(self) -> dict[str, torch.Tensor]:
        """The light as the dict :mod:`ganfit.fitting.shading` takes (``sh``, or ``ambient``, ``light_color``,
        ``light_dir``), with the RGB gain folded into its colours: a Lambertian face's image is linear in the light,
        so ``gain * albedo * shading`` is the albedo shaded by the gained light. Everything that renders or de-lights
        (the fit, the export, the detail texture) therefore sees the same exposure and colour cast."""
        light = self.raw_light()
        gain = self.gain
        if gain is None:
            return light
        if "sh" in light:
            return {"sh": light["sh"] * gain[:, None, :]}
        return {**light, "ambient": light["ambient"] * gain, "light_color": light["light_color"] * gain}

    def camera(self) -> Camera:
        """The :class:`~ganfit.render.camera.Camera` of these parameters, for the fitted image (the crop)."""
        return Camera(rotation=self.rotation, translation=self.translation, focal=self.focal, principal=self.principal)

    def project(self, vertices: torch.Tensor) -> torch.Tensor:
        """Model-space points [B, N, 3] -> pixels [B, N, 2] of the fitted image (the renderer's projection)."""
        return self.camera().project(vertices, self.image_size)

    def state_numpy(self) -> dict[str, np.ndarray]:
        """All parameters and buffers as float32 numpy arrays (detached, on CPU), keyed by name."""
        out = {name: value.detach().cpu().numpy().astype(np.float32) for name, value in self.named_parameters()}
        out["focal"] = self.focal.detach().cpu().numpy().astype(np.float32)
        out["principal"] = self.principal.detach().cpu().numpy().astype(np.float32)
        return out


def solve_pnp(
    object_points: np.ndarray,
    image_points: np.ndarray,
    focal: float,
    principal: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Camera pose from 2-D/3-D correspondences with OpenCV's iterative PnP, in the project's frames.

    Args:
        object_points: [N, 3] model-space points, mm.
        image_points: [N, 2] pixels (top-left origin, y down).
        focal: focal length, pixels.
        principal: (cx, cy) pixels.
    Returns:
        ``(rotation [3] axis-angle, translation [3] mm)`` mapping model space to the project's camera space
        (looking down -Z, +Y up). OpenCV's camera looks down +Z with +Y down; the two differ by diag(1, -1, -1).
    """
    import cv2

    camera = np.array([[focal, 0.0, principal[0]], [0.0, focal, principal[1]], [0.0, 0.0, 1.0]])
    # OpenCV's pixel centres are integers; ours are at +0.5.
    points = np.ascontiguousarray(image_points, dtype=np.float64) - 0.5
    objects = np.ascontiguousarray(object_points, dtype=np.float64)
    camera[0, 2] -= 0.5
    camera[1, 2] -= 0.5
    # Start from a frontal face at 1 m so the iterative solver does not flip behind the camera.
    rvec0 = np.array([[math.pi], [0.0], [0.0]])  # diag(1,-1,-1) = rotation by pi about x
    centre = points.mean(0)
    spread = np.linalg.norm(points - centre, axis=1).mean()
    depth = focal * np.linalg.norm(objects - objects.mean(0), axis=1).mean() / max(spread, 1e-6)
    tvec0 = np.array(
        [[(centre[0] - camera[0, 2]) * depth / focal], [(centre[1] - camera[1, 2]) * depth / focal], [depth]]
    )
    ok, rvec, tvec = cv2.solvePnP(
        objects, points, camera, None, rvec0, tvec0, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    if not ok:
        raise RuntimeError("cv2.solvePnP failed to estimate the camera pose")
    rot_cv, _ = cv2.Rodrigues(rvec)
    flip = np.diag([1.0, -1.0, -1.0])
    rotation = flip @ rot_cv
    translation = flip @ tvec.reshape(3)
    rotvec, _ = cv2.Rodrigues(rotation)
    return rotvec.reshape(3).astype(np.float32), translation.astype(np.float32)
