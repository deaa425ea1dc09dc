"""Derive the mediapipe-478 -> iBUG-68 table (``data/mediapipe_to_ibug68.json``) by fitting against dlib.

    ganfit derive-mediapipe-map [photos=DIR] [out=data/mediapipe_to_ibug68.json] [candidates=8]

(= ``python -m ganfit.tools.derive_mediapipe_map ...``)

Method (reproducible, no hand-picking):
1. On every photo of the fitting set (default: ``$GANFIT_PHOTOS/frl-canada/*.jpg``, 40 frontal CC BY studio photos
   of the Face Research Lab Canada set) run dlib's 68-point predictor (the iBUG definition we want to reproduce) and
   mediapipe's 478-point mesh. Photos where either backend does not find exactly one face are skipped.
2. Put each photo in a common frame: subtract the mean of its dlib points and divide by its dlib inter-ocular distance
   (outer eye corners 36-45), so every photo weighs the same.
3. For each iBUG point k, the candidates are the ``k`` mesh points with the smallest mean distance to it, with one
   semantic constraint: points of the upper lip (iBUG 49-53, 61-63) may not use mesh points of the lower lip and vice
   versa (55-59, 65-67). On neutral photos the mouth is closed, so the inner lips coincide and an unconstrained fit
   would happily mix them -- and then break as soon as the mouth opens. Upper/lower lip mesh points are found from
   mediapipe's own mesh topology (see ``lip_sides``), not picked by hand.
4. Fit non-negative weights over the candidates that sum to one (a convex combination, so the mapped point stays
   inside the local mesh patch and the map is affine-equivariant) by non-negative least squares over all photos,
   with the sum-to-one constraint as a heavily weighted extra equation, then renormalised.
The script prints the fit error (normalised mean error, NME, by inter-ocular distance) of the single nearest mesh
point and of the fitted combination, in-sample and 5-fold cross-validated, and stores them in the JSON.

Evaluate the table on OTHER photos (deep3d-examples, frl-london): it must not be tuned on the evaluation sets.

Exit codes: 0 written (atomically); 2 bad usage (no photos folder, no *.jpg in it, an unwritable out=: one line);
130 Ctrl-C.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from ganfit.args import parse_args
from ganfit.atomic import atomic_write_text
from ganfit.exit_codes import run_command
from ganfit.image_io import read_image
from ganfit.landmarks.dlib_backend import DlibDetector
from ganfit.landmarks.mapping import MAP_FILENAME
from ganfit.landmarks.mediapipe_backend import MediapipeDetector

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too


def collect_pairs(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run both backends: returns dense float64 ``[N, 478, 2]``, dlib ``[N, 68, 2]`` (pixels) and the used names."""
    mesh = MediapipeDetector(max_num_faces=2)
    dlib_detector = DlibDetector()
    dense_list, ibug_list, names = [], [], []
    for path in paths:
        image = read_image(path)
        meshes = mesh.detect_dense(image)
        faces = dlib_detector.detect(image)
        if len(meshes) != 1 or len(faces) != 1:
            logger.warning("%s: skipped (mediapipe %d faces, dlib %d faces)", path.name, len(meshes), len(faces))
            continue
        dense_list.append(meshes[0][2].astype(np.float64))
        ibug_list.append(faces[0].landmarks.astype(np.float64))
        names.append(path.name)
    if not names:
        raise RuntimeError("no photo had exactly one face for both backends")
    return np.stack(dense_list), np.stack(ibug_list), names


