"""Stage-2 mechanics on a real photo through the real config (shrunk): the appearance warm-up holds the geometry, and
``identity_geometry=false`` keeps the identity terms' gradients off shape, expression and camera."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit.fitting.prepare import prepare_photo, stack_crops
from ganfit.image_io import read_image
from ganfit.jobs.components import build_fitter
from ganfit.landmarks import detect_face

GEOMETRY = ("shape", "expression", "rotation", "translation", "focal")


@pytest.fixture(scope="module")
def photo(photos_root):
    path = sorted((photos_root / "deep3d-examples").glob("*.jpg"))[0]
    image = read_image(path)
    return prepare_photo(image, detect_face(image).landmarks, 128, name=path.stem)


def _fitter(compose_fit, overrides: list[str], steps: int = 4, warmup_steps: int = 0):
    cfg = compose_fit([*overrides, f"fitting.full.steps={steps}", f"fitting.full.warmup_steps={warmup_steps}"])
    return build_fitter(cfg)


def test_warmup_moves_only_texture_and_light(photo, assets_dir, compose_fit):
    fitter = _fitter(compose_fit, ["texture=free", "~identity"], steps=4, warmup_steps=4)
    held = fitter.fit([photo])
    fitter.config.full.steps = 0
    stage1 = fitter.fit([photo])
    for name in ("ps", "pe", "rotation", "translation", "log_focal"):  # stage 1 repeats to float rounding
        torch.testing.assert_close(getattr(held.params, name), getattr(stage1.params, name), atol=1e-5, rtol=0)
    assert not torch.equal(held.params.ambient, stage1.params.ambient)  # the light did move
    assert not torch.equal(held.params.uv_texture, stage1.params.uv_texture)  # and the texture

    fitter.config.full.steps, fitter.config.full.warmup_steps = 4, 2
    moved = fitter.fit([photo])
    assert (moved.params.ps - stage1.params.ps).abs().max() > 1e-3  # after the warm-up the geometry moves


def _gradient_size(tensor: torch.Tensor) -> float:
    """Sum of |gradient| of ``tensor`` (0 when no gradient reached it)."""
    return 0.0 if tensor.grad is None else float(tensor.grad.abs().sum())


@pytest.mark.parametrize("identity_geometry", [True, False])
def test_identity_terms_reach_geometry_only_when_asked(photo, assets_dir, identity_geometry, compose_fit):
    fitter = _fitter(compose_fit, ["texture=free", f"fitting.identity_geometry={str(identity_geometry).lower()}"])
    crops, target = stack_crops([photo])
    params = fitter.init_params([photo])
    with torch.no_grad():
        params.ps.normal_(0.0, 0.5)  # away from the mean, so every term has a non-trivial gradient
    for tensors in params.groups().values():
        for tensor in tensors:
            tensor.requires_grad_(True)
    references = fitter.objective.references(crops, target)
    terms = fitter.objective.full_terms(params, crops, target, references)
    (terms.identity + terms.content + terms.moment).sum().backward()
    groups = params.groups()
    geometry = [_gradient_size(tensor) for name in GEOMETRY for tensor in groups[name]]
    appearance = [_gradient_size(tensor) for name in ("texture", "light") for tensor in groups[name]]
    assert all(np.isfinite(geometry + appearance))
    assert min(appearance) > 0  # texture and every light parameter always learn from the identity terms
    if identity_geometry:
        assert min(geometry) > 0
    else:
        assert max(geometry) == 0


def test_the_same_fit_twice_is_bit_identical_on_one_torch_thread(photo, assets_dir, compose_fit):
    """fit.py's default (torch_threads=1): two fits of one photo with the GAN texture and the identity terms give the
    same parameters to the bit (the latent search is seeded, the views restart, and no torch op splits a reduction
    over threads), so a refit reproduces its outputs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fitter = _fitter(compose_fit, [], steps=6, warmup_steps=2)
        first, second = fitter.fit([photo]), fitter.fit([photo])
    finally:
        torch.set_num_threads(before)
    for name, tensors in first.params.groups().items():
        for a, b in zip(tensors, second.params.groups()[name], strict=True):
            assert torch.equal(a, b), name
    assert torch.equal(first.texture, second.texture)
