"""mediapipe backend: the 478-point face mesh bundled with mediapipe 0.10.21 (``mp.solutions.face_mesh``), offline.

Per face: the dense mesh (468 points + 10 refined iris points, ``refine_landmarks=True``) in pixels, the 68 iBUG
points through the project's mapping table (``ganfit.landmarks.mapping``), and a box + score from mediapipe's
full-range face detector (``mp.solutions.face_detection``, ``model_selection=1``) matched to the mesh by overlap.
A mesh without a matching detection gets the bounds of its points as box and score 0.0. The face-mesh solution finds
faces with mediapipe's short-range detector, which misses faces that are small in the frame; faces that only the
full-range detector finds are meshed again on a full-resolution crop around them. The full-range detector also runs
on four overlapping tiles of the image so that faces down to ~1/10 of the frame width are found (measured: six
250 px faces on a 2400x1600 canvas are all found; 160 px faces are not).

mediapipe reports coordinates normalised by the image width/height; ``x * W, y * H`` gives continuous pixel
coordinates (origin at the image's top-left corner), independent of the size the graph ran at, so large images are
simply processed on a downscaled copy and scaled back.

mediapipe's C++ side (absl, TF Lite) writes log lines straight to file descriptor 2 (``W0000 ...
inference_feedback_manager.cc``, ``All log messages before absl::InitializeLog()``, ``INFO: Created TensorFlow Lite
XNNPACK delegate``); Python's logging cannot filter them, so fd 2 points to /dev/null while the graphs are created
and run (:func:`native_stderr_dropped`), unless ``GANFIT_VERBOSE=1`` (set by ``verbose=true``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ganfit.image_io import DETECTION_MAX_SIDE, downscale_for_detection
from ganfit.landmarks.mapping import MediapipeToIbugMap, load_mediapipe_map
from ganfit.landmarks.types import FaceDetection

__all__ = ["VERBOSE_ENV", "DenseFace", "MediapipeDetector", "native_logs_shown", "native_stderr_dropped"]

logger = logging.getLogger(__name__)

NUM_DENSE = 478

Box = tuple[float, float, float, float]
DenseFace = tuple[Box, float, np.ndarray]
"""(box (x0, y0, x1, y1) pixels, score, dense float32 [478, 2] pixels)."""


VERBOSE_ENV = "GANFIT_VERBOSE"
"""``GANFIT_VERBOSE=1`` keeps mediapipe's / TF Lite's C++ log lines (fit.py sets it for ``verbose=true``)."""

_redirect_lock = threading.Lock()
_redirect_depth = 0
_saved_fd: int | None = None


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: C stdio buffers (mediapipe's log lines sit in a buffered ``stderr``) written out now, so they
    land where fd 2 points at this moment, not after it is restored."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def native_logs_shown() -> bool:
    """True when the C++ log lines should reach the terminal (``GANFIT_VERBOSE`` is 1/true/yes/on)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def native_stderr_dropped() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (re-entrant, thread-safe), then restore it.

    Python's ``sys.stderr`` and C's stdio buffers are flushed on entry, so earlier messages still reach the
    terminal; C's buffers are flushed again before fd 2 is restored, so what C++ code wrote meanwhile (mediapipe's
    ``stderr`` is buffered) is dropped. A no-op when :func:`native_logs_shown` or when fd 2 is closed.
    """
    global _redirect_depth, _saved_fd
    if native_logs_shown():
        yield
        return
    with _redirect_lock:
        if _redirect_depth == 0:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            _flush_c_stdio()  # earlier C output goes to the real stderr
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 at all: nothing to protect
                saved = None
            if saved is not None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            _saved_fd = saved
        _redirect_depth += 1
    try:
        yield
    finally:
        with _redirect_lock:
            _redirect_depth -= 1
            if _redirect_depth == 0 and _saved_fd is not None:
                _flush_c_stdio()  # the block's C log lines, still buffered, go to /dev/null
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _saved_fd = None


_CROP_MAX_SIDE = 768  # face crops are meshed at most this large (the mesh model itself runs at 192x192)


def _to_pixels(landmarks: object, left: float, top: float, width: float, height: float) -> np.ndarray:
    """mediapipe normalised landmarks of a (crop of an) image -> float32 ``[478, 2]`` pixels of the full image."""
    normalised = np.array([[p.x, p.y] for p in landmarks], dtype=np.float64)  # type: ignore[attr-defined]
    if normalised.shape[0] != NUM_DENSE:
        raise RuntimeError(f"mediapipe returned {normalised.shape[0]} mesh points, expected {NUM_DENSE}")
    return (normalised * np.array([width, height]) + np.array([left, top])).astype(np.float32)


def _bounds(dense: np.ndarray) -> Box:
    """Bounding box ``(x0, y0, x1, y1)`` of points ``[N, 2]``."""
    return (float(dense[:, 0].min()), float(dense[:, 1].min()), float(dense[:, 0].max()), float(dense[:, 1].max()))


def _contains(box: Box, point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _iou(a: Box, b: Box) -> float:
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
        crop_missed: bool = True,  # re-run the mesh on a crop around faces only the full-range detector found
        tiles: bool = True,  # also run the full-range detector on 4 overlapping tiles (finds small faces)
        min_face_size: float = 32.0,  # ignore extra detections whose box is smaller than this, pixels
    ) -> None:
        with native_stderr_dropped():
            import mediapipe as mp  # imported here: heavy, and only needed for this backend

        self.max_side = max_side
        self.max_num_faces = max_num_faces
        self.map_path = map_path
        self.crop_missed = crop_missed
        self.tiles = tiles
        self.min_face_size = min_face_size
        with native_stderr_dropped():  # graph creation logs from C++ (TF Lite delegate, absl)
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=max_num_faces,
                refine_landmarks=True,
                min_detection_confidence=min_detection_confidence,
            )
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=min_detection_confidence
            )
            # The graphs open their TF Lite models on worker threads after construction (and log from there): a
            # first call on a blank frame waits for that, so the start-up lines are written while fd 2 is dropped.
            blank = np.zeros((64, 64, 3), np.uint8)
            self._mesh.process(blank)
            self._detector.process(blank)
        self._lock = threading.Lock()

    @property
    def mapping(self) -> MediapipeToIbugMap:
        return load_mediapipe_map(self.map_path)

    def detect_dense(self, image: np.ndarray) -> list[DenseFace]:
        """All face meshes in ``image`` (uint8 ``[H, W, 3]`` RGB) as (box, score, dense ``[478, 2]``) in its pixels.

        Two passes: the face mesh on the whole (possibly downscaled) image -- its internal detector is mediapipe's
        short-range model, which misses faces that are small in the frame -- and, for every face the full-range
        detector found that no mesh covers, the face mesh again on a full-resolution square crop around that face.
        """
        height, width = image.shape[:2]
        view = downscale_for_detection(image, self.max_side)
        with self._lock, native_stderr_dropped():
            mesh_result = self._mesh.process(view.image)
        detections = self._detect_boxes(view.image, width, height)
        meshes = [_to_pixels(m.landmark, 0.0, 0.0, width, height) for m in mesh_result.multi_face_landmarks or []]
        if self.crop_missed:
            for box, _ in sorted(detections, key=lambda d: -d[1]):
                if len(meshes) >= self.max_num_faces:
                    break
                if max(box[2] - box[0], box[3] - box[1]) < self.min_face_size:
                    continue
                centre = (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))
                if any(_iou(box, _bounds(dense)) > 0.3 or _contains(_bounds(dense), centre) for dense in meshes):
                    continue  # already meshed (a face cannot be centred inside another face)
                dense = self._mesh_in_crop(image, box)
                # A tile's detection of a face cut by the tile edge can point at an already meshed face: skip it.
                if dense is not None and all(_iou(_bounds(dense), _bounds(other)) <= 0.3 for other in meshes):
                    meshes.append(dense)
        faces: list[DenseFace] = []
        for dense in meshes:
            bounds = _bounds(dense)
            best = max(detections, key=lambda d: _iou(d[0], bounds), default=None)
            if best is not None and _iou(best[0], bounds) > 0.3:
                faces.append((tuple(float(v) for v in best[0]), best[1], dense))
            else:
                faces.append((bounds, 0.0, dense))
        return faces

    def _detect_boxes(self, small: np.ndarray, width: int, height: int) -> list[tuple[Box, float]]:
        """Full-range face detections (box in pixels of the ``width`` x ``height`` original, score).

        The detector sees the whole image at 192x192, so faces under ~1/10 of the frame are missed; with
        ``tiles`` it also runs on the four overlapping corner tiles (each 60% of the width and height), and
        duplicates (IoU > 0.3) keep the higher score.
        """
        h, w = small.shape[:2]
        regions = [(0, 0, w, h)]
        if self.tiles:
            tw, th = int(round(0.6 * w)), int(round(0.6 * h))
            regions += [(x, y, x + tw, y + th) for y in (0, h - th) for x in (0, w - tw)]
        found: list[tuple[Box, float]] = []
        for rx0, ry0, rx1, ry1 in regions:
            with self._lock, native_stderr_dropped():
                result = self._detector.process(np.ascontiguousarray(small[ry0:ry1, rx0:rx1]))
            for det in result.detections or []:
                rel = det.location_data.relative_bounding_box
                x0 = (rx0 + rel.xmin * (rx1 - rx0)) * width / w
                y0 = (ry0 + rel.ymin * (ry1 - ry0)) * height / h
                box = (x0, y0, x0 + rel.width * (rx1 - rx0) * width / w, y0 + rel.height * (ry1 - ry0) * height / h)
                found.append((box, float(det.score[0])))
        kept: list[tuple[Box, float]] = []
        for box, score in sorted(found, key=lambda d: -d[1]):
            if all(_iou(box, other) <= 0.3 for other, _ in kept):
                kept.append((box, score))
        return kept

    def _mesh_in_crop(self, image: np.ndarray, box: Box) -> np.ndarray | None:
        """The face mesh in a square crop (side = 2x the box's larger side) centred on ``box``, in image pixels."""
        height, width = image.shape[:2]
        side = max(32, int(round(2.0 * max(box[2] - box[0], box[3] - box[1]))))
        left = int(round(0.5 * (box[0] + box[2]) - side / 2))
        top = int(round(0.5 * (box[1] + box[3]) - side / 2))
        crop = np.zeros((side, side, 3), np.uint8)  # black outside the image
        sx0, sy0, sx1, sy1 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        crop[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
        crop_view = downscale_for_detection(crop, _CROP_MAX_SIDE)
        with self._lock, native_stderr_dropped():
            result = self._mesh.process(crop_view.image)
        candidates = [_to_pixels(m.landmark, left, top, side, side) for m in result.multi_face_landmarks or []]
        candidates = [dense for dense in candidates if _iou(box, _bounds(dense)) > 0.3]
        return max(candidates, key=lambda dense: _iou(box, _bounds(dense)), default=None)

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """All faces in ``image`` (uint8 ``[H, W, 3]`` RGB), unordered, with iBUG-68 landmarks in its pixels."""
        mapping = self.mapping
        with native_stderr_dropped():  # one redirect over all graph calls: their worker threads log in between
            dense_faces = self.detect_dense(image)
        return [
            FaceDetection(box=box, score=score, landmarks=mapping.apply(dense), dense=dense, backend=self.backend)
            for box, score, dense in dense_faces
        ]
