"""Test helpers for the GAN tests: compose the REAL conf/train.yaml (``experiment=smoke``); tiny real-photo folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from PIL import Image

from ganfit.config import CONF_DIR
from ganfit.gan.hydra_support import register_resolvers

REPO = Path(__file__).resolve().parents[1]
CONF = CONF_DIR  # the packaged configs

TINY = ["experiment=smoke", "logger=csv"]
"""The real train config shrunk to seconds of CPU by its ``experiment=smoke`` preset, logging to CSV."""


def make_photo_folder(photos_root: Path, out: Path, count: int = 8, size: int = 32) -> Path:
    """Write ``count`` real frl-london photos, downsized to ``size`` px, as PNGs under ``out/sub/`` (recursive)."""
    files = sorted((photos_root / "frl-london" / "neutral_front").glob("*.jpg"))[:count]
    assert files, f"no frl-london photos under {photos_root}"
    sub = out / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    for f in files:
        with Image.open(f) as im:
            im.convert("RGB").resize((size, size), Image.Resampling.BOX).save(sub / f"{f.stem}.png")
    return out


def compose_train(output_dir: Path, overrides: list[str]) -> DictConfig:
    """Compose conf/train.yaml with ``overrides``, as a run whose output folder is ``output_dir``."""
    register_resolvers()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def entry_point() -> ModuleType:
    """Import ``train_texture_gan.py`` from the repository root."""
    spec = importlib.util.spec_from_file_location("train_texture_gan", REPO / "train_texture_gan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
