"""An identity network together with the project's differentiable alignment, applied the same way to photo and
render: what the fit's identity, content and moment terms (and the identity metrics) look through."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganfit.identity.align import estimate_alignment, warp_to_chip


@dataclass
class IdentityReference:
    """What one judge saw in the photos: the alignment and the photos' descriptors and feature maps.

    theta: [B, 2, 3] alignment of each photo (image -> chip), from the detected landmarks.
    descriptor: [B, D] descriptors of the photos.
    features: named feature maps [B, C, h, w] of the photos.
    """

    theta: torch.Tensor
    descriptor: torch.Tensor
    features: dict[str, torch.Tensor]


class IdentityJudge:
    """A frozen identity network with its alignment template.

    Args:
        network: ``nn.Module`` with ``forward(chips [B, 3, S, S]) -> [B, D]``, ``features(chips) -> dict``,
            ``chip_size`` and ``template`` (see :mod:`ganfit.identity`).
        taps: feature maps for the content/moment terms (None: every spatial map the network exposes).
        name: the network's name in logs and metrics.
    """

    def __init__(self, network: nn.Module, taps: tuple[str, ...] | None = None, name: str = "") -> None:
        self.network = network.eval()
        self.network.requires_grad_(False)
        self.taps = tuple(taps) if taps else None
        self.template = getattr(network, "template", "dlib")
        self.name = name or type(network).__name__

    def align(self, landmarks: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """[B, 2, 3] alignment of images of ``image_size`` from their 68 landmarks [B, 68, 2] (pixels)."""
        return estimate_alignment(landmarks, image_size, self.template)

    def chips(self, images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Aligned chips [B, 3, S, S] of images [B, 3, H, W] (differentiable)."""
        return warp_to_chip(images, theta, self.network.chip_size)

    def embed(self, images: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Descriptor [B, D] and named feature maps of aligned chips of ``images`` [B, 3, H, W]."""
        chips = self.chips(images, theta)
        features = self.network.features(chips)
        descriptor = features.get("descriptor")
        if descriptor is None:
            descriptor = self.network(chips)
        if self.taps and not any(name in features for name in self.taps):
            # the preset's taps name another network's layers (e.g. dlib's in an ensemble): use all spatial maps
            features = {name: value for name, value in features.items() if value.ndim == 4}
        elif self.taps:
            missing = [name for name in self.taps if name not in features]
            if missing:
                raise KeyError(f"identity network {self.name} has no feature taps {missing}; it has {sorted(features)}")
            features = {name: features[name] for name in self.taps}
        else:
            features = {name: value for name, value in features.items() if value.ndim == 4}
        return descriptor, features

    def reference(self, photos: torch.Tensor, landmarks: torch.Tensor) -> IdentityReference:
        """What this judge sees in ``photos`` [B, 3, H, W] with detected ``landmarks`` [B, 68, 2] (no gradient)."""
        with torch.no_grad():
            theta = self.align(landmarks, (photos.shape[2], photos.shape[3]))
            descriptor, features = self.embed(photos, theta)
        return IdentityReference(theta, descriptor, features)
