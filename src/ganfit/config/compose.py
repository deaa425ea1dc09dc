"""Where the packaged configs live and how entry points compose them (``key=value`` overrides exactly like fit.py)."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

CONF_ENV = "GANFIT_CONF"
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
"""The configs shipped inside the package (``ganfit/conf``): fit.yaml, train.yaml and one folder per group."""

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


class ConfigUsageError(ValueError):
    """A configuration or command-line mistake: an unknown key, a value of the wrong type, a missing required key.
    Entry points report it in one line and exit with status 2."""


def conf_dir() -> Path:
    """The config folder: ``$GANFIT_CONF`` when set, else the packaged :data:`CONF_DIR`."""
    path = Path(os.environ[CONF_ENV]) if os.environ.get(CONF_ENV) else CONF_DIR
    if not (path / "fit.yaml").is_file():
        raise FileNotFoundError(f"no fit.yaml in the config folder {path} (set {CONF_ENV} to a folder that has one)")
    return path


def compose_config(name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """``conf/<name>.yaml`` composed with Hydra ``overrides`` (``key=value``, ``group=option``), checked against the
    registered schema.

    Raises:
        ConfigUsageError: an override or a config file does not fit the schema (the message names the key).
    """
    try:  # the schema is registered: importing this module ran ganfit/config/__init__.py first
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            return compose(config_name=name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigUsageError(describe_config_error(error)) from error


def describe_config_error(error: BaseException) -> str:
    """One readable message from Hydra's chained composition errors (the outer one names the override, the inner
    one says what is wrong with it)."""
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        text = " ".join(line.strip() for line in str(current).splitlines() if line.strip())
        if text and text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return ": ".join(parts) or type(error).__name__


def parse_bool(value: object, key: str) -> bool:
    """A strict boolean: true/yes/on/1 and false/no/off/0 (any case), or a real bool.

    Raises:
        ConfigUsageError: anything else, naming ``key``.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigUsageError(f"{key}={value!r} is not a boolean (use true/false, yes/no, on/off or 1/0)")
