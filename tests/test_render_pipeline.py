"""FaceRenderer, camera and lighting: orientation (no flips), projection, gradients, and the ICT face."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

import ganfit.render as dr
from ganfit.config import CONF_DIR
from ganfit.face_model import load_face_model
from ganfit.render import reference
from ganfit.render.camera import Camera, axis_angle_to_matrix, frontal_camera
from ganfit.render.lighting import DirectionalLight, SphericalHarmonicsLight, sh_basis
from ganfit.render.pipeline import FaceRenderer


def _quad(x0: float, y0: float, x1: float, y1: float, z: float = 0.0) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float32)


def _marker_scene():
    """Two quads facing +Z: a red one on +X (the subject's left) and a green one on +Y (up)."""
    verts = np.concatenate([_quad(30, -15, 70, 15), _quad(-15, 20, 15, 50)])
    tris = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], np.int64)
    uvs = np.array([[0.25, 0.5], [0.75, 0.5]], np.float32)  # texel 0 (red) and texel 1 (green) of a 1x2 texture
    uv_tris = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1]], np.int64)
    texture = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]]).permute(0, 3, 1, 2)  # [1, 3, 1, 2] NCHW
    return torch.from_numpy(verts)[None], tris, uvs, uv_tris, texture


def test_known_asymmetric_mesh_lands_where_the_camera_says():
    verts, tris, uvs, uv_tris, texture = _marker_scene()
    res = (64, 80)
    renderer = FaceRenderer(tris, uvs, uv_tris, res, antialias=False)
    camera = Camera(torch.eye(3)[None], torch.tensor([[0.0, 0.0, -400.0]]), torch.tensor([200.0]))
    normals = torch.tensor([0.0, 0.0, 1.0]).expand_as(verts)
    out = renderer(verts, normals, texture, camera, SphericalHarmonicsLight.ambient(1))
    img = out.image[0].permute(1, 2, 0)  # NCHW out: to [H, W, 3]
    red = (img[..., 0] > 0.9) & (img[..., 1] < 0.1)
    green = (img[..., 1] > 0.9) & (img[..., 0] < 0.1)
    assert red.sum() > 20 and green.sum() > 20
    rows, cols = torch.meshgrid(torch.arange(res[0]) + 0.5, torch.arange(res[1]) + 0.5, indexing="ij")
    # +X is the viewer's right; +Y is up, i.e. towards row 0 of the top-row-first image.
    assert cols[red].min() > res[1] / 2 and rows[red].max() < rows[red].min() + 16
    assert rows[green].max() < res[0] / 2 and abs(float(cols[green].mean()) - res[1] / 2) < 1
    # project() agrees with where the pixels are: centres of the quads vs centroids of their pixels.
    centres = torch.tensor([[[50.0, 0.0, 0.0], [0.0, 35.0, 0.0]]])
    px = out.project(centres)[0]
    assert torch.allclose(px[0], torch.stack([cols[red].mean(), rows[red].mean()]), atol=0.6)
    assert torch.allclose(px[1], torch.stack([cols[green].mean(), rows[green].mean()]), atol=0.6)
    # Analytic: x = W/2 + f X / d, y = H/2 - f Y / d.
    assert torch.allclose(px[0], torch.tensor([40 + 200 * 50 / 400, 32.0]))
    assert torch.allclose(px[1], torch.tensor([40.0, 32 - 200 * 35 / 400]))
    assert (out.mask[0, 0] > 0.5).sum() == red.sum() + green.sum()


def test_yaw_moves_the_positive_x_side_away():
    # Rotating the model by +30 degrees about +Y turns +X towards -Z (away from the camera): its projection moves
    # towards the image centre and its depth increases.
    cam0 = frontal_camera(1, (64, 64))
    aa = torch.tensor([[0.0, math.radians(30), 0.0]])
    cam1 = Camera(aa, cam0.translation, cam0.focal)
    point = torch.tensor([[[60.0, 0.0, 0.0]]])
    x0 = cam0.project(point, (64, 64))[0, 0, 0]
    x1 = cam1.project(point, (64, 64))[0, 0, 0]
    assert 32 < x1 < x0
    assert cam1.to_camera(point)[0, 0, 2] < cam0.to_camera(point)[0, 0, 2]


