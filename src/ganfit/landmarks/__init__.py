"""Face detection and 68-point (iBUG order) landmarks with two backends, ``mediapipe`` (default) and ``dlib``.

>>> from ganfit.image_io import read_image
>>> from ganfit.landmarks import detect_face
>>> face = detect_face(read_image("photo.jpg"), backend="mediapipe")
>>> face.landmarks.shape, face.box, face.score  # float32 [68, 2] pixels, (x0, y0, x1, y1), confidence

Coordinates are continuous pixels of the image passed in (x right, y down, centre of the top-left pixel at
(0.5, 0.5)), also for very large photos, which are detected on a downscaled copy. See ``docs/landmarks.md``.
"""

from ganfit.landmarks.api import BACKENDS, Backend, detect_face, detect_faces, get_detector
from ganfit.landmarks.types import (
    IBUG_JAW,
    IBUG_LEFT_IMAGE_EYE,
    IBUG_MOUTH_CORNERS,
    IBUG_NOSE_TIP,
    IBUG_RIGHT_IMAGE_EYE,
    FaceDetection,
    FaceIndexError,
    LandmarkError,
    LandmarkModelNotFoundError,
    NoFaceError,
)

__all__ = [
    "BACKENDS",
    "IBUG_JAW",
    "IBUG_LEFT_IMAGE_EYE",
    "IBUG_MOUTH_CORNERS",
    "IBUG_NOSE_TIP",
    "IBUG_RIGHT_IMAGE_EYE",
    "Backend",
    "FaceDetection",
    "FaceIndexError",
    "LandmarkError",
    "LandmarkModelNotFoundError",
    "NoFaceError",
    "detect_face",
    "detect_faces",
    "get_detector",
]
