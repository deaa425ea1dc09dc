"""Face parts for region-wise shape errors (nose, mouth, forehead, cheeks, as the REALY benchmark reports them).

The parts are computed once from the model's *mean* shape and its 68 landmarks (the learned embedding's 3-D points,
``FaceModel.landmarks(mean)``), not listed by hand. Model frame (``ganfit.face_model``): mm, +X the subject's left,
+Y up, +Z out of the face. Each part is a convex outline in the frontal (x, y) projection, built from landmarks:

* ``nose``: the nose landmarks (27-35: bridge, tip, nostrils), the outline pushed out by ``NOSE_MARGIN_MM``;
* ``mouth``: the outer lip landmarks (48-59), pushed out by ``MOUTH_MARGIN_MM`` (lips and the skin around them);
* ``forehead``: the brow landmarks (17-26) moved up by ``FOREHEAD_BAND_MM`` (10 and 50 mm): the band above the brows;
* ``cheeks``: per side, the jaw contour (1-4 / 12-15), the mouth corner (48 / 54), the nostril (31 / 35) and the
  lower eyelid (36, 41, 40 / 45, 46, 47) moved down by ``CHEEK_EYE_GAP_MM``; minus the nose and the mouth.

A vertex is in a part when its (x, y) lies inside the outline, it is in the evaluated face region
(``scores.face_region``) and it is seen from the front: no surface of the mean mesh lies more than
``HIDDEN_GAP_MM`` in front of it (a z-buffer of the mesh on a ``GRID_MM`` grid), so the nostrils' and the mouth's
inner surfaces do not count. The parts are disjoint; vertices of the face region outside
every part (eyes, chin, jaw sides) count only in the whole-face figure.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import Delaunay

from ganfit.landmarks.types import IBUG_BROWS, IBUG_NOSE, IBUG_OUTER_LIPS

FACE_PARTS = ("nose", "mouth", "forehead", "cheeks")
NOSE_MARGIN_MM = 5.0
MOUTH_MARGIN_MM = 8.0
FOREHEAD_BAND_MM = (10.0, 50.0)
CHEEK_EYE_GAP_MM = 8.0
GRID_MM = 1.0
HIDDEN_GAP_MM = 4.0
SURFACE_SAMPLES = 6  # barycentric samples per triangle edge for the z-buffer

NOSE_IDS = list(IBUG_NOSE)
MOUTH_IDS = list(IBUG_OUTER_LIPS)
BROW_IDS = list(IBUG_BROWS)
CHEEK_IDS = {
    "left": ([1, 2, 3, 4, 48, 31], [36, 41, 40]),  # (points as they are, lower-eyelid points moved down)
    "right": ([15, 14, 13, 12, 54, 35], [45, 46, 47]),
}


def _inside(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """[N] bool: which (x, y) ``points`` [N, 2] lie inside the convex hull of ``outline`` [M, 2]."""
    return Delaunay(outline).find_simplex(points) >= 0


def _grow(outline: np.ndarray, margin: float) -> np.ndarray:
    """``outline`` [M, 2] with each point moved ``margin`` mm away from the outline's centroid."""
    offset = outline - outline.mean(0)
    return outline + margin * offset / np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1e-9)


def frontal_visible(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """[V] bool: which ``vertices`` [V, 3] (mm) of the mesh ``triangles`` [T, 3] are seen from +Z (orthographic):
    the mesh's highest z in the vertex's ``GRID_MM`` cell is at most ``HIDDEN_GAP_MM`` above the vertex."""
    steps = np.linspace(0.0, 1.0, SURFACE_SAMPLES)
    u, v = (a.ravel() for a in np.meshgrid(steps, steps))
    keep = u + v <= 1.0
    bary = np.stack([1.0 - u[keep] - v[keep], u[keep], v[keep]], 1)  # [S, 3]
    surface = np.einsum("sk,tkd->tsd", bary, vertices[triangles]).reshape(-1, 3)  # [T * S, 3]
    low = vertices[:, :2].min(0)
    cell = lambda xy: np.floor((xy - low) / GRID_MM).astype(np.int64)  # noqa: E731
    shape = tuple(cell(vertices[:, :2]).max(0) + 1)
    top = np.full(shape, -np.inf)
    ij = np.clip(cell(surface[:, :2]), 0, np.array(shape) - 1)
    np.maximum.at(top, (ij[:, 0], ij[:, 1]), surface[:, 2])
    own = cell(vertices[:, :2])
    return top[own[:, 0], own[:, 1]] <= vertices[:, 2] + HIDDEN_GAP_MM


def face_parts(
    mean_vertices: torch.Tensor,
    triangles: torch.Tensor | np.ndarray,
    landmarks: torch.Tensor,
    region_ids: torch.Tensor | np.ndarray,
) -> dict[str, np.ndarray]:
    """The face parts as masks over the evaluated region.

    Args:
        mean_vertices: [V, 3] the mean shape, mm (model frame).
        triangles: [T, 3] its triangles (vertex ids), for the frontal visibility.
        landmarks: [68, 3] its 68 landmarks (``FaceModel.landmarks(mean[None])[0]``), mm.
        region_ids: [N] vertex ids of the evaluated face region (``scores.face_region``).
    Returns:
        ``{part: bool [N]}`` for each of ``FACE_PARTS``: which of the ``region_ids`` vertices belong to the part
        (index the per-vertex errors of ``scores.shape_error_mm(..., region_ids)`` with it).
    """
    every = mean_vertices.detach().cpu().numpy().astype(np.float64)
    ids = np.asarray(region_ids)
    seen = frontal_visible(every, np.asarray(triangles, dtype=np.int64))[ids]
    xy = every[ids, :2]
    marks = landmarks.detach().cpu().numpy().astype(np.float64)

    def part(outline3d: np.ndarray, margin: float = 0.0) -> np.ndarray:
        outline = _grow(outline3d[:, :2], margin) if margin else outline3d[:, :2]
        return _inside(xy, outline) & seen

    nose = part(marks[NOSE_IDS], NOSE_MARGIN_MM)
    mouth = part(marks[MOUTH_IDS], MOUTH_MARGIN_MM) & ~nose
    brows = marks[BROW_IDS]
    low, high = FOREHEAD_BAND_MM
    forehead = part(np.concatenate([brows + [0.0, low, 0.0], brows + [0.0, high, 0.0]]))
    cheeks = np.zeros(len(ids), dtype=bool)
    for fixed, eyelid in CHEEK_IDS.values():
        outline = np.concatenate([marks[fixed], marks[eyelid] - [0.0, CHEEK_EYE_GAP_MM, 0.0]])
        cheeks |= part(outline)
    cheeks &= ~nose & ~mouth
    return {"nose": nose, "mouth": mouth, "forehead": forehead & ~nose, "cheeks": cheeks & ~forehead}
