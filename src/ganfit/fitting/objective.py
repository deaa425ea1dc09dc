"""GANFIT's objective: the loss terms of one optimisation step as a typed record, and their weighted total.

The loop (``ganfit.fitting.fitter``) knows nothing of the terms; it asks the objective for a stage's
:class:`LossTerms` and minimises ``terms.total(weights)``. Every term is a per-photo vector ``[B]``: the photos of a
batch do not influence each other (Adam is element-wise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from ganfit.config.compose import ConfigUsageError
from ganfit.config.schema import FittingConfig, LossWeights
from ganfit.face_model import FaceModel
from ganfit.fitting import losses
from ganfit.fitting.dense import DenseEmbedding, load_dense_embedding
from ganfit.fitting.params import FitParameters
from ganfit.fitting.shading import FaceScene, uv_coverage_mask
from ganfit.identity.judge import IdentityJudge, IdentityReference
from ganfit.render.pipeline import RenderOutput

APPEARANCE_GROUPS = ("texture", "light", "exposure")
DENSE_VISIBLE_COS = 0.1
"""A dense point counts fully once its surface normal's camera-z exceeds this plus :data:`DENSE_VISIBLE_RAMP`."""
DENSE_VISIBLE_RAMP = 0.2
"""Parameter groups that change only how the face looks, not where it is (the warm-up moves only these)."""