def test_axis_angle_matches_matrix_and_is_smooth_at_zero():
    aa = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0], [1e-6, 0.0, 0.0]], dtype=torch.float64)
    rot = axis_angle_to_matrix(aa)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3), atol=1e-12)
    angle = aa[0].norm()
    axis = aa[0] / angle
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    rodrigues = v * angle.cos() + torch.linalg.cross(axis, v) * angle.sin() + axis * (axis @ v) * (1 - angle.cos())
    assert torch.allclose(rot[0] @ v, rodrigues)
    aa0 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa0,))


def test_clip_space_and_projection_agree():
    cam = Camera(torch.tensor([[0.1, 0.2, -0.1]]), torch.tensor([[5.0, -3.0, -500.0]]), torch.tensor([300.0]))
    pts = torch.randn(1, 10, 3) * 50
    res = (48, 64)
    clip = cam.to_clip(pts, res)
    ndc = clip[..., :2] / clip[..., 3:]
    px = torch.stack([(ndc[..., 0] + 1) * res[1] / 2, (1 - ndc[..., 1]) * res[0] / 2], -1)
    assert torch.allclose(px, cam.project(pts, res), atol=1e-3)


def test_lighting_models():
    normals = torch.nn.functional.normalize(torch.randn(2, 4, 5, 3), dim=-1)
    albedo = torch.rand(2, 4, 5, 3)
    sh = SphericalHarmonicsLight.ambient(2, intensity=0.8)
    assert torch.allclose(sh.shade(albedo, normals), 0.8 * albedo, atol=1e-6)
    basis = sh_basis(torch.tensor([[0.0, 0.0, 1.0]]))
    assert basis.shape == (1, 9) and basis[0, 2] > 0 and basis[0, 1] == 0
    light = DirectionalLight(
        ambient=torch.full((2, 3), 0.1),
        diffuse=torch.tensor([[1.0, 0.5, 0.0]] * 2),
        direction=torch.tensor([[0, 0, 2.0]] * 2),
    )
    facing = torch.tensor([0.0, 0.0, 1.0]).expand(2, 4, 5, 3)
    away = -facing
    assert torch.allclose(light.shade(albedo, facing), albedo * torch.tensor([1.1, 0.6, 0.1]))
    assert torch.allclose(light.shade(albedo, away), albedo * 0.1)
    light.specular = torch.full((2, 3), 0.5)
    assert torch.allclose(light.shade(albedo, facing), albedo * torch.tensor([1.1, 0.6, 0.1]) + 0.5)


def test_pipeline_gradients_reach_every_parameter():
    verts, tris, uvs, uv_tris, texture = _marker_scene()
    verts = verts.double().requires_grad_(True)
    texture = texture.double().requires_grad_(True)
    renderer = FaceRenderer(tris, uvs, uv_tris, (32, 32))
    aa = torch.tensor([[0.05, -0.1, 0.02]], dtype=torch.float64, requires_grad=True)
    trans = torch.tensor([[0.0, 0.0, -400.0]], dtype=torch.float64, requires_grad=True)
    focal = torch.tensor([100.0], dtype=torch.float64, requires_grad=True)
    coeffs = SphericalHarmonicsLight.ambient(1, dtype=torch.float64).coeffs.requires_grad_(True)
    normals = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(verts)
    background = torch.full((1, 3, 32, 32), 0.3, dtype=torch.float64)
    out = renderer(verts, normals, texture, Camera(aa, trans, focal), SphericalHarmonicsLight(coeffs), background)
    (out.image * torch.linspace(0, 1, 3, dtype=torch.float64)[:, None, None]).sum().backward()
    for name, t in {
        "vertices": verts,
        "texture": texture,
        "rotation": aa,
        "translation": trans,
        "focal": focal,
    }.items():
        assert t.grad is not None and t.grad.abs().sum() > 0, name
    assert coeffs.grad.abs().sum() > 0


