"""Public entry points: ``detect_faces`` / ``detect_face`` over the mediapipe and dlib backends.

Detectors are expensive to build (model loading), so each (backend, options) combination is built once per process
and reused (:func:`get_detector`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ganfit.image_io import as_rgb_uint8, read_image
from ganfit.landmarks.dlib_backend import DlibDetector
from ganfit.landmarks.mediapipe_backend import MediapipeDetector
from ganfit.landmarks.types import FaceDetection, FaceIndexError, NoFaceError

__all__ = ["BACKENDS", "Backend", "Detector", "detect_face", "detect_faces", "get_detector"]

Backend = Literal["mediapipe", "dlib"]
BACKENDS: tuple[str, ...] = ("mediapipe", "dlib")


class Detector(Protocol):
    backend: str

    def detect(self, image: np.ndarray) -> list[FaceDetection]: ...


def get_detector(backend: Backend = "mediapipe", **options: Any) -> Detector:
    """The cached detector for ``backend`` built with ``options``.

    ``options`` are keyword arguments of the backend's constructor:
    :class:`~ganfit.landmarks.mediapipe_backend.MediapipeDetector` or
    :class:`~ganfit.landmarks.dlib_backend.DlibDetector`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return _build_detector(backend, tuple(sorted(options.items())))


@lru_cache(maxsize=8)
def _build_detector(backend: str, options: tuple[tuple[str, Any], ...]) -> Detector:
    if backend == "mediapipe":
        return MediapipeDetector(**dict(options))
    return DlibDetector(**dict(options))


def _load(image: np.ndarray | str | os.PathLike[str], name: str | None) -> tuple[np.ndarray, str]:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image), name or str(Path(image))
    label = name or "image"
    return as_rgb_uint8(image, name=label), label


def detect_faces(
    image: np.ndarray | str | os.PathLike[str],
    backend: Backend = "mediapipe",
    *,
    name: str | None = None,  # how errors/logs name the image (defaults to the path, or "image" for arrays)
    **options: Any,  # backend constructor options, e.g. detector="cnn" for dlib (see get_detector)
) -> list[FaceDetection]:
    """Detect all faces, largest box first.

    Args:
        image: uint8 ``[H, W, 3]`` RGB array, or a photo path (read with :func:`ganfit.image_io.read_image`).
        backend: ``"mediapipe"`` (478-point mesh mapped to iBUG-68) or ``"dlib"`` (HOG + 68-point predictor).

    Returns:
        list of :class:`FaceDetection` (possibly empty), coordinates in pixels of ``image`` at full resolution.
    """
    array, _ = _load(image, name)
    faces = get_detector(backend, **options).detect(array)
    return sorted(faces, key=lambda f: f.area, reverse=True)


def detect_face(
    image: np.ndarray | str | os.PathLike[str],
    backend: Backend = "mediapipe",
    face_index: int = 0,
    *,
    name: str | None = None,  # how errors name the image (defaults to the path, or "image" for arrays)
    **options: Any,  # backend constructor options (see get_detector)
) -> FaceDetection:
    """The ``face_index``-th largest face (0 = largest).

    Raises:
        NoFaceError: no face found (the message names the image and the backend).
        FaceIndexError: fewer than ``face_index + 1`` faces found.
    """
    if face_index < 0:
        raise ValueError(f"face_index must be >= 0, got {face_index}")
    array, label = _load(image, name)
    faces = detect_faces(array, backend, name=label, **options)
    if not faces:
        raise NoFaceError(
            f"{label}: no face found by the {backend} detector ({array.shape[1]}x{array.shape[0]} px); "
            "use a photo with a clearly visible, roughly frontal face"
            + (
                ""
                if backend == "dlib"
                else ", or try the dlib detector (fit.py: landmarks=dlib; CLIs: --landmarks dlib)"
            ),
            label,
        )
    if face_index >= len(faces):
        raise FaceIndexError(
            f"{label}: face_index={face_index} requested but the {backend} detector found only {len(faces)} face(s)",
            label,
        )
    return faces[face_index]
