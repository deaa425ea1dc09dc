"""The detail texture: after the fit, the UV albedo at ``out_resolution`` built from the photo at its original
resolution, with the GAN albedo as the prior for what the photo does not show.

Per texel of the face model's UV layout (rasterised once per resolution by :class:`ganfit.fitting.unwrap.UvUnwrapper`)
the fitted mesh gives a 3-D point and normal; then:

* **visibility**: the fitted mesh is rasterised in the photo's own camera (``ganfit.render`` primitives, principal
  point and focal length in original-photo pixels); a texel is seen only when its camera distance is within
  ``depth_tolerance_mm`` of that depth buffer at its pixel, so a cheek hidden behind the nose is not seen even when
  its normal faces the camera;
* **confidence** = coverage x inside-photo x visible x facing ramp (cosine of normal and view direction) x
  silhouette ramp (distance from the render's outline, in inter-ocular distances) x skin mask
  (:mod:`ganfit.fitting.skin_mask`: background, hair beyond the face outline, eyes and mouth opening kept out),
  extended beyond the face outline to the pixels of the face's own skin colour joined to the face and below its top
  (neck, ears, the sides: ``skin_colour``), the eyes and mouth opening still out;
* **de-lighting**: the photo colour (bilinear, prefiltered to the texel footprint) divided by the fitted light's
  shading of the texel's normal (the renderer's own light model, ``ganfit.render.lighting``);
* **completion**: texels not seen take their mirror texel (``u <-> 1 - u``, a horizontal flip of the image), colour
  matched by a per-channel gain over the texels both sides saw; the rest the GAN albedo, upsampled, under a smooth
  per-texel gain carried out from the nearest seen texels (``gan_tone="local"``, :func:`locally_matched`;
  ``"gain"``: one gain fitted over all seen texels, as before session 14);
* **blending**: seen, mirrored and GAN layers are joined by a Laplacian-pyramid (multi-band) blend, so borders have
  no seam and the fine detail stops smoothly.

Units: colours in [0, 1] (linear, as the renderer uses them), NCHW with row 0 = v 0 = texture top; pixels of the
original photo (x right, y down, origin top-left, centres at +0.5); distances in mm.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

import ganfit.render as dr
from ganfit.face_model import FaceModel
from ganfit.fitting.shading import make_light
from ganfit.fitting.skin_mask import skin_colour_mask, skin_mask
from ganfit.fitting.unwrap import UvUnwrapper
from ganfit.landmarks.types import interocular_distance
from ganfit.render.camera import Camera

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetailConfig:
    """Options of :func:`build_detail_texture` (``texture.out_resolution`` sets ``out_resolution``)."""

    out_resolution: int = 1024  # side of the UV albedo written, texels
    work_side: int = 1024  # long side of the photo-space depth buffer and masks, pixels
    depth_tolerance_mm: float = 3.0  # a texel is seen when within this distance of the depth buffer, mm
    min_facing: float = 0.2  # cosine(normal, view) at which confidence starts to rise from 0
    full_facing: float = 0.55  # ... and reaches 1
    silhouette_ramp: float = 0.085  # confidence rises from 0 at the render's outline to 1 this far in (IOD units,
    # outer eye corners; 0.12 of the eye-centre distance before the project had one inter-ocular definition)
    min_shading: float = 0.2  # shading below this is clamped before dividing (deep shadow is not albedo)
    use_skin_mask: bool = True  # keep photo pixels outside the face outline and on eyes/mouth opening out
    skin_colour: bool = True  # ... except those of the face's own skin colour joined to it (neck, ears; not above it)
    skin_colour_sigmas: float = 3.0  # a pixel is skin-coloured within this many Mahalanobis units of the face's skin
    mirror: bool = True  # fill unseen texels from their mirror texel
    coarsest: int = 32  # the blend's coarsest pyramid level has this side (texels): its transition width
    gain_range: float = 1.5  # colour-matching gains are clamped to [1 / r, r]
    gan_tone: str = "local"  # GAN layer's colour: "local" (a smooth gain from the nearest seen texels) | "gain" (one)
    occlusion_sigmas: float = 3.5  # seen texels this many robust sigmas darker than the skin are occluder candidates
    occlusion_min_area: float = 0.02  # ... kept out when they form a blob of this fraction of the seen texels or more


@dataclass
class DetailTexture:
    """Result for one photo (all [C, R, R], row 0 = v 0).

    albedo        [3, R, R] the final albedo in [0, 1]
    gan           [3, R, R] the GAN albedo alone, upsampled to R
    confidence    [1, R, R] seen-weight of each texel in the photo (before mirroring), [0, 1]
    mirror        [1, R, R] weight of the mirror texel where the texel itself was not seen, [0, 1]
    coverage      [1, R, R] texels the face mesh uses (1) or not (0)
    """

    albedo: torch.Tensor
    gan: torch.Tensor
    confidence: torch.Tensor
    mirror: torch.Tensor
    coverage: torch.Tensor

    def seen_fraction(self, threshold: float = 0.5) -> float:
        """Fraction of the used texels seen with confidence above ``threshold``."""
        used = float(self.coverage.sum().clamp_min(1.0))
        return float(((self.confidence > threshold).float() * self.coverage).sum()) / used


_UNWRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def texel_unwrapper(face_model: FaceModel, resolution: int) -> UvUnwrapper:
    """The UV raster of ``face_model`` at ``resolution`` (built once per model and resolution)."""
    cache = _UNWRAPPERS.setdefault(face_model, {})
    if resolution not in cache:
        cache[resolution] = UvUnwrapper(face_model, resolution)
    return cache[resolution]


def push_pull(colour: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Extend ``colour`` [B, C, H, W] smoothly beyond where ``weight`` [B, 1, H, W] (in [0, 1]) is 1: a weighted
    image pyramid whose coarse estimates are blended in where the weight is below 1."""
    weight = weight.clamp(0.0, 1.0)
    if min(colour.shape[-2:]) <= 1 or bool((weight >= 1).all()):
        return colour
    total = F.avg_pool2d(weight, 2, ceil_mode=True)
    coarse = F.avg_pool2d(colour * weight, 2, ceil_mode=True) / total.clamp_min(1e-6)
    coarse = push_pull(coarse, (total * 4.0).clamp(0.0, 1.0))
    up = F.interpolate(coarse, size=colour.shape[-2:], mode="bilinear", align_corners=False)
    return weight * colour + (1.0 - weight) * up


