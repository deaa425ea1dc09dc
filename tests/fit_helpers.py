"""Test helpers: compose the REAL configs (the packaged conf/) with the ``fitting=smoke`` preset."""

from __future__ import annotations

from omegaconf import DictConfig

from ganfit.config import compose_config


def compose_fit(overrides: list[str] | None = None, shrink: bool = True, name: str = "fit") -> DictConfig:
    """``conf/<name>.yaml`` composed with ``overrides``; ``shrink`` selects ``fitting=smoke`` and no progress bar
    (the overrides come after, so a test can still choose another preset)."""
    base = ["fitting=smoke", "progress=false"] if shrink else []
    return compose_config(name, base + list(overrides or []))
