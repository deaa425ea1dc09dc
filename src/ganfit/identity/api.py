"""Photo-level helpers: detect, align and embed a face; compare two faces (used by ``python -m ganfit.identity``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ganfit.identity.align import estimate_alignment, warp_to_chip
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face

__all__ = ["FaceEmbedding", "compare_descriptors", "embed_image", "embed_photo", "image_to_tensor"]


@dataclass
class FaceEmbedding:
    """One face's descriptor with what produced it."""

    descriptor: np.ndarray  # float32 [D], the network's raw output (not normalised)
    landmarks: np.ndarray  # float32 [68, 2] iBUG-68, continuous image pixels
    chip: np.ndarray  # uint8 [S, S, 3] RGB, the aligned chip the network saw


def image_to_tensor(image: np.ndarray) -> Tensor:
    """uint8 ``[H, W, 3]`` RGB -> float32 ``[1, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0


@torch.no_grad()
def embed_image(image: np.ndarray, landmarks: np.ndarray, net: nn.Module) -> FaceEmbedding:
    """Align the face given by ``landmarks`` to ``net``'s template and compute its descriptor.

    Args:
        image: uint8 ``[H, W, 3]`` RGB.
        landmarks: ``[68, 2]`` iBUG-68 landmarks in continuous pixels of ``image``.
        net: an identity network (``chip_size``, ``template`` attributes).
    """
    images = image_to_tensor(image)
    theta = estimate_alignment(np.asarray(landmarks, np.float32)[None], image.shape[:2], net.template)
    chips = warp_to_chip(images, theta, int(net.chip_size))
    descriptor = net(chips)[0].float().numpy()
    chip = (chips[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return FaceEmbedding(descriptor, np.asarray(landmarks, np.float32), chip)


def embed_photo(
    photo: str | os.PathLike[str] | np.ndarray,
    net: nn.Module,
    *,
    backend: str = "mediapipe",  # landmark backend: "mediapipe" or "dlib"
    face_index: int = 0,  # 0 = the largest face
) -> FaceEmbedding:
    """Read a photo (:func:`ganfit.image_io.read_image`), find its face (:func:`ganfit.landmarks.detect_face`),
    align it and embed it.

    Raises:
        ganfit.image_io.ImageInputError: the photo is missing or unreadable.
        ganfit.landmarks.NoFaceError: no face found.
    """
    image = photo if isinstance(photo, np.ndarray) else read_image(photo)
    name = None if isinstance(photo, np.ndarray) else str(photo)
    face = detect_face(image, backend=backend, face_index=face_index, name=name)  # type: ignore[arg-type]
    return embed_image(image, face.landmarks, net)


def compare_descriptors(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> tuple[float, float]:
    """``(euclidean distance, cosine similarity)`` of two descriptors ``[D]`` (dlib's threshold: distance < 0.6)."""
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    distance = float(np.linalg.norm(a - b))
    cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return distance, cosine
