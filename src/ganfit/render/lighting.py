"""Illumination models for the face renderer: Phong-style ambient + directional, and 2nd-order spherical harmonics.

Both shade per pixel from an albedo ``[B, H, W, 3]`` (linear, [0, 1]) and unit normals ``[B, H, W, 3]`` expressed
in **camera space** (x right, y up, +z towards the viewer; see :mod:`ganfit.render.camera`). All parameters are
batched tensors so they can be optimised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _check(name: str, t: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")


@dataclass
class DirectionalLight:
    """Ambient + one directional light with Lambert diffuse and Blinn-Phong specular terms.

    ``colour = albedo * (ambient + diffuse * max(0, n.l)) + specular * max(0, n.h)^shininess``, with ``l`` the
    unit direction towards the light and ``h`` the half vector between ``l`` and the view direction (+z).

    Attributes:
        ambient: ``[B, 3]`` ambient RGB intensity.
        diffuse: ``[B, 3]`` RGB intensity of the directional light.
        direction: ``[B, 3]`` direction from the surface towards the light, camera space (normalised here);
            ``(0, 0, 1)`` lights the face from the camera.
        specular: ``[B, 3]`` RGB specular intensity (0 = matte).
        shininess: Blinn-Phong exponent.
    """

    ambient: torch.Tensor
    diffuse: torch.Tensor
    direction: torch.Tensor
    specular: torch.Tensor | None = None
    shininess: float = 20.0

    def shade(self, albedo: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """Shaded colour ``[B, H, W, 3]`` from ``albedo`` and unit camera-space ``normals`` (both ``[B, H, W, 3]``)."""
        batch = albedo.shape[0]
        for name in ("ambient", "diffuse", "direction"):
            _check(f"DirectionalLight.{name}", getattr(self, name), (batch, 3))
        light = torch.nn.functional.normalize(self.direction, dim=-1)[:, None, None, :]
        n_dot_l = (normals * light).sum(-1, keepdim=True).clamp(min=0)
        colour = albedo * (self.ambient[:, None, None, :] + self.diffuse[:, None, None, :] * n_dot_l)
        if self.specular is not None:
            _check("DirectionalLight.specular", self.specular, (batch, 3))
            view = torch.tensor([0.0, 0.0, 1.0], dtype=albedo.dtype, device=albedo.device)
            half = torch.nn.functional.normalize(light + view, dim=-1)
            n_dot_h = (normals * half).sum(-1, keepdim=True).clamp(min=0)
            colour = colour + self.specular[:, None, None, :] * n_dot_h.pow(self.shininess)
        return colour

    @classmethod
    def neutral(cls, batch: int, dtype: torch.dtype = torch.float32, device=None) -> DirectionalLight:
        """Soft frontal light: ambient 0.6, diffuse 0.4 from the camera, no specular."""

        def full(v: float) -> torch.Tensor:
            return torch.full((batch, 3), v, dtype=dtype, device=device)

        direction = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device).expand(batch, 3).clone()
        return cls(ambient=full(0.6), diffuse=full(0.4), direction=direction)


# Real spherical-harmonic basis constants (bands 0..2), as in Ramamoorthi & Hanrahan (2001).
_SH_C0 = 0.5 / math.sqrt(math.pi)
_SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))
_SH_C2 = 0.5 * math.sqrt(15.0 / math.pi)
_SH_C3 = 0.25 * math.sqrt(5.0 / math.pi)
_SH_C4 = 0.25 * math.sqrt(15.0 / math.pi)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 real SH basis functions of unit ``normals [..., 3]``: ``[..., 9]`` ordered
    ``Y00, Y1-1 (y), Y10 (z), Y11 (x), Y2-2 (xy), Y2-1 (yz), Y20 (3z^2-1), Y21 (xz), Y22 (x^2-y^2)``.
    """
    x, y, z = normals.unbind(-1)
    return torch.stack(
        [
            torch.full_like(x, _SH_C0),
            _SH_C1 * y,
            _SH_C1 * z,
            _SH_C1 * x,
            _SH_C2 * x * y,
            _SH_C2 * y * z,
            _SH_C3 * (3 * z * z - 1),
            _SH_C2 * x * z,
            _SH_C4 * (x * x - y * y),
        ],
        dim=-1,
    )


@dataclass
class SphericalHarmonicsLight:
    """Second-order spherical-harmonics irradiance: ``colour = albedo * sum_k coeffs[k] * Y_k(n)`` per channel.

    Attributes:
        coeffs: ``[B, 9, 3]`` RGB coefficients of the basis of :func:`sh_basis` (camera-space normals). Ambient
            white light of intensity ``a`` is ``coeffs[:, 0] = a / Y00``.
    """

    coeffs: torch.Tensor

    def shade(self, albedo: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """Shaded colour ``[B, H, W, 3]`` from ``albedo`` and unit camera-space ``normals`` (both ``[B, H, W, 3]``)."""
        _check("SphericalHarmonicsLight.coeffs", self.coeffs, (albedo.shape[0], 9, 3))
        irradiance = torch.einsum("bhwk,bkc->bhwc", sh_basis(normals), self.coeffs)
        return albedo * irradiance

    @classmethod
    def ambient(cls, batch: int, intensity: float = 1.0, dtype=torch.float32, device=None) -> SphericalHarmonicsLight:
        """Uniform white light of the given intensity (only the constant band)."""
        coeffs = torch.zeros(batch, 9, 3, dtype=dtype, device=device)
        coeffs[:, 0, :] = intensity / _SH_C0
        return cls(coeffs=coeffs)


Lighting = DirectionalLight | SphericalHarmonicsLight
