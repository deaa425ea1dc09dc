"""The GANFIT optimisation: a batch of photos fitted together, one Adam optimisation per configured stage.

Stage 1 (``rigid``, ``align``) fits the camera, then camera + shape + expression, to the detected landmarks. Stage 2
(``full``) optimises everything — shape, expression, texture, camera, light — with the full objective (identity,
content, moment, pixel, landmark, priors). One loop runs the stages; :class:`ganfit.fitting.objective.Objective`
computes the terms. Each photo's loss is a row of a ``[B]`` vector; the optimiser minimises their sum, so photos do
not influence each other.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganfit.config.compose import ConfigUsageError
from ganfit.config.schema import FittingConfig, LatentInit, StageConfig, TextureInit
from ganfit.face_model import FaceModel
from ganfit.fitting import losses
from ganfit.fitting.adam import Adam
from ganfit.fitting.objective import APPEARANCE_GROUPS, Objective, masked, train_only
from ganfit.fitting.params import FitParameters, ParamsConfig, solve_pnp
from ganfit.fitting.prepare import PreparedPhoto, stack_crops, stack_dense, stack_face_masks, stack_loss_masks
from ganfit.fitting.shading import FaceScene
from ganfit.fitting.unwrap import UvUnwrapper, fill_texture
from ganfit.identity.judge import IdentityJudge, IdentityReference
from ganfit.render.pipeline import RenderOutput

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, step, steps)`` after every optimisation step."""

SHARED_GROUPS = ("shape", "texture")
"""Parameter groups one person's photos share in a shared-identity fit (``Fitter.fit(..., shared=True)``)."""


@dataclass
class FitResult:
    """What a fit produced for a batch of ``B`` photos.

    params: the optimised :class:`FitParameters` (crop camera).
    vertices: [B, V, 3] model-space vertices, mm.
    texture: [B, 3, R, R] final albedo UV map in [0, 1] (full resolution in GAN mode).
    history: per step ``{"stage": str, "step": int, "total": [B], term: [B], ...}`` (numpy).
    metrics: per photo, a dict of final numbers.
    render: the final render at the fitting resolution over the crops (None without a renderer).
    """

    params: FitParameters
    vertices: torch.Tensor
    texture: torch.Tensor
    history: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    render: RenderOutput | None


