"""GANFIT's randomised-view identity term: a render in a random pose/expression/light judged against the photo."""

from __future__ import annotations

import pytest
import torch

from ganfit.config.compose import ConfigUsageError
from ganfit.fitting.objective import LossTerms
from ganfit.fitting.prepare import prepare_photo, stack_crops
from ganfit.jobs.components import build_fitter
from ganfit.jobs.inputs import load_photo
from ganfit.landmarks import detect_face


@pytest.fixture(scope="module")
def prepared(assets_dir, photos_root, compose_fit):
    fitter = build_fitter(compose_fit(["fitting.full.weights.identity_random_view=0.2"]))
    image = load_photo(str(photos_root / "frl-london" / "neutral_front" / "001_03.jpg"))
    detection = detect_face(image)
    photo = prepare_photo(image, detection.landmarks, fitter.config.resolution, fitter.config.crop_scale)
    crops, target = stack_crops([photo])
    params = fitter.init_params([photo])
    return fitter, params, crops, target


def test_term_is_in_the_full_objective_and_moves_shape_and_texture_only(prepared):
    fitter, params, crops, target = prepared
    objective = fitter.objective
    references = objective.references(crops, target)
    objective.reset_views()
    terms: LossTerms = objective.full_terms(params, crops, target, references)
    value = terms.identity_random_view
    assert value is not None and value.shape == (1,) and 0.0 < float(value.detach()) < 2.0
    for tensor in params.parameters():
        tensor.grad = None
    value.sum().backward()
    assert params.ps.grad is not None and params.ps.grad.abs().sum() > 0
    assert params.pt.grad is not None and params.pt.grad.abs().sum() > 0
    for name in ("rotation", "translation", "log_focal", "pe", "ambient", "light_color", "light_dir"):
        grad = getattr(params, name).grad
        assert grad is None or grad.abs().sum() == 0, f"{name} must not move with the random view"


def test_views_change_per_step_and_repeat_per_fit(prepared):
    fitter, params, crops, target = prepared
    objective = fitter.objective
    references = objective.references(crops, target)
    with torch.no_grad():
        objective.reset_views()
        texture = fitter.texture(params)
        first = objective.random_view_identity(params, texture, references)
        second = objective.random_view_identity(params, texture, references)
        objective.reset_views()
        again = objective.random_view_identity(params, texture, references)
    assert float(first) != pytest.approx(float(second), abs=1e-6)
    assert float(first) == pytest.approx(float(again), abs=1e-6)


def test_off_when_weight_zero(assets_dir, compose_fit):
    fitter = build_fitter(compose_fit(["fitting.full.weights.identity_random_view=0"]))
    assert fitter.config.full.weights.identity_random_view == 0
    assert compose_fit(["fitting=paper"]).fitting.full.weights.identity_random_view > 0  # paper switches it on


def test_every_k_steps(assets_dir, compose_fit):
    fitter = build_fitter(compose_fit(["fitting.full.weights.identity_random_view=0.2", "fitting.random_view.every=3"]))
    due = [step for step in range(8) if fitter.objective.random_view_due(step)]
    assert due == [0, 3, 6]
    every_step = build_fitter(compose_fit(["fitting.full.weights.identity_random_view=0.2"]))
    assert all(every_step.objective.random_view_due(step) for step in range(4))
    with pytest.raises(ConfigUsageError, match="random_view.every"):
        build_fitter(compose_fit(["fitting.random_view.every=0"]))


def test_term_absent_on_steps_between(prepared):
    fitter, params, crops, target = prepared
    objective = fitter.objective
    references = objective.references(crops, target)
    objective.config.random_view.every = 2
    try:
        with torch.no_grad():
            on = objective.full_terms(params, crops, target, references, step=4).identity_random_view
            off = objective.full_terms(params, crops, target, references, step=5).identity_random_view
    finally:
        objective.config.random_view.every = 1
    assert on is not None and off is None
