"""The CPU renderer's small-launch rule: calls below ``MIN_PARALLEL_PIXELS`` run on one thread with the work split of
the current thread count, so their results are bit for bit those of the parallel run."""

from __future__ import annotations

import numba
import pytest
import torch

import ganfit.render as dr
from ganfit.face_model import load_face_model
from ganfit.render import _cpu
from ganfit.render.camera import frontal_camera


@pytest.fixture(scope="module")
def face_model(assets_dir):
    return load_face_model()


def _fwd_bwd(fm, resolution: int, batch: int) -> list[torch.Tensor]:
    """Image and gradients (clip positions, texture, per-vertex colours) of the ICT face, all four primitives."""
    res = (resolution, resolution)
    verts = fm.mean[None].expand(batch, -1, -1)
    clip = frontal_camera(batch, res).to_clip(verts, res).contiguous().requires_grad_(True)
    tri = fm.triangles.to(torch.int32)
    g = torch.Generator().manual_seed(0)
    tex = torch.rand(batch, 64, 64, 3, generator=g).requires_grad_(True)
    colours = torch.rand(1, verts.shape[1], 3, generator=g).requires_grad_(True)
    weight = torch.rand(batch, *res, 3, generator=g)
    ctx = dr.RasterizeCpuContext(output_db=False)
    rast, _ = dr.rasterize(ctx, clip, tri, res)
    uv, _ = dr.interpolate(fm.uvs[None], rast, fm.uv_triangles.to(torch.int32))
    shade, _ = dr.interpolate(colours, rast, tri)
    image = dr.texture(tex, uv, filter_mode="linear", boundary_mode="clamp") * shade
    image = dr.antialias(image, rast, clip, tri)
    (image * weight).sum().backward()
    return [image.detach(), clip.grad, tex.grad, colours.grad]


@pytest.mark.parametrize(("resolution", "batch"), [(48, 1), (64, 2)])
def test_serial_small_launches_are_bit_identical(face_model, monkeypatch, resolution: int, batch: int) -> None:
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs a numba pool of at least 2 threads")
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        assert resolution * resolution * batch < _cpu.MIN_PARALLEL_PIXELS  # the rule applies to these calls
        serial = _fwd_bwd(face_model, resolution, batch)
        assert numba.get_num_threads() == 2  # restored after each call
        monkeypatch.setattr(_cpu, "MIN_PARALLEL_PIXELS", 0)
        parallel = _fwd_bwd(face_model, resolution, batch)
    finally:
        numba.set_num_threads(before)
    assert serial[0].abs().sum() > 0 and serial[1].abs().sum() > 0  # the face was drawn and has gradients
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)
