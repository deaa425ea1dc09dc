"""Differentiable face alignment: 68 landmarks -> similarity transform -> aligned chip via ``grid_sample``.

Typical use in fitting (the transform is computed ONCE from the photo's landmarks and reused for the rendering, so
photo and rendering are cropped identically and gradients flow from the identity network back to the pixels):

>>> theta = estimate_alignment(photo_landmarks, (H, W), "dlib")        # [B, 2, 3], no grad needed
>>> photo_chips = warp_to_chip(photos, theta, 150)                     # [B, 3, 150, 150]
>>> render_chips = warp_to_chip(renders, theta, 150)                   # differentiable w.r.t. renders

Coordinates: image pixels are continuous (x right, y down, origin at the image's top-left corner, centre of the
top-left pixel at (0.5, 0.5)), the project-wide convention, which is also ``grid_sample(align_corners=False)``'s.

Templates
---------
``"dlib"`` (150 px, padding 0.25): exactly the geometry of ``dlib.get_face_chip(img, shape, 150, 0.25)`` for a 68-point
shape (dlib ``get_face_chip_details``): the least-squares similarity (``find_similarity_transform``, chip -> image)
between dlib's mean face shape (points 27-54 and 60-64 of iBUG-68: nose, eyes, upper lip; brows and lower lip are
ignored) mapped into the padded chip, and the landmarks. dlib then extracts the chip from a rectangle of side
``S * scale - 1`` pixels whose corner pixel centres map to the chip's corner pixel centres, i.e. the effective
image-pixels-per-chip-pixel is ``(S * scale - 1) / (S - 1)`` rather than ``scale``, about the chip centre; we
reproduce that. (dlib also samples from an image pyramid when shrinking; :func:`warp_to_chip` antialiases instead.)

``"arcface"`` (112 px): insightface's standard 5-point template (eye centres, nose tip, mouth corners) with the
similarity estimated from the image points to the template, as ``insightface.utils.face_align.norm_crop`` does
(skimage ``SimilarityTransform.estimate(landmarks, template)`` + ``cv2.warpAffine``); the 5 points are computed from
the 68 (eye centres = mean of each eye's 6 points, nose tip = 30, mouth corners = 48, 54).

``"arcface224"`` (224 px): the same five points scaled to 224 (:func:`arcface_template`), for the TF.js ``faceres``
networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ARCFACE224_TEMPLATE",
    "ARCFACE_TEMPLATE",
    "DLIB_TEMPLATE",
    "AlignmentTemplate",
    "arcface_template",
    "chip_to_image_matrix",
    "estimate_alignment",
    "get_template",
    "similarity_least_squares",
    "warp_to_chip",
]

# dlib get_face_chip_details: average positions of iBUG points 17..67 in a unit square
_DLIB_MEAN_FACE_X = (
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
)
_DLIB_MEAN_FACE_Y = (
    0.106454,
    0.038915,
    0.0187482,
    0.0344891,
    0.0773906,
    0.0773906,
    0.0344891,
    0.0187482,
    0.038915,
    0.106454,
    0.203352,
    0.307009,
    0.409805,
    0.515625,
    0.587326,
    0.609345,
    0.628106,
    0.609345,
    0.587326,
    0.216423,
    0.178758,
    0.179852,
    0.231733,
    0.245099,
    0.244077,
    0.231733,
    0.179852,
    0.178758,
    0.216423,
    0.244077,
    0.245099,
    0.780233,
    0.745405,
    0.727388,
    0.742578,
    0.727388,
    0.745405,
    0.780233,
    0.864805,
    0.902192,
    0.909281,
    0.902192,
    0.864805,
    0.784792,
    0.778746,
    0.785343,
    0.778746,
    0.784792,
    0.824182,
    0.831803,
    0.824182,
)
# the iBUG indices dlib uses: 17..67 without the brows (17-26) and the lower lip (55-59, 65-67)
_DLIB_IDS = tuple(i for i in range(17, 68) if not (17 <= i <= 26 or 55 <= i <= 59 or 65 <= i <= 67))

# insightface arcface_dst (112 x 112), in cv2 pixel-index coordinates
_ARCFACE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


@dataclass(frozen=True)
class AlignmentTemplate:
    """Where selected face points go in a square chip.

    Attributes:
        name: template name.
        chip_size: chip side S in pixels.
        points: ``[K, 2]`` target positions in continuous chip pixels.
        point_groups: for each of the K points, the iBUG-68 indices whose mean is the source point.
        direction: ``"template_to_image"`` (dlib: least squares fitted chip -> image) or ``"image_to_template"``
            (insightface: fitted image -> chip, then inverted).
        dlib_extraction_scale: apply dlib's ``(S * scale - 1) / (S - 1)`` extraction scale (see module docstring).
    """

    name: str
    chip_size: int
    points: tuple[tuple[float, float], ...]
    point_groups: tuple[tuple[int, ...], ...]
    direction: Literal["template_to_image", "image_to_template"]
    dlib_extraction_scale: bool = False

    def source_points(self, landmarks: Tensor) -> Tensor:
        """``landmarks [B, 68, 2]`` -> ``[B, K, 2]`` source points (means of each group)."""
        if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
            raise ValueError(f"landmarks must be [B, 68, 2] iBUG-68 pixels, got {tuple(landmarks.shape)}")
        return torch.stack([landmarks[:, list(g)].mean(dim=1) for g in self.point_groups], dim=1)


def _dlib_template(size: int = 150, padding: float = 0.25) -> AlignmentTemplate:
    pts = []
    for i in _DLIB_IDS:
        x = (padding + _DLIB_MEAN_FACE_X[i - 17]) / (2 * padding + 1) * size
        y = (padding + _DLIB_MEAN_FACE_Y[i - 17]) / (2 * padding + 1) * size
        # dlib's template is in pixel-index coordinates, as are dlib's landmarks; in continuous coordinates both move
        # by +0.5, which cancels in the chip -> image map except for the chip centre, handled in chip_to_image_matrix.
        pts.append((x, y))
    return AlignmentTemplate(
        name="dlib",
        chip_size=size,
        points=tuple(pts),
        point_groups=tuple((i,) for i in _DLIB_IDS),
        direction="template_to_image",
        dlib_extraction_scale=True,
    )


def arcface_template(size: int = 112, zoom: float = 1.0, name: str = "arcface") -> AlignmentTemplate:
    """insightface's 5-point template scaled to a ``size`` chip; ``zoom < 1`` shrinks the face about the chip centre
    (more context around it, as for networks trained on looser crops).

    Args:
        size: chip side in pixels (112 = insightface's own template).
        zoom: face scale relative to insightface's 112 layout.
        name: the template's name.
    """
    scale = size / 112.0
    centre = 56.0 * scale  # chip centre, in pixel-index coordinates of the scaled template (plus 0.5 below)
    pts = tuple(
        ((x * scale - centre) * zoom + centre + 0.5, (y * scale - centre) * zoom + centre + 0.5)
        for x, y in _ARCFACE_112
    )  # index -> continuous coordinates
    groups = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))
    return AlignmentTemplate(name, size, pts, groups, "image_to_template")


def _arcface_template(size: int = 112) -> AlignmentTemplate:
    return arcface_template(size)


DLIB_TEMPLATE = _dlib_template()
ARCFACE_TEMPLATE = _arcface_template()
#: insightface's layout at 224 px (faceres / faceres-deep; the zoom was chosen by measurement, docs/identity.md)
ARCFACE224_TEMPLATE = arcface_template(224, 1.0, "arcface224")
_TEMPLATES = {"dlib": DLIB_TEMPLATE, "arcface": ARCFACE_TEMPLATE, "arcface224": ARCFACE224_TEMPLATE}


def get_template(template: str | AlignmentTemplate) -> AlignmentTemplate:
    """``"dlib"`` / ``"arcface"`` / ``"arcface224"`` -> :class:`AlignmentTemplate` (templates pass through)."""
    if isinstance(template, AlignmentTemplate):
        return template
    try:
        return _TEMPLATES[template]
    except KeyError:
        raise ValueError(f"unknown alignment template {template!r}: use one of {sorted(_TEMPLATES)}") from None


def similarity_least_squares(src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
    """Closed-form least-squares similarity (rotation, uniform scale, translation; no reflection) ``dst ~ M src + t``.

    For 2-D points this is Umeyama's solution: with centred points ``x``, ``y``,
    ``a = sum(x . y) / sum|x|^2``, ``b = sum(x cross y) / sum|x|^2``, ``M = [[a, -b], [b, a]]``, ``t = mean(y) -
    M mean(x)``. Differentiable everywhere the source points are not all equal.

    Args:
        src, dst: ``[B, K, 2]``, K >= 2.
    Returns:
        ``M [B, 2, 2]`` and ``t [B, 2]``.
    """
    mu_s = src.mean(dim=1, keepdim=True)
    mu_d = dst.mean(dim=1, keepdim=True)
    x = src - mu_s
    y = dst - mu_d
    norm = (x * x).sum(dim=(1, 2))
    a = (x * y).sum(dim=(1, 2)) / norm
    b = (x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]).sum(dim=1) / norm
    m = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], dim=-2)
    t = mu_d[:, 0] - (m @ mu_s[:, 0, :, None])[..., 0]
    return m, t


def chip_to_image_matrix(landmarks: Tensor, template: str | AlignmentTemplate = "dlib") -> Tensor:
    """The affine map from continuous chip pixels to continuous image pixels, ``p_image = A[:, :2] q_chip + A[:, 2]``.

    Args:
        landmarks: ``[B, 68, 2]`` iBUG-68 landmarks in continuous image pixels.
        template: ``"dlib"``, ``"arcface"`` or an :class:`AlignmentTemplate`.
    Returns:
        ``[B, 2, 3]`` in the landmarks' dtype.
    """
    tpl = get_template(template)
    src = tpl.source_points(landmarks)
    tpts = torch.tensor(tpl.points, dtype=landmarks.dtype, device=landmarks.device).expand(src.shape[0], -1, -1)
    if tpl.direction == "template_to_image":
        m, t = similarity_least_squares(tpts, src)
    else:
        m_inv, t_inv = similarity_least_squares(src, tpts)
        m = torch.linalg.inv(m_inv)
        t = -(m @ t_inv[..., None])[..., 0]
    if tpl.dlib_extraction_scale:
        # dlib maps chip index (S-1)/2 (continuous S/2) to T(S/2, S/2) in image index coordinates, i.e. to T'(S/2, S/2)
        # in continuous ones, where T' (fitted here on continuous landmarks) = T + 0.5; it keeps T's rotation and
        # uses scale (S*s - 1)/(S - 1) around that point.
        size = float(tpl.chip_size)
        s = torch.sqrt(torch.linalg.det(m)).clamp_min(1e-12)
        centre = torch.full_like(t, size / 2)
        img_centre = (m @ centre[..., None])[..., 0] + t
        m = m * ((size * s - 1.0) / (size - 1.0) / s)[:, None, None]
        t = img_centre - (m @ centre[..., None])[..., 0]
    return torch.cat([m, t[..., None]], dim=-1)


def estimate_alignment(
    landmarks: Tensor | np.ndarray,
    image_size: tuple[int, int],
    template: str | AlignmentTemplate = "dlib",
) -> Tensor:
    """``theta`` for ``F.affine_grid`` that maps a chip of ``template`` to the image (align_corners=False).

    Args:
        landmarks: ``[B, 68, 2]`` (or ``[68, 2]``) iBUG-68 landmarks in continuous image pixels (float).
        image_size: ``(H, W)`` of the images the chips will be cut from.
        template: ``"dlib"`` (150 px) or ``"arcface"`` (112 px), or an :class:`AlignmentTemplate`.
    Returns:
        ``theta [B, 2, 3]`` (float32 for numpy input, else the landmarks' dtype); differentiable w.r.t. the landmarks.
    """
    lm = torch.as_tensor(landmarks)
    if not lm.is_floating_point():
        lm = lm.float()
    if lm.ndim == 2:
        lm = lm[None]
    tpl = get_template(template)
    height, width = image_size
    a = chip_to_image_matrix(lm, tpl)
    a3 = torch.cat([a, a.new_tensor([0.0, 0.0, 1.0]).expand(a.shape[0], 1, 3)], dim=1)
    s = float(tpl.chip_size)
    from_norm_chip = a.new_tensor([[s / 2, 0.0, s / 2], [0.0, s / 2, s / 2], [0.0, 0.0, 1.0]])
    to_norm_image = a.new_tensor([[2.0 / width, 0.0, -1.0], [0.0, 2.0 / height, -1.0], [0.0, 0.0, 1.0]])
    return (to_norm_image @ a3 @ from_norm_chip)[:, :2]


def _pixels_per_chip_pixel(theta: Tensor, image_size: tuple[int, int], chip_size: int) -> Tensor:
    """Per sample: image pixels per chip pixel (sqrt of the Jacobian determinant of chip -> image, in pixels)."""
    height, width = image_size
    det = theta[:, 0, 0] * theta[:, 1, 1] - theta[:, 0, 1] * theta[:, 1, 0]
    return torch.sqrt(det.abs() * (width / 2) * (height / 2)) / (chip_size / 2)


def warp_to_chip(images: Tensor, theta: Tensor, chip_size: int, antialias: bool = True) -> Tensor:
    """Cut aligned chips out of images with bilinear ``grid_sample`` (zeros outside the image), differentiably.

    Args:
        images: ``[B, 3, H, W]`` float (any range; [0, 1] for the identity networks), NCHW.
        theta: ``[B, 2, 3]`` from :func:`estimate_alignment` for these ``(H, W)``.
        chip_size: output side S (the network's ``chip_size``).
        antialias: when every chip shrinks the image by 2x or more, first shrink the images by ``2**k`` (bilinear
            with antialiasing, differentiable) so that 1 to 2 image pixels remain per chip pixel, like dlib's image
            pyramid; ``k`` is chosen for the least-shrinking chip of the batch. The chip geometry is unchanged
            (``theta`` is in normalised coordinates).
    Returns:
        ``[B, 3, S, S]`` in the images' dtype; gradients flow to ``images`` (and to ``theta``).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    if theta.shape != (images.shape[0], 2, 3):
        raise ValueError(f"theta must be [B, 2, 3] with B={images.shape[0]}, got {tuple(theta.shape)}")
    theta = theta.to(images.dtype)
    height, width = images.shape[-2:]
    if antialias:
        with torch.no_grad():
            factor = float(_pixels_per_chip_pixel(theta, (height, width), chip_size).min())
        levels = int(math.floor(math.log2(factor))) if factor > 0 else 0
        if levels >= 1:  # like dlib's pyramid: shrink by 2**levels so that 1 <= image px per chip px < 2
            size = (max(1, round(height / 2**levels)), max(1, round(width / 2**levels)))
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], chip_size, chip_size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
