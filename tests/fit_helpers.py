"""Test helpers for the fitting tests: compose the REAL fit config (conf/fit.yaml) and shrink it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_fit(overrides: list[str] | None = None, shrink: bool = True) -> DictConfig:
    """``conf/fit.yaml`` composed with ``overrides``; ``shrink`` cuts steps and resolution for fast tests."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="fit", overrides=list(overrides or []), return_hydra_config=False)
    if shrink:
        OmegaConf.set_struct(cfg, False)
        cfg.fitting.resolution = 128
        cfg.fitting.texture_resolution = 128
        cfg.fitting.rigid.steps = 30
        cfg.fitting.align.steps = 60
        cfg.fitting.full.steps = 12
        cfg.fitting.full.warmup_steps = 4
        cfg.fitting.latent_candidates = 2
        cfg.progress = False
    return cfg