def laplacian_blend(images: list[torch.Tensor], masks: list[torch.Tensor], levels: int) -> torch.Tensor:
    """Multi-band blend (Burt & Adelson): each Laplacian band of the ``images`` [B, C, H, W] is averaged with the
    matching Gaussian level of their ``masks`` [B, 1, H, W] (non-negative; normalised here), so sharp borders between
    masks become transitions as wide as each band's wavelength. ``levels`` pyramid levels below full resolution."""
    count, channels = len(images), images[0].shape[1]
    stacked = torch.cat(images, 1)  # [B, N * C, H, W]: one pyramid for all layers
    weights = torch.cat(masks, 1)
    weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-6)  # sums to 1, and so does every pooled level
    gaussians, mask_levels = [stacked], [weights]
    for _ in range(levels):
        gaussians.append(F.avg_pool2d(gaussians[-1], 2, ceil_mode=True))
        mask_levels.append(F.avg_pool2d(mask_levels[-1], 2, ceil_mode=True))

    def up(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(image, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def mix(level: int, bands: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = bands.shape
        weighted = bands.view(batch, count, channels, height, width) * mask_levels[level][:, :, None]
        return weighted.sum(1)

    out = mix(levels, gaussians[levels])
    for level in range(levels - 1, -1, -1):
        out = up(out, gaussians[level]) + mix(level, gaussians[level] - up(gaussians[level + 1], gaussians[level]))
    return out


def _gain(target: torch.Tensor, source: torch.Tensor, weight: torch.Tensor, limit: float) -> torch.Tensor:
    """Per-channel gain [1, C, 1, 1] making the ``weight``-averaged ``source`` match ``target`` (clamped)."""
    mass = weight.sum()
    if float(mass) < 16.0:  # too little overlap to judge colour: leave it
        return torch.ones(1, target.shape[1], 1, 1, dtype=target.dtype)
    ratio = (target * weight).sum((0, 2, 3)) / (source * weight).sum((0, 2, 3)).clamp_min(1e-6)
    return ratio.clamp(1.0 / limit, limit).reshape(1, -1, 1, 1)


def locally_matched(
    gan: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor, factor: int, limit: float
) -> torch.Tensor:
    """The GAN layer for the texels the photo does not show: the GAN albedo under a smooth per-texel colour gain.

    One gain fitted over all seen texels (``"gain"``) leaves the GAN's own colour wherever it differs locally from
    the photo — a lip rim paler than the photo's lips, a greyer neck — and the blend carries that difference into
    the seen texels next to the holes. Here the ratio ``observed / GAN`` of the seen texels (``weight`` > 0.5,
    clamped to [1 / limit, limit] after the global gain) is pushed out over the unseen ones (:func:`push_pull`) and
    averaged over ``factor`` texels, so each unseen texel takes the GAN's detail at the colour balance of the seen
    skin nearest to it. All [1, 3, R, R] in [0, 1]; ``weight`` [1, 1, R, R]."""
    base = gan * _gain(observed, gan, weight, limit)
    ratio = (observed / base.clamp_min(0.02)).clamp(1.0 / limit, limit)
    field = push_pull(ratio, (weight > 0.5).to(ratio.dtype))  # only confidently seen texels set the gain
    mean = F.avg_pool2d(field, factor, ceil_mode=True)
    smooth = F.interpolate(mean, size=gan.shape[-2:], mode="bilinear", align_corners=False)
    return (base * smooth).clamp(0.0, 1.0)


def occluders(observed: torch.Tensor, confidence: torch.Tensor, config: DetailConfig) -> torch.Tensor:
    """Keep-weight [1, 1, R, R] in [0, 1]: 0 on large dark blobs over the seen skin (sunglasses, a hair fringe, a
    hand in shadow), 1 elsewhere. A blob is a connected set of seen texels whose de-lit luminance lies more than
    ``occlusion_sigmas`` robust standard deviations below the seen skin's median and that covers at least
    ``occlusion_min_area`` of the seen texels: thin dark features (eyebrows, lashes, nostrils) stay in."""
    seen = (confidence[0, 0] > 0.5).numpy()
    count = int(seen.sum())
    keep = torch.ones_like(confidence)
    if count < 64:
        return keep
    luminance = (observed[0] * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0).numpy()
    values = luminance[seen]
    median = float(np.median(values))
    sigma = max(1.4826 * float(np.median(np.abs(values - median))), 0.02)
    dark = (seen & (luminance < median - config.occlusion_sigmas * sigma)).astype(np.uint8)
    labels, components, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    large = [i for i in range(1, labels) if stats[i, cv2.CC_STAT_AREA] >= config.occlusion_min_area * count]
    if not large:
        return keep
    blobs = np.isin(components, large).astype(np.uint8)
    grow = max(1, round(3 * blobs.shape[0] / 256))
    blobs = cv2.dilate(blobs, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    soft = cv2.GaussianBlur(blobs.astype(np.float32), (0, 0), grow)
    return (1.0 - torch.from_numpy(np.clip(soft * 2.0, 0.0, 1.0)))[None, None]


def photo_weights(
    coverage: np.ndarray,
    landmarks: np.ndarray,
    scale: float,
    config: DetailConfig,
    photo: np.ndarray | None = None,
) -> np.ndarray:
    """Photo-space weight [h, w] float32 at the work scale: silhouette ramp of the render's ``coverage`` [h, w]
    (bool) times the skin mask of the (original-pixel) ``landmarks`` [68, 2]; with ``photo`` (uint8 [h, w, 3], the
    photo at the work scale) and ``config.skin_colour``, the skin mask is extended to the pixels of the face's own
    skin colour outside the face outline that are joined to the face and not above its top (neck, ears, the sides),
    the eyes and mouth opening still cut out."""
    iod = max(float(interocular_distance(np.asarray(landmarks))) * scale, 1.0)
    inside = cv2.distanceTransform(coverage.astype(np.uint8), cv2.DIST_L2, 5)
    weight = np.clip(inside / (config.silhouette_ramp * iod), 0.0, 1.0)
    if config.use_skin_mask:
        skin = skin_mask(coverage.shape, landmarks * scale)
        if config.skin_colour and photo is not None:
            holes = skin_mask(coverage.shape, landmarks * scale, face_outline=False)
            colour = skin_colour_mask(photo, skin, sigmas=config.skin_colour_sigmas) * holes
            rows = np.flatnonzero((skin >= 1.0).any(1))
            if rows.size:  # not above the face outline's top: there hair is often as dark as dark skin
                colour[: rows[0]] = 0.0
            skin = np.maximum(skin, colour * _attached(colour > 0.5, skin >= 1.0))
        weight = weight * skin
    return weight.astype(np.float32)


def _attached(region: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """float32 [h, w]: 1 on the connected parts of ``region`` (bool) that touch ``seed`` (bool), 0 elsewhere — the
    skin-coloured pixels joined to the face, not hair highlights or a beige wall apart from it."""
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[seed & region])
    touching = touching[touching > 0]
    return np.isin(labels, touching).astype(np.float32) if count > 1 else np.zeros(region.shape, np.float32)


def _prefiltered(photo: torch.Tensor, footprint: float) -> tuple[torch.Tensor, float]:
    """Photo [1, 3, H, W] area-downsampled so one texel covers about one pixel (no aliasing when the photo is much
    finer than the texture); returns it and its scale relative to the original."""
    factor = math.floor(footprint)
    if factor < 2:
        return photo, 1.0
    height, width = photo.shape[-2:]
    size = (max(1, height // factor), max(1, width // factor))
    return F.interpolate(photo, size=size, mode="bilinear", antialias=True, align_corners=False), 1.0 / factor


@torch.no_grad()
def build_detail_texture(
    face_model: FaceModel,
    vertices: torch.Tensor,
    camera: Camera,
    light: dict[str, torch.Tensor],
    photo: np.ndarray,
    landmarks: np.ndarray,
    gan_albedo: torch.Tensor,
    config: DetailConfig = DetailConfig(),
) -> DetailTexture:
    """Build the detail albedo of one fitted photo.

    Args:
        face_model: the morphable model of the fit.
        vertices: [V, 3] fitted model-space vertices, mm.
        camera: the fitted camera (batch of one) in original-photo pixels (``export.photo_camera``).
        light: the fitted light parameters of this photo (``FitParameters.light()``, batch 1: [1, 3] or
            ``sh`` [1, 9, 3]).
        photo: uint8 [H, W, 3] the original photo.
        landmarks: float [68, 2] detected iBUG-68 points, original-photo pixels.
        gan_albedo: [3, r, r] the GAN's (or free texture's) albedo in [0, 1].
        config: options.
    """
    size = config.out_resolution
    vertices = vertices.detach().float().cpu()
    unwrapper = texel_unwrapper(face_model, size)
    coverage = (unwrapper.rast[..., 3:4] > 0).float().permute(0, 3, 1, 2).cpu()  # [1, 1, R, R]

    photo_size = (int(photo.shape[0]), int(photo.shape[1]))
    camera = camera.detached()
    principal = camera.principal_point(photo_size).cpu()
    camera = Camera(camera.rotation.cpu(), camera.translation.cpu(), camera.focal.cpu(), principal)
    points = camera.to_camera(vertices[None])[0]  # [V, 3] camera space, mm
    normals = face_model.vertex_normals(vertices[None])[0].cpu() @ camera.rotation_matrix()[0].T
    per_vertex = torch.cat([points, normals], -1)[unwrapper.uv_vertex.cpu()][None].contiguous()
    texel, _ = dr.interpolate(per_vertex, unwrapper.rast.cpu(), unwrapper.uv_triangles.cpu())  # [1, R, R, 6]
    point, normal = texel[..., 0:3], F.normalize(texel[..., 3:6], dim=-1, eps=1e-8)
    facing = (normal * F.normalize(-point, dim=-1, eps=1e-8)).sum(-1)[:, None]
    facing_weight = ((facing - config.min_facing) / max(config.full_facing - config.min_facing, 1e-6)).clamp(0, 1)
    pixel = camera.camera_to_pixels(point, photo_size)  # [1, R, R, 2] original-photo pixels

    # Depth buffer of the fitted mesh in the photo's camera (work scale).
    height, width = photo_size
    scale = min(1.0, config.work_side / max(height, width))
    work = (max(1, round(height * scale)), max(1, round(width * scale)))
    triangles = face_model.triangles.to(torch.int32).cpu().contiguous()
    clip = camera.camera_to_clip(points[None], photo_size)[0]  # same NDC at the work size (same aspect)
    rast, _ = dr.rasterize(dr.RasterizeCpuContext(), clip[None].contiguous(), triangles, work)
    distance, _ = dr.interpolate((-points[:, 2:3])[None].contiguous(), rast, triangles)
    covered = rast[..., 3:4] > 0
    depth = torch.flip(distance * covered, dims=[1]).permute(0, 3, 1, 2)  # [1, 1, h, w] top row first
    grid = torch.stack([pixel[..., 0] / width * 2 - 1, pixel[..., 1] / height * 2 - 1], -1)  # [1, R, R, 2]
    buffer = F.grid_sample(depth, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    texel_distance = -point[..., 2][:, None]
    visible = ((buffer > 0) & (texel_distance <= buffer + config.depth_tolerance_mm)).float()
    inside = (grid.abs() <= 1).all(-1)[:, None].float()

    small = np.asarray(photo, np.uint8)
    if small.shape[:2] != work:
        small = cv2.resize(small, (work[1], work[0]), interpolation=cv2.INTER_AREA)
    covered_top_first = torch.flip(covered[0, ..., 0], dims=[0]).numpy()
    mask = photo_weights(covered_top_first, np.asarray(landmarks), scale, config, small)
    pixel_weight = F.grid_sample(
        torch.from_numpy(mask)[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    confidence = (coverage * inside * visible * facing_weight * pixel_weight).clamp(0.0, 1.0)

    # Photo colour, prefiltered to the texel footprint, divided by the fitted shading.
    image = torch.from_numpy(np.array(photo, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    seen = confidence[0, 0] > 0.5
    footprint = 1.0
    if int(seen.sum()) > 16:
        step = (pixel[0, :, 1:] - pixel[0, :, :-1]).norm(dim=-1)[seen[:, 1:] & seen[:, :-1]]
        footprint = float(step.median()) if step.numel() else 1.0
    image, k = _prefiltered(image, footprint)
    colour = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lighting = make_light({name: value.detach().float().cpu() for name, value in light.items()})
    shading = lighting.shade(torch.ones_like(normal), normal).clamp_min(config.min_shading).permute(0, 3, 1, 2)
    observed = (colour / shading).clamp(0.0, 1.0)
    if config.occlusion_sigmas > 0:
        confidence = confidence * occluders(observed, confidence, config)

    # Layers: seen, mirrored (gain-matched), GAN (upsampled, gain-matched).
    extended = push_pull(observed, (confidence / 0.25).clamp(0.0, 1.0))
    flipped_confidence = confidence.flip(-1)
    mirror_weight = flipped_confidence * (1.0 - confidence) if config.mirror else torch.zeros_like(confidence)
    mirrored = extended.flip(-1)
    both = confidence * flipped_confidence
    mirrored = (mirrored * _gain(observed, observed.flip(-1), both, config.gain_range)).clamp(0.0, 1.0)
    gan = F.interpolate(
        gan_albedo.detach().float().cpu()[None], size=(size, size), mode="bicubic", align_corners=False
    ).clamp(0.0, 1.0)
    levels = max(0, int(round(math.log2(size / max(config.coarsest, 1)))))
    if config.gan_tone == "local":
        matched_gan = locally_matched(gan, observed, confidence * coverage, 2**levels, config.gain_range)
    elif config.gan_tone == "gain":
        matched_gan = (gan * _gain(observed, gan, confidence * coverage, config.gain_range)).clamp(0.0, 1.0)
    else:
        raise ValueError(f"gan_tone must be 'local' or 'gain', not {config.gan_tone!r}")
    rest = (1.0 - confidence - mirror_weight).clamp_min(0.0)
    albedo = laplacian_blend([extended, mirrored, matched_gan], [confidence, mirror_weight, rest], levels).clamp(
        0.0, 1.0
    )
    logger.debug(
        "detail texture %d^2: footprint %.2f px (photo x%.3f), seen %.3f",
        size,
        footprint,
        k,
        float((confidence > 0.5).float().mean()),
    )
    return DetailTexture(
        albedo=albedo[0], gan=gan[0], confidence=confidence[0], mirror=mirror_weight[0], coverage=coverage[0]
    )
