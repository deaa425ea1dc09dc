"""Where the landmark detector's 68 points lie on the ICT mesh, learned from renders with known geometry.

ICT-FaceKit marks 68 landmark *vertices* in its own convention. The detectors (mediapipe mapped to iBUG-68, dlib)
follow another: their brows, eye corners, nostrils and lip points sit millimetres away from ICT's vertices, so fitting
ICT's vertices to detections bends the shape to absorb the difference. (Session-1 measurement on the synthetic
benchmark: a landmarks-only fit reached 3.41 mm median shape error with the detector, 2.13 mm with the true points.)

This module learns a *landmark embedding*: for each iBUG point a surface point of the mesh (the three corner vertex
ids of a triangle and barycentric weights), such that the model's point is where the detector puts that landmark:

1. sample faces from the model's prior and render them as the synthetic benchmark does (``eval.synthetic``: random
   pose, light, background, UV textures from a folder — use the *training* split, never the held-out one);
2. run the detector on each render, and read the rasterizer's triangle and barycentrics under each detected point:
   the point on the true mesh the detector marked;
3. carry that (triangle, barycentrics) to the mean face, take the per-landmark coordinate-wise median over renders
   where the point was on the mesh, and snap it to the mean face's surface.

The jaw points 0-16 keep ICT's vertices: they are silhouette points, which the fitting slides along ICT's jawline
chains (``losses.landmark_loss``); a fixed surface point cannot represent them.

    python -m ganfit.tools.learn_landmark_embedding textures=DIR [n=240] [seed=1000] [landmarks=mediapipe] \
        [out=data/ict_landmark_embedding.json]

The result is stored in ``data/ict_landmark_embedding.json`` (indices and weights only; derived from the MIT ICT
model and the detector). ``conf/face_model/ict.yaml`` ``landmark_embedding: default`` uses it;
``landmark_embedding: null`` restores ICT's vertices.

Exit codes: 0 written (atomically); 2 bad usage (no textures=, an unknown key or bad value, a missing folder: one
line); 130 Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

import ganfit.render as dr
from ganfit.args import parse_known_args
from ganfit.atomic import atomic_write_text
from ganfit.config.compose import ConfigUsageError, compose_config
from ganfit.eval.synthetic import load_textures, sample_scenes
from ganfit.exit_codes import run_command
from ganfit.face_model import DEFAULT_EMBEDDING, load_face_model
from ganfit.landmarks import NoFaceError, detect_face

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

JAW = range(0, 17)


def surface_points(
    face_model, photos: np.ndarray, vertices: torch.Tensor, camera, points: np.ndarray, search: int = 4
) -> np.ndarray:
    """The mean-face point under each image point, via the rendered triangle and barycentrics.

    Args:
        photos: uint8 [B, S, S, 3] (only the size is used).
        vertices: [B, V, 3] mm, the rendered meshes.
        camera: their ``Camera``.
        points: float [B, K, 2] pixels (x right, y down, top-left origin).
        search: a point over a hole of the mesh takes the nearest covered pixel within this many pixels.
    Returns:
        float64 [B, K, 3] mm on the mean face, NaN where the point is off the mesh or outside the image.
    """
    batch, size = photos.shape[0], photos.shape[1]
    clip = camera.to_clip(vertices, (size, size)).contiguous()
    triangles = face_model.triangles.to(torch.int32).contiguous()
    rast, _ = dr.rasterize(dr.RasterizeCpuContext(output_db=False), clip, triangles, (size, size))
    rast = torch.flip(rast, dims=[1]).numpy()  # row 0 = top, like the photos
    mean = face_model.mean.double().numpy()
    corners = face_model.triangles.numpy()
    out = np.full(points.shape[:2] + (3,), np.nan)
    for b in range(batch):
        for k, (x, y) in enumerate(points[b]):
            col, row = int(np.floor(x)), int(np.floor(y))
            if not (0 <= col < size and 0 <= row < size):
                continue
            if rast[b, row, col, 3] <= 0:  # e.g. an eyelid point over the eye hole: the nearest covered pixel
                low_r, low_c = max(row - search, 0), max(col - search, 0)
                window = rast[b, low_r : row + search + 1, low_c : col + search + 1, 3]
                rows, cols = np.nonzero(window > 0)
                if rows.size == 0:
                    continue
                nearest = int(np.argmin((rows + low_r - row) ** 2 + (cols + low_c - col) ** 2))
                row, col = int(rows[nearest] + low_r), int(cols[nearest] + low_c)
            u, v, _, tri = rast[b, row, col]
            ids = corners[int(round(tri)) - 1]
            out[b, k] = u * mean[ids[0]] + v * mean[ids[1]] + (1.0 - u - v) * mean[ids[2]]
    return out


def snap_to_surface(face_model, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest mean-face surface points of ``points`` [K, 3] -> (corner ids [K, 3], barycentric weights [K, 3]).

    Per point: among the triangles within 20 mm, the one whose plane projection of the point falls inside it (clamped
    barycentrics otherwise) at the smallest distance.
    """
    mean = face_model.mean.double().numpy()
    triangles = face_model.triangles.numpy()
    a, b, c = mean[triangles[:, 0]], mean[triangles[:, 1]], mean[triangles[:, 2]]
    centroids = (a + b + c) / 3.0
    ids = np.zeros((len(points), 3), dtype=np.int64)
    weights = np.zeros((len(points), 3), dtype=np.float32)
    for k, point in enumerate(points):
        near = np.flatnonzero(np.linalg.norm(centroids - point, axis=1) < 20.0)
        if near.size == 0:
            near = np.array([int(np.argmin(np.linalg.norm(centroids - point, axis=1)))])
        e0, e1, d = b[near] - a[near], c[near] - a[near], point - a[near]
        d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
        d20, d21 = (d * e0).sum(1), (d * e1).sum(1)
        denominator = np.maximum(d00 * d11 - d01 * d01, 1e-12)
        wb = (d11 * d20 - d01 * d21) / denominator
        wc = (d00 * d21 - d01 * d20) / denominator
        bary = np.clip(np.stack([1.0 - wb - wc, wb, wc], axis=1), 0.0, None)
        bary /= bary.sum(1, keepdims=True)
        closest = bary[:, :1] * a[near] + bary[:, 1:2] * b[near] + bary[:, 2:] * c[near]
        best = int(np.argmin(np.linalg.norm(closest - point, axis=1)))
        ids[k], weights[k] = triangles[near[best]], bary[best]
    return ids, weights