class Fitter:
    """Fits photos with GANFIT's staged schedule.

    Args:
        face_model: the morphable model.
        config: the fitting preset.
        scene: renderer wiring (``None`` -> only stage 1 runs: landmarks only, no texture).
        judges: identity networks of the identity/content/moment terms (empty -> those terms are skipped).
        generator: frozen texture GAN ``G(z [B, 512]) -> [B, 3, R, R]`` in [-1, 1] (``None`` -> free texture).
        device: where to optimise.
    """

    def __init__(
        self,
        face_model: FaceModel,
        config: FittingConfig,
        scene: FaceScene | None = None,
        judges: Sequence[IdentityJudge] = (),
        generator: nn.Module | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.face_model = face_model.to(device)
        self.config = config
        self.scene = scene
        self.judges = list(judges)
        self.generator = generator
        self.device = torch.device(device)
        if generator is not None:
            # frozen; channels-last convolutions are ~15 % faster per forward + backward on CPU at batch 1
            generator.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.objective = Objective(self.face_model, config, self.texture, scene, self.judges)
        self._unwrapper: UvUnwrapper | None = None
        self._fixed_expressions = fixed_expression_ids(face_model.expression_names, list(config.fixed_expressions))

    # ----------------------------------------------------------------------------------------------- set-up
    @property
    def texture_mode(self) -> str:
        return "gan" if self.generator is not None else "free"

    def init_params(self, photos: list[PreparedPhoto]) -> FitParameters:
        """Parameters for a batch, camera from PnP of the mean face's landmarks to the detected ones at the start focal
        length (``photo.focal_factor`` when known, else the preset's ``focal_factor``, x the photo's longer side)."""
        cfg = self.config
        params = FitParameters(
            len(photos),
            ParamsConfig(
                texture=self.texture_mode,
                texture_resolution=cfg.texture_resolution,
                latent_dim=int(getattr(self.generator, "latent_dim", 512)),
                lighting=str(cfg.lighting.value),
                exposure=cfg.exposure.enabled,
            ),
            image_size=(cfg.resolution, cfg.resolution),
        ).to(self.device)
        mean_landmarks = self.face_model.landmarks(self.face_model.mean[None])[0].cpu().numpy()
        with torch.no_grad():
            for index, photo in enumerate(photos):
                factor = cfg.focal_factor if photo.focal_factor is None else photo.focal_factor
                focal = factor * max(photo.image.shape[:2]) * photo.scale
                principal = params.principal[index].cpu().numpy()
                rotation, translation = solve_pnp(
                    mean_landmarks[17:], photo.crop_landmarks[17:], focal, (float(principal[0]), float(principal[1]))
                )
                params.rotation[index] = torch.from_numpy(rotation)
                params.translation[index] = torch.from_numpy(translation)
                params.log_focal[index] = math.log(focal)
                if params.uv_texture is not None:
                    params.uv_texture[index] = torch.from_numpy(_skin_colour(photo))[:, None, None]
        return params

    def texture(self, params: FitParameters, full: bool = False) -> torch.Tensor:
        """Albedo UV map [B, 3, R, R] in [0, 1] (GAN: generated, downsampled to the fitting size unless ``full``)."""
        if params.uv_texture is not None:
            return params.uv_texture.clamp(0.0, 1.0)
        assert self.generator is not None and params.pt is not None
        size = self.config.texture_resolution
        full_size = int(getattr(self.generator, "resolution", size))
        if not full and size < full_size and hasattr(self.generator, "synthesize"):
            texture = self.generator.synthesize(params.pt, size)  # the generator's consistent cheap path
        else:
            texture = self.generator(params.pt)
            if not full and texture.shape[-1] > size:
                texture = F.interpolate(texture, size=(size, size), mode="area")
        return ((texture + 1.0) / 2.0).clamp(0.0, 1.0)

    def geometry(self, params: FitParameters) -> tuple[torch.Tensor, torch.Tensor]:
        """Model-space vertices [B, V, 3] and projected landmarks [B, 68, 2] (crop pixels)."""
        vertices = self.face_model(params.ps, params.pe)
        return vertices, params.project(self.face_model.landmarks(vertices))

    # -------------------------------------------------------------------------------------------- the fit
    def fit(self, photos: list[PreparedPhoto], progress: ProgressFn | None = None, shared: bool = False) -> FitResult:
        """Fit a batch of prepared photos (all at ``config.resolution``) in one optimisation per stage.

        ``shared=True``: the photos are of one person and share the identity — one shape ``ps`` and one texture
        (latent or free UV map) for all, a camera, expression and light per photo. The shared rows of the
        parameters stay equal: they start equal and each step gets the sum of the photos' gradients
        (:func:`share_rows`), which is the gradient of one shared parameter.
        """
        started = time.perf_counter()
        cfg = self.config
        crops, target = stack_crops(photos)
        crops, target = crops.to(self.device), target.to(self.device)
        dense = stack_dense(photos)
        dense = None if dense is None else dense.to(self.device)
        self.objective.reset_views()
        params = self.init_params(photos)
        self._fix_expressions(params)
        face_masks = None
        if cfg.photo_mask or params.log_gain is not None:
            face_masks = stack_face_masks(photos).to(self.device)
        if params.log_gain is not None:
            self._init_gain(params, crops, face_masks)
        photo_mask = stack_loss_masks(photos, face_masks, cfg.photo_mask_colour) if cfg.photo_mask else None
        if shared:
            share_rows(params)
        history: list[dict[str, Any]] = []
        references: list[IdentityReference] = []
        before: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        for name, stage in cfg.stages():
            full = name == "full"
            if full and self.scene is None:
                continue  # no renderer: landmarks only
            stage_started = time.perf_counter()
            if full:
                references = self.objective.references(crops, target)
                self._init_appearance(params, crops, references, shared, photo_mask)
                before = self.objective.evaluate(params, crops, target, references)
            optimizer = _optimizer(params, stage)
            for step in range(stage.steps if optimizer is not None else 0):
                optimizer.zero_grad(set_to_none=True)
                rates = {group: stage.lr.of(group) for group in params.groups()}
                train_only(params, rates, APPEARANCE_GROUPS if step < stage.warmup_steps else None)
                if full:
                    terms = self.objective.full_terms(params, crops, target, references, dense, photo_mask, step)
                else:
                    terms = self.objective.alignment_terms(params, target, dense)
                total = terms.total(stage.weights)
                total.sum().backward()
                optimizer.step()
                history.append(terms.record(name, step, total))
                if progress is not None:
                    progress(name, step, stage.steps)
            seconds[name] = time.perf_counter() - stage_started
        after = self.objective.evaluate(params, crops, target, references)
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            texture = self.texture(params, full=self.scene is not None)
            final_render = None
            if self.scene is not None:
                final_render = self.objective.render(params, vertices, self.texture(params), crops)
        total_seconds = time.perf_counter() - started
        metrics = [
            self._photo_metrics(index, len(photos), before, after, history, seconds, total_seconds)
            for index in range(len(photos))
        ]
        for entry, photo in zip(metrics, photos, strict=True):  # where the focal length started (EXIF or preset)
            entry["start_focal_factor"] = cfg.focal_factor if photo.focal_factor is None else photo.focal_factor
            entry["start_focal_from"] = "preset" if photo.focal_factor is None else "photo"
        return FitResult(params, vertices, texture.detach(), history, metrics, final_render)

    # ---------------------------------------------------------------------------------------------- pieces
    def _fix_expressions(self, params: FitParameters) -> None:
        """Keep the blendshapes of ``config.fixed_expressions`` at 0: their columns of ``pe`` start at 0 and get no
        gradient, so Adam never moves them."""
        if not self._fixed_expressions:
            return
        keep = torch.ones(params.pe.shape[1], device=params.pe.device, dtype=params.pe.dtype)
        keep[self._fixed_expressions] = 0.0
        with torch.no_grad():
            params.pe.mul_(keep)
        params.pe.register_hook(lambda grad: grad * keep)

    def _init_gain(self, params: FitParameters, crops: torch.Tensor, face_masks: torch.Tensor) -> None:
        """Centre the RGB gain's prior on the grey-world estimate of each photo's surround (as configured) and start
        the gain there; the free texture's skin-colour start is divided by it."""
        exposure = self.config.exposure
        with torch.no_grad():
            centre = losses.grey_world_log_gain(
                crops,
                face_masks,
                exposure.grey_level,
                exposure.max_log_gain,
                border=exposure.border,
                level=exposure.grey_world_level,
                chroma=exposure.grey_world_chroma,
                max_log_level=exposure.max_log_level,
            )
            params.gain_centre.copy_(centre)
            assert params.log_gain is not None
            params.log_gain.copy_(centre)
            if params.uv_texture is not None:
                params.uv_texture.copy_((params.uv_texture / centre.exp()[:, :, None, None]).clamp(0.0, 1.0))

    def _init_appearance(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        references,
        shared: bool = False,
        photo_mask: torch.Tensor | None = None,
    ) -> None:
        """Start stage 2's texture: the best random GAN latent, or the photo unwrapped into the free texture
        (shared: the latent best over all photos, the unwrapped photos blended by how well each texel is seen)."""
        if params.pt is not None and self.config.latent_init == LatentInit.search:
            self._search_latent(params, crops, references, shared, photo_mask)
        if params.uv_texture is not None and self.config.texture_init == TextureInit.unwrap:
            self._unwrap_texture(params, crops, shared)
        elif shared and params.uv_texture is not None:
            with torch.no_grad():
                params.uv_texture.copy_(params.uv_texture.mean(0, keepdim=True).expand_as(params.uv_texture))

    def _photo_metrics(self, index, batch, before, after, history, seconds, total_seconds) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "landmark_error_iod": float(after["landmark_error_iod"][index]),
            "landmark_error_px_crop": float(after["landmark_error_px"][index]),
            "seconds": total_seconds / batch,
            "batch_seconds": total_seconds,
            "batch_size": batch,
            "stage1_seconds": seconds.get("rigid", 0.0) + seconds.get("align", 0.0),
            "stage2_seconds": seconds.get("full", 0.0),
            "stage2_steps": self.config.full.steps,
            "texture": self.texture_mode,
            "torch_threads": torch.get_num_threads(),  # what the seconds were measured with
        }
        if before:
            entry["landmark_error_iod_before_stage2"] = float(before["landmark_error_iod"][index])
        if "identity_cosine" in after:
            entry["identity_cosine_before_stage2"] = float(before["identity_cosine"][index])
            entry["identity_cosine"] = float(after["identity_cosine"][index])
        if "pixel" in after:
            entry["pixel_l1"] = float(after["pixel"][index])
        if history:
            last = history[-1]
            entry["final_terms"] = {
                k: float(v[index]) for k, v in last.items() if isinstance(v, np.ndarray) and k != "total"
            }
            entry["final_total"] = float(last["total"][index])
        return entry

    def _unwrap_texture(self, params: FitParameters, crops: torch.Tensor, shared: bool = False) -> None:
        """Start the free texture from the photo projected into UV space with the stage-1 geometry."""
        assert params.uv_texture is not None
        resolution = params.uv_texture.shape[-1]
        if self._unwrapper is None or self._unwrapper.resolution != resolution:
            self._unwrapper = UvUnwrapper(self.face_model, resolution)
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            pixels = params.project(vertices)
            normals = self.face_model.vertex_normals(vertices) @ params.camera().rotation_matrix().transpose(1, 2)
            colour, weight = self._unwrapper.unwrap(crops, pixels, normals[..., 2])
            if params.gain is not None:
                colour = (colour / params.gain[:, :, None, None]).clamp(0.0, 1.0)
            fallback = params.uv_texture[:, :, 0, 0].clone()  # the skin colour set by init_params
            if shared:  # one texture: the photos' colours weighted by how well each saw the texel
                total = weight.sum(0, keepdim=True)
                colour = (colour * weight).sum(0, keepdim=True) / total.clamp_min(1e-6)
                weight, fallback = total.clamp(0.0, 1.0), fallback.mean(0, keepdim=True)
            params.uv_texture.copy_(fill_texture(colour, weight, fallback).expand_as(params.uv_texture))

    def _search_latent(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        references,
        shared: bool = False,
        photo_mask: torch.Tensor | None = None,
    ) -> None:
        """Pick, per photo, the best of ``latent_candidates`` random latents (pixel + identity loss at stage-1 pose);
        ``shared``: one latent for all photos (the same candidate in every row, scored by the sum over photos)."""
        assert params.pt is not None
        count = max(1, self.config.latent_candidates)
        generator = torch.Generator().manual_seed(0)
        best_loss = torch.full((params.batch,), float("inf"), device=self.device)
        best = torch.zeros_like(params.pt)
        weights = self.config.full.weights
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            for _ in range(count):
                candidate = torch.randn(params.pt.shape, generator=generator).to(self.device)
                if shared:
                    candidate = candidate[:1].expand_as(candidate).clone()
                params.pt.copy_(candidate)
                rendered = self.objective.render(params, vertices, self.texture(params), crops)
                loss = weights.pixel * losses.pixel_loss(rendered.image, crops, masked(rendered.mask, photo_mask))
                for judge, reference in zip(self.judges, references, strict=True):
                    descriptor, _ = judge.embed(rendered.image, reference.theta)
                    identity = losses.identity_loss(descriptor, reference.descriptor)
                    loss = loss + weights.identity * identity / len(self.judges)
                if shared:
                    loss = loss.sum().expand_as(loss)
                better = loss < best_loss
                best[better] = candidate[better]
                best_loss = torch.where(better, loss, best_loss)
            params.pt.copy_(best)


