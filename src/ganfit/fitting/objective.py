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

from ganfit.config.schema import FittingConfig, LossWeights
from ganfit.face_model import FaceModel
from ganfit.fitting import losses
from ganfit.fitting.params import FitParameters
from ganfit.fitting.shading import FaceScene, uv_coverage_mask
from ganfit.identity.judge import IdentityJudge, IdentityReference
from ganfit.render.pipeline import RenderOutput

APPEARANCE_GROUPS = ("texture", "light")
"""Parameter groups that change only how the face looks, not where it is (the warm-up moves only these)."""


@dataclass
class LossTerms:
    """One step's loss terms, each ``[B]`` or None where the term does not apply (no renderer, no identity network,
    GAN vs free texture). Field names are those of :class:`ganfit.config.LossWeights`, one to one."""

    identity: torch.Tensor | None = None
    content: torch.Tensor | None = None
    moment: torch.Tensor | None = None
    pixel: torch.Tensor | None = None
    landmark: torch.Tensor | None = None
    shape_prior: torch.Tensor | None = None
    expression_prior: torch.Tensor | None = None
    latent_prior: torch.Tensor | None = None
    texture_prior: torch.Tensor | None = None
    light_prior: torch.Tensor | None = None

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
    """

    def __init__(
        self,
        face_model: FaceModel,
        config: FittingConfig,
        texture: Callable[[FitParameters], torch.Tensor],
        scene: FaceScene | None = None,
        judges: Sequence[IdentityJudge] = (),
    ) -> None:
        self.face_model = face_model
        self.config = config
        self.texture = texture
        self.scene = scene
        self.judges = list(judges)
        self._uv_masks: dict[int, torch.Tensor] = {}

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

    def render(
        self,
        params: FitParameters,
        vertices: torch.Tensor,
        texture: torch.Tensor,
        background: torch.Tensor | None,
        geometry_grad: bool = True,
    ) -> RenderOutput:
        """Render the batch at the fitting resolution over ``background`` [B, 3, S, S] (black when None);
        ``geometry_grad=False`` keeps gradients from the vertices and the camera (texture and light only)."""
        if self.scene is None:
            raise RuntimeError("this objective has no renderer (landmark terms only)")
        size = (self.config.resolution, self.config.resolution)
        camera = params.camera()
        if not geometry_grad:
            vertices, camera = vertices.detach(), camera.detached()
        return self.scene.render(vertices, camera, texture, params.light(), background, size)

    def references(self, crops: torch.Tensor, target: torch.Tensor) -> list[IdentityReference]:
        """What each judge sees in the photos ``crops`` [B, 3, S, S] with landmarks ``target`` (no gradient)."""
        return [judge.reference(crops, target) for judge in self.judges]

    def uv_mask(self, resolution: int, device: torch.device) -> torch.Tensor:
        """[1, 1, R, R] texels used by the mesh."""
        if resolution not in self._uv_masks:
            self._uv_masks[resolution] = torch.from_numpy(uv_coverage_mask(self.face_model, resolution))[None, None]
        return self._uv_masks[resolution].to(device)

    # ------------------------------------------------------------------------------------------------- terms
    def alignment_terms(self, params: FitParameters, target: torch.Tensor) -> LossTerms:
        """Stage 1: landmarks and the shape/expression priors."""
        vertices = self.face_model(params.ps, params.pe)
        landmark, _ = self.landmark(params, vertices, target)
        return LossTerms(
            landmark=landmark,
            shape_prior=losses.shape_prior(params.ps),
            expression_prior=losses.expression_prior(params.pe),
        )

    def full_terms(
        self,
        params: FitParameters,
        crops: torch.Tensor,
        target: torch.Tensor,
        references: Sequence[IdentityReference],
    ) -> LossTerms:
        """Stage 2: identity, content, moment (averaged over the judges), pixel, landmark and the priors."""
        vertices = self.face_model(params.ps, params.pe)
        texture = self.texture(params)
        rendered = self.render(params, vertices, texture, crops)
        terms = LossTerms()
        terms.landmark, _ = self.landmark(params, vertices, target)
        terms.pixel = losses.pixel_loss(rendered.image, crops, rendered.mask)
        if self.judges:
            judged = rendered.image
            if not self.config.identity_geometry and _geometry_moves(params):  # identity: texture and light only
                judged = self.render(params, vertices, texture, crops, geometry_grad=False).image
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
        terms.light_prior = losses.light_prior(params.light())
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


def train_only(params: FitParameters, rates: dict[str, float], groups: tuple[str, ...] | None) -> None:
    """Let only ``groups`` (None: every group with a non-zero rate) require gradients this step. The others get no
    gradient, so Adam leaves them and their moment estimates untouched, and no backward pass is spent on them."""
    for name, tensors in params.groups().items():
        moving = rates.get(name, 0.0) > 0 and (groups is None or name in groups)
        for tensor in tensors:
            tensor.requires_grad_(moving)


def _geometry_moves(params: FitParameters) -> bool:
    """Whether any shape, expression or camera parameter requires a gradient now."""
    groups = params.groups()
    return any(t.requires_grad for name in groups if name not in APPEARANCE_GROUPS for t in groups[name])