def learn_embedding(cfg, face_model, textures: list[np.ndarray], chunk: int = 16) -> dict[str, Any]:
    """Render ``cfg.n`` faces (``eval.synthetic.sample_scenes``), detect, and return the embedding payload."""

    collected, detected = [], 0
    for start in range(0, int(cfg.n), chunk):
        part = OmegaConf.merge(cfg, {"n": min(chunk, int(cfg.n) - start), "seed": int(cfg.seed) + start})
        scenes = sample_scenes(part, face_model, textures)
        photos = scenes["photos"]
        points = np.full((len(photos), 68, 2), np.nan, dtype=np.float32)
        for index, photo in enumerate(photos):
            try:
                points[index] = detect_face(photo, backend=cfg.landmarks.backend).landmarks
                detected += 1
            except NoFaceError:
                continue
        with torch.no_grad():
            vertices = face_model(scenes["ps"], scenes["pe"])
        collected.append(surface_points(face_model, photos, vertices, scenes["camera"], np.nan_to_num(points, nan=-1)))
        logger.info("embedding: %d / %d renders", start + len(photos), int(cfg.n))
    samples = np.concatenate(collected)  # [N, 68, 3]
    median = np.nanmedian(samples, axis=0)
    counts = np.isfinite(samples[..., 0]).sum(0)
    ids, weights = snap_to_surface(face_model, median)
    ict = face_model.landmark_ids.numpy()
    for k in JAW:  # silhouette points stay ICT's vertices (slid along the jawline by the loss)
        ids[k], weights[k] = [ict[k]] * 3, [1.0, 0.0, 0.0]
    mean = face_model.mean.double().numpy()
    learned = (weights[..., None] * mean[ids]).sum(1)
    shift = np.linalg.norm(learned - mean[ict], axis=-1)
    return {
        "description": (
            "iBUG-68 landmark embedding of the ICT-FaceKit face area for the "
            f"'{cfg.landmarks.backend}' detector: per landmark, a surface point (3 vertex ids + barycentric weights) "
            "learned from renders with known geometry (ganfit.tools.learn_landmark_embedding). Jaw points 0-16 are "
            "ICT's."
        ),
        "detector": str(cfg.landmarks.backend),
        "renders": int(cfg.n),
        "detected": int(detected),
        "seed": int(cfg.seed),
        "samples_per_landmark": counts.astype(int).tolist(),
        "shift_from_ict_mm": np.round(shift, 3).tolist(),
        "vertex_ids": ids.tolist(),
        "weights": np.round(weights, 6).tolist(),
    }


@dataclass
class LandmarkEmbeddingArgs:
    """The tool's own keys; every other ``key=value`` is an override of ``conf/eval_synthetic.yaml`` (the renders:
    ``textures=DIR`` required, ``n=240``, ``seed=1000`` by default)."""

    out: Path = field(default=DEFAULT_EMBEDDING, metadata={"help": "the embedding JSON to write"})


def main(argv: list[str] | None = None) -> int:
    """``ganfit learn-landmark-embedding textures=DIR [n=240] [seed=1000] [out=...] [key=...]``."""
    return run_command(lambda: _main(argv), (ConfigUsageError, OSError))


def _main(argv: list[str] | None = None) -> None:

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    own, args = parse_known_args(
        LandmarkEmbeddingArgs,
        argv,
        prog="ganfit learn-landmark-embedding",
        doc=__doc__.split("\n\n")[0] + " Other keys: conf/eval_synthetic.yaml's (textures=DIR is required).",
    )
    out = own.out
    defaults = ["n=240", "seed=1000", "out=unused", "camera=fixed"]  # the camera the shipped embedding learned on
    keys = {a.split("=", 1)[0] for a in args}
    cfg = compose_config("eval_synthetic", [d for d in defaults if d.split("=", 1)[0] not in keys] + args)
    if not cfg.textures:
        raise SystemExit("textures=DIR is required: UV textures of the dataset's TRAINING split")
    torch.set_num_threads(int(cfg.torch_threads) or torch.get_num_threads())
    started = time.perf_counter()
    face_model = load_face_model(cfg.face_model.assets_dir)  # ICT's own landmark vertices as the reference
    payload = learn_embedding(cfg, face_model, load_textures(cfg.textures))
    payload["command"] = "python -m ganfit.tools.learn_landmark_embedding " + " ".join(args)
    payload["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(out, json.dumps(payload, indent=1) + "\n")
    shifts = np.asarray(payload["shift_from_ict_mm"])[17:]
    print(
        f"{out}: {payload['detected']}/{payload['renders']} renders detected; shift from ICT's vertices "
        f"(points 17-67): median {np.median(shifts):.2f} mm, max {shifts.max():.2f} mm"
    )


if __name__ == "__main__":
    sys.exit(main())
