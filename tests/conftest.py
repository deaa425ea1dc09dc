"""Shared pytest fixtures.

Real assets come from outside the repository: ``GANFIT_ASSETS`` (a folder holding ``FaceXModel/`` or
``FaceXModel.tar.xz``) and ``GANFIT_PHOTOS`` (the photo root). Locally a missing asset skips its test; with
``CI=true`` it fails, so CI can never pass by skipping everything.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_asset(message: str) -> None:
    """Skip the calling test locally; fail it on CI."""
    if _on_ci():
        pytest.fail(f"required test asset missing on CI: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def photos_root() -> Path:
    """Root of the real test photos (``GANFIT_PHOTOS``)."""
    value = os.environ.get("GANFIT_PHOTOS")
    if not value or not Path(value).is_dir():
        missing_asset("GANFIT_PHOTOS is not set to a folder of photos (CI: ../shared/photos)")
    return Path(value)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """Folder that holds the ICT FaceKit model (``GANFIT_ASSETS``)."""
    value = os.environ.get("GANFIT_ASSETS")
    if not value or not Path(value).is_dir():
        missing_asset("GANFIT_ASSETS is not set to a folder holding FaceXModel/ or FaceXModel.tar.xz")
    return Path(value)
