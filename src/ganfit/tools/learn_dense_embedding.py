"""Where mediapipe's dense face-mesh points lie on the ICT surface, learned from renders with known geometry.

The 68-point embedding (``ganfit.tools.learn_landmark_embedding``) places each iBUG point where the detector puts it;
this tool does the same for mediapipe's 468 face-mesh points, and also measures how well each point is localised:

1. sample faces from the model's prior and render them as the synthetic benchmark does (``eval.synthetic``:
   random pose, light, background), textured with *samples of the shipped texture GAN* (``texture_source=gan``, the
   default: the FRL UV training split is not on every machine; the GAN was trained on the training split only) or
   flat skin tones (``texture_source=flat``);
2. run mediapipe on each render and read the rasterizer's triangle and barycentrics under each dense point: the
   point on the true mesh the detector marked, carried to the mean face (as ``learn_landmark_embedding``);
3. per point, a first coordinate-wise median over the renders, snapped to the mean face; then the renders in which
   that surface point faces the camera (true mesh, ``normal_z > visible_cos``) — a hidden point's pixel lies over
   some other surface — give the final median;
4. the *spread*: the point's 2-D residual in each visible render (the learned point projected with the true mesh and
   camera against the detection), divided by the face size (sqrt of the 68-point box area), median of its absolute
   value. The fit weights each point by ``(median spread / spread)^2`` (clamped to [0.1, 3], mean 1).

Dropped: the 36 face-oval points (a silhouette, not a surface point — the 68-point jaw slides along ICT's jawline
for that), the 10 iris points 468-477 (they follow the gaze, which the model does not have), and points seen on the
mesh and facing the camera in fewer than ``min_samples`` renders.

    python -m ganfit.tools.learn_dense_embedding [n=240] [seed=3000] [texture_source=gan|flat] [min_samples=20] \
        [visible_cos=0.3] [out=src/ganfit/data/ict_dense_embedding.json]

The result, ``data/ict_dense_embedding.json`` (mediapipe indices, 3 vertex ids + barycentric weights, spread and
weight per point), is read by ``ganfit.fitting.dense.load_dense_embedding``.
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
import torch.nn.functional as F
from omegaconf import OmegaConf, open_dict

from ganfit.args import parse_known_args
from ganfit.config.compose import ConfigUsageError, compose_config
from ganfit.eval.synthetic import sample_scenes
from ganfit.exit_codes import run_command
from ganfit.face_model import load_face_model
from ganfit.fitting.dense import DEFAULT_DENSE_EMBEDDING, DENSE_POINTS, dense_point_ids
from ganfit.fitting.losses import face_size
from ganfit.gan.default import resolve_generator
from ganfit.gan.generator_file import load_generator
from ganfit.landmarks import NoFaceError, detect_face
from ganfit.tools.learn_landmark_embedding import snap_to_surface, surface_points

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too


def gan_textures(count: int, seed: int, resolution: int = 256) -> list[np.ndarray]:
    """``count`` UV textures (uint8 [R, R, 3]) sampled from the shipped texture GAN, upsampled to ``resolution``."""
    generator = load_generator(resolve_generator("default"))
    z = torch.randn(count, int(getattr(generator, "latent_dim", 512)), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = ((generator(z) + 1.0) / 2.0).clamp(0.0, 1.0)
        images = F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return list((images.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8))


def _surface_at(vertices: np.ndarray, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Surface points [B, K, 3] of ``vertices`` [B, V, 3] at corner ``ids`` [K, 3] with ``weights`` [K, 3]."""
    return (vertices[:, ids] * weights[None, :, :, None]).sum(2)


