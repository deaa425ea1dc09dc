"""Which photo pixels may become texture: the face region from the detector's points, minus eyes and mouth opening.

The face model's UV layout reaches past what a photo shows reliably: its neck and upper forehead meet collars, hair
and background, and the texels at the rims of its eye and mouth holes see eyeballs, teeth and the mouth's inside
whenever the fit is off by a millimetre. Unwrapping those pixels teaches the texture GAN hair-coloured foreheads and
pink mouth rims. This mask keeps texels inside the detector's face outline and away from the eye and mouth openings;
what it removes is then completed from the mirror side or filled from the surrounding skin, like any unseen texel.

Two point sets work:

* mediapipe's dense mesh (478 points): the face oval, the inner lip loop and the two eye contours (index loops
  below, the same loops as mediapipe's ``FACEMESH_FACE_OVAL`` / ``FACEMESH_LIPS`` / ``FACEMESH_*_EYE`` edge sets);
* the 68 iBUG points (dlib): jaw + eyebrows (raised by the brow-to-eye distance, to include the lower forehead),
  inner lips 60-67 and eyes 36-41 / 42-47.

Margins scale with the inter-ocular distance (IOD) so the mask behaves the same at every photo size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ordered loops of mediapipe face-mesh indices (each consecutive pair is an edge of the named mediapipe set).
MEDIAPIPE_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
MEDIAPIPE_INNER_LIPS = (
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
)  # fmt: skip
MEDIAPIPE_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)  # subject's right
MEDIAPIPE_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)  # subject's left


@dataclass(frozen=True)
class SkinMaskConfig:
    """Margins of :func:`skin_mask`, in units of the inter-ocular distance (eye centre to eye centre)."""

    face_margin: float = 0.04  # the mask starts this far inside the face outline
    face_ramp: float = 0.10  # ... and reaches 1 this much further in
    eye_margin: float = 0.05  # the mask is 0 up to this far outside the eye contours (lashes, eyeball)
    mouth_margin: float = 0.015  # ... and this far outside the inner lip contour (teeth, mouth inside)
    hole_ramp: float = 0.04  # ... and reaches 1 this much further out


def _iod(landmarks: np.ndarray) -> float:
    """Inter-ocular distance (pixels) of iBUG-68 points: between the two eye centres."""
    return float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))


def _polygons(landmarks: np.ndarray, dense: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(face outline [N, 2], inner mouth outline [M, 2], [eye outlines]) in pixels."""
    if dense is not None and len(dense) >= 468:
        face = dense[list(MEDIAPIPE_FACE_OVAL)]
        eyes = [dense[list(loop)] for loop in (MEDIAPIPE_RIGHT_EYE, MEDIAPIPE_LEFT_EYE)]
        return face, dense[list(MEDIAPIPE_INNER_LIPS)], eyes
    brows = landmarks[17:27][::-1]
    eye_y = landmarks[36:48, 1].mean()
    raised = brows.copy()
    raised[:, 1] -= np.abs(eye_y - brows[:, 1].mean())  # the lower forehead, above the brows
    face = np.concatenate([landmarks[0:17], raised])
    return face, landmarks[60:68], [landmarks[36:42], landmarks[42:48]]


def skin_mask(
    shape: tuple[int, int],
    landmarks: np.ndarray,
    dense: np.ndarray | None = None,
    config: SkinMaskConfig = SkinMaskConfig(),
    face_outline: bool = True,
) -> np.ndarray:
    """Soft mask of the photo pixels that may become texture.

    Args:
        shape: (H, W) of the photo, pixels.
        landmarks: float [68, 2] iBUG-68 points (x, y) in pixels of the photo (continuous convention).
        dense: optional float [478, 2] mediapipe mesh points in the same pixels; used when given.
        config: margins.
        face_outline: False: only the eye and mouth holes are cut out (1 everywhere else, outside the face too).
    Returns:
        float32 [H, W] in [0, 1]: 1 on skin well inside the face, 0 outside it and on/near the eyes and mouth opening.
    """
    import cv2

    height, width = shape
    iod = max(_iod(np.asarray(landmarks, dtype=np.float64)), 1.0)
    face, mouth, eyes = _polygons(np.asarray(landmarks, dtype=np.float64), None if dense is None else np.asarray(dense))

    def fill(polygons: list[np.ndarray]) -> np.ndarray:
        canvas = np.zeros((height, width), dtype=np.uint8)
        # cv2 pixel centres are integers; ours are at +0.5. 4 fractional bits keep sub-pixel accuracy.
        points = [np.round((p - 0.5) * 16).astype(np.int32) for p in polygons]
        cv2.fillPoly(canvas, points, 1, lineType=cv2.LINE_8, shift=4)
        return canvas

    weight = np.ones((height, width), np.float32)
    if face_outline:
        inside_face = cv2.distanceTransform(fill([face]), cv2.DIST_L2, 5)  # distance to the nearest pixel outside
        weight = np.clip((inside_face - config.face_margin * iod) / (config.face_ramp * iod), 0.0, 1.0)
    for holes, margin in ((eyes, config.eye_margin), ([mouth], config.mouth_margin)):
        outside = cv2.distanceTransform(1 - fill(holes), cv2.DIST_L2, 5)  # distance to the nearest hole pixel
        weight = weight * np.clip((outside - margin * iod) / (config.hole_ramp * iod), 0.0, 1.0)
    return weight.astype(np.float32)


def skin_colour_mask(image: np.ndarray, face: np.ndarray, sigmas: float = 3.0, ramp: float = 1.0) -> np.ndarray:
    """Soft mask of the pixels whose colour is the face's skin colour, float32 [H, W] in [0, 1].

    The colour model is a Gaussian in RGB fitted to the pixels where ``face`` (e.g. :func:`skin_mask`) is 1; a pixel
    counts fully within ``sigmas`` Mahalanobis units of it and falls to 0 over ``ramp`` more. Neck and ears (skin
    beyond the face outline) pass, a backdrop, hair or clothes of another colour do not.

    Args:
        image: uint8 [H, W, 3] RGB.
        face: float [H, W] in [0, 1], the pixels that are surely skin.
    """
    skin = image[face >= 1.0].astype(np.float64) / 255.0
    if len(skin) < 16:
        return np.zeros(image.shape[:2], np.float32)
    mean = skin.mean(0)
    covariance = np.cov(skin.T) + np.eye(3) * 1e-5
    offset = image.reshape(-1, 3).astype(np.float64) / 255.0 - mean
    distance = np.sqrt(np.einsum("ni,ij,nj->n", offset, np.linalg.inv(covariance), offset)).reshape(image.shape[:2])
    return np.clip((sigmas + ramp - distance) / ramp, 0.0, 1.0).astype(np.float32)