def share_rows(params: FitParameters, groups: Sequence[str] = SHARED_GROUPS) -> None:
    """Tie the rows of ``groups``' parameters: copy row 0 into every row now, and make every backward pass give each
    row the sum of the rows' gradients. Adam then moves all rows identically — one parameter shared by the batch
    whose gradient is the sum of the photos' (their losses add)."""
    tensors = params.groups()
    with torch.no_grad():
        for name in groups:
            for tensor in tensors[name]:
                tensor.copy_(tensor[:1].clone().expand_as(tensor))
                tensor.register_hook(lambda grad: grad.sum(0, keepdim=True).expand_as(grad).contiguous())


def fixed_expression_ids(names: Sequence[str], patterns: list[str]) -> list[int]:
    """Indices of the blendshapes ``names`` that match any of ``patterns`` (``fnmatch``, case-sensitive).

    Raises:
        ConfigUsageError: a pattern matches no blendshape (a misspelt name must not be ignored silently).
    """
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(name, p) for name in names)]
    if unknown:
        known = ", ".join(names)
        raise ConfigUsageError(f"fitting.fixed_expressions: no blendshape matches {unknown} (names: {known})")
    return [i for i, name in enumerate(names) if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def _optimizer(params: FitParameters, stage: StageConfig) -> Adam | None:
    """Adam over the groups with a non-zero learning rate (None when nothing moves or the stage has no steps)."""
    groups = []
    for name, tensors in params.groups().items():
        rate = stage.lr.of(name)
        for tensor in tensors:
            tensor.requires_grad_(rate > 0)
        if rate > 0 and tensors:
            groups.append({"params": tensors, "lr": rate, "name": name})
    if not groups or stage.steps <= 0:
        return None
    return Adam(groups, betas=(0.9, 0.999))


def _skin_colour(photo: PreparedPhoto) -> np.ndarray:
    """Median colour [3] in [0, 1] of the crop between the cheeks, below the eyes and above the mouth."""
    points = photo.crop_landmarks
    x0, x1 = points[[1, 15], 0].min(), points[[1, 15], 0].max()
    y0, y1 = points[[28, 33], 1].min(), points[[28, 33], 1].max()
    h, w = photo.crop.shape[:2]
    xa, xb = int(np.clip(x0, 0, w - 1)), int(np.clip(x1, 1, w))
    ya, yb = int(np.clip(y0, 0, h - 1)), int(np.clip(y1, 1, h))
    region = photo.crop[ya:yb, xa:xb].reshape(-1, 3)
    if region.size == 0:
        region = photo.crop.reshape(-1, 3)
    return (np.median(region, axis=0) / 255.0).astype(np.float32)