def learn_dense_embedding(cfg, face_model, textures: list[np.ndarray], chunk: int = 16) -> dict[str, Any]:
    """Render ``cfg.n`` faces, detect the dense mesh on each, and return the embedding payload (see the module)."""
    point_ids = np.asarray(dense_point_ids(), dtype=np.int64)  # mediapipe indices kept [K]
    samples, detections, sizes, renders = [], [], [], []
    detected = 0
    for start in range(0, int(cfg.n), chunk):
        part = OmegaConf.merge(cfg, {"n": min(chunk, int(cfg.n) - start), "seed": int(cfg.seed) + start})
        scenes = sample_scenes(part, face_model, textures)
        photos = scenes["photos"]
        points = np.full((len(photos), len(point_ids), 2), np.nan, dtype=np.float32)
        size = np.full(len(photos), np.nan, dtype=np.float32)
        for index, photo in enumerate(photos):
            try:
                detection = detect_face(photo, backend="mediapipe")
            except NoFaceError:
                continue
            if detection.dense is None or len(detection.dense) < DENSE_POINTS:
                continue
            points[index] = detection.dense[point_ids]
            size[index] = float(face_size(torch.from_numpy(detection.landmarks)[None])[0])
            detected += 1
        with torch.no_grad():
            vertices = face_model(scenes["ps"], scenes["pe"])
        samples.append(surface_points(face_model, photos, vertices, scenes["camera"], np.nan_to_num(points, nan=-1)))
        detections.append(points)
        sizes.append(size)
        renders.append((vertices, scenes["camera"]))
        logger.info("dense embedding: %d / %d renders", start + len(photos), int(cfg.n))
    mean_points = np.concatenate(samples)  # [N, K, 3] on the mean face
    first_ids, first_weights = snap_to_surface(face_model, np.nanmedian(mean_points, axis=0))
    # Visibility of each first-pass point on each true mesh: keep only the renders where it faces the camera.
    visible = []
    for vertices, camera in renders:
        normals = face_model.vertex_normals(vertices) @ camera.rotation_matrix().transpose(1, 2)
        normal = F.normalize(torch.from_numpy(_surface_at(normals.numpy(), first_ids, first_weights)), dim=-1)
        visible.append(normal[..., 2].numpy() > float(cfg.visible_cos))
    keep = np.concatenate(visible) & np.isfinite(mean_points[..., 0])
    masked = np.where(keep[..., None], mean_points, np.nan)
    median = np.where(keep.sum(0)[:, None] > 0, np.nanmedian(masked, axis=0), np.nanmedian(mean_points, axis=0))
    ids, weights = snap_to_surface(face_model, median)
    # Residual spread: the learned point projected with the true mesh and camera against the detection.
    residuals = []
    for (vertices, camera), points, size in zip(renders, detections, sizes, strict=True):
        surface = torch.from_numpy(_surface_at(vertices.numpy(), ids, weights)).float()
        projected = camera.project(surface, (int(cfg.image_size), int(cfg.image_size))).numpy()
        residuals.append(np.linalg.norm(projected - points, axis=-1) / size[:, None])
    residual = np.where(keep, np.concatenate(residuals), np.nan)
    spread = np.nanmedian(residual, axis=0)
    spread = np.where(np.isfinite(spread), spread, np.nanmax(spread))
    counts = keep.sum(0)
    kept = counts >= int(cfg.min_samples)  # too rarely visible or on the mesh to place (e.g. inside the lips)
    ids, weights, spread, counts, point_ids = ids[kept], weights[kept], spread[kept], counts[kept], point_ids[kept]
    weight = np.clip((np.median(spread) / np.maximum(spread, 1e-6)) ** 2, 0.1, 3.0)
    weight = weight / weight.mean()
    return {
        "description": (
            "mediapipe face-mesh points on the ICT-FaceKit face area: per point (mediapipe index), a surface point "
            "(3 vertex ids + barycentric weights) learned from renders with known geometry, its residual spread "
            "(median |2-D residual| / face size over renders where it faces the camera) and its loss weight "
            "(ganfit.tools.learn_dense_embedding). Face-oval and iris points are not included."
        ),
        "detector": "mediapipe",
        "renders": int(cfg.n),
        "detected": int(detected),
        "seed": int(cfg.seed),
        "textures": str(cfg.texture_source),
        "visible_cos": float(cfg.visible_cos),
        "mediapipe_ids": point_ids.tolist(),
        "min_samples": int(cfg.min_samples),
        "samples_per_point": counts.astype(int).tolist(),
        "vertex_ids": ids.tolist(),
        "weights": np.round(weights, 6).tolist(),
        "spread": np.round(spread, 5).tolist(),
        "point_weight": np.round(weight, 4).tolist(),
    }


@dataclass
class DenseEmbeddingArgs:
    """The tool's own keys; every other ``key=value`` is an override of ``conf/eval_synthetic.yaml`` (the renders:
    ``n=240``, ``seed=3000`` by default)."""

    out: Path = field(default=DEFAULT_DENSE_EMBEDDING, metadata={"help": "the embedding JSON to write"})
    texture_source: str = field(default="gan", metadata={"help": "textures of the renders", "choices": ("gan", "flat")})
    visible_cos: float = field(default=0.3, metadata={"help": "normal_z above which a point counts as visible"})
    min_samples: int = field(default=20, metadata={"help": "renders a point needs to be kept"})


def main(argv: list[str] | None = None) -> int:
    """``ganfit learn-dense-embedding [n=240] [seed=3000] [texture_source=gan|flat] [out=...] [key=...]``."""
    return run_command(lambda: _main(argv), (ConfigUsageError, OSError))


def _main(argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    own, args = parse_known_args(
        DenseEmbeddingArgs,
        argv,
        prog="ganfit learn-dense-embedding",
        doc=__doc__.split("\n\n")[0] + " Other keys: conf/eval_synthetic.yaml's.",
    )
    defaults = ["n=240", "seed=3000", "out=unused", "camera=fixed"]  # the camera the shipped embedding learned on
    keys = {a.split("=", 1)[0] for a in args}
    cfg = compose_config("eval_synthetic", [d for d in defaults if d.split("=", 1)[0] not in keys] + args)
    with open_dict(cfg):
        cfg.texture_source = own.texture_source
        cfg.visible_cos = own.visible_cos
        cfg.min_samples = own.min_samples
    torch.set_num_threads(int(cfg.torch_threads) or torch.get_num_threads())
    started = time.perf_counter()
    face_model = load_face_model(cfg.face_model.assets_dir)
    textures = gan_textures(64, int(cfg.seed)) if own.texture_source == "gan" else []
    payload = learn_dense_embedding(cfg, face_model, textures)
    payload["command"] = "python -m ganfit.tools.learn_dense_embedding " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    payload["seconds"] = round(time.perf_counter() - started, 1)
    out = own.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    spread = np.asarray(payload["spread"])
    logger.info(
        "%s: %d/%d renders detected, %d points; spread (face-size units) median %.4f, 90th pct %.4f",
        out,
        payload["detected"],
        payload["renders"],
        len(spread),
        np.median(spread),
        np.percentile(spread, 90),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
