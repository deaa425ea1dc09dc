"""Fit-test helpers: the ``fitting=smoke`` composition behind the ``compose_fit`` fixture, and real input photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image

from asset_helpers import missing_asset
from ganfit.config import compose_config

SMOKE = ["fitting=smoke", "progress=false"]
"""The only shrink of a fit in the tests, as Hydra overrides (for commands that take overrides: fit.py, the demo)."""


def compose_smoke(overrides: list[str] | None = None, shrink: bool = True, name: str = "fit") -> DictConfig:
    """``conf/<name>.yaml`` composed with :data:`SMOKE` (when ``shrink``) and then ``overrides`` (so a test can
    still choose another preset)."""
    return compose_config(name, (SMOKE if shrink else []) + list(overrides or []))


def deep3d_photos(photos_root: Path, count: int) -> list[Path]:
    """The first ``count`` real photos of ``GANFIT_PHOTOS/deep3d-examples`` (missing: skip locally, fail on CI)."""
    files = sorted((photos_root / "deep3d-examples").glob("*.jpg"))[:count]
    if len(files) < count:
        missing_asset(f"fewer than {count} photos in GANFIT_PHOTOS/deep3d-examples")
    return files


def bad_inputs(folder: Path) -> tuple[Path, Path]:
    """An unreadable 'photo' and a real image without a face, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    unreadable = folder / "broken.jpg"
    unreadable.write_bytes(b"this is not a JPEG file")
    rng = np.random.default_rng(0)
    noise = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    faceless = folder / "no_face.png"
    Image.fromarray(noise).resize((256, 256), Image.BILINEAR).save(faceless)
    return unreadable, faceless
