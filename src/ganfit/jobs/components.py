"""From a composed config to the fit's objects: face model, renderer, identity judges, generator, fitter.

One path from config to objects: ``_target_`` nodes (face model, renderer factory, identity networks) go through
``hydra.utils.instantiate``; the fitting preset is the schema's dataclass (``OmegaConf.to_object``).
"""

from __future__ import annotations

from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganfit.config.schema import FitJobConfig, FittingConfig, TextureMode
from ganfit.fitting.export import ExportOptions
from ganfit.fitting.fitter import Fitter
from ganfit.fitting.shading import FaceScene
from ganfit.gan.default import resolve_generator
from ganfit.gan.generator_file import load_generator
from ganfit.identity.judge import IdentityJudge
from ganfit.jobs.engine import PrepareOptions


def fitting_config(node: Any) -> FittingConfig:
    """The :class:`FittingConfig` of a composed ``fitting`` node (or a plain dict of one)."""
    if isinstance(node, FittingConfig):
        return node
    if not (isinstance(node, DictConfig) and OmegaConf.get_type(node) is FittingConfig):
        node = OmegaConf.merge(OmegaConf.structured(FittingConfig), node)
    return OmegaConf.to_object(node)  # type: ignore[return-value]


def job_config(cfg: Any) -> FitJobConfig:
    """The typed :class:`FitJobConfig` of a composed ``fit``-style config (or a plain container of one)."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(FitJobConfig), cfg))  # type: ignore[return-value]


def prepare_options(job: FitJobConfig, fitting: FittingConfig) -> PrepareOptions:
    """How the engine reads and crops the photos of a fit job."""
    return PrepareOptions(
        landmarks_backend=job.landmarks.backend,
        face_index=job.landmarks.face_index,
        resolution=fitting.resolution,
        crop_scale=fitting.crop_scale,
        dense=job.landmarks.dense,
        exif_focal=fitting.exif_focal,
    )


def export_options(job: FitJobConfig) -> ExportOptions:
    """What the export of a fit job writes (detail texture, its resolution, the eyes)."""
    return ExportOptions(
        detail=job.detail,
        out_resolution=job.texture.out_resolution,
        eyes=job.eyes,
        skin_colour=job.texture.skin_colour,
        gan_tone=str(job.texture.gan_tone),
    )


def identity_nodes(cfg: DictConfig) -> dict[str, Any]:
    """The configured identity networks ``{name: _target_ node}`` (empty: no identity terms)."""
    node = cfg.get("identity")
    if not node:
        return {}
    return {str(name): value for name, value in node.items() if value}


def build_judges(cfg: DictConfig, fitting: FittingConfig) -> list[IdentityJudge]:
    """One :class:`IdentityJudge` per configured identity network."""
    taps = tuple(fitting.feature_taps) if fitting.feature_taps else None
    return [IdentityJudge(instantiate(node), taps=taps, name=name) for name, node in identity_nodes(cfg).items()]


def build_fitter(cfg: DictConfig) -> Fitter:
    """The fitter of a composed ``fit``-style config (face_model, renderer, identity, texture, fitting, device)."""
    fitting = fitting_config(cfg.fitting)
    device = str(cfg.get("device", "cpu"))
    face_model = instantiate(cfg.face_model).to(device)
    scene = FaceScene(face_model, instantiate(cfg.renderer))
    generator = None
    if TextureMode(cfg.texture.mode) == TextureMode.gan:
        generator = load_generator(resolve_generator(cfg.texture.generator)).to(device)
    return Fitter(
        face_model, fitting, scene=scene, judges=build_judges(cfg, fitting), generator=generator, device=device
    )


def seeded(seed: int) -> None:
    """Seed torch's global generator (initialisation and the latent search are seeded on their own)."""
    torch.manual_seed(int(seed))
