"""GANFIT loss terms. Every function returns a per-photo loss ``[B]`` (float32) so a batch of photos is one
optimisation whose photos do not influence each other; the fitter weights and sums them and logs each separately.

Image conventions: images are float32 [B, 3, H, W] in [0, 1] (NCHW, row 0 = top), masks [B, 1, H, W] in [0, 1],
landmarks in pixels [B, 68, 2] (x right, y down, origin at the top-left corner).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganfit.fitting.params import SH_START_IRRADIANCE, SH_Y00
from ganfit.landmarks.types import interocular_distance

JAW_RIGHT = tuple(range(0, 8))  # iBUG jaw points on the subject's right (image left in a frontal photo)
JAW_LEFT = tuple(range(9, 17))  # iBUG jaw points on the subject's left
CHIN = 8


def face_size(landmarks: torch.Tensor) -> torch.Tensor:
    """Size of the face [B] in pixels: sqrt of the area of the 68 landmarks' bounding box (robust under yaw)."""
    extent = landmarks.amax(1) - landmarks.amin(1)
    return (extent[:, 0] * extent[:, 1]).clamp_min(1.0).sqrt()


def point_to_polyline(points: torch.Tensor, polyline: torch.Tensor) -> torch.Tensor:
    """Distance of each point to a polyline: points [B, P, 2], polyline [B, K, 2] (K >= 2 vertices) -> [B, P]."""
    start = polyline[:, :-1]  # [B, K-1, 2]
    segment = polyline[:, 1:] - start
    rel = points[:, :, None, :] - start[:, None]  # [B, P, K-1, 2]
    length2 = (segment * segment).sum(-1).clamp_min(1e-9)[:, None]  # [B, 1, K-1]
    t = ((rel * segment[:, None]).sum(-1) / length2).clamp(0.0, 1.0)
    closest = start[:, None] + t[..., None] * segment[:, None]
    distance2 = ((points[:, :, None, :] - closest) ** 2).sum(-1)
    return (distance2.min(-1).values + 1e-12).sqrt()


def landmark_loss(
    projected: torch.Tensor,
    detected: torch.Tensor,
    contour_right: torch.Tensor | None = None,
    contour_left: torch.Tensor | None = None,
    jaw_weight: float = 0.5,
    use_jaw: bool = True,
) -> torch.Tensor:
    """Mean squared 2-D landmark distance normalised by face size -> [B].

    Args:
        projected: [B, 68, 2] projected model landmarks, pixels.
        detected: [B, 68, 2] detected landmarks, pixels.
        contour_right / contour_left: [B, K, 2] projected jaw-contour candidate chains (face model's
            ``jaw_contour_right/left``, ordered from temple to chin). When given, the detected jaw points 0-7 / 9-16
            are compared with the nearest point of the projected chain instead of fixed vertices, so the outline
            slides to the silhouette when the head turns. The chin (8) always uses its fixed vertex.
        jaw_weight: weight of the 17 jaw points relative to the 51 inner points.
        use_jaw: False drops the jaw points (e.g. for the first rigid alignment).
    """
    size = face_size(detected)[:, None]
    inner = (((projected[:, 17:] - detected[:, 17:]) ** 2).sum(-1)) / size**2  # [B, 51]
    total = inner.sum(1)
    count = inner.shape[1]
    if use_jaw:
        if contour_right is not None and contour_left is not None:
            right = point_to_polyline(detected[:, list(JAW_RIGHT)], contour_right) ** 2
            left = point_to_polyline(detected[:, list(JAW_LEFT)], contour_left) ** 2
            chin = ((projected[:, CHIN] - detected[:, CHIN]) ** 2).sum(-1, keepdim=True)
            jaw = torch.cat([right, chin, left], dim=1) / size**2
        else:
            jaw = ((projected[:, :17] - detected[:, :17]) ** 2).sum(-1) / size**2
        total = total + jaw_weight * jaw.sum(1)
        count = count + jaw_weight * jaw.shape[1]
    return total / count


def dense_landmark_loss(
    projected: torch.Tensor,
    detected: torch.Tensor,
    size: torch.Tensor,
    point_weight: torch.Tensor,
    visibility: torch.Tensor,
) -> torch.Tensor:
    """Weighted mean squared distance of dense landmarks normalised by face size -> [B].

    Args:
        projected: [B, K, 2] projected model surface points, pixels.
        detected: [B, K, 2] the detector's points, pixels; NaN rows (no dense detection) count zero.
        size: [B] face size in pixels (:func:`face_size` of the 68 detected points).
        point_weight: [K] per-point weight (how well the detector localises each point).
        visibility: [B, K] in [0, 1]: 0 for points the face's other side hides (from the fitted normals).
    """
    valid = torch.isfinite(detected).all(-1)  # [B, K]
    difference = torch.where(valid[..., None], projected - detected.nan_to_num(0.0), torch.zeros_like(projected))
    squared = (difference**2).sum(-1) / size[:, None] ** 2  # [B, K]
    weight = point_weight[None] * visibility * valid.to(projected.dtype)
    return (weight * squared).sum(1) / weight.sum(1).clamp_min(1e-6)


