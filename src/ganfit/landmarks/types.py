"""Result type, errors and iBUG-68 index sets shared by the landmark backends.

Pixel convention (project-wide): continuous coordinates, x right, y down, origin at the top-left corner of the image,
the centre of the top-left pixel at (0.5, 0.5).

iBUG-68 order (the 300-W / dlib convention; "left"/"right" below are as seen in the image, i.e. points 36-41 are the
subject's RIGHT eye, which appears on the image's left in a frontal photo):
    0-16 jaw (image left to right), 17-21 brow on the image left, 22-26 brow on the image right, 27-30 nose bridge
    (top to tip), 31-35 nostrils, 36-41 eye on the image left (36 outer corner), 42-47 eye on the image right
    (45 outer corner), 48-59 outer lip (48, 54 mouth corners), 60-67 inner lip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "IBUG_JAW",
    "IBUG_LEFT_IMAGE_EYE",
    "IBUG_MOUTH_CORNERS",
    "IBUG_NOSE_TIP",
    "IBUG_OUTER_EYE_CORNERS",
    "IBUG_RIGHT_IMAGE_EYE",
    "IBUG_BROWS",
    "IBUG_NOSE",
    "IBUG_OUTER_LIPS",
    "FaceDetection",
    "FaceIndexError",
    "LandmarkError",
    "LandmarkModelNotFoundError",
    "NoFaceError",
    "interocular_distance",
]

IBUG_JAW = tuple(range(0, 17))
IBUG_BROWS = tuple(range(17, 27))
IBUG_NOSE = tuple(range(27, 36))  # bridge, tip, nostrils
IBUG_OUTER_LIPS = tuple(range(48, 60))
IBUG_LEFT_IMAGE_EYE = tuple(range(36, 42))  # subject's right eye
IBUG_RIGHT_IMAGE_EYE = tuple(range(42, 48))  # subject's left eye
IBUG_NOSE_TIP = 30
IBUG_MOUTH_CORNERS = (48, 54)  # image-left corner, image-right corner
IBUG_OUTER_EYE_CORNERS = (36, 45)  # image-left eye's outer corner, image-right eye's outer corner


def interocular_distance(landmarks):
    """THE inter-ocular distance of the project (300-W's): between the outer eye corners, iBUG 36 and 45.

    ``landmarks`` [..., 68, 2] pixels (numpy or torch) -> [...] pixels. Every landmark error "in IOD" — the fit's
    metrics, the evaluations and the README — is divided by this.
    """
    difference = landmarks[..., IBUG_OUTER_EYE_CORNERS[0], :] - landmarks[..., IBUG_OUTER_EYE_CORNERS[1], :]
    return ((difference**2).sum(-1)) ** 0.5


class LandmarkError(Exception):
    """Base class of landmark-detection errors."""


class NoFaceError(LandmarkError):
    """No face was found in the image. ``image_name`` names the image (file path or the caller's label)."""

    def __init__(self, message: str, image_name: str | None = None) -> None:
        super().__init__(message)
        self.image_name = image_name


class FaceIndexError(NoFaceError, IndexError):
    """``face_index`` asks for a face beyond the number of faces found."""


class LandmarkModelNotFoundError(LandmarkError, FileNotFoundError):
    """A detector model file (dlib ``.dat``, the mediapipe-to-iBUG table) could not be located."""


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One detected face, in pixels of the image passed to the detector.

    Attributes:
        box: ``(x0, y0, x1, y1)`` float pixels (continuous convention), the backend detector's face box; it may
            extend beyond the image for a face cut by the border.
        score: detector confidence (backend-specific scale: mediapipe probability in [0, 1]; dlib HOG/CNN score,
            higher is more confident). ``0.0`` when the backend found the face without a scored detection.
        landmarks: float32 ``[68, 2]`` (x, y) pixels in iBUG-68 order.
        dense: float32 ``[N, 2]`` (x, y) pixels of the backend's dense point set (mediapipe: N = 478, the face mesh
            with refined iris points 468-477), or None (dlib).
        backend: name of the backend that produced it (``"mediapipe"`` or ``"dlib"``).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    dense: np.ndarray | None = None
    backend: str = field(default="")

    def __post_init__(self) -> None:
        if self.landmarks.shape != (68, 2) or self.landmarks.dtype != np.float32:
            raise ValueError(
                f"FaceDetection.landmarks must be float32 [68, 2], got {self.landmarks.dtype} "
                f"{tuple(self.landmarks.shape)}"
            )

    @property
    def area(self) -> float:
        """Box area in square pixels (used to order faces: largest first)."""
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def eye_centres(self) -> np.ndarray:
        """float32 ``[2, 2]``: mean of the six iBUG points of each eye, subject's right eye (image-left) first."""
        left = self.landmarks[list(IBUG_LEFT_IMAGE_EYE)].mean(axis=0)
        right = self.landmarks[list(IBUG_RIGHT_IMAGE_EYE)].mean(axis=0)
        return np.stack([left, right]).astype(np.float32)

    def pupils(self) -> np.ndarray:
        """float32 ``[2, 2]`` pupil estimates in the order of :meth:`eye_centres` (subject's right eye first).

        mediapipe: the refined iris centres (mesh points 468 and 473), about twice as accurate for the pupil as
        the eye-contour centroid (on frl-london: 1.9 % vs 3.6 % of the inter-pupil distance); other backends:
        :meth:`eye_centres` (whose centroid sits ~3.5-4 % of the pupil distance below the pupil).
        """
        if self.dense is not None and self.dense.shape[0] >= 478:
            return self.dense[[468, 473]].astype(np.float32)  # 468: subject's right iris, 473: left
        return self.eye_centres()

    def inter_ocular(self) -> float:
        """Distance in pixels between the outer eye corners (iBUG 36 and 45), the 300-W normaliser."""
        return float(np.linalg.norm(self.landmarks[45] - self.landmarks[36]))

    def five_points(self) -> np.ndarray:
        """float32 ``[5, 2]``: eye centres (image-left, image-right), nose tip, mouth corners (image-left, -right)."""
        eyes = self.eye_centres()
        rest = self.landmarks[[IBUG_NOSE_TIP, *IBUG_MOUTH_CORNERS]]
        return np.concatenate([eyes, rest]).astype(np.float32)
