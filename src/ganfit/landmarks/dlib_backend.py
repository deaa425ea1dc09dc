"""dlib backend: HOG (or CNN/MMOD) face detector + the 68-point shape predictor from ``face-recognition-models``.

Model files come from the PyPI package ``face-recognition-models`` (CC0 package; the 68-point predictor was trained on
iBUG 300-W, whose terms exclude commercial use). ``import face_recognition_models`` fails on recent setuptools (it
imports ``pkg_resources``), so the files are located through ``importlib.util.find_spec``.

dlib returns integer pixel indices; this backend adds 0.5 so points follow the project's continuous convention
(centre of the top-left pixel at (0.5, 0.5)). A dlib rectangle ``[left, right] x [top, bottom]`` (inclusive pixel
indices) becomes the continuous box ``(left, top, right + 1, bottom + 1)``.

Large images are detected on a downscaled copy (``ganfit.image_io.downscale_for_detection``); the shape predictor
then runs on the full-resolution image inside the box mapped back, so landmarks keep full precision.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal

import numpy as np

from ganfit.assets import AssetNotFoundError, packaged_model_file
from ganfit.image_io import DETECTION_MAX_SIDE, downscale_for_detection
from ganfit.landmarks.types import FaceDetection, LandmarkModelNotFoundError

__all__ = ["DlibDetector", "find_dlib_model"]

logger = logging.getLogger(__name__)

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR = "mmod_human_face_detector.dat"


def find_dlib_model(filename: str) -> Path:
    """Path of a model file shipped by the PyPI package ``face-recognition-models`` (without importing it).

    Raises:
        LandmarkModelNotFoundError: the package is not installed or does not contain ``filename``.
    """
    try:
        return packaged_model_file(filename)
    except AssetNotFoundError as error:
        raise LandmarkModelNotFoundError(f"dlib model {filename!r}: {error}") from error


class DlibDetector:
    """dlib face detector + 68-point shape predictor. Build once and reuse (loading the predictor takes ~1 s).

    Calls are serialised with a lock (dlib objects are not documented as thread-safe).
    """

    backend = "dlib"

    def __init__(
        self,
        detector: Literal["hog", "cnn"] = "hog",  # HOG (fast, frontal) or MMOD CNN (slow on CPU, more robust)
        upsample: int | None = None,  # detector upsampling passes; None = 0, retried with 1 if nothing found
        max_side: int = DETECTION_MAX_SIDE,  # detect on a downscaled copy when the long side exceeds this, pixels
        adjust_threshold: float = 0.0,  # HOG score threshold offset (lower finds more, less certain, faces)
    ) -> None:
        import dlib  # imported here so the package works without dlib when another backend is used

        if detector not in ("hog", "cnn"):
            raise ValueError(f"DlibDetector: detector must be 'hog' or 'cnn', got {detector!r}")
        self.detector_kind = detector
        self.upsample = upsample
        self.max_side = max_side
        self.adjust_threshold = adjust_threshold
        self._dlib = dlib
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(find_dlib_model(CNN_DETECTOR)))
        self._predictor = dlib.shape_predictor(str(find_dlib_model(SHAPE_PREDICTOR_68)))
        self._lock = threading.Lock()

    def _detect_boxes(self, image: np.ndarray, upsample: int) -> list[tuple[tuple[float, float, float, float], float]]:
        """Boxes (continuous pixels of ``image``) and scores."""
        if self.detector_kind == "hog":
            rects, scores, _ = self._detector.run(image, upsample, self.adjust_threshold)
            pairs = list(zip(rects, scores, strict=True))
        else:
            pairs = [(d.rect, d.confidence) for d in self._detector(image, upsample)]
        return [
            ((float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1)), float(s)) for r, s in pairs
        ]

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """All faces in ``image`` (uint8 ``[H, W, 3]`` RGB, C-contiguous), unordered, in its pixels."""
        view = downscale_for_detection(image, self.max_side)
        with self._lock:
            upsample = 0 if self.upsample is None else self.upsample
            boxes = self._detect_boxes(view.image, upsample)
            if not boxes and self.upsample is None:
                boxes = self._detect_boxes(view.image, 1)
            faces = []
            for small_box, score in boxes:
                box = view.box_to_original(small_box)
                rect = self._dlib.rectangle(
                    int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1
                )
                shape = self._predictor(image, rect)
                points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32) + np.float32(0.5)
                faces.append(FaceDetection(box=box, score=score, landmarks=points, dense=None, backend=self.backend))
        return faces
