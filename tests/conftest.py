"""Shared pytest fixtures: the real assets, and the REAL configs (the packaged ``ganfit/conf``) composed with the
``fitting=smoke`` preset — tests shrink the fit only through that preset and explicit Hydra overrides.

Real assets come from outside the repository: ``GANFIT_ASSETS`` (a folder holding ``FaceXModel/`` or
``FaceXModel.tar.xz``) and ``GANFIT_PHOTOS`` (the photo root). Locally a missing asset skips its test; with
``CI=true`` it fails, so CI can never pass by skipping everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from asset_helpers import missing_asset
from fit_helpers import compose_smoke
from report_helpers import real_fit_job


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


@pytest.fixture(scope="session")
def compose_fit() -> Callable[..., DictConfig]:
    """``compose_fit(overrides, shrink=True, name="fit")``: ``ganfit/conf/<name>.yaml`` composed with ``overrides``
    after ``fitting=smoke progress=false`` (``shrink=False``: the real preset as shipped)."""
    return compose_smoke


@pytest.fixture(scope="session")
def real_fit_out(tmp_path_factory: pytest.TempPathFactory, photos_root: Path, assets_dir: Path) -> Path:
    """``out`` of one real shrunk fit job (2 deep3d photos + a corrupt file, ``wandb=true`` offline), run once per
    session for the report and W&B tests (``report_helpers.real_fit_job``)."""
    return real_fit_job(tmp_path_factory, photos_root)
