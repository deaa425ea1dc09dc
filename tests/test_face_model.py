"""The ICT FaceKit morphable model through its public path: locate -> convert/cache -> FaceModel -> export."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from ganfit import assets
from ganfit.face_model import FACE_VERTEX_COUNT, FaceModel, load_face_model, main, vertex_normals

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def model(assets_dir) -> FaceModel:
    return load_face_model(assets_dir)


@pytest.fixture(scope="module")
def raw_obj_vertices(assets_dir) -> dict[str, np.ndarray]:
    """Face-area vertices (mm) of every raw OBJ, read straight from the upstream files (not through the converter)."""
    source = assets.locate_ict(assets_dir)
    result = {}
    for name, payload in assets.iter_ict_files(source):
        if name.endswith(".obj"):
            rows = [line[2:] for line in payload.decode().splitlines() if line.startswith("v ")]
            vertices = np.array(" ".join(rows).split(), dtype=np.float64).reshape(-1, 3)
            result[name[:-4]] = vertices[:FACE_VERTEX_COUNT] * 10.0
        elif name == "vertex_indices.json":
            result["_indices"] = json.loads(payload)
    return result


def test_sizes_and_dtypes(model: FaceModel) -> None:
    assert model.mean.shape == (9409, 3) and model.mean.dtype == torch.float32
    assert model.shape_basis.shape == (100, 9409, 3)
    assert model.exp_basis.shape == (53, 9409, 3)
    assert model.triangles.shape == (18460, 3) and model.triangles.dtype == torch.int64
    assert int(model.triangles.max()) == 9408
    assert model.uvs.shape[0] == model.uv_triangles.max() + 1 > 9409  # UV seams are real
    assert float(model.uvs.min()) >= 0.0 and float(model.uvs.max()) <= 1.0  # tile 0
    assert len(model.expression_names) == 53 and model.expression_names[0] == "browDown_L"


def test_mean_matches_neutral_obj_in_mm(model: FaceModel, raw_obj_vertices) -> None:
    neutral = raw_obj_vertices["generic_neutral_mesh"]
    np.testing.assert_allclose(model.mean.numpy(), neutral, atol=1e-4)
    width = float(model.mean[:, 0].max() - model.mean[:, 0].min())
    assert 150.0 < width < 220.0, f"face-area width {width:.1f} mm is not a human head's"


def test_identity_modes_reproduce_their_objs(model: FaceModel, raw_obj_vertices) -> None:
    ps, pe = model.zeros(100)
    ps = torch.eye(100)
    with torch.no_grad():
        vertices = model(ps, pe).double().numpy()
    errors = [np.abs(vertices[k] - raw_obj_vertices[f"identity{k:03d}"]).max() for k in range(100)]
    assert max(errors) < 1e-4, f"worst identity mode error {max(errors):.2e} mm"


def test_expressions_reproduce_their_objs(model: FaceModel, raw_obj_vertices) -> None:
    ps, _ = model.zeros(53)
    with torch.no_grad():
        vertices = model(ps, torch.eye(53)).double().numpy()
    for j, name in enumerate(model.expression_names):
        error = np.abs(vertices[j] - raw_obj_vertices[name]).max()
        assert error < 1e-4, f"{name}: {error:.2e} mm"
    assert raw_obj_vertices["_indices"]["expressions"] == list(model.expression_names)


def test_mirror_map_on_mean_face(model: FaceModel) -> None:
    mirror = model.mirror_ids
    mean = model.mean.double()
    off_midline = mean[:, 0].abs() > 1.0
    assert bool((mirror[off_midline] != torch.arange(9409)[off_midline]).all()), "mirror map must pair, not fix"
    assert torch.equal(mirror[mirror], torch.arange(9409)), "mirroring twice must be the identity"
    np.testing.assert_allclose(mean[mirror, 0], -mean[:, 0], atol=0.1)
    np.testing.assert_allclose(mean[mirror, 1:], mean[:, 1:], atol=0.1)
    # Identity modes need not be symmetric; measure how much (reported in the issue note).
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    basis = model.shape_basis.double()
    asymmetry = (basis[:, mirror] * flip - basis).norm(dim=-1).mean(dim=1) / basis.norm(dim=-1).mean(dim=1)
    antisymmetry = (basis[:, mirror] * flip + basis).norm(dim=-1).mean(dim=1) / basis.norm(dim=-1).mean(dim=1)
    symmetric, antisymmetric = int((asymmetry < 0.05).sum()), int((antisymmetry < 0.05).sum())
    logger.info(
        "identity modes: %d symmetric, %d antisymmetric, %d mixed",
        symmetric,
        antisymmetric,
        100 - symmetric - antisymmetric,
    )
    # PCA of (mostly) symmetric scans: each mode is either mirror-symmetric or mirror-antisymmetric.
    assert symmetric + antisymmetric >= 90 and symmetric > antisymmetric


def test_landmarks_are_anatomical(model: FaceModel) -> None:
    landmarks = model.landmarks(model.mean.unsqueeze(0))[0]
    assert landmarks.shape == (68, 3)
    assert int(landmarks[:, 2].argmax()) == 30, "the nose tip (iBUG 31) must be the most forward landmark"
    right_eye, left_eye = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    interocular = float((left_eye - right_eye).norm())
    assert 55.0 < interocular < 70.0, f"inter-ocular distance {interocular:.1f} mm"
    # Frame: +X is the subject's left, so the subject's right jaw/eye (iBUG 1, 37-42) has x < 0; +Y is up.
    assert float(landmarks[0, 0]) < 0 < float(landmarks[16, 0])
    assert float(right_eye[0]) < 0 < float(left_eye[0])
    assert float(landmarks[8, 1]) < float(landmarks[30, 1]) < float(landmarks[27, 1]), "chin below nose below brow"


def test_vertex_normals_point_outwards(model: FaceModel) -> None:
    normals = model.vertex_normals(model.mean.unsqueeze(0))[0]
    assert torch.allclose(normals.norm(dim=-1), torch.ones(9409), atol=1e-4)
    nose_tip = int(model.landmark_ids[30])
    assert float(normals[nose_tip, 2]) > 0.8, "the nose tip's normal must face +Z (towards the camera)"


def test_vertex_normals_match_per_corner_index_add_bit_for_bit(model: FaceModel) -> None:
    """The flattened 1-D accumulation gives exactly what three ``index_add`` calls along the vertex dimension give
    (values and gradients), for a batch of two different meshes and for the face + parts topology."""

    def per_corner(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
        corners = vertices[:, triangles]
        cross = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
        normals = torch.zeros_like(vertices)
        for corner in range(3):
            normals = normals.index_add(1, triangles[:, corner], cross)
        return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)

    ps, pe = model.sample(2, torch.Generator().manual_seed(1), expression_scale=0.5)
    cases = [
        (model(ps, pe), model.triangles),
        (model.full_vertices(ps, pe), torch.cat([model.triangles, model.part_triangles])),
    ]
    for vertices, triangles in cases:
        vertices = vertices.detach().requires_grad_(True)
        weights = torch.randn(vertices.shape, generator=torch.Generator().manual_seed(2))
        ours = vertex_normals(vertices, triangles)
        (grad_ours,) = torch.autograd.grad((ours * weights).sum(), vertices)
        theirs = per_corner(vertices, triangles)
        (grad_theirs,) = torch.autograd.grad((theirs * weights).sum(), vertices)
        assert torch.equal(ours, theirs)
        assert torch.equal(grad_ours, grad_theirs)
    assert torch.equal(model.vertex_normals(cases[0][0]), vertex_normals(cases[0][0], model.triangles))


def test_forward_is_batched_differentiable_and_validates(model: FaceModel) -> None:
    ps, pe = model.sample(3, torch.Generator().manual_seed(0), expression_scale=0.5)
    ps.requires_grad_(True)
    vertices = model(ps, pe)
    assert vertices.shape == (3, 9409, 3)
    vertices.sum().backward()
    assert ps.grad is not None and ps.grad.shape == (3, 100)
    with pytest.raises(ValueError, match="ps must be"):
        model(torch.zeros(1, 99), torch.zeros(1, 53))
    with pytest.raises(ValueError, match="pe must be"):
        model(torch.zeros(2, 100), torch.zeros(1, 53))


def test_module_moves_and_round_trips_state(model: FaceModel) -> None:
    copy = FaceModel.__new__(FaceModel)
    torch.nn.Module.__init__(copy)
    for name, buffer in model.named_buffers():
        copy.register_buffer(name, torch.zeros_like(buffer))
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy.mean, model.mean)
    assert model.to(torch.float64).mean.dtype == torch.float64
    model.to(torch.float32)


def test_obj_and_glb_export_load_with_trimesh(model: FaceModel, tmp_path) -> None:
    ps, pe = model.sample(1, torch.Generator().manual_seed(1))
    with torch.no_grad():
        vertices = model(ps, pe)[0]
    texture = np.zeros((64, 64, 3), dtype=np.uint8)
    texture[:, :32] = (255, 0, 0)
    obj_path = model.export(tmp_path / "face.obj", vertices, texture)
    glb_path = model.export(tmp_path / "face.glb", vertices, texture)
    for path in (obj_path, glb_path):
        loaded = trimesh.load(path, force="mesh", process=False)
        assert len(loaded.faces) == 18460
        assert loaded.visual.uv is not None and loaded.visual.uv.shape[0] == len(loaded.vertices)
        # Same points in the same units: every exported vertex is a model vertex and every model vertex is exported.
        exported_to_model, _ = cKDTree(vertices.numpy()).query(loaded.vertices)
        model_to_exported, _ = cKDTree(loaded.vertices).query(vertices.numpy())
        assert exported_to_model.max() < 1e-3 and model_to_exported.max() < 1e-3
        np.testing.assert_allclose(loaded.area, model.to_trimesh(vertices).area, rtol=1e-4)
    assert (tmp_path / "face.mtl").is_file()


def test_cli_sample_writes_objs(assets_dir, tmp_path) -> None:
    assert main(["sample", "n=2", f"out={tmp_path}", "seed=3", f"assets={assets_dir}"]) == 0
    objs = sorted(tmp_path.glob("face_*.obj"))
    assert len(objs) == 2
    assert len(trimesh.load(objs[0], force="mesh", process=False).faces) == 18460
