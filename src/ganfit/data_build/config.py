"""Compose the project's Hydra configs from ``conf/`` for the ``python -m ganfit...`` entry points (key=value
overrides exactly like ``fit.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

CONF_ENV = "GANFIT_CONF"


def conf_dir() -> Path:
    """The project's ``conf/`` folder: ``$GANFIT_CONF`` or the source tree's (``<repo>/conf``)."""
    if os.environ.get(CONF_ENV):
        path = Path(os.environ[CONF_ENV])
    else:
        path = Path(__file__).resolve().parents[3] / "conf"
    if not (path / "fit.yaml").is_file():
        raise FileNotFoundError(
            f"cannot find the project's config folder at {path} (it holds fit.yaml); run from a source checkout "
            f"or set {CONF_ENV}=/path/to/ganfit/conf"
        )
    return path


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """``conf/<name>.yaml`` composed with Hydra ``overrides`` (``key=value``, ``group=option``)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
