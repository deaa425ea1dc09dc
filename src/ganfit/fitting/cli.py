"""From the composed Hydra config (``conf/fit.yaml``) to a fit job."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganfit.fitting.fitter import FittingConfig
from ganfit.fitting.runner import JobOptions, Summary, run_job


def _node(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    value = cfg.get(key)
    if value is None:
        return None
    return OmegaConf.to_container(value, resolve=True)  # type: ignore[return-value]


def options_from_config(cfg: DictConfig) -> tuple[JobOptions, FittingConfig]:
    """Job options and fitting preset of a composed ``fit`` config."""
    fitting = FittingConfig.from_mapping(OmegaConf.to_container(cfg.fitting, resolve=True))  # type: ignore[arg-type]
    identity = _node(cfg, "identity")
    options = JobOptions(
        out=str(cfg.out),
        overwrite=bool(cfg.overwrite),
        landmarks_backend=str(cfg.landmarks.backend),
        face_index=int(cfg.landmarks.face_index),
        face_model=_node(cfg, "face_model") or {},
        renderer=_node(cfg, "renderer") or {},
        identity=identity if identity and identity.get("name") else None,
        texture_mode=str(cfg.texture.mode),
        generator=None if cfg.texture.mode != "gan" else str(cfg.texture.generator),
        device=str(cfg.device),
        seed=int(cfg.seed),
        progress=bool(cfg.progress),
    )
    return options, fitting


def run_from_config(cfg: DictConfig) -> Summary:
    """Run the fit job described by ``cfg``; returns the summary (also written to ``out/summary.json``)."""
    import torch

    options, fitting = options_from_config(cfg)
    if int(cfg.get("torch_threads", 0)) > 0 and int(cfg.processes) <= 1:
        torch.set_num_threads(int(cfg.torch_threads))  # on a busy machine fewer threads avoid spinning
    summary = run_job(cfg.image, options, fitting, processes=int(cfg.processes))
    if cfg.get("wandb"):
        log_to_wandb(cfg, summary)
    return summary


def log_to_wandb(cfg: DictConfig, summary: Summary) -> None:
    """Log the summary's scores (and the config) to W&B; offline mode when no API key is configured."""
    import os

    import wandb

    mode = "online" if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") == "online" else "offline"
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "ganfit-fit"),
        mode=os.environ.get("WANDB_MODE", mode),
        config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        dir=str(cfg.out),
    )
    run.log({**summary.scores(), "fitted": summary.count("fitted"), "failed": summary.count("failed")})
    run.finish()
