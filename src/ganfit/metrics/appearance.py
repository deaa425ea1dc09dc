"""Appearance metrics of a reconstruction against its photo, at the photo's resolution, inside the render's opaque
region: masked L1 colour error, sharpness ratio (variance of the Laplacian), and the face rendered alone on black.

Images are uint8 or float [H, W, 3] (RGB, [0, 255] or [0, 1]); the render is RGBA [H, W, 4] whose alpha is the
coverage (``render.png`` of ``fit.py``).
"""

from __future__ import annotations

import numpy as np


def _float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def opaque_mask(render_rgba: np.ndarray, threshold: float = 0.99, erode: int = 2) -> np.ndarray:
    """bool [H, W]: pixels where the render is opaque (alpha >= ``threshold``), eroded by ``erode`` pixels so the
    antialiased silhouette does not count."""
    import cv2

    alpha = _float(render_rgba)[..., 3]
    mask = (alpha >= threshold).astype(np.uint8)
    if erode > 0:
        mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return mask.astype(bool)


def masked_l1(photo: np.ndarray, render_rgba: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute colour difference (per channel, [0, 1] units) between photo and render inside ``mask``
    (default: :func:`opaque_mask`); NaN when the mask is empty."""
    mask = opaque_mask(render_rgba) if mask is None else mask
    if not mask.any():
        return float("nan")
    difference = np.abs(_float(photo)[..., :3] - _float(render_rgba)[..., :3])
    return float(difference[mask].mean())


def laplacian_variance(image: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image [H, W, 3] over ``mask`` (pixels whose 3x3 neighbourhood is inside
    the mask, so the mask's own edge does not count)."""
    import cv2

    grey = cv2.cvtColor(_float(image)[..., :3], cv2.COLOR_RGB2GRAY)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if inner.sum() < 2:
        return float("nan")
    return float(laplacian[inner].var())


def sharpness_ratio(photo: np.ndarray, render_rgba: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the render's grey image / that of the photo, same mask (1 = as much fine detail
    as the photo; a blurry render is near 0)."""
    mask = opaque_mask(render_rgba) if mask is None else mask
    photo_variance = laplacian_variance(photo, mask)
    if not photo_variance > 0:
        return float("nan")
    return laplacian_variance(render_rgba, mask) / photo_variance


def face_on_black(render_rgba: np.ndarray) -> np.ndarray:
    """The render alone on black: uint8 [H, W, 3] = colour x alpha (for identity judges that must not see the photo's
    hair, clothes or background)."""
    rgba = _float(render_rgba)
    return (np.clip(rgba[..., :3] * rgba[..., 3:4], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def appearance_metrics(photo: np.ndarray, render_rgba: np.ndarray) -> dict[str, float]:
    """``{"masked_l1", "sharpness_ratio", "opaque_fraction"}`` of one photo and its render (same size)."""
    if np.asarray(photo).shape[:2] != np.asarray(render_rgba).shape[:2]:
        raise ValueError(f"photo {np.shape(photo)} and render {np.shape(render_rgba)} differ in size")
    mask = opaque_mask(render_rgba)
    return {
        "masked_l1": masked_l1(photo, render_rgba, mask),
        "sharpness_ratio": sharpness_ratio(photo, render_rgba, mask),
        "opaque_fraction": float(mask.mean()),
    }