def test_renderer_config_composes_and_backend_errors():
    verts, tris, uvs, uv_tris, _ = _marker_scene()

    class _Model(torch.nn.Module):
        triangles = torch.from_numpy(tris)
        uvs_ = None

    with initialize_config_dir(config_dir=str(CONF_DIR / "renderer"), version_base=None):
        cfg = compose(config_name="cpu")
    model = _Model()
    model.uvs = torch.from_numpy(uvs)
    model.uv_triangles = torch.from_numpy(uv_tris)
    renderer = instantiate(cfg)(model, (24, 32))  # a partial: the factory the fit calls per resolution
    assert isinstance(renderer, FaceRenderer) and renderer.resolution == (24, 32)
    with pytest.raises(ValueError, match="backend"):
        FaceRenderer(tris, uvs, uv_tris, (8, 8), backend="opengl")
    if not dr.nvdiffrast_available():
        gpu = FaceRenderer(tris, uvs, uv_tris, (8, 8), backend="nvdiffrast")
        cam = frontal_camera(1, (8, 8))
        with pytest.raises(dr.BackendUnavailableError):
            gpu(verts, torch.zeros_like(verts), torch.rand(1, 3, 2, 2), cam, SphericalHarmonicsLight.ambient(1))


# ---------------------------------------------------------------------------------------------------------------
# The real ICT face.


@pytest.fixture(scope="module")
def face_model(assets_dir):
    return load_face_model(assets_dir)


def _test_texture(size: int = 256) -> torch.Tensor:
    """A UV test card: u ramps red, v ramps green, 8x8 checker in blue. ``[1, 3, size, size]``."""
    t = (torch.arange(size) + 0.5) / size
    v, u = torch.meshgrid(t, t, indexing="ij")
    checker = ((u * 8).floor() + (v * 8).floor()) % 2
    return torch.stack([u, v, 0.2 + 0.6 * checker], 0)[None]


def test_appearance_copy_is_the_geometry_detached_render(face_model):
    """``appearance_copy=True`` gives, from one rasterization, the image with the geometry's gradients cut: the same
    values as ``image`` and the same texture / light gradients as rendering detached vertices and camera."""
    res = (64, 64)
    renderer = FaceRenderer.from_face_model(face_model, res)
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(1, 3, *res, generator=generator)
    background = torch.rand(1, 3, *res, generator=generator)
    base = frontal_camera(1, res)

    def leaves():
        verts = face_model.mean[None].clone().requires_grad_(True)
        texture = _test_texture().clone().requires_grad_(True)
        rotation = torch.tensor([[0.1, 0.2, 0.0]], requires_grad=True)
        light = DirectionalLight(
            ambient=torch.tensor([[0.4, 0.4, 0.4]], requires_grad=True),
            diffuse=torch.tensor([[0.6, 0.5, 0.5]], requires_grad=True),
            direction=torch.tensor([[0.3, 0.2, 1.0]], requires_grad=True),
        )
        return verts, texture, Camera(rotation, base.translation, base.focal), light

    verts, texture, camera, light = leaves()
    out = renderer(verts, face_model.vertex_normals(verts), texture, camera, light, background, appearance_copy=True)
    assert out.appearance_image is not None
    assert torch.equal(out.appearance_image, out.image)
    (out.appearance_image * weights).sum().backward()
    assert verts.grad is None and camera.rotation.grad is None
    grads = [texture.grad, light.ambient.grad, light.diffuse.grad, light.direction.grad]

    verts, texture, camera, light = leaves()
    detached = renderer(
        verts.detach(), face_model.vertex_normals(verts.detach()), texture, camera.detached(), light, background
    )
    assert detached.appearance_image is None
    (detached.image * weights).sum().backward()
    expected = [texture.grad, light.ambient.grad, light.diffuse.grad, light.direction.grad]
    for got, want in zip(grads, expected, strict=True):
        assert want is not None and want.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_ict_mean_face_render(face_model, tmp_path):
    res = (256, 256)
    renderer = FaceRenderer.from_face_model(face_model, res)
    verts = face_model.mean[None]
    out = renderer(
        verts, face_model.vertex_normals(verts), _test_texture(), frontal_camera(1, res), DirectionalLight.neutral(1)
    )
    img = out.image[0].permute(1, 2, 0)
    mask = out.mask[0, 0]
    path = tmp_path / "ict_mean_face.png"
    Image.fromarray((img.clamp(0, 1) * 255).round().byte().numpy()).save(path)
    assert path.stat().st_size > 1000
    coverage = float((mask > 0.5).float().mean())
    assert 0.3 < coverage < 0.8  # the face fills ~70% of the width
    # The face area is mirror-symmetric: so is its silhouette (up to a pixel of the sampling grid).
    m = mask > 0.5
    assert (m & m.flip(1)).sum() / (m | m.flip(1)).sum() > 0.97
    # Test card: u (red) grows to the viewer's right on the face; v (green) grows downwards; blue is the checker.
    inside = m & (img.sum(-1) > 0)
    cols = torch.arange(res[1]).expand(res)
    rows = torch.arange(res[0])[:, None].expand(res)
    red_left = img[..., 0][inside & (cols < 100)].mean()
    red_right = img[..., 0][inside & (cols > 156)].mean()
    green_top = img[..., 1][inside & (rows < 100)].mean()
    green_bottom = img[..., 1][inside & (rows > 156)].mean()
    assert red_right > red_left + 0.2 and green_bottom > green_top + 0.2
    assert 0.15 < float(img[..., 2][inside].mean()) < 0.7
    assert float(img[~(mask > 0)].abs().max()) == 0.0  # black background outside the face
    # Landmarks: the subject's right eye (iBUG 36-41) is on the viewer's left; the chin (8) is below the nose (30).
    lm = out.project(face_model.landmarks(verts))[0]
    assert lm[36:42, 0].max() < res[1] / 2 < lm[42:48, 0].min()
    assert lm[8, 1] > lm[30, 1] > lm[27, 1]
    assert bool(m[int(lm[30, 1]), int(lm[30, 0])])


