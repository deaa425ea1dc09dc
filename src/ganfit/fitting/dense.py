"""The dense-landmark embedding: mediapipe face-mesh points as surface points of the ICT face.

``data/ict_dense_embedding.json`` (``python -m ganfit.tools.learn_dense_embedding``) lists, for each kept mediapipe
point, three ICT vertex ids with barycentric weights (where the detector puts that point on the face), its residual
spread and its loss weight. The face-oval (silhouette) and iris points are not in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ganfit.assets import DATA_DIR
from ganfit.fitting.skin_mask import MEDIAPIPE_FACE_OVAL

DEFAULT_DENSE_EMBEDDING = DATA_DIR / "ict_dense_embedding.json"
DENSE_POINTS = 478
"""mediapipe's face mesh with refined iris points (468 mesh + 10 iris)."""
MESH_POINTS = 468


def dense_point_ids() -> list[int]:
    """The mediapipe indices an embedding may hold: the 468 mesh points less the 36 face-oval points."""
    oval = set(MEDIAPIPE_FACE_OVAL)
    return [index for index in range(MESH_POINTS) if index not in oval]


@dataclass(frozen=True)
class DenseEmbedding:
    """``K`` dense points: ``mediapipe_ids`` int64 [K], ``corner_ids`` int64 [K, 3] ICT vertex ids, ``weights``
    float32 [K, 3] barycentric, ``point_weight`` float32 [K] loss weight (mean 1), ``spread`` float32 [K] median
    |residual| / face size from the learning renders."""

    mediapipe_ids: torch.Tensor
    corner_ids: torch.Tensor
    weights: torch.Tensor
    point_weight: torch.Tensor
    spread: torch.Tensor

    def points(self, vertices: torch.Tensor) -> torch.Tensor:
        """Surface points [B, K, 3] of ``vertices`` [B, V, 3] (or [B, K, 3] normals of vertex normals)."""
        corners = vertices[:, self.corner_ids.to(vertices.device)]  # [B, K, 3, 3]
        return (corners * self.weights.to(vertices)[None, :, :, None]).sum(2)

    def select(self, dense: torch.Tensor) -> torch.Tensor:
        """The embedding's points [B, K, 2] of detected dense points [B, 478, 2]."""
        return dense[:, self.mediapipe_ids.to(dense.device)]


@lru_cache(maxsize=4)
def load_dense_embedding(path: str | Path | None = None) -> DenseEmbedding:
    """Read the embedding (``None``: the project's ``data/ict_dense_embedding.json``).

    Raises:
        FileNotFoundError: no such file (learn it with ``python -m ganfit.tools.learn_dense_embedding``).
        ValueError: malformed contents.
    """
    path = Path(DEFAULT_DENSE_EMBEDDING if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"dense embedding {path} not found (python -m ganfit.tools.learn_dense_embedding)")
    table = json.loads(path.read_text())
    ids = np.asarray(table["mediapipe_ids"], dtype=np.int64)
    corners = np.asarray(table["vertex_ids"], dtype=np.int64)
    weights = np.asarray(table["weights"], dtype=np.float32)
    point_weight = np.asarray(table["point_weight"], dtype=np.float32)
    spread = np.asarray(table["spread"], dtype=np.float32)
    k = len(ids)
    if corners.shape != (k, 3) or weights.shape != (k, 3) or point_weight.shape != (k,) or spread.shape != (k,):
        raise ValueError(f"{path}: inconsistent dense embedding shapes")
    if ids.min() < 0 or ids.max() >= MESH_POINTS:
        raise ValueError(f"{path}: mediapipe ids must be in [0, {MESH_POINTS})")
    return DenseEmbedding(
        mediapipe_ids=torch.from_numpy(ids),
        corner_ids=torch.from_numpy(corners),
        weights=torch.from_numpy(weights / weights.sum(1, keepdims=True)),
        point_weight=torch.from_numpy(point_weight),
        spread=torch.from_numpy(spread),
    )
