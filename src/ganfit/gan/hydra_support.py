"""Hydra/OmegaConf helpers for the GAN entry point (resolvers must exist before a config is resolved)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

__all__ = ["register_resolvers", "wandb_offline"]


def wandb_offline() -> bool:
    """True when W&B must run offline: no ``WANDB_API_KEY`` in the environment, or ``WANDB_MODE`` offline/disabled."""
    if os.environ.get("WANDB_MODE", "").lower() in {"offline", "disabled", "dryrun"}:
        return True
    return not os.environ.get("WANDB_API_KEY")


def register_resolvers() -> None:
    """Register ``${ganfit.wandb_offline:}`` (idempotent)."""
    if not OmegaConf.has_resolver("ganfit.wandb_offline"):
        OmegaConf.register_new_resolver("ganfit.wandb_offline", wandb_offline)
