"""Multi-scale sliced Wasserstein distance (SWD) between two image sets, after ProGAN (Karras et al. 2018,
``metrics/sliced_wasserstein.py``): needs no pretrained network.

Per Laplacian-pyramid level (full resolution down to 16x16; 5x5 binomial filter, mirror borders, like
``cv2.pyrDown/pyrUp``), ``nhoods_per_image`` random 7x7x3 patches are taken from every image, each set's patches are
normalised per colour channel (mean/std over that set), and the SWD is the mean absolute difference of the sorted
projections onto ``dirs_per_repeat`` random unit directions, averaged over ``dir_repeats`` repeats. Reported x1e3
per level plus their average, as in the paper. Both sets must have the same number of images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage

__all__ = ["SWDResult", "laplacian_pyramid", "reconstruct_laplacian_pyramid", "sliced_wasserstein", "swd"]

_BINOMIAL = np.float32([1, 4, 6, 4, 1])
_GAUSS = np.outer(_BINOMIAL, _BINOMIAL) / 256.0  # 5x5 binomial, as cv2.pyrDown


def _pyr_down(x: np.ndarray) -> np.ndarray:
    return scipy.ndimage.convolve(x, _GAUSS[None, None], mode="mirror")[:, :, ::2, ::2]


def _pyr_up(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    up = np.zeros((n, c, 2 * h, 2 * w), x.dtype)
    up[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(up, _GAUSS[None, None] * 4.0, mode="mirror")


def laplacian_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """``[N, 3, H, W]`` float32 -> list of band-pass levels (finest first), the last one low-pass."""
    pyramid = [images.astype(np.float32)]
    for _ in range(1, num_levels):
        pyramid.append(_pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1])
    return pyramid


def reconstruct_laplacian_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`: the levels (finest first) -> ``[N, 3, H, W]`` float32 images (ProGAN's
    ``reconstruct_laplacian_pyramid``: upsample the coarser level, add the band)."""
    images = pyramid[-1]
    for band in pyramid[-2::-1]:
        images = _pyr_up(images) + band
    return images


def _patches(level: np.ndarray, size: int, per_image: int, rng: np.random.Generator) -> np.ndarray:
    n, c, h, w = level.shape
    half = size // 2
    count = n * per_image
    img = np.repeat(np.arange(n), per_image)[:, None, None, None]
    ch = np.arange(c)[None, :, None, None]
    dy = np.arange(-half, half + 1)[None, None, :, None]
    dx = np.arange(-half, half + 1)[None, None, None, :]
    y = rng.integers(half, h - half, size=(count, 1, 1, 1)) + dy
    x = rng.integers(half, w - half, size=(count, 1, 1, 1)) + dx
    return level[img, ch, y, x]  # [count, C, size, size]


def _finalize(desc: np.ndarray) -> np.ndarray:
    desc = desc - desc.mean(axis=(0, 2, 3), keepdims=True)
    desc = desc / desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, dir_repeats: int, dirs_per_repeat: int, rng: np.random.Generator
) -> float:
    """SWD between descriptor sets ``a``, ``b`` of equal shape ``[M, D]``."""
    assert a.ndim == 2 and a.shape == b.shape, (a.shape, b.shape)
    results = []
    for _ in range(dir_repeats):
        dirs = rng.standard_normal((a.shape[1], dirs_per_repeat)).astype(np.float32)
        dirs /= np.sqrt(np.square(dirs).sum(axis=0, keepdims=True))
        pa = np.sort(a @ dirs, axis=0)
        pb = np.sort(b @ dirs, axis=0)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


@dataclass(frozen=True)
class SWDResult:
    """SWD x1e3 per pyramid resolution (finest first) and their average."""

    resolutions: list[int]
    per_level: list[float]
    average: float

    def as_row(self) -> str:
        """Markdown table cells ``| r1 | r2 | ... | avg |``."""
        return "| " + " | ".join(f"{v:.2f}" for v in [*self.per_level, self.average]) + " |"


def swd(
    images_a: np.ndarray,
    images_b: np.ndarray,
    nhood_size: int = 7,
    nhoods_per_image: int = 128,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    min_resolution: int = 16,
    seed: int = 0,
) -> SWDResult:
    """Multi-scale SWD between two image sets.

    Args:
        images_a, images_b: uint8 (or float on the 0..255 scale) ``[N, 3, H, W]``, same N, H, W (square).
        nhood_size, nhoods_per_image, dir_repeats, dirs_per_repeat: ProGAN's 7, 128, 4, 128.
        min_resolution: coarsest pyramid level (ProGAN: 16).
        seed: seed of patch positions and projection directions (same seed -> same numbers).
    Returns:
        :class:`SWDResult` with distances x1e3.
    """
    if images_a.shape != images_b.shape or images_a.ndim != 4 or images_a.shape[1] != 3:
        raise ValueError(f"need two [N, 3, H, W] sets of equal shape, got {images_a.shape} and {images_b.shape}")
    res = images_a.shape[-1]
    resolutions = []
    while res >= min_resolution:
        resolutions.append(res)
        res //= 2
    if not resolutions:
        raise ValueError(f"images must be at least {min_resolution}px, got {images_a.shape[-1]}")
    rng = np.random.default_rng(seed)
    pyr_a = laplacian_pyramid(np.asarray(images_a, np.float32), len(resolutions))
    pyr_b = laplacian_pyramid(np.asarray(images_b, np.float32), len(resolutions))
    dists = []
    for la, lb in zip(pyr_a, pyr_b, strict=True):
        da = _finalize(_patches(la, nhood_size, nhoods_per_image, rng))
        db = _finalize(_patches(lb, nhood_size, nhoods_per_image, rng))
        dists.append(sliced_wasserstein(da, db, dir_repeats, dirs_per_repeat, rng) * 1e3)
    return SWDResult(resolutions, dists, float(np.mean(dists)))
