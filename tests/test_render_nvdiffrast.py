"""Backend parity: ganfit's CPU backend vs nvdiffrast (CUDA) on the same scenes.

Skipped without a CUDA GPU and an importable nvdiffrast (always, on our CI machines: this backend is not verified
by our CI). Rasterization of pixel centres exactly on edges may differ between the two (different fill rules and
float32 setup on the GPU), so ids must agree on almost all pixels and values where the ids agree.
"""

from __future__ import annotations

import pytest
import torch

import ganfit.render as dr
from ganfit.render.camera import frontal_camera
from ganfit.render.lighting import DirectionalLight
from ganfit.render.pipeline import FaceRenderer
from render_helpers import random_scene, shared_vertex_scene

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not dr.nvdiffrast_available(), reason="needs a CUDA GPU and nvdiffrast"),
]

RES = (64, 96)


def _scenes():
    pos, tri = random_scene(batch=2, n_tri=60, seed=1, dtype=torch.float32)
    yield pos, tri
    pos, tri = shared_vertex_scene(seed=2, n=12, dtype=torch.float32)
    yield pos, tri


@pytest.mark.parametrize("scene", [0, 1])
def test_primitives_match_nvdiffrast(scene):
    import nvdiffrast.torch as nvdr

    pos, tri = list(_scenes())[scene]
    n_vert = pos.shape[1]
    g = torch.Generator().manual_seed(3)
    attr = torch.rand(pos.shape[0], n_vert, 4, generator=g)
    tex = torch.rand(1, 32, 32, 3, generator=g)
    weight = torch.rand(pos.shape[0], *RES, 3, generator=g)
    results = {}
    for name, mod, ctx, device in (
        ("cpu", dr, dr.RasterizeCpuContext(), "cpu"),
        ("cuda", nvdr, nvdr.RasterizeCudaContext(), "cuda"),
    ):
        p = pos.to(device).requires_grad_(True)
        a = attr.to(device).requires_grad_(True)
        t = tex.to(device).requires_grad_(True)
        tri_d = tri.to(device)
        rast, db = mod.rasterize(ctx, p, tri_d, RES)
        out, _ = mod.interpolate(a, rast, tri_d)
        colour = mod.texture(t, out[..., :2].contiguous(), filter_mode="linear", boundary_mode="clamp")
        colour = mod.antialias(colour.contiguous(), rast, p, tri_d)
        (colour * weight.to(device)).sum().backward()
        results[name] = [x.detach().cpu() for x in (rast, db, out, colour, p.grad, a.grad, t.grad)]
    cpu, gpu = results["cpu"], results["cuda"]
    same = cpu[0][..., 3] == gpu[0][..., 3]
    assert same.float().mean() > 0.995
    torch.testing.assert_close(cpu[0][same], gpu[0][same], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cpu[1][same], gpu[1][same], atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(cpu[2][same], gpu[2][same], atol=1e-4, rtol=1e-4)
    assert (cpu[3] - gpu[3]).abs().mean() < 1e-3
    for a, b in zip(cpu[4:], gpu[4:], strict=True):
        assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.98


def test_face_renderer_nvdiffrast_backend_matches_cpu():
    pos, tri = shared_vertex_scene(seed=4, n=10)
    verts = (pos[..., :3] / pos[..., 3:]).float() * torch.tensor([100.0, 100.0, 10.0])
    uvs = torch.rand(verts.shape[1], 2)
    images = {}
    for backend, device in (("cpu", "cpu"), ("nvdiffrast", "cuda")):
        renderer = FaceRenderer(tri, uvs, tri, (64, 64), backend=backend).to(device)
        v = verts.to(device)
        normals = torch.tensor([0.0, 0.0, 1.0], device=device).expand_as(v)
        cam = frontal_camera(1, (64, 64), device=device)
        tex = torch.rand(1, 16, 16, 3, generator=torch.Generator().manual_seed(5)).to(device)
        images[backend] = renderer(v, normals, tex, cam, DirectionalLight.neutral(1, device=device)).image.cpu()
    assert (images["cpu"] - images["nvdiffrast"]).abs().mean() < 2e-3
