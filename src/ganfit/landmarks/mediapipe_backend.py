"""mediapipe backend: the 478-point face mesh bundled with mediapipe 0.10.21 (``mp.solutions.face_mesh``), offline.

Per face: the dense mesh (468 points + 10 refined iris points, ``refine_landmarks=True``) in pixels, the 68 iBUG
points through the project's mapping table (``ganfit.landmarks.mapping``), and a box + score from mediapipe's
full-range face detector (``mp.solutions.face_detection``, ``model_selection=1``) matched to the mesh by overlap.
A mesh without a matching detection gets the bounds of its points as box and score 0.0.

mediapipe reports coordinates normalised by the image width/height; ``x * W, y * H`` gives continuous pixel
coordinates (origin at the image's top-left corner), independent of the size the graph ran at, so large images are
simply processed on a downscaled copy and scaled back.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ganfit.image_io import DETECTION_MAX_SIDE, downscale_for_detection

from .mapping import MediapipeToIbugMap, load_mediapipe_map
from .types import FaceDetection

__all__ = ["DenseFace", "MediapipeDetector"]

logger = logging.getLogger(__name__)

NUM_DENSE = 478

DenseFace = tuple[tuple[float, float, float, float], float, np.ndarray]
"""(box (x0, y0, x1, y1) pixels, score, dense float32 [478, 2] pixels)."""


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MediapipeDetector:
    """mediapipe face mesh + face detector. Build once and reuse; calls are serialised with a lock."""

    backend = "mediapipe"

    def __init__(
        self,
        max_num_faces: int = 10,  # at most this many meshes per image
        min_detection_confidence: float = 0.5,  # mediapipe's face-detection threshold, probability
        max_side: int = DETECTION_MAX_SIDE,  # run on a downscaled copy when the long side exceeds this, pixels
        map_path: Path | None = None,  # mediapipe-to-iBUG68 table; None = the project's data/mediapipe_to_ibug68.json
    ) -> None:
        import mediapipe as mp  # imported here: heavy, and only needed for this backend

        self.max_side = max_side
        self.map_path = map_path
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=max_num_faces,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
        )
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_detection_confidence
        )
        self._lock = threading.Lock()

    @property
    def mapping(self) -> MediapipeToIbugMap:
        return load_mediapipe_map(self.map_path)

    def detect_dense(self, image: np.ndarray) -> list[DenseFace]:
        """All face meshes in ``image`` (uint8 ``[H, W, 3]`` RGB) as (box, score, dense ``[478, 2]``) in its pixels."""
        height, width = image.shape[:2]
        view = downscale_for_detection(image, self.max_side)
        with self._lock:
            mesh_result = self._mesh.process(view.image)
            detection_result = self._detector.process(view.image)
        scale = np.array([width, height], dtype=np.float64)
        detections = []
        for det in detection_result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0, y0 = rel.xmin * width, rel.ymin * height
            box = (x0, y0, x0 + rel.width * width, y0 + rel.height * height)
            detections.append((box, float(det.score[0])))
        faces: list[DenseFace] = []
        for mesh in mesh_result.multi_face_landmarks or []:
            normalised = np.array([[p.x, p.y] for p in mesh.landmark], dtype=np.float64)
            if normalised.shape[0] != NUM_DENSE:
                raise RuntimeError(f"mediapipe returned {normalised.shape[0]} mesh points, expected {NUM_DENSE}")
            dense = (normalised * scale).astype(np.float32)
            bounds = (
                float(dense[:, 0].min()),
                float(dense[:, 1].min()),
                float(dense[:, 0].max()),
                float(dense[:, 1].max()),
            )
            best = max(detections, key=lambda d: _iou(d[0], bounds), default=None)
            if best is not None and _iou(best[0], bounds) > 0.3:
                faces.append((tuple(float(v) for v in best[0]), best[1], dense))
            else:
                faces.append((bounds, 0.0, dense))
        return faces

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """All faces in ``image`` (uint8 ``[H, W, 3]`` RGB), unordered, with iBUG-68 landmarks in its pixels."""
        mapping = self.mapping
        return [
            FaceDetection(box=box, score=score, landmarks=mapping.apply(dense), dense=dense, backend=self.backend)
            for box, score, dense in self.detect_dense(image)
        ]
