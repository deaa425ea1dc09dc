"""The ICT FaceKit morphable model as a PyTorch module.

Frames and units (used by the whole project):
    * Model space is in **millimetres**, right-handed: +X to the subject's left (the viewer's right in a frontal
      photo), +Y up, +Z out of the face towards a frontal camera. ICT's raw OBJs are in centimetres; the
      converter multiplies by 10.
    * UV coordinates are stored in **texture-image convention**: ``(u, v)`` with u to the right and v DOWN, so
      ``(0, 0)`` is the top-left texel of a texture image stored top row first (a PNG, or row 0 of a
      ``[H, W, C]`` tensor), which is what ``texture()`` of nvdiffrast / ``ganfit.render`` expects. OBJ files use v
      up; :meth:`FaceModel.export` flips back.
    * The model is ICT's *face area*: vertices 0..9408 and polygons 0..9229 (all quads, split into 18,460
      triangles as (0, 1, 2), (0, 2, 3)); it lives in UV tile 0. It is open at the eyes and the mouth.

Shape: ``vertices = mean + sum_k ps[k] * shape_basis[k] + sum_j pe[j] * exp_basis[j]`` where ``ps`` are shape
coefficients in standard-deviation units (each ICT ``identityNNN.obj`` is the neutral face plus one standard
deviation of mode NNN, as ICT's own sampler draws weights from N(0, 1)) and ``pe`` are ARKit-style blendshape
weights in [0, 1].

Beside the face area the model carries ICT's **inner parts** (``part_*`` buffers): the eyeballs (sclera and iris),
the eye sockets, the mouth socket, the gums and tongue and the teeth, posed by the same ``ps``/``pe`` as the face
(ICT's identity and expression OBJs move them too; ``parts(ps, pe)``). They close the face area's eye and mouth
holes in renders and exported meshes; the fitting's losses do not use them.

Converting the 154 raw OBJs takes a few seconds; the result is cached as an ``.npz`` under
``~/.cache/ganfit/face_model/`` keyed by a checksum of the inputs and the converter version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganfit import assets
from ganfit.args import parse_action

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

CONVERTER_VERSION = 3  # 2: inner parts (eyeballs, sockets, teeth) added; 3: identity modes named shape_basis
CM_TO_MM = 10.0
NUM_IDENTITY = 100
FACE_VERTEX_COUNT = 9409  # ICT "Full face area": vertices [0:9408]
FACE_POLYGON_COUNT = 9230  # polygons [0:9229]

# From ICT-FaceKit's README (0-indexed vertex ids). Candidates for the 68-point jaw contour under yaw: for a
# face turned away, the visible jaw outline moves along these chains.
RIGHT_JAWLINE_EXTENDED = (1280, 1278, 1275, 1272, 1248, 12, 820, 1834, 1902, 243, 844, 781, 1673, 2199, 801, 1447, 800)
LEFT_JAWLINE_EXTENDED = (
    3041,
    3661,
    3042,
    4390,
    3880,
    3022,
    3085,
    2484,
    4102,
    4036,
    3061,
    2253,
    3466,
    3490,
    3493,
    3496,
    3498,
)


# ICT FaceKit's inner geometries (README: vertex and polygon index ranges, inclusive) and their part labels.
PART_LABELS = ("mouth_socket", "eye_socket", "gums_tongue", "teeth", "sclera", "iris")
ICT_PARTS = (  # (label, first vertex, last vertex, first polygon, last polygon)
    ("mouth_socket", 11248, 13293, 11144, 13225),
    ("eye_socket", 13294, 13677, 13226, 13629),  # left
    ("eye_socket", 13678, 14061, 13630, 14033),  # right
    ("gums_tongue", 14062, 17038, 14034, 17005),
    ("teeth", 17039, 21450, 17006, 21495),
    ("sclera", 21451, 22220, 21496, 22295),  # left eye
    ("iris", 22221, 23020, 22296, 23093),
    ("sclera", 23021, 23790, 23094, 23893),  # right eye
    ("iris", 23791, 24590, 23894, 24691),
)


@dataclass(frozen=True)
class FaceModelData:
    """Arrays of the converted model (numpy, float32 / int64). See :class:`FaceModel` for shapes."""

    mean: np.ndarray
    shape_basis: np.ndarray
    exp_basis: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray
    uv_triangles: np.ndarray
    landmark_ids: np.ndarray
    mirror_ids: np.ndarray
    fitting_vertex_ids: np.ndarray
    rigid_vertex_ids: np.ndarray
    jaw_contour_right: np.ndarray
    jaw_contour_left: np.ndarray
    part_mean: np.ndarray
    part_shape_basis: np.ndarray
    part_exp_basis: np.ndarray
    part_triangles: np.ndarray
    part_labels: np.ndarray
    part_side: np.ndarray
    expression_names: tuple[str, ...]

    def save(self, path: Path) -> None:
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        arrays["expression_names"] = np.array(self.expression_names)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> FaceModelData:
        with np.load(path) as data:
            fields = {k: data[k] for k in data.files}
        fields["expression_names"] = tuple(str(n) for n in fields["expression_names"])
        return cls(**fields)


def _parse_vertices(text: str) -> np.ndarray:
    """All ``v x y z`` lines of an OBJ as float64 [N, 3]."""
    rows = [line[2:] for line in text.splitlines() if line.startswith("v ")]
    return np.array(" ".join(rows).split(), dtype=np.float64).reshape(-1, 3)


def _parse_topology(text: str) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """UVs [T, 2] (OBJ convention) and per-polygon vertex / UV index lists (0-based) of an OBJ."""
    lines = text.splitlines()
    uv = np.array(" ".join(line[3:] for line in lines if line.startswith("vt ")).split(), dtype=np.float64)
    vertex_ids: list[list[int]] = []
    uv_ids: list[list[int]] = []
    for line in lines:
        if not line.startswith("f "):
            continue
        corners = [corner.split("/") for corner in line.split()[1:]]
        vertex_ids.append([int(c[0]) - 1 for c in corners])
        uv_ids.append([int(c[1]) - 1 for c in corners])
    return uv.reshape(-1, 2), vertex_ids, uv_ids


def _split_polygons(polygons: list[list[int]]) -> np.ndarray:
    """Fan-split polygons into triangles: (0, 1, 2), (0, 2, 3), ... in order; int64 [F, 3]."""
    triangles = [(p[0], p[i], p[i + 1]) for p in polygons for i in range(1, len(p) - 1)]
    return np.asarray(triangles, dtype=np.int64)


def _mirror_map(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """For each vertex, the index of its mirror image across x = 0, and the largest mismatch (model units)."""
    from scipy.spatial import cKDTree

    mirrored = vertices * np.array([-1.0, 1.0, 1.0])
    distance, index = cKDTree(vertices).query(mirrored)
    return index.astype(np.int64), float(distance.max())


def convert_ict(source: assets.IctSource, verify: bool = True) -> FaceModelData:
    """Convert the raw ICT FaceKit OBJs into :class:`FaceModelData` (face area, millimetres).

    Args:
        source: where the ``FaceXModel`` files are (see :func:`ganfit.assets.locate_ict`).
        verify: check every file against the pinned sha256 manifest.
    """
    started = time.perf_counter()
    files = dict(iter_needed_files(source))
    if "vertex_indices.json" not in files or "generic_neutral_mesh.obj" not in files:
        raise assets.AssetIntegrityError(f"{source.describe()} lacks vertex_indices.json or generic_neutral_mesh.obj")
    indices = json.loads(files["vertex_indices.json"])
    expression_names = tuple(indices["expressions"])
    needed = _needed_names(expression_names)
    missing = sorted(needed - set(files))
    if missing:
        raise assets.AssetIntegrityError(f"{source.describe()} lacks {len(missing)} model files, e.g. {missing[:3]}")
    if verify:
        assets.verify_files(files)

    neutral_text = files["generic_neutral_mesh.obj"].decode()
    neutral_full = _parse_vertices(neutral_text)
    neutral = neutral_full[:FACE_VERTEX_COUNT]
    all_uvs, polygon_vertices, polygon_uvs = _parse_topology(neutral_text)
    face_polygons = polygon_vertices[:FACE_POLYGON_COUNT]
    face_polygon_uvs = polygon_uvs[:FACE_POLYGON_COUNT]
    triangles = _split_polygons(face_polygons)
    uv_triangles_full = _split_polygons(face_polygon_uvs)
    if triangles.max() >= FACE_VERTEX_COUNT:
        raise assets.AssetIntegrityError("face-area polygons reference vertices outside the face area")
    used_uvs, uv_triangles = np.unique(uv_triangles_full, return_inverse=True)
    uv_triangles = uv_triangles.reshape(-1, 3).astype(np.int64)
    uvs = all_uvs[used_uvs].copy()
    uvs[:, 1] = 1.0 - uvs[:, 1]  # OBJ v-up -> texture-image v-down

    part_vertex_ids = np.concatenate([np.arange(v0, v1 + 1) for _, v0, v1, _, _ in ICT_PARTS])
    part_triangles, part_labels = _part_topology(polygon_vertices, part_vertex_ids)
    kept = np.concatenate([np.arange(FACE_VERTEX_COUNT), part_vertex_ids])

    def shape_of(name: str) -> np.ndarray:
        vertices = _parse_vertices(files[name].decode())
        if vertices.shape[0] != neutral_full.shape[0]:
            raise assets.AssetIntegrityError(f"{name} has {vertices.shape[0]} vertices; the neutral mesh differs")
        return vertices[kept]

    neutral_kept = neutral_full[kept]
    shape_basis = np.stack([shape_of(f"identity{k:03d}.obj") - neutral_kept for k in range(NUM_IDENTITY)])
    exp_basis = np.stack([shape_of(f"{name}.obj") - neutral_kept for name in expression_names])
    part_shape_basis, shape_basis = shape_basis[:, FACE_VERTEX_COUNT:], shape_basis[:, :FACE_VERTEX_COUNT]
    part_exp_basis, exp_basis = exp_basis[:, FACE_VERTEX_COUNT:], exp_basis[:, :FACE_VERTEX_COUNT]
    part_mean = neutral_full[part_vertex_ids] * CM_TO_MM
    mean_mm = neutral * CM_TO_MM
    mirror_ids, mirror_error = _mirror_map(mean_mm)

    def face_ids(values: list[int]) -> np.ndarray:
        array = np.asarray(values, dtype=np.int64)
        return array[array < FACE_VERTEX_COUNT]

    data = FaceModelData(
        mean=mean_mm.astype(np.float32),
        shape_basis=(shape_basis * CM_TO_MM).astype(np.float32),
        exp_basis=(exp_basis * CM_TO_MM).astype(np.float32),
        triangles=triangles,
        uvs=uvs.astype(np.float32),
        uv_triangles=uv_triangles,
        landmark_ids=np.asarray(indices["idx_to_landmark_verts"], dtype=np.int64),
        mirror_ids=mirror_ids,
        fitting_vertex_ids=face_ids(indices["idx_to_fitting_verts"]),
        rigid_vertex_ids=face_ids(indices["idx_to_rigid_verts"]),
        jaw_contour_right=np.asarray(RIGHT_JAWLINE_EXTENDED, dtype=np.int64),
        jaw_contour_left=np.asarray(LEFT_JAWLINE_EXTENDED, dtype=np.int64),
        part_mean=part_mean.astype(np.float32),
        part_shape_basis=(part_shape_basis * CM_TO_MM).astype(np.float32),
        part_exp_basis=(part_exp_basis * CM_TO_MM).astype(np.float32),
        part_triangles=part_triangles,
        part_labels=part_labels,
        part_side=np.sign(part_mean[:, 0]).astype(np.int64),
        expression_names=expression_names,
    )
    logger.info(
        "converted ICT FaceKit from %s in %.1f s (mirror map max mismatch %.2e mm)",
        source.describe(),
        time.perf_counter() - started,
        mirror_error,
    )
    return data


def _part_topology(polygons: list[list[int]], part_vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of the inner parts and each part vertex's label (index into :data:`PART_LABELS`, int64 [Vp]).

    The triangles (int64 [Fp, 3]) index the concatenation ``[face vertices (V); part vertices (Vp)]``: the eye and
    mouth sockets are stitched to the face area's rim loops, so some of their corners are face vertices (< V).
    """
    local = np.full(max(part_vertex_ids.max() + 1, FACE_VERTEX_COUNT), -1, dtype=np.int64)
    local[:FACE_VERTEX_COUNT] = np.arange(FACE_VERTEX_COUNT)
    local[part_vertex_ids] = FACE_VERTEX_COUNT + np.arange(len(part_vertex_ids))
    chosen = [polygons[i] for _, _, _, p0, p1 in ICT_PARTS for i in range(p0, p1 + 1)]
    triangles = local[_split_polygons(chosen)]
    if (triangles < 0).any():
        raise assets.AssetIntegrityError("ICT inner-part polygons reference vertices outside their parts")
    labels = np.concatenate([np.full(v1 - v0 + 1, PART_LABELS.index(name)) for name, v0, v1, _, _ in ICT_PARTS])
    return triangles, labels.astype(np.int64)


