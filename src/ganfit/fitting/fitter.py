"""The GANFIT optimisation: a whole batch of photos fitted together in one Adam optimisation.

Stage 1 (alignment) fits the camera to the detected landmarks (rigid), then camera + shape + expression with the
landmark loss and the priors. Stage 2 optimises everything (shape, expression, texture, camera, light) with the full
objective: identity, content, moment, pixel, landmark, priors. Each photo's loss is a separate row of a ``[B]``
vector; the optimiser minimises their sum, so photos do not influence each other (Adam is element-wise).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganfit.face_model import FaceModel
from ganfit.fitting import losses
from ganfit.fitting.params import FitParameters, ParamsConfig, solve_pnp
from ganfit.fitting.photos import PreparedPhoto, stack_crops
from ganfit.fitting.shading import FaceScene, RenderOutput, uv_coverage_mask

logger = logging.getLogger(__name__)

STAGE2_TERMS = (
    "identity",
    "content",
    "moment",
    "pixel",
    "landmark",
    "shape_prior",
    "expression_prior",
    "latent_prior",
    "texture_prior",
    "light_prior",
)


@dataclass
class StageConfig:
    """One optimisation stage: steps, Adam learning rate per parameter group (0 = frozen), loss weights, and
    ``warmup_steps``: the first steps of the stage move only the texture and the light (geometry and camera wait
    until the appearance roughly matches the photo, so their first Adam steps follow a meaningful gradient)."""

    steps: int = 0
    lr: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    warmup_steps: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StageConfig:
        return cls(
            steps=int(values.get("steps", 0)),
            warmup_steps=int(values.get("warmup_steps", 0)),
            lr={str(k): float(v) for k, v in dict(values.get("lr", {})).items()},
            weights={str(k): float(v) for k, v in dict(values.get("weights", {})).items()},
        )


@dataclass
class FittingConfig:
    """The fitting preset (``conf/fitting/*.yaml``). See those files for each key's meaning; ``identity_geometry``
    False renders a second time with detached geometry for the identity/content/moment terms, so they move only the
    texture and the light."""

    resolution: int = 256
    crop_scale: float = 1.8
    batch_size: int = 4
    focal_factor: float = 1.5
    lighting: str = "phong"
    texture_resolution: int = 256
    jaw_weight: float = 0.5
    texture_symmetry: float = 0.5
    latent_init: str = "search"
    texture_init: str = "unwrap"
    latent_candidates: int = 8
    feature_taps: tuple[str, ...] | None = None
    identity_geometry: bool = True
    rigid: StageConfig = field(default_factory=StageConfig)
    align: StageConfig = field(default_factory=StageConfig)
    full: StageConfig = field(default_factory=StageConfig)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FittingConfig:
        simple = {k: values[k] for k in cls.__dataclass_fields__ if k in values and k not in ("rigid", "align", "full")}
        if simple.get("feature_taps") is not None:
            simple["feature_taps"] = tuple(simple["feature_taps"])
        stages = {k: StageConfig.from_mapping(values[k]) for k in ("rigid", "align", "full") if k in values}
        return cls(**simple, **stages)


class IdentityJudge:
    """The identity network with the project's differentiable alignment, applied the same way to photo and render.

    Args:
        network: ``nn.Module`` with ``forward(chips [B, 3, S, S]) -> [B, D]``, ``features(chips) -> dict`` and
            ``chip_size`` (see ``ganfit.identity``).
        align: ``(landmarks [B, 68, 2], image_size (H, W)) -> theta [B, 2, 3]``.
        warp: ``(images [B, 3, H, W], theta, chip_size) -> chips``.
    """

    def __init__(
        self, network: nn.Module, align: Callable, warp: Callable, taps: tuple[str, ...] | None = None
    ) -> None:
        self.network = network.eval()
        self.taps = taps
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.align = align
        self.warp = warp

    def chips(self, images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return self.warp(images, theta, self.network.chip_size)

    def embed(self, images: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Descriptor [B, D] and named feature maps of aligned chips of ``images`` [B, 3, H, W]."""
        chips = self.chips(images, theta)
        features = self.network.features(chips)
        descriptor = features.get("descriptor")
        if descriptor is None:
            descriptor = self.network(chips)
        if self.taps:
            missing = [name for name in self.taps if name not in features]
            if missing:
                raise KeyError(f"identity network has no feature taps {missing}; it has {sorted(features)}")
            features = {name: features[name] for name in self.taps}
        else:  # all spatial feature maps
            features = {name: value for name, value in features.items() if value.ndim == 4}
        return descriptor, features


@dataclass
class FitResult:
    """What a fit produced for a batch of ``B`` photos.

    params: the optimised :class:`FitParameters` (crop camera).
    vertices: [B, V, 3] model-space vertices, mm.
    texture: [B, 3, R, R] final albedo UV map in [0, 1] (full resolution in GAN mode).
    history: per step ``{"stage": str, "step": int, term: np.ndarray [B], ...}``.
    metrics: per photo, a dict of final numbers.
    """

    params: FitParameters
    vertices: torch.Tensor
    texture: torch.Tensor
    history: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    render: RenderOutput | None


class Fitter:
    """Fits photos with GANFIT's two-stage schedule.

    Args:
        face_model: the morphable model.
        config: the fitting preset.
        scene: renderer wiring (``None`` -> only stage 1 runs: landmarks only, no texture).
        identity: identity network + alignment (``None`` -> identity/content/moment terms are skipped).
        generator: frozen texture GAN ``G(z [B, 512]) -> [B, 3, R, R]`` in [-1, 1] (``None`` -> free texture).
        device: where to optimise.
    """

    def __init__(
        self,
        face_model: FaceModel,
        config: FittingConfig,
        scene: FaceScene | None = None,
        identity: IdentityJudge | None = None,
        generator: nn.Module | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.face_model = face_model.to(device)
        self.config = config
        self.scene = scene
        self.identity = identity
        self.generator = generator
        self.device = torch.device(device)
        if generator is not None:
            generator.eval()
            for parameter in generator.parameters():
                parameter.requires_grad_(False)
        self._uv_mask: torch.Tensor | None = None
        self._unwrapper = None

    # ----------------------------------------------------------------------------------------------- set-up
    @property
    def texture_mode(self) -> str:
        return "gan" if self.generator is not None else "free"

    def uv_mask(self, resolution: int) -> torch.Tensor:
        """[1, 1, R, R] texels used by the mesh."""
        if self._uv_mask is None or self._uv_mask.shape[-1] != resolution:
            mask = uv_coverage_mask(self.face_model, resolution)
            self._uv_mask = torch.from_numpy(mask)[None, None].to(self.device)
        return self._uv_mask

    def init_params(self, photos: list[PreparedPhoto]) -> FitParameters:
        """Parameters for a batch, camera from PnP of the mean face's landmarks to the detected ones."""
        cfg = self.config
        params = FitParameters(
            len(photos),
            ParamsConfig(
                texture=self.texture_mode,
                texture_resolution=cfg.texture_resolution,
                latent_dim=int(getattr(self.generator, "latent_dim", 512)),
                lighting=cfg.lighting,
            ),
            image_size=(cfg.resolution, cfg.resolution),
        ).to(self.device)
        mean_landmarks = self.face_model.landmarks(self.face_model.mean[None])[0].cpu().numpy()
        with torch.no_grad():
            for index, photo in enumerate(photos):
                focal = cfg.focal_factor * max(photo.image.shape[:2]) * photo.scale
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

    # ------------------------------------------------------------------------------------------ evaluation
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

    def _landmark_term(self, params: FitParameters, vertices: torch.Tensor, target: torch.Tensor, use_jaw: bool = True):
        fm = self.face_model
        projected = params.project(fm.landmarks(vertices))
        right = params.project(vertices[:, fm.jaw_contour_right])
        left = params.project(vertices[:, fm.jaw_contour_left])
        loss = losses.landmark_loss(projected, target, right, left, jaw_weight=self.config.jaw_weight, use_jaw=use_jaw)
        return loss, projected

    def render(
        self,
        params: FitParameters,
        vertices: torch.Tensor,
        texture: torch.Tensor,
        background: torch.Tensor | None,
        geometry_grad: bool = True,
    ):
        """Render the batch at the fitting resolution over ``background`` [B, 3, S, S] (or black when None);
        ``geometry_grad=False`` keeps gradients from reaching the vertices and the camera (texture and light only)."""
        assert self.scene is not None
        size = (self.config.resolution, self.config.resolution)
        camera = params.camera()
        if not geometry_grad:
            vertices = vertices.detach()
            camera = dataclasses.replace(
                camera,
                rotation=camera.rotation.detach(),
                translation=camera.translation.detach(),
                focal=camera.focal.detach(),
            )
        return self.scene.render(vertices, camera, texture, light_of(params), background, size)

    # -------------------------------------------------------------------------------------------- the fit
    def fit(self, photos: list[PreparedPhoto], progress: Callable[[str, int, int], None] | None = None) -> FitResult:
        """Fit a batch of prepared photos (all at ``config.resolution``) in one optimisation."""
        started = time.perf_counter()
        cfg = self.config
        crops, target = stack_crops(photos)
        crops, target = crops.to(self.device), target.to(self.device)
        params = self.init_params(photos)
        history: list[dict[str, Any]] = []

        # Stage 1a: rigid camera from landmarks; 1b: + shape and expression.
        for stage_name, stage in (("rigid", cfg.rigid), ("align", cfg.align)):
            optimizer = self._optimizer(params, stage)
            for step in range(stage.steps if optimizer is not None else 0):
                optimizer.zero_grad(set_to_none=True)
                vertices = self.face_model(params.ps, params.pe)
                terms = {"landmark": self._landmark_term(params, vertices, target)[0]}
                terms["shape_prior"] = losses.shape_prior(params.ps)
                terms["expression_prior"] = losses.expression_prior(params.pe)
                total = self._total(terms, stage.weights)
                total.sum().backward()
                optimizer.step()
                history.append(_record(stage_name, step, terms, total))
                if progress is not None:
                    progress(stage_name, step, stage.steps)

        stage1_seconds = time.perf_counter() - started
        identity_state = None
        if self.identity is not None:
            identity_state = self._identity_state(crops, target)
        if self.scene is not None and params.pt is not None and cfg.latent_init == "search":
            self._search_latent(params, crops, target, identity_state)
        if self.scene is not None and params.uv_texture is not None and cfg.texture_init == "unwrap":
            self._unwrap_texture(params, crops)

        before = self._evaluate(params, crops, target, identity_state)
        stage2_started = time.perf_counter()
        stage = cfg.full
        optimizer = self._optimizer(params, stage) if self.scene is not None else None
        for step in range(stage.steps if optimizer is not None else 0):
            optimizer.zero_grad(set_to_none=True)
            _train_only(params, stage, APPEARANCE_GROUPS if step < stage.warmup_steps else None)
            terms, _ = self._full_terms(params, crops, target, identity_state, stage.weights)
            total = self._total(terms, stage.weights)
            total.sum().backward()
            optimizer.step()
            history.append(_record("full", step, terms, total))
            if progress is not None:
                progress("full", step, stage.steps)

        stage2_seconds = time.perf_counter() - stage2_started
        after = self._evaluate(params, crops, target, identity_state)
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            texture = self.texture(params, full=True) if (self.scene is not None) else self.texture(params)
            final_render = None
            if self.scene is not None:
                final_render = self.render(params, vertices, self.texture(params), crops)
        seconds = time.perf_counter() - started
        metrics = []
        for index in range(len(photos)):
            entry: dict[str, Any] = {
                "landmark_error_iod": float(after["landmark_error_iod"][index]),
                "landmark_error_px_crop": float(after["landmark_error_px"][index]),
                "landmark_error_iod_before_stage2": float(before["landmark_error_iod"][index]),
                "seconds": seconds / len(photos),
                "batch_seconds": seconds,
                "batch_size": len(photos),
                "stage1_seconds": stage1_seconds,
                "stage2_seconds": stage2_seconds,
                "stage2_steps": cfg.full.steps,
                "texture": self.texture_mode,
            }
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
            metrics.append(entry)
        return FitResult(params, vertices, texture.detach(), history, metrics, final_render)

    # ---------------------------------------------------------------------------------------------- pieces
    def _optimizer(self, params: FitParameters, stage: StageConfig) -> torch.optim.Optimizer | None:
        groups = []
        for name, tensors in params.groups().items():
            rate = stage.lr.get(name, 0.0)
            for tensor in tensors:
                tensor.requires_grad_(rate > 0)
            if rate > 0 and tensors:
                groups.append({"params": tensors, "lr": rate, "name": name})
        if not groups or stage.steps <= 0:
            return None
        return torch.optim.Adam(groups, betas=(0.9, 0.999))

    @staticmethod
    def _total(terms: dict[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
        total = None
        for name, value in terms.items():
            weight = weights.get(name, 0.0)
            if weight:
                total = value * weight if total is None else total + value * weight
        if total is None:
            raise ValueError(f"no weighted loss term among {sorted(terms)}: set weights in the fitting config")
        return total

    def _identity_state(self, crops: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
        assert self.identity is not None
        with torch.no_grad():
            theta = self.identity.align(target, (crops.shape[2], crops.shape[3]))
            descriptor, features = self.identity.embed(crops, theta)
        return {"theta": theta, "descriptor": descriptor, "features": features}

    def _full_terms(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        target: torch.Tensor,
        identity_state: dict[str, Any] | None,
        weights: Mapping[str, float],
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        vertices = self.face_model(params.ps, params.pe)
        texture = self.texture(params)
        rendered = self.render(params, vertices, texture, crops)
        terms: dict[str, torch.Tensor] = {}
        terms["landmark"], _ = self._landmark_term(params, vertices, target)
        terms["pixel"] = losses.pixel_loss(rendered.image, crops, rendered.mask)
        if identity_state is not None:
            judged = rendered.image
            if not self.config.identity_geometry and _geometry_moves(params):  # identity: texture and light only
                judged = self.render(params, vertices, texture, crops, geometry_grad=False).image
            descriptor, features = self.identity.embed(judged, identity_state["theta"])
            terms["identity"] = losses.identity_loss(descriptor, identity_state["descriptor"])
            terms["content"] = losses.content_loss(features, identity_state["features"])
            terms["moment"] = losses.moment_loss(features, identity_state["features"])
        terms["shape_prior"] = losses.shape_prior(params.ps)
        terms["expression_prior"] = losses.expression_prior(params.pe)
        if params.pt is not None:
            terms["latent_prior"] = losses.latent_prior(params.pt)
        else:
            mask = self.uv_mask(texture.shape[-1])
            terms["texture_prior"] = losses.texture_prior(texture, mask, symmetry=self.config.texture_symmetry)
        terms["light_prior"] = losses.light_prior(light_of(params))
        return terms, rendered.image

    def _evaluate(self, params, crops, target, identity_state) -> dict[str, np.ndarray]:
        """Landmark error and (when rendering) pixel loss and identity cosine of the current parameters."""
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            vertices, projected = self.geometry(params)
            error = losses.landmark_error(projected, target)
            out["landmark_error_iod"] = error.cpu().numpy()
            out["landmark_error_px"] = (projected - target).norm(dim=-1).mean(1).cpu().numpy()
            if self.scene is not None:
                rendered = self.render(params, vertices, self.texture(params), crops)
                out["pixel"] = losses.pixel_loss(rendered.image, crops, rendered.mask).cpu().numpy()
                if identity_state is not None:
                    descriptor, _ = self.identity.embed(rendered.image, identity_state["theta"])
                    cosine = F.cosine_similarity(descriptor, identity_state["descriptor"], dim=-1)
                    out["identity_cosine"] = cosine.cpu().numpy()
        return out

    def _unwrap_texture(self, params: FitParameters, crops: torch.Tensor) -> None:
        """Start the free texture from the photo projected into UV space with the stage-1 geometry."""
        from ganfit.fitting.unwrap import UvUnwrapper, fill_texture

        assert params.uv_texture is not None
        resolution = params.uv_texture.shape[-1]
        if self._unwrapper is None or self._unwrapper.resolution != resolution:
            self._unwrapper = UvUnwrapper(self.face_model, resolution)
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            pixels = params.project(vertices)
            normals = self.face_model.vertex_normals(vertices) @ params.camera().rotation_matrix().transpose(1, 2)
            colour, weight = self._unwrapper.unwrap(crops, pixels, normals[..., 2])
            fallback = params.uv_texture[:, :, 0, 0].clone()  # the skin colour set by init_params
            params.uv_texture.copy_(fill_texture(colour, weight, fallback))

    def _search_latent(self, params, crops, target, identity_state) -> None:
        """Pick, per photo, the best of ``latent_candidates`` random latents (pixel + identity loss at stage-1 pose)."""
        count = max(1, self.config.latent_candidates)
        generator = torch.Generator().manual_seed(0)
        best_loss = torch.full((params.batch,), float("inf"), device=self.device)
        best = torch.zeros_like(params.pt)
        weights = self.config.full.weights
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            for _ in range(count):
                candidate = torch.randn(params.pt.shape, generator=generator).to(self.device)
                params.pt.copy_(candidate)
                rendered = self.render(params, vertices, self.texture(params), crops)
                loss = weights.get("pixel", 1.0) * losses.pixel_loss(rendered.image, crops, rendered.mask)
                if identity_state is not None:
                    descriptor, _ = self.identity.embed(rendered.image, identity_state["theta"])
                    loss = loss + weights.get("identity", 1.0) * losses.identity_loss(
                        descriptor, identity_state["descriptor"]
                    )
                better = loss < best_loss
                best[better] = candidate[better]
                best_loss = torch.where(better, loss, best_loss)
            params.pt.copy_(best)


APPEARANCE_GROUPS = ("texture", "light")


def _train_only(params: FitParameters, stage: StageConfig, groups: tuple[str, ...] | None) -> None:
    """Let only ``groups`` (None: every group with a learning rate in ``stage``) require gradients this step. The
    others get no gradient, so Adam leaves them and their moment estimates untouched, and no backward pass is spent
    on them (during the warm-up: none through the geometry)."""
    for name, tensors in params.groups().items():
        moving = stage.lr.get(name, 0.0) > 0 and (groups is None or name in groups)
        for tensor in tensors:
            tensor.requires_grad_(moving)


def _geometry_moves(params: FitParameters) -> bool:
    """Whether any shape, expression or camera parameter requires a gradient now."""
    groups = params.groups()
    return any(t.requires_grad for name in groups if name not in APPEARANCE_GROUPS for t in groups[name])


def light_of(params: FitParameters) -> dict[str, torch.Tensor]:
    """The light parameters of ``params`` as the dict :mod:`ganfit.fitting.shading` takes."""
    if params.sh is not None:
        return {"sh": params.sh}
    return {"ambient": params.ambient, "light_color": params.light_color, "light_dir": params.light_dir}


def _record(stage: str, step: int, terms: dict[str, torch.Tensor], total: torch.Tensor) -> dict[str, Any]:
    entry: dict[str, Any] = {"stage": stage, "step": step, "total": total.detach().cpu().numpy()}
    for name, value in terms.items():
        entry[name] = value.detach().cpu().numpy()
    return entry


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