def normalise(dense: np.ndarray, ibug: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre on the dlib mean and scale by the dlib inter-ocular distance, per photo."""
    centre = ibug.mean(axis=1, keepdims=True)
    iod = np.linalg.norm(ibug[:, 45] - ibug[:, 36], axis=1)[:, None, None]
    return (dense - centre) / iod, (ibug - centre) / iod


UPPER_LIP_IBUG = (49, 50, 51, 52, 53, 61, 62, 63)
LOWER_LIP_IBUG = (55, 56, 57, 58, 59, 65, 66, 67)


def _loop_halves(edges: set[tuple[int, int]], corner_a: int, corner_b: int) -> tuple[list[int], list[int]]:
    """Split the closed contour through ``corner_a`` and ``corner_b`` into its two paths between them."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    halves = []
    for start in neighbours[corner_a]:
        path, previous, current = [], corner_a, start
        while current != corner_b:
            path.append(current)
            previous, current = current, next(n for n in neighbours[current] if n != previous)
        halves.append(path)
    if len(halves) != 2:
        raise RuntimeError(f"lip contour through {corner_a} and {corner_b} is not a simple loop")
    return halves[0], halves[1]


def lip_sides(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``[478]`` of upper-lip and lower-lip mesh points, from normalised meshes ``[N, 478, 2]``.

    mediapipe's inner lip contour (``FACEMESH_LIPS``, corners 78/308) is a hole in the mesh, split by the corners
    into an upper and a lower half (which is upper is decided by the mean y; image y grows downwards). A mesh point
    within the mouth's width and near the mouth belongs to the upper (lower) lip when, along the mesh's triangle edges
    (``FACEMESH_TESSELATION``), it is at least two edges closer to the upper (lower) half than to the other: points
    of one lip reach the other lip only around a mouth corner.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS, FACEMESH_TESSELATION

    mean = dense.mean(axis=0)  # [478, 2]
    inner_edges = {e for e in FACEMESH_LIPS if _connected(e, 78, FACEMESH_LIPS)}
    first, second = _loop_halves(inner_edges, 78, 308)
    top, bottom = (first, second) if mean[first, 1].mean() < mean[second, 1].mean() else (second, first)
    hops_top = _hops(FACEMESH_TESSELATION, top, len(mean))
    hops_bottom = _hops(FACEMESH_TESSELATION, bottom, len(mean))
    line = mean[[78, *top, 308]]
    within = (mean[:, 0] > line[:, 0].min()) & (mean[:, 0] < line[:, 0].max())
    near = np.abs(mean[:, 1] - line[:, 1].mean()) < 0.6  # inter-ocular units
    upper = within & near & (hops_top + 2 <= hops_bottom)
    lower = within & near & (hops_bottom + 2 <= hops_top)
    return upper, lower


def _hops(edges: frozenset[tuple[int, int]], sources: list[int], count: int) -> np.ndarray:
    """Breadth-first number of mesh edges from the nearest of ``sources`` to every point ``[count]``."""
    neighbours: list[list[int]] = [[] for _ in range(count)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    hops = np.full(count, np.iinfo(np.int64).max // 2, np.int64)
    frontier = list(sources)
    hops[frontier] = 0
    while frontier:
        following = []
        for node in frontier:
            for other in neighbours[node]:
                if hops[other] > hops[node] + 1:
                    hops[other] = hops[node] + 1
                    following.append(other)
        frontier = following
    return hops


def _connected(edge: tuple[int, int], corner: int, edges: frozenset[tuple[int, int]]) -> bool:
    """Whether ``edge`` belongs to the contour (connected component of ``edges``) containing ``corner``."""
    component = {corner}
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if (a in component) != (b in component):
                component |= {a, b}
                changed = True
    return edge[0] in component


def fit_map(
    dense: np.ndarray,  # normalised mesh points [N, 478, 2]
    ibug: np.ndarray,  # normalised target points [N, 68, 2]
    k: int,  # candidate mesh points per iBUG point
    sum_weight: float = 100.0,  # weight of the sum-to-one equation in the least squares
    constrain_lips: bool = True,  # keep upper-lip points off the lower lip and vice versa (see lip_sides)
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the convex-combination map on normalised points: returns indices int64 ``[68, k]``, weights ``[68, k]``."""
    indices = np.zeros((68, k), np.int64)
    weights = np.zeros((68, k), np.float64)
    no_points = np.zeros(dense.shape[1], bool)
    upper, lower = lip_sides(dense) if constrain_lips else (no_points, no_points)
    for point in range(68):
        distance = np.linalg.norm(dense - ibug[:, point : point + 1], axis=2).mean(axis=0)  # [478]
        if point in UPPER_LIP_IBUG:
            distance[lower] = np.inf
        elif point in LOWER_LIP_IBUG:
            distance[upper] = np.inf
        candidates = np.argsort(distance)[:k]
        design = dense[:, candidates, :].transpose(0, 2, 1).reshape(-1, k)  # rows: (photo, coord)
        target = ibug[:, point, :].reshape(-1)
        design = np.vstack([design, np.full((1, k), sum_weight)])
        target = np.concatenate([target, [sum_weight]])
        w, _ = nnls(design, target)
        if w.sum() <= 0:
            w = np.eye(k)[0]
        indices[point] = candidates
        weights[point] = w / w.sum()
    return indices, weights


def nme(dense: np.ndarray, ibug: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> float:
    """Mean point error of the mapped mesh against the targets, in inter-ocular units (inputs normalised)."""
    mapped = np.einsum("nkjd,kj->nkd", dense[:, indices, :], weights)
    return float(np.linalg.norm(mapped - ibug, axis=2).mean())


def cross_validate(dense: np.ndarray, ibug: np.ndarray, k: int, folds: int = 5) -> tuple[float, float]:
    """Held-out NME of (nearest single point, fitted combination) with ``folds``-fold cross-validation."""
    order = np.arange(len(dense))
    errors_nearest, errors_fit = [], []
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        idx1, w1 = fit_map(dense[train], ibug[train], 1)
        idx, w = fit_map(dense[train], ibug[train], k)
        errors_nearest.append(nme(dense[test], ibug[test], idx1, w1) * len(test))
        errors_fit.append(nme(dense[test], ibug[test], idx, w) * len(test))
    return sum(errors_nearest) / len(dense), sum(errors_fit) / len(dense)


@dataclass
class DeriveMapArgs:
    """The keys of ``ganfit derive-mediapipe-map``."""

    photos: Path | None = field(
        default=None, metadata={"help": "folder of fitting photos (default: GANFIT_PHOTOS/frl-canada)"}
    )
    out: Path = field(default=Path("data") / MAP_FILENAME, metadata={"help": "output JSON table"})
    candidates: int = field(default=8, metadata={"help": "mesh points per iBUG point"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    photos_root = os.environ.get("GANFIT_PHOTOS")
    args = parse_args(DeriveMapArgs, argv, prog="ganfit derive-mediapipe-map", doc=__doc__.split("\n\n")[0])
    if args.photos is None and photos_root:
        args.photos = Path(photos_root) / "frl-canada"
    if args.photos is None:
        raise SystemExit("give photos=DIR or set GANFIT_PHOTOS (the folder that holds frl-canada/)")

    import dlib
    import mediapipe

    paths = sorted(args.photos.glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no *.jpg photos in {args.photos}")
    dense_px, ibug_px, names = collect_pairs(paths)
    dense, ibug = normalise(dense_px, ibug_px)
    indices, weights = fit_map(dense, ibug, args.candidates)
    idx1, w1 = fit_map(dense, ibug, 1)
    train_nearest, train_fit = nme(dense, ibug, idx1, w1), nme(dense, ibug, indices, weights)
    cv_nearest, cv_fit = cross_validate(dense, ibug, args.candidates)
    print(f"photos used: {len(names)} of {len(paths)} in {args.photos}")
    print(f"NME vs dlib (inter-ocular):  nearest point  in-sample {train_nearest:.4f}  5-fold CV {cv_nearest:.4f}")
    print(f"{'':29s}fitted (k={args.candidates})  in-sample {train_fit:.4f}  5-fold CV {cv_fit:.4f}")

    # Drop negligible weights to keep the table small, then renormalise.
    keep = weights >= 1e-3
    width = int(keep.sum(axis=1).max())
    out_idx = np.zeros((68, width), np.int64)
    out_w = np.zeros((68, width), np.float64)
    for point in range(68):
        order = np.argsort(-weights[point])[:width]
        out_idx[point] = indices[point, order]
        out_w[point] = np.where(keep[point, order], weights[point, order], 0.0)
        out_w[point] /= out_w[point].sum()
    table = {
        "description": "mediapipe face mesh (478 points, refine_landmarks=True) -> iBUG-68: "
        "ibug[k] = sum_j weights[k][j] * mesh[indices[k][j]] (convex combination)",
        "derivation": "python -m ganfit.tools.derive_mediapipe_map: non-negative least squares against dlib "
        "shape_predictor_68_face_landmarks on the fitting photos, per-photo normalised by inter-ocular distance",
        "fitting_set": f"{args.photos.name} (Face Research Lab {args.photos.name}, CC BY 4.0, DeBruine & Jones 2017)",
        "photos": names,
        "candidates_per_point": args.candidates,
        "nme_vs_dlib": {
            "nearest_point_in_sample": round(train_nearest, 5),
            "nearest_point_5fold_cv": round(cv_nearest, 5),
            "fitted_in_sample": round(train_fit, 5),
            "fitted_5fold_cv": round(cv_fit, 5),
        },
        "versions": {"mediapipe": mediapipe.__version__, "dlib": dlib.__version__},
        "created": datetime.date.today().isoformat(),
        "nearest_point": idx1[:, 0].tolist(),
        "indices": out_idx.tolist(),
        "weights": [[round(float(v), 5) for v in row] for row in out_w],
    }
    atomic_write_text(args.out, json.dumps(table, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