def _needed_names(expression_names: tuple[str, ...]) -> set[str]:
    names = {"generic_neutral_mesh.obj", "vertex_indices.json"}
    names |= {f"identity{k:03d}.obj" for k in range(NUM_IDENTITY)}
    names |= {f"{name}.obj" for name in expression_names}
    return names


def iter_needed_files(source: assets.IctSource):
    """The files the converter reads: neutral mesh, 100 identities, the expression OBJs, vertex_indices.json."""
    wanted = {"generic_neutral_mesh.obj", "vertex_indices.json"} | {f"identity{k:03d}.obj" for k in range(NUM_IDENTITY)}
    for name, payload in assets.iter_ict_files(source):
        if name in wanted or (name.endswith(".obj") and not name.startswith("identity")):
            yield name, payload


def _source_checksum(source: assets.IctSource) -> str:
    """sha256 of the inputs: the archive's bytes, or the folder's file names and contents."""
    digest = hashlib.sha256(f"ganfit-face-model-v{CONVERTER_VERSION}".encode())
    paths = [source.path] if source.is_archive else sorted(p for p in source.path.iterdir() if p.is_file())
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def load_face_model_data(assets_dir: str | os.PathLike[str] | None = None, verify: bool = True) -> FaceModelData:
    """Converted model arrays, from the cache when possible (converting and caching them otherwise)."""
    source = assets.locate_ict(assets_dir)
    cache_path = assets.cache_dir() / "face_model" / f"ict_face_{_source_checksum(source)[:16]}.npz"
    if cache_path.is_file():
        try:
            return FaceModelData.load(cache_path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring unreadable face-model cache %s (%s); converting again", cache_path, error)
    data = convert_ict(source, verify=verify)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    data.save(cache_path)
    logger.info("cached the converted face model at %s", cache_path)
    return data


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals of ``vertices`` [B, N, 3] over ``triangles`` [F, 3] (int) -> [B, N, 3]
    (differentiable).

    Each vertex sums its triangles' cross products corner by corner (all first corners in triangle order, then the
    second, then the third), as three ``index_add`` calls over the vertex dimension would. They run on the
    flattened ``[B * N * 3]`` array: a 1-D ``index_add`` is one pass, while along dimension 1 torch's CPU kernel
    makes one small call per triangle (about half the cost of a 192x192 render). Same additions in the same order:
    the same values and gradients, bit for bit.
    """
    batch, count, _ = vertices.shape
    corners = vertices[:, triangles]  # [B, F, 3, 3]
    face_normals = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    flat = face_normals.reshape(-1)  # [B * F * 3]
    device = vertices.device
    first = torch.arange(batch, device=device)[:, None, None] * (count * 3)  # [B, 1, 1] offset of each mesh
    xyz = torch.arange(3, device=device)
    normals = vertices.new_zeros(batch * count * 3)
    for corner in range(3):
        index = (first + triangles[None, :, corner, None].to(device) * 3 + xyz).reshape(-1)  # [B * F * 3]
        normals = normals.index_add(0, index, flat)
    return torch.nn.functional.normalize(normals.view(batch, count, 3), dim=-1, eps=1e-12)


class FaceModel(nn.Module):
    """ICT FaceKit face-area morphable model (see the module docstring for frames and units).

    Buffers (V = 9409 vertices, F = 18,460 triangles, T = 9547 UVs):
        mean          float32 [V, 3]        neutral face, mm
        shape_basis   float32 [100, V, 3]   shape modes (ICT's identity modes), mm per standard deviation
        exp_basis     float32 [53, V, 3]    expression blendshapes (ARKit names in ``expression_names``), mm
        triangles     int64 [F, 3]          vertex index per triangle corner, counter-clockwise seen from outside
        uvs           float32 [T, 2]        texture coordinates, texture-image convention (v down)
        uv_triangles  int64 [F, 3]          UV index per triangle corner (UV seams make T > V)
        landmark_ids  int64 [68]            iBUG-68 landmark vertices (ICT's)
        landmark_corner_ids  int64 [68, 3]  the vertices each landmark is interpolated from (``landmarks()``)
        landmark_weights     float32 [68, 3]  ... and their barycentric weights (ICT's vertices: (1, 0, 0))
        mirror_ids    int64 [V]             index of each vertex's mirror image across the x = 0 plane
        jaw_contour_right / jaw_contour_left  int64 [17]  jaw outline candidates (ICT "extended jawline")
        fitting_vertex_ids, rigid_vertex_ids  int64       ICT's vertex sets, restricted to the face area
        part_mean     float32 [Vp, 3]       inner parts (eyeballs, sockets, gums, teeth; Vp = 13,343), neutral, mm
        part_shape_basis / part_exp_basis  float32 [100 / 53, Vp, 3]  their shape modes and blendshapes, mm
        part_triangles  int64 [Fp, 3]       triangles over ``[face vertices; part vertices]`` (the sockets are stitched
                                            to the face's rim loops; ``full_vertices`` builds that array)
        part_labels   int64 [Vp]            index into ``PART_LABELS`` per part vertex
        part_side     int64 [Vp]            sign of the neutral x: +1 subject's left, -1 right (0 on the midline)

    ``set_landmark_embedding`` replaces the landmarks by surface points (:func:`load_embedding`).
    """

    mean: torch.Tensor
    shape_basis: torch.Tensor
    exp_basis: torch.Tensor
    triangles: torch.Tensor
    uvs: torch.Tensor
    uv_triangles: torch.Tensor
    landmark_ids: torch.Tensor
    mirror_ids: torch.Tensor

    def __init__(self, data: FaceModelData) -> None:
        super().__init__()
        for name, value in data.__dict__.items():
            if isinstance(value, np.ndarray):
                self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(value)), persistent=True)
        self.expression_names: tuple[str, ...] = data.expression_names
        self.register_buffer("landmark_corner_ids", self.landmark_ids[:, None].repeat(1, 3).clone(), persistent=True)
        weights = torch.zeros(len(self.landmark_ids), 3)
        weights[:, 0] = 1.0
        self.register_buffer("landmark_weights", weights, persistent=True)

    def set_landmark_embedding(self, corner_ids: np.ndarray | torch.Tensor, weights: np.ndarray | torch.Tensor) -> None:
        """Landmarks as surface points: ``corner_ids`` int [68, 3] vertex ids, ``weights`` [68, 3] barycentric."""
        corner_ids = torch.as_tensor(np.asarray(corner_ids), dtype=torch.int64, device=self.mean.device)
        weights = torch.as_tensor(np.asarray(weights), dtype=self.mean.dtype, device=self.mean.device)
        if corner_ids.shape != self.landmark_corner_ids.shape or weights.shape != self.landmark_weights.shape:
            raise ValueError(f"landmark embedding must be [68, 3] ids and weights, got {tuple(corner_ids.shape)}")
        if int(corner_ids.min()) < 0 or int(corner_ids.max()) >= self.num_vertices:
            raise ValueError("landmark embedding vertex ids out of range")
        self.landmark_corner_ids = corner_ids
        self.landmark_weights = weights / weights.sum(-1, keepdim=True)

    @property
    def num_shape(self) -> int:
        return int(self.shape_basis.shape[0])

    @property
    def num_expression(self) -> int:
        return int(self.exp_basis.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    def forward(self, ps: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
        """Vertices of faces with shape ``ps`` [B, 100] (std units) and expression ``pe`` [B, 53] -> [B, V, 3] mm."""
        if ps.ndim != 2 or ps.shape[1] != self.num_shape:
            raise ValueError(f"ps must be [B, {self.num_shape}], got {tuple(ps.shape)}")
        if pe.ndim != 2 or pe.shape[1] != self.num_expression or pe.shape[0] != ps.shape[0]:
            raise ValueError(f"pe must be [{ps.shape[0]}, {self.num_expression}], got {tuple(pe.shape)}")
        dtype = self.mean.dtype
        offsets = torch.einsum("bk,kvc->bvc", ps.to(dtype), self.shape_basis)
        offsets = offsets + torch.einsum("bj,jvc->bvc", pe.to(dtype), self.exp_basis)
        return self.mean.unsqueeze(0) + offsets

    def parts(self, ps: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
        """Inner-part vertices (eyeballs, sockets, gums, teeth) of faces ``ps`` [B, 100], ``pe`` [B, 53] -> [B, Vp, 3]
        mm, in the same model space as :meth:`forward`."""
        dtype = self.part_mean.dtype
        offsets = torch.einsum("bk,kvc->bvc", ps.to(dtype), self.part_shape_basis)
        offsets = offsets + torch.einsum("bj,jvc->bvc", pe.to(dtype), self.part_exp_basis)
        return self.part_mean.unsqueeze(0) + offsets

    def full_vertices(self, ps: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
        """Face and inner-part vertices ``[B, V + Vp, 3]`` mm, the vertex array ``part_triangles`` indexes."""
        return torch.cat([self(ps, pe), self.parts(ps, pe)], dim=1)

    def zeros(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Neutral parameters ``(ps [B, 100], pe [B, 53])`` on the model's device."""
        device = self.mean.device
        return (
            torch.zeros(batch, self.num_shape, device=device),
            torch.zeros(batch, self.num_expression, device=device),
        )

    def sample(
        self,
        batch: int,
        generator: torch.Generator | None = None,
        shape_scale: float = 1.0,
        expression_scale: float = 0.0,
        expression_fraction: float = 0.1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random parameters from the prior.

        ``ps ~ N(0, shape_scale^2)``; each blendshape is active with probability ``expression_fraction`` and
        then has a weight ~ U(0, expression_scale). Returns ``(ps [B, 100], pe [B, 53])`` on the model's device.
        """
        ps = torch.randn(batch, self.num_shape, generator=generator) * shape_scale
        active = torch.rand(batch, self.num_expression, generator=generator) < expression_fraction
        pe = torch.rand(batch, self.num_expression, generator=generator) * expression_scale * active
        return ps.to(self.mean.device), pe.to(self.mean.device)

    def vertex_normals(self, vertices: torch.Tensor) -> torch.Tensor:
        """Area-weighted unit vertex normals of ``vertices`` [B, V, 3] -> [B, V, 3] (differentiable)."""
        return vertex_normals(vertices, self.triangles)

    def landmarks(self, vertices: torch.Tensor) -> torch.Tensor:
        """The 68 iBUG landmark positions of ``vertices`` [B, V, 3] -> [B, 68, 3] (mm): ICT's landmark vertices, or
        the surface points of a landmark embedding (``set_landmark_embedding``)."""
        corners = vertices[:, self.landmark_corner_ids]  # [B, 68, 3, 3]
        return (corners * self.landmark_weights[None, :, :, None].to(vertices.dtype)).sum(2)

    def export(self, path: str | os.PathLike[str], vertices: torch.Tensor, texture: np.ndarray | None = None) -> Path:
        """Write one face as a mesh with UVs (format from the suffix: ``.obj`` (+ ``.mtl``/``.png``), ``.glb``, ...).

        Args:
            path: output file.
            vertices: [V, 3] mm (a single face, no batch dimension).
            texture: optional uint8 [H, W, 3] UV texture image (top row first) stored with the mesh.
        """
        from PIL import Image

        mesh = self.to_trimesh(vertices, None if texture is None else Image.fromarray(texture))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".obj":
            mesh.export(path, file_type="obj", mtl_name=f"{path.stem}.mtl", include_normals=False)
        else:
            mesh.export(path)
        return path

    def seam_split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The face mesh with its vertices split at UV seams (one vertex per distinct vertex / UV pair), for file
        formats with a single index per corner.

        Returns ``(vertex_ids [N], uv [N, 2], triangles [F, 3])``: each split vertex's model vertex, its UV in the
        texture-image convention (u right, v down), and the triangles over the split vertices.
        """
        vertex_ids = self.triangles.cpu().numpy().reshape(-1)
        uv_ids = self.uv_triangles.cpu().numpy().reshape(-1)
        pairs, inverse = np.unique(np.stack([vertex_ids, uv_ids], axis=1), axis=0, return_inverse=True)
        return pairs[:, 0], self.uvs.cpu().numpy()[pairs[:, 1]], inverse.reshape(-1, 3)

    def to_trimesh(self, vertices: torch.Tensor, texture_image=None):
        """A ``trimesh.Trimesh`` of one face [V, 3] mm with per-corner UVs (vertices split at UV seams)."""
        import trimesh

        if vertices.ndim != 2 or vertices.shape != self.mean.shape:
            raise ValueError(f"vertices must be [{self.num_vertices}, 3], got {tuple(vertices.shape)}")
        vertex_ids, uv, triangles = self.seam_split()
        positions = vertices.detach().cpu().numpy()[vertex_ids]
        uv = uv.copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # back to OBJ/glTF-loader convention (v up) that trimesh expects
        if texture_image is not None:
            material = trimesh.visual.material.SimpleMaterial(image=texture_image)
        else:
            material = trimesh.visual.material.SimpleMaterial()
        visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        return trimesh.Trimesh(positions, triangles, visual=visual, process=False)


@lru_cache(maxsize=4)
def _cached_data(assets_dir: str | None) -> FaceModelData:
    return load_face_model_data(assets_dir)


DEFAULT_EMBEDDING = assets.DATA_DIR / "ict_landmark_embedding.json"
"""Detector-matched landmark surface points of the ICT face (``python -m ganfit.tools.learn_landmark_embedding``)."""


def load_embedding(path: str | Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(corner vertex ids int64 [68, 3], barycentric weights float32 [68, 3])`` from a JSON file; ``"default"`` is
    the project's ``ganfit/data/ict_landmark_embedding.json``; None -> None (use ICT's landmark vertices)."""
    if path is None:
        return None
    path = DEFAULT_EMBEDDING if str(path) == "default" else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"landmark embedding {path} not found (face_model.landmark_embedding=null uses ICT's)")
    payload = json.loads(path.read_text())
    ids = np.asarray(payload["vertex_ids"], dtype=np.int64)
    weights = np.asarray(payload["weights"], dtype=np.float32)
    if ids.shape != (68, 3) or weights.shape != (68, 3):
        raise ValueError(f"{path}: vertex_ids and weights must be [68, 3], got {ids.shape} and {weights.shape}")
    return ids, weights


def load_face_model(
    assets_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    landmark_embedding: str | os.PathLike[str] | None = None,
) -> FaceModel:
    """The ICT face model, converted once and cached (see :func:`ganfit.assets.locate_ict` for ``assets_dir``).

    ``landmark_embedding``: None keeps ICT's landmark vertices; ``"default"`` (the configs' choice) or a path loads
    detector-matched surface points (:func:`load_embedding`).
    """
    data = _cached_data(str(assets_dir) if assets_dir else None)
    model = FaceModel(data)
    if landmark_embedding is not None:
        corner_ids, weights = load_embedding(landmark_embedding)  # type: ignore[misc]
        model.set_landmark_embedding(corner_ids, weights)
    return model.to(device) if device is not None else model


@dataclass
class FaceModelInfoArgs:
    """The keys of ``ganfit face-model info``."""

    assets: str | None = field(default=None, metadata={"help": "ICT FaceKit folder (default: GANFIT_ASSETS)"})


@dataclass
class FaceModelSampleArgs(FaceModelInfoArgs):
    """The keys of ``ganfit face-model sample``."""

    n: int = field(default=4, metadata={"help": "how many faces"})
    out: Path = field(default=Path("outputs/samples"), metadata={"help": "output folder (OBJ + params .npz)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    shape: float = field(default=1.0, metadata={"help": "shape std scale (ps ~ N(0, shape^2))"})
    expression: float = field(default=0.5, metadata={"help": "max blendshape weight"})


FACE_MODEL_ACTIONS = {
    "info": (FaceModelInfoArgs, "print the model's sizes"),
    "sample": (FaceModelSampleArgs, "write random faces from the prior as OBJ meshes with UVs"),
}


def main(argv: list[str] | None = None) -> int:
    """``ganfit face-model sample [n=4] [out=DIR] [seed=0] [expression=0.5] [assets=DIR]`` / ``info``."""
    command, options = parse_action(
        FACE_MODEL_ACTIONS, argv, prog="ganfit face-model", doc="The ICT FaceKit morphable model."
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        model = load_face_model(options.assets)
    except (assets.AssetNotFoundError, assets.AssetIntegrityError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if command == "info":
        print(
            f"vertices {model.num_vertices}, triangles {model.triangles.shape[0]}, uvs {model.uvs.shape[0]}, "
            f"shape modes {model.num_shape}, expressions {model.num_expression}"
        )
        return 0
    count, out = options.n, options.out
    generator = torch.Generator().manual_seed(options.seed)
    ps, pe = model.sample(count, generator, shape_scale=options.shape, expression_scale=options.expression)
    with torch.no_grad():
        vertices = model(ps, pe)
    out.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = model.export(out / f"face_{index:03d}.obj", vertices[index])
        np.savez(out / f"face_{index:03d}_params.npz", ps=ps[index].numpy(), pe=pe[index].numpy())
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