@dataclass
class LossTerms:
    """One step's loss terms, each ``[B]`` or None where the term does not apply (no renderer, no identity network,
    GAN vs free texture). Field names are those of :class:`ganfit.config.LossWeights`, one to one."""

    identity: torch.Tensor | None = None
    identity_random_view: torch.Tensor | None = None
    content: torch.Tensor | None = None
    moment: torch.Tensor | None = None
    pixel: torch.Tensor | None = None
    landmark: torch.Tensor | None = None
    dense_landmark: torch.Tensor | None = None
    shape_prior: torch.Tensor | None = None
    expression_prior: torch.Tensor | None = None
    latent_prior: torch.Tensor | None = None
    texture_prior: torch.Tensor | None = None
    light_prior: torch.Tensor | None = None
    exposure_prior: torch.Tensor | None = None

    def items(self) -> list[tuple[str, torch.Tensor]]:
        """The computed terms as (name, [B] tensor)."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]

    def total(self, weights: LossWeights) -> torch.Tensor:
        """Weighted sum ``[B]`` of the computed terms.

        Raises:
            ValueError: no computed term has a non-zero weight (the stage would optimise nothing).
        """
        total = None
        for name, value in self.items():
            weight = float(getattr(weights, name))
            if weight:
                total = value * weight if total is None else total + value * weight
        if total is None:
            raise ValueError(
                f"no weighted loss term among {[n for n, _ in self.items()]}: set weights in the fitting config"
            )
        return total

    def record(self, stage: str, step: int, total: torch.Tensor) -> dict[str, object]:
        """A history entry: ``{"stage", "step", "total": [B], term: [B], ...}`` as numpy arrays."""
        entry: dict[str, object] = {"stage": stage, "step": step, "total": total.detach().cpu().numpy()}
        for name, value in self.items():
            entry[name] = value.detach().cpu().numpy()
        return entry


assert [f.name for f in fields(LossTerms)] == [f.name for f in fields(LossWeights)], "terms and weights must match"


class Objective:
    """The fit's loss terms for a batch of photos.

    Args:
        face_model: the morphable model.
        config: the fitting preset (jaw weight, texture symmetry, identity_geometry, resolution).
        texture: ``texture(params) -> [B, 3, R, R]`` albedo in [0, 1] at the fitting size.
        scene: the renderer (None: landmark terms only).
        judges: identity networks; the identity/content/moment terms are averaged over them (empty: none).
        dense_embedding: the dense-landmark surface points (None: ``data/ict_dense_embedding.json``, read when a
            batch first brings dense detections).
    """

    def __init__(
        self,
        face_model: FaceModel,
        config: FittingConfig,
        texture: Callable[[FitParameters], torch.Tensor],
        scene: FaceScene | None = None,
        judges: Sequence[IdentityJudge] = (),
        dense_embedding: DenseEmbedding | None = None,
    ) -> None:
        self.face_model = face_model
        self.config = config
        self.texture = texture
        self.scene = scene
        self.judges = list(judges)
        self._uv_masks: dict[int, torch.Tensor] = {}
        self._dense = dense_embedding
        self._views = torch.Generator().manual_seed(int(config.random_view.seed))
        if int(config.random_view.every) < 1:
            raise ConfigUsageError(f"fitting.random_view.every must be at least 1, got {config.random_view.every}")

    @property
    def dense_embedding(self) -> DenseEmbedding:
        """The dense-landmark embedding (loaded on first use)."""
        if self._dense is None:
            self._dense = load_dense_embedding()
        return self._dense

    def reset_views(self) -> None:
        """Restart the randomised views' generator (each fit sees the same sequence of views)."""
        self._views.manual_seed(int(self.config.random_view.seed))

    # ------------------------------------------------------------------------------------------------ pieces
    def landmark(
        self, params: FitParameters, vertices: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Landmark loss [B] against ``target`` [B, 68, 2] (crop pixels) and the projected landmarks [B, 68, 2]."""
        fm = self.face_model
        projected = params.project(fm.landmarks(vertices))
        right = params.project(vertices[:, fm.jaw_contour_right])
        left = params.project(vertices[:, fm.jaw_contour_left])
        loss = losses.landmark_loss(projected, target, right, left, jaw_weight=self.config.jaw_weight)
        return loss, projected

    def dense_landmark(self, params: FitParameters, vertices: torch.Tensor, dense: torch.Tensor, target: torch.Tensor):
        """Dense-landmark loss [B] against ``dense`` [B, 478, 2] detected mesh points (crop pixels; NaN rows: none),
        normalised by the face size of ``target`` [B, 68, 2]. Points whose surface faces away from the camera (the
        fitted normal, no gradient) do not count."""
        embedding = self.dense_embedding
        points = embedding.points(vertices)  # [B, K, 3]
        projected = params.project(points)
        with torch.no_grad():
            corners = vertices[:, embedding.corner_ids.to(vertices.device)]  # [B, K, 3 corners, 3]
            normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
            normal = torch.nn.functional.normalize(normal, dim=-1) @ params.camera().rotation_matrix().transpose(1, 2)
            visibility = ((normal[..., 2] - DENSE_VISIBLE_COS) / DENSE_VISIBLE_RAMP).clamp(0.0, 1.0)
        detected = embedding.select(dense.to(projected))
        weight = embedding.point_weight.to(projected)
        return losses.dense_landmark_loss(projected, detected, losses.face_size(target), weight, visibility)

    def random_view_identity(
        self, params: FitParameters, texture: torch.Tensor, references: Sequence[IdentityReference]
    ) -> torch.Tensor:
        """GANFIT's second identity term [B]: 1 - cosine between the photo's descriptor and that of a render in a
        randomised view — head yaw/pitch about the face centre, a random expression, jittered light, over grey —
        aligned by that view's own projected landmarks. The camera and light get no gradient; the shape does unless
        ``random_view.geometry`` is false."""
        if self.scene is None:
            raise RuntimeError("this objective has no renderer")
        view = self.config.random_view
        fm, batch, generator = self.face_model, params.batch, self._views
        device = params.ps.device
        angles = (torch.rand(batch, 2, generator=generator) * 2.0 - 1.0) * torch.tensor([view.pitch_deg, view.yaw_deg])
        delta = _rotation_xy(torch.deg2rad(angles)).to(device)  # [B, 3, 3] camera-space head rotation
        active = torch.rand(batch, fm.num_expression, generator=generator) < view.expression_fraction
        pe = (torch.rand(batch, fm.num_expression, generator=generator) * view.expression_scale * active).to(device)
        jitter = 1.0 + (torch.rand(batch, 2, generator=generator) * 2.0 - 1.0) * view.light_jitter
        move = torch.randn(batch, 3, generator=generator) * view.light_jitter
        ps = params.ps if view.geometry else params.ps.detach()
        vertices = fm(ps, pe)
        camera = params.camera().detached()
        rotation = camera.rotation_matrix()  # [B, 3, 3] model -> camera
        centre = fm.landmarks(vertices).mean(1, keepdim=True).detach()
        # Model-space rotation R^T D R about the centre: the camera sees the head turned by D.
        turn = rotation.transpose(1, 2) @ delta @ rotation
        vertices = (vertices - centre) @ turn.transpose(1, 2) + centre
        light = _jitter_light(params.light(), jitter.to(device), move.to(device))
        size = (self.config.resolution, self.config.resolution)
        background = torch.full((batch, 3, *size), 0.5, device=device)
        image = self.scene.render(vertices, camera, texture, light, background, size).image
        landmarks = camera.project(fm.landmarks(vertices), size).detach()
        scores = []
        for judge, reference in zip(self.judges, references, strict=True):
            descriptor, _ = judge.embed(image, judge.align(landmarks, size))
            scores.append(losses.identity_loss(descriptor, reference.descriptor))
        return torch.stack(scores).mean(0)

    def random_view_due(self, step: int) -> bool:
        """Whether stage-2 step ``step`` computes the randomised-view identity term (every ``random_view.every``)."""
        return step % int(self.config.random_view.every) == 0

    def render(
        self,
        params: FitParameters,
        vertices: torch.Tensor,
        texture: torch.Tensor,
        background: torch.Tensor | None,
        appearance_copy: bool = False,
    ) -> RenderOutput:
        """Render the batch at the fitting resolution over ``background`` [B, 3, S, S] (black when None);
        ``appearance_copy=True`` also gives ``appearance_image``: the same image with gradients to the texture and
        the light only (none to the vertices or the camera), from the same rasterization."""
        if self.scene is None:
            raise RuntimeError("this objective has no renderer (landmark terms only)")
        size = (self.config.resolution, self.config.resolution)
        camera = params.camera()
        return self.scene.render(vertices, camera, texture, params.light(), background, size, appearance_copy)

    def references(self, crops: torch.Tensor, target: torch.Tensor) -> list[IdentityReference]:
        """What each judge sees in the photos ``crops`` [B, 3, S, S] with landmarks ``target`` (no gradient)."""
        return [judge.reference(crops, target) for judge in self.judges]

    def uv_mask(self, resolution: int, device: torch.device) -> torch.Tensor:
        """[1, 1, R, R] texels used by the mesh."""
        if resolution not in self._uv_masks:
            self._uv_masks[resolution] = torch.from_numpy(uv_coverage_mask(self.face_model, resolution))[None, None]
        return self._uv_masks[resolution].to(device)

    # ------------------------------------------------------------------------------------------------- terms
    def alignment_terms(
        self, params: FitParameters, target: torch.Tensor, dense: torch.Tensor | None = None
    ) -> LossTerms:
        """Stage 1: landmarks (68, and ``dense`` [B, 478, 2] mesh points when given) and the shape/expression
        priors."""
        vertices = self.face_model(params.ps, params.pe)
        landmark, _ = self.landmark(params, vertices, target)
        return LossTerms(
            landmark=landmark,
            dense_landmark=None if dense is None else self.dense_landmark(params, vertices, dense, target),
            shape_prior=losses.shape_prior(params.ps),
            expression_prior=losses.expression_prior(params.pe),
        )

    def full_terms(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        target: torch.Tensor,
        references: Sequence[IdentityReference],
        dense: torch.Tensor | None = None,
        photo_mask: torch.Tensor | None = None,
        step: int = 0,
    ) -> LossTerms:
        """Stage 2: identity, content, moment (averaged over the judges), the randomised-view identity (when its
        weight is set, on the steps ``step`` of stage 2 that are multiples of ``random_view.every``), pixel,
        landmark (and dense landmark, given ``dense`` [B, 478, 2]) and the priors.

        ``photo_mask`` [B, 1, S, S] (the photos' face masks, ``fitting.photo_mask``): the pixel loss counts only
        inside it, and the identity networks see the photo outside it, so where the model's ears, forehead or neck
        cover background or hair nothing pulls them towards it."""
        vertices = self.face_model(params.ps, params.pe)
        texture = self.texture(params)
        # identity_geometry=false: the identity networks judge the render with texture and light gradients only
        appearance_only = bool(self.judges) and not self.config.identity_geometry and _geometry_moves(params)
        rendered = self.render(params, vertices, texture, crops, appearance_copy=appearance_only)
        terms = LossTerms()
        terms.landmark, _ = self.landmark(params, vertices, target)
        if dense is not None:
            terms.dense_landmark = self.dense_landmark(params, vertices, dense, target)
        if self.judges and self.config.full.weights.identity_random_view > 0 and self.random_view_due(step):
            terms.identity_random_view = self.random_view_identity(params, texture, references)
        terms.pixel = losses.pixel_loss(rendered.image, crops, masked(rendered.mask, photo_mask))
        if self.judges:
            judged = rendered.appearance_image if rendered.appearance_image is not None else rendered.image
            if photo_mask is not None:
                judged = crops + photo_mask * (judged - crops)
            identity, content, moment = [], [], []
            for judge, reference in zip(self.judges, references, strict=True):
                descriptor, features = judge.embed(judged, reference.theta)
                identity.append(losses.identity_loss(descriptor, reference.descriptor))
                content.append(losses.content_loss(features, reference.features))
                moment.append(losses.moment_loss(features, reference.features))
            terms.identity = torch.stack(identity).mean(0)
            terms.content = torch.stack(content).mean(0)
            terms.moment = torch.stack(moment).mean(0)
        terms.shape_prior = losses.shape_prior(params.ps)
        terms.expression_prior = losses.expression_prior(params.pe)
        if params.pt is not None:
            terms.latent_prior = losses.latent_prior(params.pt)
        else:
            mask = self.uv_mask(texture.shape[-1], texture.device)
            terms.texture_prior = losses.texture_prior(texture, mask, symmetry=self.config.texture_symmetry)
        terms.light_prior = losses.light_prior(params.raw_light())
        if params.log_gain is not None:
            exposure = self.config.exposure
            terms.exposure_prior = losses.exposure_prior(
                params.log_gain,
                params.gain_centre,
                params.raw_light(),
                exposure.sigma,
                exposure.chroma_sigma,
                exposure.light_level_sigma,
            )
        return terms

    def evaluate(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        target: torch.Tensor,
        references: Sequence[IdentityReference],
    ) -> dict[str, np.ndarray]:
        """Per-photo figures of the current parameters: landmark error (inter-ocular units and crop pixels) and,
        when rendering, the pixel loss and the identity cosine (mean over the judges)."""
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            vertices = self.face_model(params.ps, params.pe)
            projected = params.project(self.face_model.landmarks(vertices))
            out["landmark_error_iod"] = losses.landmark_error(projected, target).cpu().numpy()
            out["landmark_error_px"] = (projected - target).norm(dim=-1).mean(1).cpu().numpy()
            if self.scene is not None:
                rendered = self.render(params, vertices, self.texture(params), crops)
                out["pixel"] = losses.pixel_loss(rendered.image, crops, rendered.mask).cpu().numpy()
                if self.judges:
                    cosines = []
                    for judge, reference in zip(self.judges, references, strict=True):
                        descriptor, _ = judge.embed(rendered.image, reference.theta)
                        cosines.append(torch.cosine_similarity(descriptor, reference.descriptor, dim=-1))
                    out["identity_cosine"] = torch.stack(cosines).mean(0).cpu().numpy()
        return out


def masked(mask: torch.Tensor, photo_mask: torch.Tensor | None) -> torch.Tensor:
    """The render's coverage ``mask`` [B, 1, S, S] times the photos' face mask (when given)."""
    return mask if photo_mask is None else mask * photo_mask


def train_only(params: FitParameters, rates: dict[str, float], groups: tuple[str, ...] | None) -> None:
    """Let only ``groups`` (None: every group with a non-zero rate) require gradients this step. The others get no
    gradient, so Adam leaves them and their moment estimates untouched, and no backward pass is spent on them."""
    for name, tensors in params.groups().items():
        moving = rates.get(name, 0.0) > 0 and (groups is None or name in groups)
        for tensor in tensors:
            tensor.requires_grad_(moving)


def _rotation_xy(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [B, 3, 3] of ``angles`` [B, 2] radians: pitch about x, then yaw about y (camera frame)."""
    pitch, yaw = angles[:, 0], angles[:, 1]
    zero, one = torch.zeros_like(pitch), torch.ones_like(pitch)
    rx = torch.stack([one, zero, zero, zero, pitch.cos(), -pitch.sin(), zero, pitch.sin(), pitch.cos()], -1)
    ry = torch.stack([yaw.cos(), zero, yaw.sin(), zero, one, zero, -yaw.sin(), zero, yaw.cos()], -1)
    return ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)


def _jitter_light(light: dict[str, torch.Tensor], scale: torch.Tensor, move: torch.Tensor) -> dict[str, torch.Tensor]:
    """A detached copy of ``light`` with colours scaled by ``scale`` [B, 2] (ambient / directional; SH: constant /
    higher bands) and the light direction moved by ``move`` [B, 3] (phong)."""
    if "sh" in light:
        sh = light["sh"].detach().clone()
        sh[:, :1] = sh[:, :1] * scale[:, :1, None]
        sh[:, 1:] = sh[:, 1:] * scale[:, 1:, None]
        return {"sh": sh}
    direction = torch.nn.functional.normalize(light["light_dir"].detach(), dim=-1) + move
    return {
        "ambient": light["ambient"].detach() * scale[:, :1],
        "light_color": light["light_color"].detach() * scale[:, 1:],
        "light_dir": direction,
    }


def _geometry_moves(params: FitParameters) -> bool:
    """Whether any shape, expression or camera parameter requires a gradient now."""
    groups = params.groups()
    return any(t.requires_grad for name in groups if name not in APPEARANCE_GROUPS for t in groups[name])
