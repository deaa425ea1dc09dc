"""Logging a fit run to Weights & Biases (offline without an API key)."""

from __future__ import annotations

import os

import wandb
from omegaconf import DictConfig, OmegaConf

from ganfit.report.wandb_media import log_fit_media


def log_fit_run(cfg: DictConfig, summary) -> None:
    """Log the run's scores, config and media (per photo the compare image, the mesh as a 3D object, a table of
    metrics) to W&B; offline mode when no API key is configured. ``summary``: the run's ``fit_job.Summary``."""
    mode = "online" if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online" else "offline"
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "ganfit-fit"),
        mode=os.environ.get("WANDB_MODE", mode),  # type: ignore[arg-type]
        config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        dir=str(cfg.out),
        reinit="create_new",  # the job's own run in out/wandb, even when the caller has a run open
    )
    run.log({**summary.scores(), "fitted": summary.count("fitted"), "failed": summary.count("failed")})
    log_fit_media(run, cfg.out)
    run.finish()
