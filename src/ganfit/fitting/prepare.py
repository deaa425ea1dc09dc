"""Photos prepared for fitting: a square face crop at the fitting resolution, its landmarks, and the map back.

Photos of any size are fitted together as one batch by cropping each to a square around its detected landmarks
and resizing the crop to ``resolution`` x ``resolution``. Coordinates map between the crop and the original
photo by ``original = crop / scale + offset`` (pixels, top-left origin, x right, y down).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganfit.fitting.skin_mask import SkinMaskConfig, skin_colour_mask, skin_mask


@dataclass
class PreparedPhoto:
    """One photo ready for fitting.

    Attributes:
        name: output folder name (usually the file stem).
        path: source file, or None for an in-memory image.
        image: uint8 [H, W, 3] RGB, the original photo.
        landmarks: float32 [68, 2] detected iBUG-68 landmarks in original-photo pixels.
        crop: uint8 [S, S, 3] the square face crop at the fitting resolution.
        crop_landmarks: float32 [68, 2] landmarks in crop pixels.
        scale: crop pixels per original pixel.
        offset: (x0, y0) original-photo position of the crop's top-left corner, pixels.
        crop_dense: float32 [N, 2] the detector's dense points in crop pixels (mediapipe: N = 478), or None.
        focal_factor: a known focal length / the photo's longer side that the fit starts from (None: the preset's
            ``focal_factor``).
    """

    name: str
    path: Path | None
    image: np.ndarray
    landmarks: np.ndarray
    crop: np.ndarray
    crop_landmarks: np.ndarray
    scale: float
    offset: tuple[float, float]
    crop_dense: np.ndarray | None = None
    focal_factor: float | None = None

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels [..., 2] -> original-photo pixels [..., 2]."""
        return points / self.scale + np.asarray(self.offset, dtype=np.float32)


def prepare_photo(
    image: np.ndarray,
    landmarks: np.ndarray,
    resolution: int,
    crop_scale: float = 1.8,
    name: str = "photo",
    path: Path | None = None,
    dense: np.ndarray | None = None,
) -> PreparedPhoto:
    """Crop a square of side ``crop_scale`` x (landmark box's longer side) around the landmarks, resized to
    ``resolution`` pixels (bilinear; outside the photo the border is replicated).

    Args:
        image: uint8 [H, W, 3] RGB.
        landmarks: [68, 2] pixels of ``image``.
        dense: optional [N, 2] dense points (``FaceDetection.dense``) in pixels of ``image``, mapped like the
            landmarks into ``crop_dense``.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.shape != (68, 2):
        raise ValueError(f"landmarks must be [68, 2], got {landmarks.shape}")
    low, high = landmarks.min(0), landmarks.max(0)
    centre = (low + high) / 2.0
    side = float(max(high - low)) * crop_scale
    scale = resolution / side
    x0, y0 = float(centre[0] - side / 2.0), float(centre[1] - side / 2.0)
    # Affine map original -> crop in continuous pixel coordinates; cv2 uses integer pixel centres, hence the 0.5s.
    matrix = np.array([[scale, 0.0, -x0 * scale + 0.5 * scale - 0.5], [0.0, scale, -y0 * scale + 0.5 * scale - 0.5]])
    source, sx, sy = image, 1.0, 1.0
    if scale < 1.0:  # shrink the photo first (area filter) so the warp does not alias
        source = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sx, sy = source.shape[1] / image.shape[1], source.shape[0] / image.shape[0]
    # Affine map source -> crop; cv2 puts pixel centres at integers, the project at +0.5.
    matrix = np.array(
        [
            [scale / sx, 0.0, -x0 * scale + 0.5 * scale / sx - 0.5],
            [0.0, scale / sy, -y0 * scale + 0.5 * scale / sy - 0.5],
        ]
    )
    size = (resolution, resolution)
    crop = cv2.warpAffine(source, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop_landmarks = ((landmarks - np.array([x0, y0], dtype=np.float32)) * scale).astype(np.float32)
    crop_dense = None
    if dense is not None:
        crop_dense = ((np.asarray(dense, dtype=np.float32) - np.array([x0, y0], dtype=np.float32)) * scale).astype(
            np.float32
        )
    return PreparedPhoto(
        name=name,
        path=path,
        image=image,
        landmarks=landmarks,
        crop=crop,
        crop_landmarks=crop_landmarks,
        scale=scale,
        offset=(x0, y0),
        crop_dense=crop_dense,
    )


def stack_crops(photos: list[PreparedPhoto]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch tensors: crops float32 [B, 3, S, S] in [0, 1] and landmarks float32 [B, 68, 2] crop pixels."""
    crops = torch.from_numpy(np.stack([p.crop for p in photos])).permute(0, 3, 1, 2).float() / 255.0
    landmarks = torch.from_numpy(np.stack([p.crop_landmarks for p in photos])).float()
    return crops.contiguous(), landmarks


def stack_dense(photos: list[PreparedPhoto], points: int = 478) -> torch.Tensor | None:
    """Dense points float32 [B, points, 2] crop pixels, NaN for a photo without them; None when no photo has them."""
    if all(p.crop_dense is None or len(p.crop_dense) < points for p in photos):
        return None
    rows = [
        p.crop_dense[:points]
        if p.crop_dense is not None and len(p.crop_dense) >= points
        else np.full((points, 2), np.nan, dtype=np.float32)
        for p in photos
    ]
    return torch.from_numpy(np.stack(rows)).float()


def stack_face_masks(photos: list[PreparedPhoto], config: SkinMaskConfig | None = None) -> torch.Tensor:
    """The photos' face (skin) masks in crop pixels, float32 [B, 1, S, S] in [0, 1]: 1 on skin well inside the
    detector's face outline, 0 on background, hair, ears and neck and on the eye and mouth openings
    (:func:`ganfit.fitting.skin_mask.skin_mask` from the crop's landmarks, and its dense points when detected)."""
    config = config or SkinMaskConfig()
    masks = [skin_mask(p.crop.shape[:2], p.crop_landmarks, p.crop_dense, config) for p in photos]
    return torch.from_numpy(np.stack(masks))[:, None].contiguous()


def stack_loss_masks(photos: list[PreparedPhoto], face_masks: torch.Tensor, colour: bool) -> torch.Tensor:
    """The photos' loss masks [B, 1, S, S] in [0, 1]: the face masks ``face_masks`` (:func:`stack_face_masks`), or
    with ``colour`` their maximum with the skin-colour mask (:func:`ganfit.fitting.skin_mask.skin_colour_mask`), so
    that neck and ears count where the photo shows skin there."""
    if not colour:
        return face_masks
    extra = [skin_colour_mask(p.crop, mask[0].cpu().numpy()) for p, mask in zip(photos, face_masks, strict=True)]
    return torch.maximum(face_masks, torch.from_numpy(np.stack(extra))[:, None].to(face_masks))