def landmark_error(projected: torch.Tensor, detected: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean error over the 68 points divided by the detected inter-ocular distance (outer eye corners,
    ``ganfit.landmarks.types.interocular_distance``) -> [B] (a metric)."""
    return (projected - detected).norm(dim=-1).mean(1) / interocular_distance(detected).clamp_min(1.0)


def pixel_loss(rendered: torch.Tensor, photo: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute colour difference inside the rendered face region -> [B].

    ``rendered``/``photo`` [B, 3, H, W] in [0, 1]; ``mask`` [B, 1, H, W] (coverage of the face, 0 outside; times
    the photo's face mask with ``fitting.photo_mask``).
    """
    difference = (rendered - photo).abs().sum(1, keepdim=True) / 3.0
    return (difference * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp_min(1.0)


def identity_loss(descriptor_render: torch.Tensor, descriptor_photo: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between identity descriptors [B, D] -> [B] (descriptors need not be normalised)."""
    return 1.0 - F.cosine_similarity(descriptor_render, descriptor_photo.detach(), dim=-1)


def content_loss(features_render: dict[str, torch.Tensor], features_photo: dict[str, torch.Tensor]) -> torch.Tensor:
    """Distance between intermediate feature maps, averaged over taps -> [B].

    Each tap contributes ``mean((Fr - Fp)^2) / mean(Fp^2)`` (scale-free across layers).
    """
    terms = []
    for name, photo in features_photo.items():
        photo = photo.detach()
        render = features_render[name]
        dims = tuple(range(1, photo.ndim))
        terms.append(((render - photo) ** 2).mean(dims) / (photo**2).mean(dims).clamp_min(1e-8))
    return torch.stack(terms, 0).mean(0)


def _moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation over space of [B, C, H, W] (or [B, C]) features -> ([B, C], [B, C])."""
    if features.ndim == 2:
        return features, torch.zeros_like(features)
    flat = features.flatten(2)
    mean = flat.mean(-1)
    std = (flat.var(-1, unbiased=False) + 1e-8).sqrt()
    return mean, std


def moment_loss(features_render: dict[str, torch.Tensor], features_photo: dict[str, torch.Tensor]) -> torch.Tensor:
    """Distance of the channel-wise mean and std of the intermediate features, averaged over taps -> [B]."""
    terms = []
    for name, photo in features_photo.items():
        mean_p, std_p = _moments(photo.detach())
        mean_r, std_r = _moments(features_render[name])
        scale = (mean_p**2 + std_p**2).mean(1).clamp_min(1e-8)
        terms.append((((mean_r - mean_p) ** 2).mean(1) + ((std_r - std_p) ** 2).mean(1)) / scale)
    return torch.stack(terms, 0).mean(0)


def shape_prior(ps: torch.Tensor) -> torch.Tensor:
    """Gaussian prior on shape coefficients in std units: mean of ps^2 -> [B]."""
    return (ps**2).mean(1)


def expression_prior(pe: torch.Tensor) -> torch.Tensor:
    """Expression weights small and inside [0, 1]: mean of pe^2 plus a strong penalty outside the range -> [B]."""
    outside = F.relu(-pe) + F.relu(pe - 1.0)
    return (pe**2).mean(1) + 10.0 * (outside**2).sum(1)


def latent_prior(pt: torch.Tensor) -> torch.Tensor:
    """Keep a Gaussian latent [B, D] near the shell where N(0, I) samples live: (|pt| - sqrt(D))^2 / D -> [B]."""
    dim = pt.shape[1]
    return (pt.norm(dim=1) - math.sqrt(dim)) ** 2 / dim


def texture_prior(texture: torch.Tensor, mask: torch.Tensor | None = None, symmetry: float = 1.0) -> torch.Tensor:
    """Smoothness (total variation) + left/right symmetry of a free UV texture [B, 3, R, R] -> [B].

    The face model's UVs are mirror-symmetric in u (u <-> 1 - u), so symmetry is a horizontal flip of the image.
    ``mask`` [1, 1, R, R] restricts both terms to texels used by the mesh.
    """
    if mask is None:
        mask = torch.ones_like(texture[:1, :1])
    dx = (texture[..., :, 1:] - texture[..., :, :-1]).abs() * (mask[..., :, 1:] * mask[..., :, :-1])
    dy = (texture[..., 1:, :] - texture[..., :-1, :]).abs() * (mask[..., 1:, :] * mask[..., :-1, :])
    norm = mask.sum().clamp_min(1.0) * 3.0
    smooth = (dx.sum((1, 2, 3)) + dy.sum((1, 2, 3))) / norm
    both = mask * mask.flip(-1)
    sym = ((texture - texture.flip(-1)).abs() * both).sum((1, 2, 3)) / (both.sum() * 3.0).clamp_min(1.0)
    return smooth + symmetry * sym


def light_prior(light: dict[str, torch.Tensor]) -> torch.Tensor:
    """Keep light colours near grey (the albedo carries colour) and spherical-harmonic bands low -> [B].

    ``light`` has ``ambient``/``light_color`` [B, 3] (phong) or ``sh`` [B, 9, 3] (sh).
    """
    terms = []
    for key in ("ambient", "light_color"):
        if key in light:
            colour = light[key]
            terms.append(((colour - colour.mean(1, keepdim=True)) ** 2).sum(1) + F.relu(-colour).sum(1))
    if "sh" in light:
        sh = light["sh"]
        terms.append(((sh - sh.mean(2, keepdim=True)) ** 2).sum((1, 2)) + (sh[:, 1:] ** 2).sum((1, 2)) * 0.1)
    return torch.stack(terms, 0).sum(0)


def light_level(light: dict[str, torch.Tensor]) -> torch.Tensor:
    """The light's own level [B] relative to its starting value: the mean over RGB of ambient + directional colour
    (phong: a surface facing the light), or of the constant SH band as irradiance (sh), each divided by the value
    ``ganfit.fitting.params.FitParameters`` starts from (1.0 and 0.8)."""
    if "sh" in light:
        return light["sh"][:, 0].mean(-1) * SH_Y00 / SH_START_IRRADIANCE
    return (light["ambient"] + light["light_color"]).mean(-1)


def exposure_prior(
    log_gain: torch.Tensor,
    centre: torch.Tensor,
    light: dict[str, torch.Tensor],
    sigma: float,
    chroma_sigma: float,
    light_level_sigma: float,
) -> torch.Tensor:
    """Prior of the per-photo RGB gain -> [B]: Gaussian on its log level and log chroma about ``centre``, and the
    light's own level near 1 (so the exposure is the gain's, not the light's).

    Args:
        log_gain: [B, 3] log RGB gain.
        centre: [B, 3] the prior's centre (log units; e.g. :func:`grey_world_log_gain`).
        light: the light without the gain (``FitParameters.raw_light()``).
        sigma, chroma_sigma, light_level_sigma: prior stds of the level (mean of the log gains), of each log gain
            minus the level, and of the log of :func:`light_level`.
    """
    offset = log_gain - centre
    level = offset.mean(1)
    chroma = offset - level[:, None]
    own = torch.log(light_level(light).clamp_min(1e-4))
    return (level / sigma) ** 2 + ((chroma / chroma_sigma) ** 2).mean(1) + (own / light_level_sigma) ** 2


def grey_world_log_gain(
    crops: torch.Tensor,
    face: torch.Tensor,
    grey_level: float,
    max_log_gain: float,
    border: float = 0.2,
    level: bool = True,
    chroma: bool = True,
    max_log_level: float | None = None,
) -> torch.Tensor:
    """Grey-world estimate of the photos' exposure and colour cast from the surround of the face -> log gain [B, 3].

    The camera's exposure and white balance act on the whole photo, so the pixels around the face carry them too:
    the estimate is the mean colour of the crop's top, left and right bands (``border`` x the crop side wide; the
    bottom band is mostly neck and clothes) outside the face mask, over ``grey_level``. The face itself is left
    out so that a dark or light skin does not read as exposure.

    Args:
        crops: [B, 3, S, S] in [0, 1].
        face: [B, 1, S, S] in [0, 1], the face's skin mask.
        grey_level: the surround's mean colour that means a neutral exposure.
        max_log_gain: the estimate is clamped to +-this.
        border: width of the bands, fraction of the crop side.
        level / chroma: False zeros that part (the level: the mean of the 3 log gains; the chroma: the rest).
        max_log_level: the level is clamped to at most this (None: ``max_log_gain``); 0 reads a surround brighter
            than ``grey_level`` (a white backdrop, a window) as a neutral exposure, only a darker one as dim.
    """
    size = crops.shape[-1]
    width = max(1, round(border * size))
    bands = torch.zeros_like(face[:1])
    bands[..., :width, :] = 1.0
    bands[..., :, :width] = 1.0
    bands[..., :, size - width :] = 1.0
    surround = bands * (1.0 - face).clamp(0.0, 1.0)
    mean = (crops * surround).sum((2, 3)) / surround.sum((2, 3)).clamp_min(1.0)  # [B, 3]
    log_gain = torch.log(mean.clamp_min(1e-3) / grey_level)
    mean_level = log_gain.mean(1, keepdim=True)
    out = torch.zeros_like(log_gain)
    if level:
        out = out + mean_level.clamp(-max_log_gain, max_log_gain if max_log_level is None else max_log_level)
    if chroma:
        out = out + (log_gain - mean_level)
    return out.clamp(-max_log_gain, max_log_gain)
