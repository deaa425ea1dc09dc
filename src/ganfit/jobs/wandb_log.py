"""Logging a fit run to Weights & Biases (offline without an API key)."""

from __future__ import annotations

import os

import wandb
from omegaconf import DictConfig, OmegaConf

from ganfit.jobs.fit_job import Summary


def log_fit_run(cfg: DictConfig, summary: Summary) -> None:
    """Log the run's scores and config to W&B; offline mode when no API key is configured."""
    mode = "online" if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online" else "offline"
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "ganfit-fit"),
        mode=os.environ.get("WANDB_MODE", mode),  # type: ignore[arg-type]
        config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        dir=str(cfg.out),
    )
    run.log({**summary.scores(), "fitted": summary.count("fitted"), "failed": summary.count("failed")})
    run.finish()
