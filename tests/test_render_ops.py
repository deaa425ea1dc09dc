"""The four primitives of ganfit.render against the slow pure-PyTorch reference, gradient checks, fill rules."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
import torch

import ganfit.render as dr
from ganfit.render import _cpu, _cpu_kernels, reference
from render_helpers import grid_triangles, icosphere, random_scene, shared_vertex_scene, to_clip

RES = (24, 32)


@pytest.fixture(scope="module")
def ctx() -> dr.RasterizeCpuContext:
    return dr.RasterizeCpuContext()


def _scenes():
    yield random_scene(batch=2, n_tri=30, seed=1)
    yield shared_vertex_scene(seed=2)


@pytest.mark.parametrize("scene", list(range(2)))
def test_rasterize_matches_reference(ctx, scene):
    pos, tri = list(_scenes())[scene]
    rast, rast_db = dr.rasterize(ctx, pos, tri, RES)
    ref, ref_db = reference.rasterize(pos, tri, RES, with_db=True)
    assert rast.shape == (pos.shape[0], *RES, 4) and rast_db.shape == rast.shape
    assert torch.equal(rast[..., 3], ref[..., 3])
    assert (rast[..., 3] > 0).float().mean() > 0.1
    torch.testing.assert_close(rast[..., :3], ref[..., :3], atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(rast_db, ref_db, atol=1e-9, rtol=1e-7)


def test_rasterize_gradients_match_reference(ctx):
    pos, tri = random_scene(batch=2, n_tri=30, seed=3)
    w = torch.randn(2, *RES, 4, dtype=torch.float64)
    wdb = torch.randn(2, *RES, 4, dtype=torch.float64)
    grads = []
    for fn in (lambda p: dr.rasterize(ctx, p, tri, RES), lambda p: reference.rasterize(p, tri, RES, with_db=True)):
        p = pos.clone().requires_grad_(True)
        rast, db = fn(p)
        ((rast[..., :2] * w[..., :2]).sum() + (db * wdb).sum()).backward()
        grads.append(p.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-8, rtol=1e-6)


def test_float32_matches_float64(ctx):
    pos, tri = random_scene(batch=2, n_tri=30, seed=4)
    r64, _ = dr.rasterize(ctx, pos, tri, RES)
    r32, _ = dr.rasterize(ctx, pos.float(), tri, RES)
    assert r32.dtype == torch.float32
    same = r32[..., 3] == r64[..., 3].float()
    assert same.float().mean() > 0.995
    torch.testing.assert_close(r32[..., :3][same], r64[..., :3][same].float(), atol=1e-4, rtol=1e-4)


def test_interpolate_matches_reference(ctx):
    pos, tri = shared_vertex_scene(seed=5)
    n_vert = pos.shape[1]
    attr = torch.randn(1, n_vert, 5, dtype=torch.float64)
    outs, grads = [], []
    for impl in ("fast", "ref"):
        p = pos.clone().requires_grad_(True)
        a = attr.clone().requires_grad_(True)
        if impl == "fast":
            rast, db = dr.rasterize(ctx, p, tri, RES)
            out, da = dr.interpolate(a, rast, tri, rast_db=db, diff_attrs=[0, 3])
        else:
            rast, db = reference.rasterize(p, tri, RES, with_db=True)
            out = reference.interpolate(a, rast, tri)
            # Reference attribute derivatives: d/dX of the interpolated attribute via the chain rule on rast_db.
            corners = a[0, tri.long()[(rast[..., 3].long() - 1).clamp(min=0)]]  # [B, H, W, 3, C]
            d0 = (corners[..., 0, :] - corners[..., 2, :])[..., [0, 3]]
            d1 = (corners[..., 1, :] - corners[..., 2, :])[..., [0, 3]]
            dx = d0 * db[..., 0:1] + d1 * db[..., 2:3]
            dy = d0 * db[..., 1:2] + d1 * db[..., 3:4]
            da = torch.stack([dx, dy], -1).flatten(-2) * (rast[..., 3:4] > 0)
        loss = (out * torch.linspace(-1, 1, 5, dtype=torch.float64)).sum() + (da * 0.3).sum()
        loss.backward()
        outs.append((out.detach(), da.detach()))
        grads.append((p.grad, a.grad))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1])
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(grads[0][1], grads[1][1])


@pytest.mark.parametrize("filter_mode", ["nearest", "linear"])
@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp", "zero"])
def test_texture_matches_reference(filter_mode, boundary_mode):
    g = torch.Generator().manual_seed(6)
    tex = torch.rand(2, 5, 7, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(2, 9, 11, 2, generator=g, dtype=torch.float64) * 1.6 - 0.3  # includes out-of-range coords
    results = []
    for fn in (dr.texture, reference.texture):
        t = tex.clone().requires_grad_(True)
        u = uv.clone().requires_grad_(True)
        out = fn(t, u, filter_mode=filter_mode, boundary_mode=boundary_mode)
        (out * torch.arange(3, dtype=torch.float64)).sum().backward()
        results.append((out.detach(), t.grad, u.grad if u.grad is not None else torch.zeros_like(uv)))
    for a, b in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(a, b)


def test_texture_broadcasts_shared_texture():
    tex = torch.rand(1, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(3, 5, 5, 2, dtype=torch.float64)
    out = dr.texture(tex, uv, filter_mode="linear")
    out.sum().backward()
    ref_tex = tex.detach().clone().requires_grad_(True)
    reference.texture(ref_tex, uv).sum().backward()
    torch.testing.assert_close(tex.grad, ref_tex.grad)


def test_texture_uv_gradient_with_constant_texture():
    g = torch.Generator().manual_seed(12)
    tex = torch.rand(1, 6, 5, 3, generator=g, dtype=torch.float64)  # no gradient wanted
    uv = torch.rand(2, 7, 8, 2, generator=g, dtype=torch.float64)
    grads = []
    for fn in (dr.texture, reference.texture):
        u = uv.clone().requires_grad_(True)
        fn(tex, u, filter_mode="linear", boundary_mode="clamp").sum().backward()
        grads.append(u.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp", "zero"])
@pytest.mark.parametrize("filter_mode", ["nearest", "linear"])
@pytest.mark.parametrize("n_chan", [3, 5])  # kernels specialised for <= 4 channels, and the general one
def test_texture_gradient_split_over_threads(filter_mode, boundary_mode, n_chan):
    # One image, several threads: the texture gradient goes through private per-thread buffers that are zeroed and
    # summed row by row where used; runs of equal uv (a constant background) are summed before scattering.

    g = torch.Generator().manual_seed(13)
    tex = torch.rand(1, 9, 7, n_chan, generator=g, dtype=torch.float64)
    uv = torch.rand(1, 23, 17, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    uv[:, :, :6] = 0.0  # background-like runs
    uv[:, 10:, 12:] = torch.tensor([0.9, 0.1], dtype=torch.float64)
    weight = torch.rand(1, 23, 17, n_chan, generator=g, dtype=torch.float64)
    t = tex.clone().requires_grad_(True)
    reference.texture(t, uv, filter_mode=filter_mode, boundary_mode=boundary_mode).mul(weight).sum().backward()
    expected = t.grad
    before = numba.get_num_threads()
    try:
        for n_threads in sorted({1, 2, numba.config.NUMBA_NUM_THREADS}):
            if n_threads > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(n_threads)
            t = tex.clone().requires_grad_(True)
            dr.texture(t, uv, filter_mode=filter_mode, boundary_mode=boundary_mode).mul(weight).sum().backward()
            torch.testing.assert_close(t.grad, expected)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_chan", [1, 3, 4])
def test_texture_clamp_fast_path_matches_general_kernels(dtype, n_chan):
    # Bilinear 'clamp' lookups (<= 4 channels) take their taps from a vectorised row loop; forward and backward must
    # equal the general per-pixel kernels bit for bit (edges, runs of equal uv, NaN, zero incoming gradients).

    g = torch.Generator().manual_seed(15)
    tex = torch.rand(2, 7, 9, n_chan, generator=g, dtype=dtype)
    uv = torch.rand(2, 13, 17, 2, generator=g, dtype=dtype) * 1.6 - 0.3
    uv[:, :, :5] = 0.0
    uv[1, 4, 9:12] = 0.37
    uv[0, 3, 6, 0] = float("nan")
    uv[0, 8, 2] = torch.tensor([1.0 / 18.0, 0.5 / 7.0 + 1.0 / 7.0], dtype=dtype)  # exactly on texel centres
    dy = torch.rand(2, 13, 17, n_chan, generator=g, dtype=dtype)
    dy[0, 5] = 0.0
    tex_np, uv_np, dy_np = tex.numpy(), uv.numpy(), dy.numpy()
    rows = _cpu.row_order(2, 13)
    out_fast = np.empty((2, 13, 17, n_chan), tex_np.dtype)
    out_gen = np.empty_like(out_fast)
    _cpu_kernels.texture_fwd_clamp(tex_np, uv_np, rows, out_fast)
    _cpu_kernels.texture_fwd(tex_np, uv_np, True, 1, rows, out_gen)
    assert np.array_equal(out_fast, out_gen)
    chunks = np.array([[0, 26, 0]], np.int64)
    grads = []
    for kernel in (_cpu_kernels.texture_bwd4, _cpu_kernels.texture_bwd):
        gtex = np.zeros(tex_np.shape, tex_np.dtype)
        guv = np.empty(uv_np.shape, uv_np.dtype)
        scratch = np.zeros((1, 1), tex_np.dtype)
        dirty = np.zeros((1, 14), np.uint8)
        kernel(tex_np, uv_np, dy_np, True, 1, chunks, True, gtex, scratch, dirty, guv)
        grads.append((gtex, guv))
    assert np.array_equal(grads[0][0], grads[1][0])
    assert np.array_equal(grads[0][1], grads[1][1])


def test_texture_gradient_scratch_recovers_from_interruption(monkeypatch):
    # The private texture-gradient buffers are reused and kept zero by the row sum; if a call dies between the
    # scatter and that sum, the next call must not see its leftovers.

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads for private buffers")
    g = torch.Generator().manual_seed(14)
    tex = torch.rand(1, 9, 7, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(1, 23, 17, 2, generator=g, dtype=torch.float64)
    t = tex.clone().requires_grad_(True)
    reference.texture(t, uv, filter_mode="linear").sum().backward()
    expected = t.grad
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)

        def interrupted(*args):
            raise KeyboardInterrupt

        with monkeypatch.context() as m:
            m.setattr(_cpu_kernels, "add_dirty_rows", interrupted)
            with pytest.raises(KeyboardInterrupt):
                dr.texture(tex.clone().requires_grad_(True), uv, filter_mode="linear").sum().backward()
        for _ in range(2):
            t = tex.clone().requires_grad_(True)
            dr.texture(t, uv, filter_mode="linear").sum().backward()
            torch.testing.assert_close(t.grad, expected)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("scene", list(range(2)))
def test_antialias_matches_reference(ctx, scene):
    pos, tri = list(_scenes())[scene]
    n_vert = pos.shape[1]
    g = torch.Generator().manual_seed(7)
    attr = torch.rand(pos.shape[0], n_vert, 3, generator=g, dtype=torch.float64)
    background = torch.rand(pos.shape[0], *RES, 3, generator=g, dtype=torch.float64)
    weight = torch.rand(pos.shape[0], *RES, 3, generator=g, dtype=torch.float64)
    results = []
    for impl in ("fast", "ref"):
        p = pos.clone().requires_grad_(True)
        rast, _ = dr.rasterize(ctx, p, tri, RES)
        col, _ = dr.interpolate(attr, rast, tri)
        col = torch.where(rast[..., 3:4] > 0, col, background).requires_grad_(True)
        col.retain_grad()
        if impl == "fast":
            out = dr.antialias(col, rast, p, tri)
        else:
            out = reference.antialias(col, rast, p, tri)
        (out * weight).sum().backward()
        results.append((out.detach(), col.grad, p.grad))
    assert (results[0][0] != col.detach()).any()  # antialiasing changed some pixels
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    torch.testing.assert_close(results[0][2], results[1][2], atol=1e-8, rtol=1e-6)


def test_antialias_pair_list_overflow_retry(ctx, monkeypatch):
    """Rows with more blended pairs than the first-try slots are redone at full width: same results."""
    pos, tri = list(_scenes())[0]
    g = torch.Generator().manual_seed(3)
    color = torch.rand(pos.shape[0], *RES, 3, generator=g, dtype=torch.float64)
    weight = torch.rand(pos.shape[0], *RES, 3, generator=g, dtype=torch.float64)
    rast, _ = dr.rasterize(ctx, pos, tri, RES)
    results = []
    calls = []
    rows_kernel = _cpu_kernels._aa_rows

    def counting_rows(*args):
        calls[-1] += 1
        return rows_kernel(*args)

    monkeypatch.setattr(_cpu_kernels, "_aa_rows", counting_rows)
    for slots in (_cpu_kernels.AA_ROW_SLOTS, 1):
        monkeypatch.setattr(_cpu_kernels, "AA_ROW_SLOTS", slots)
        calls.append(0)
        p = pos.clone().requires_grad_(True)
        c = color.clone().requires_grad_(True)
        out = dr.antialias(c, rast, p, tri)
        (out * weight).sum().backward()
        results.append((out.detach(), c.grad, p.grad))
    assert calls == [1, 2]  # the 1-slot run retried at full width
    for a, b in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(a, b)


def test_antialias_changes_silhouette_pixels_only(ctx):
    pos, tri = shared_vertex_scene(seed=8)
    rast, _ = dr.rasterize(ctx, pos, tri, RES)
    color = torch.where(rast[..., 3:4] > 0, torch.ones(1, *RES, 3, dtype=torch.float64), torch.zeros(1))
    out = dr.antialias(color, rast, pos, tri)
    changed = (out - color).abs().sum(-1) > 0
    assert changed.sum() > 10  # the silhouette of the sheet is blended
    inside = rast[..., 3] > 0
    interior = inside.clone()
    for shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        interior &= torch.roll(inside, shifts=shift[1], dims=1 + shift[0])
    assert not (changed & interior).any()  # interior edges (same colour, shared by triangles) are not touched


# ---------------------------------------------------------------------------------------------------------------
# Finite-difference gradient checks (float64, tiny scenes).


def test_gradcheck_rasterize_positions(ctx):
    pos, tri = random_scene(batch=1, n_tri=4, seed=9, size=1.2)
    pos = pos.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: dr.rasterize(ctx, p, tri, (12, 12))[0][..., :2], (pos,), atol=1e-5)
    assert torch.autograd.gradcheck(lambda p: dr.rasterize(ctx, p, tri, (12, 12))[1], (pos,), atol=1e-5, fast_mode=True)


def test_gradcheck_interpolate_attributes_and_positions(ctx):
    pos, tri = shared_vertex_scene(seed=10, n=3)
    attr = torch.randn(1, pos.shape[1], 2, dtype=torch.float64, requires_grad=True)
    pos = pos.requires_grad_(True)

    def fn(p, a):
        rast, _ = dr.rasterize(ctx, p, tri, (10, 10))
        return dr.interpolate(a, rast, tri)[0]

    assert torch.autograd.gradcheck(fn, (pos, attr), atol=1e-5)


def test_gradcheck_texture():
    g = torch.Generator().manual_seed(11)
    tex = torch.rand(1, 4, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(1, 3, 3, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2).requires_grad_(True)
    for boundary in ("wrap", "clamp", "zero"):
        assert torch.autograd.gradcheck(lambda t, u, b=boundary: dr.texture(t, u, boundary_mode=b), (tex, uv))
    assert torch.autograd.gradcheck(lambda t: dr.texture(t, uv.detach(), filter_mode="nearest"), (tex,))


def test_gradcheck_antialias_edge(ctx):
    # A single triangle over a background: the only position gradient of a constant-coloured triangle comes from
    # the antialiasing of its silhouette edges.
    pts = torch.tensor([[[-0.63, -0.52, -3.0], [0.71, -0.33, -3.2], [0.05, 0.68, -2.9]]], dtype=torch.float64)
    pos = to_clip(pts).requires_grad_(True)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)

    def fn(p):
        rast, _ = dr.rasterize(ctx, p, tri, (16, 16))
        color = torch.where(rast[..., 3:4] > 0, torch.tensor([0.9, 0.2], dtype=torch.float64), torch.zeros(2))
        return dr.antialias(color.to(torch.float64), rast, p, tri)

    out = fn(pos)
    out.sum().backward()
    assert pos.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(fn, (pos,), atol=1e-5, fast_mode=True)


# ---------------------------------------------------------------------------------------------------------------
# Fill rule and clipping.


def _counts(pos: torch.Tensor, tri: torch.Tensor, res: tuple[int, int]) -> np.ndarray:
    counts = np.zeros((pos.shape[0], *res), np.int32)
    _cpu_kernels.coverage_count(pos.numpy(), tri.numpy(), res[0], res[1], counts)
    return counts


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_mesh_is_watertight(ctx, dtype):
    verts, faces = icosphere(subdivisions=3)
    g = torch.Generator().manual_seed(12)
    verts = verts * (1 + 0.05 * torch.randn(verts.shape[0], 1, generator=g, dtype=torch.float64))
    pos = to_clip(verts[None] * 1.3 + torch.tensor([0.1, -0.05, -4.0], dtype=torch.float64)).to(dtype)
    counts = _counts(pos, faces, (64, 64))
    # A ray through a pixel centre enters and leaves a closed surface equally often: an odd count is a crack or a
    # doubly covered shared edge / vertex (the jittered sphere is not convex, so 4 happens).
    assert (counts % 2 == 0).all()
    assert {0, 2} <= set(np.unique(counts).tolist())
    rast, _ = dr.rasterize(ctx, pos, faces, (64, 64))
    assert np.array_equal(rast[..., 3].numpy() > 0, counts > 0)


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_pixel_aligned_grid_covers_each_pixel_once(ctx, scale):
    # Vertices on pixel centres and edges through pixel centres: every tie must be broken the same way.
    n, res = 9, (16, 16)
    ticks = -1.0625 + 0.25 * torch.arange(n + 1)  # pixel centres (of pixel -1, 1, 3, ...); pixel = 0.125 NDC
    ys, xs = torch.meshgrid(ticks, ticks, indexing="ij")
    coords = torch.stack([xs, ys, torch.zeros_like(xs), torch.ones_like(xs)], -1).reshape(1, -1, 4).double()
    coords = coords * scale  # same NDC, w != 1
    tri = grid_triangles(n)
    counts = _counts(coords, tri, res)
    assert (counts == 1).all()
    rast, _ = dr.rasterize(ctx, coords, tri, res)
    assert (rast[..., 3] > 0).all()


def test_near_plane_crossing_is_clipped(ctx):
    # A large floor quad running from in front of the camera to behind it.
    pts = torch.tensor(
        [[-3.0, -1.0, 2.0], [3.0, -1.0, 2.0], [3.0, -1.0, -30.0], [-3.0, -1.0, -30.0]], dtype=torch.float64
    )
    pos = to_clip(pts[None])
    assert (pos[0, :2, 3] < 0).all()  # two vertices behind the eye
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast, db = dr.rasterize(ctx, pos, tri, RES)
    assert torch.isfinite(rast).all() and torch.isfinite(db).all()
    covered = rast[..., 3] > 0
    assert covered[0, 0].all() and not covered[0, -1].any()  # floor fills the bottom rows, sky stays empty
    assert (rast[..., 2][covered] >= -1).all() and (rast[..., 2][covered] <= 1).all()
    ref, _ = reference.rasterize(pos, tri, RES)
    assert torch.equal(rast[..., 3], ref[..., 3])
    torch.testing.assert_close(rast[..., :3], ref[..., :3])
    # The reconstructed surface points of covered pixels are in front of the near plane.
    t = rast[..., 3].long() - 1
    u, v = rast[..., 0], rast[..., 1]
    corners = pos[0][tri.long()[t.clamp(min=0)]]
    weights = torch.stack([u, v, 1 - u - v], dim=-1)[..., None]
    point = (weights * corners).sum(-2)
    assert (point[..., 3][covered] > 0).all()


def test_degenerate_positions_do_not_crash(ctx):
    pos, tri = random_scene(batch=1, n_tri=6, seed=17)
    pos = pos.clone()
    pos[0, 0] = torch.tensor([1.0, 1.0, 0.0, 1e-320])  # w -> 0+: projects to infinity
    pos[0, 3] = float("nan")
    pos[0, 6:9] = pos[0, 6]  # zero-area triangle
    rast, db = dr.rasterize(ctx, pos, tri, RES)
    assert torch.isfinite(rast).all()
    assert not (rast[..., 3] == 2).any() and not (rast[..., 3] == 3).any()  # NaN and zero-area triangles draw nothing


def test_triangle_behind_camera_is_invisible(ctx):
    pts = torch.tensor([[[-1.0, -1.0, 3.0], [1.0, -1.0, 3.0], [0.0, 1.0, 3.0]]], dtype=torch.float64)
    rast, _ = dr.rasterize(ctx, to_clip(pts), torch.tensor([[0, 1, 2]], dtype=torch.int32), RES)
    assert (rast == 0).all()


def test_range_mode_matches_instanced(ctx):
    pos, tri = random_scene(batch=1, n_tri=20, seed=13)
    ranges = torch.tensor([[0, 10], [10, 10]], dtype=torch.int32)
    rast, _ = dr.rasterize(ctx, pos[0], tri, RES, ranges=ranges)
    assert rast.shape[0] == 2
    for b in range(2):
        sub = tri[ranges[b, 0] : ranges[b, 0] + ranges[b, 1]]
        one, _ = dr.rasterize(ctx, pos, sub, RES)
        ids = one[..., 3] + (one[..., 3] > 0) * ranges[b, 0]
        assert torch.equal(rast[b, ..., 3], ids[0])


# ---------------------------------------------------------------------------------------------------------------
# API behaviour.


def test_errors_are_specific(ctx):
    pos, tri = random_scene(batch=1, n_tri=2, seed=14)
    with pytest.raises(ValueError, match="resolution"):
        dr.rasterize(ctx, pos, tri, (0, 4))
    with pytest.raises(ValueError, match="tri indexes"):
        dr.rasterize(ctx, pos, tri + 100, RES)
    with pytest.raises(TypeError, match="float32"):
        dr.rasterize(ctx, pos.half(), tri, RES)
    with pytest.raises(NotImplementedError, match="mipmap"):
        dr.texture(torch.rand(1, 4, 4, 3), torch.rand(1, 2, 2, 2), uv_da=torch.rand(1, 2, 2, 4))
    rast, _ = dr.rasterize(ctx, pos, tri, RES)
    with pytest.raises(ValueError, match="rast_db"):
        dr.interpolate(torch.rand(1, pos.shape[1], 1), rast, tri, diff_attrs="all")
    if not dr.nvdiffrast_available():
        with pytest.raises(dr.BackendUnavailableError, match="nvdiffrast"):
            dr.RasterizeCudaContext()


def test_inputs_are_not_modified(ctx):
    pos, tri = random_scene(batch=1, n_tri=10, seed=15, dtype=torch.float32)
    before = pos.clone()
    rast, _ = dr.rasterize(ctx, pos, tri, RES)
    color = torch.rand(1, *RES, 3)
    color_before = color.clone()
    dr.antialias(color, rast, pos, tri)
    assert torch.equal(pos, before) and torch.equal(color, color_before)


def test_no_output_db_context():
    pos, tri = random_scene(batch=1, n_tri=5, seed=16, dtype=torch.float32)
    rast, db = dr.rasterize(dr.RasterizeCpuContext(output_db=False), pos, tri, RES)
    assert db.shape == (1, *RES, 0)


def test_allocator_tuning_is_applied_once_and_can_be_switched_off():
    """The CPU context fixes glibc's malloc thresholds (docs/render.md); GANFIT_MALLOC_TUNING=0 or glibc's own
    variables leave the allocator alone. Each case runs in a fresh process (the setting is process-wide)."""

    code = (
        "import ganfit.render as dr, ganfit.render._allocator as a; dr.RasterizeCpuContext(); "
        "print(a.allocator_tuned(), a.tune_allocator())"
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc-only tuning")
    results = {}
    for name, extra in (
        ("default", {}),
        ("off", {"GANFIT_MALLOC_TUNING": "0"}),
        ("user", {"MALLOC_TRIM_THRESHOLD_": "1"}),
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "GANFIT_MALLOC"))}
        out = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True, check=True
        )
        results[name] = out.stdout.split()
    assert results["default"] == ["True", "True"]  # applied by the context, and reported as applied afterwards
    assert results["off"] == ["False", "False"]  # decided once, not applied
    assert results["user"] == ["False", "False"]
