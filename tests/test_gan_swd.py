"""Multi-scale sliced Wasserstein distance (ProGAN's metric) on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit.metrics.swd import laplacian_pyramid, reconstruct_laplacian_pyramid, swd


@pytest.fixture(scope="module")
def faces(photos_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sets of 12 real frontal face photos, uint8 [12, 3, 64, 64]."""
    files = sorted((photos_root / "frl-london" / "neutral_front").glob("*.jpg"))[:24]
    assert len(files) == 24
    arr = []
    for f in files:
        with Image.open(f) as im:
            arr.append(np.asarray(im.convert("RGB").resize((64, 64), Image.Resampling.BOX)).transpose(2, 0, 1))
    stack = np.stack(arr)
    return stack[:12], stack[12:]


def test_laplacian_pyramid_levels_and_reconstruction() -> None:
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32) * 255
    pyr = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8]
    # reconstruction (pyrUp + band) recovers the input exactly, as ProGAN's reconstruct_laplacian_pyramid
    np.testing.assert_allclose(reconstruct_laplacian_pyramid(pyr), x, atol=1e-3)


def test_swd_orders_distributions(faces: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = faces
    same = swd(a, b, seed=0)
    assert same.resolutions == [64, 32, 16] and len(same.per_level) == 3
    rng = np.random.default_rng(1)
    noisy = np.clip(b + rng.normal(0, 25, b.shape), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, b.shape, dtype=np.uint8)
    mild, far = swd(a, noisy, seed=0), swd(a, noise, seed=0)
    assert same.average < mild.average < far.average
    assert far.average > 4 * same.average
    # Added pixel noise shows up most in the finest band.
    assert mild.per_level[0] - same.per_level[0] > mild.per_level[-1] - same.per_level[-1]
    assert swd(a, b, seed=3).average == swd(a, b, seed=3).average  # seeded: reproducible


def test_swd_rejects_mismatched_sets(faces: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = faces
    with pytest.raises(ValueError, match="equal shape"):
        swd(a, b[:5])
    with pytest.raises(ValueError, match="at least 16px"):
        swd(a[:, :, :8, :8], b[:, :, :8, :8])