def test_ict_face_matches_reference(face_model):
    res = (48, 48)
    verts = face_model.mean[None].double()
    clip = frontal_camera(1, res, dtype=torch.float64).to_clip(verts, res).requires_grad_(True)
    tri = face_model.triangles.int()
    ctx = dr.RasterizeCpuContext()
    rast, _ = dr.rasterize(ctx, clip, tri, res)
    ref, _ = reference.rasterize(clip, tri, res)
    assert torch.equal(rast[..., 3], ref[..., 3])
    torch.testing.assert_close(rast[..., :3], ref[..., :3])
    colour, _ = dr.interpolate(face_model.vertex_normals(verts) * 0.5 + 0.5, rast, tri)
    colour_ref = reference.interpolate(face_model.vertex_normals(verts) * 0.5 + 0.5, ref, tri)
    torch.testing.assert_close(colour, colour_ref)
    weight = torch.rand(colour.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    aa = dr.antialias(colour, rast, clip, tri)
    (g_fast,) = torch.autograd.grad((aa * weight).sum(), clip, retain_graph=True)
    aa_ref = reference.antialias(colour_ref, ref, clip, tri)
    (g_ref,) = torch.autograd.grad((aa_ref * weight).sum(), clip, retain_graph=True)
    torch.testing.assert_close(aa, aa_ref)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-8, rtol=1e-6)
    # UV lookup through the model's UV triangles and a texture, with gradients to the texture and the positions.
    tex = _test_texture(64).permute(0, 2, 3, 1).contiguous().double().requires_grad_(True)  # ops take NHWC
    uvs = face_model.uvs[None].double()
    uv_tri = face_model.uv_triangles.int()
    sampled = dr.texture(tex, dr.interpolate(uvs, rast, uv_tri)[0], boundary_mode="clamp")
    sampled_ref = reference.texture(tex, reference.interpolate(uvs, ref, uv_tri), boundary_mode="clamp")
    torch.testing.assert_close(sampled, sampled_ref)
    g_tex, g_pos = torch.autograd.grad((sampled * weight).sum(), (tex, clip))
    g_tex_ref, g_pos_ref = torch.autograd.grad((sampled_ref * weight).sum(), (tex, clip))
    torch.testing.assert_close(g_tex, g_tex_ref)
    torch.testing.assert_close(g_pos, g_pos_ref, atol=1e-8, rtol=1e-6)
