"""Evaluation: metrics (rigid alignment, landmark error, rank-1) and the synthetic benchmark on a tiny run of the real
config."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from fit_helpers import SMOKE
from ganfit.config import compose_config
from ganfit.eval import photos as eval_photos
from ganfit.eval import synthetic
from ganfit.metrics.scores import landmark_error, masked_photometric_error, rank1, rigid_align, shape_error_mm


def test_rigid_align_removes_rotation_and_translation() -> None:
    torch.manual_seed(0)
    points = torch.randn(2, 50, 3) * 40.0
    matrix = torch.from_numpy(Rotation.from_euler("xyz", [[10, 40, -5], [0, -30, 20]], degrees=True).as_matrix())
    moved = points @ matrix.float().transpose(1, 2) + torch.tensor([5.0, -3.0, 100.0])
    assert float(rigid_align(moved, points).sub(points).abs().max()) < 1e-3
    assert float(shape_error_mm(moved, points).max()) < 1e-3
    # a real deformation survives the alignment: 2 mm along x on half the points
    bent = points.clone()
    bent[:, :25, 0] += 2.0
    error = shape_error_mm(bent, points)
    assert 0.5 < float(error.mean()) < 2.0


def test_landmark_error_and_photometric() -> None:
    truth = np.zeros((1, 68, 2))
    truth[0, 36] = [0, 0]
    truth[0, 45] = [100, 0]
    predicted = truth + [3.0, 4.0]
    px, nme = landmark_error(predicted, truth)
    assert math.isclose(px[0], 5.0) and math.isclose(nme[0], 0.05)
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 51, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    assert math.isclose(masked_photometric_error(a, b, mask), 0.2)


def test_rank1() -> None:
    gallery = np.eye(3)
    probe = np.eye(3)[[0, 2, 1]] + 0.1
    rate, matches = rank1(probe, gallery, ["a", "b", "c"], ["a", "b", "c"])
    assert math.isclose(rate, 1 / 3) and matches[0] == ("a", "a")


@pytest.mark.slow
def test_synthetic_benchmark_tiny(assets_dir: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        "eval_synthetic",
        ["n=2", f"out={tmp_path}", "variants=[mean_shape,landmarks_68_only,landmarks_only]", "image_size=256", *SMOKE],
    )
    payload = synthetic.run(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved) == {"mean_shape", "landmarks_68_only", "landmarks_only", "_meta"}
    # the fit of landmarks_only uses the dense term (landmarks.dense=true): its photos carry the dense points
    assert saved["landmarks_only"]["dense_landmarks"] and not saved["landmarks_68_only"]["dense_landmarks"]
    assert saved["_meta"]["camera"] == "random" and len(saved["_meta"]["distance_mm"]) == 2
    for name in ("mean_shape", "landmarks_68_only", "landmarks_only"):
        row = saved[name]
        assert set(row["region_median_mm"]) == {"nose", "mouth", "forehead", "cheeks"}
        assert all(0.1 < v < 20.0 for v in row["region_scaled_median_mm"].values())
        assert 0.0 <= row["distance_median_abs_rel_error"] < 5.0
        row = saved[name]
        for key in (
            "median_shape_error_mm",
            "mean_shape_error_mm",
            "landmark_error_px",
            "identity_distance",
            "seconds_per_face",
        ):
            assert math.isfinite(row[key]), (name, key)
        # random ICT identities differ from the mean by millimetres, not metres or microns
        assert 0.5 < row["median_shape_error_mm"] < 15.0
        assert row["landmark_error_px"] < 40.0
    assert (tmp_path / "inputs.png").is_file()
    assert "| mean_shape |" in synthetic.markdown_table({k: v for k, v in payload.items() if not k.startswith("_")})


@pytest.mark.slow
def test_synthetic_several_views_fitted_together(assets_dir: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        "eval_synthetic",
        ["n=2", "views=2", f"out={tmp_path}", "variants=[full,full_shared]", "image_size=256", "~identity", *SMOKE],
    )
    payload = synthetic.run(cfg)
    single, shared = payload["full"], payload["full_shared"]
    assert payload["_meta"]["views"] == 2 and single["per_face_person"] == shared["per_face_person"] == [0, 0, 1, 1]
    assert shared["shared_identity"] and not single["shared_identity"]
    errors = shared["per_face_median_mm"]  # one shape per face: its views score the same
    assert errors[0] == pytest.approx(errors[1]) and errors[2] == pytest.approx(errors[3])
    assert single["per_face_median_mm"][0] != pytest.approx(single["per_face_median_mm"][1])
    assert all(0.3 < e < 15.0 for e in errors)
    table = synthetic.shared_table(payload)
    assert table.count("\n") == 4 and "of 2 |" in table


@pytest.mark.slow
def test_photo_evaluation_with_rank1(photos_root: Path, assets_dir: Path, tmp_path: Path) -> None:
    probes, gallery = tmp_path / "probes", tmp_path / "gallery"
    probes.mkdir()
    gallery.mkdir()
    london = photos_root / "frl-london"
    for person in ("001", "002"):
        shutil.copy(london / "neutral_front" / f"{person}_03.jpg", probes)
        shutil.copy(london / "smiling_front" / f"{person}_08.jpg", gallery)
    out = tmp_path / "eval"
    cfg = compose_config(
        "eval_photos",
        [f"image={probes}", f"gallery={gallery}", f"out={out}", "shape_consistency=true", "~identity", *SMOKE],
    )
    payload = eval_photos.run(cfg)
    overall = payload["overall"]
    assert overall["measured"] == 2 and not overall["judge_is_loss_network"]
    for row in payload["photos"].values():
        assert row["status"] == "ok"
        assert 0.0 < row["identity_distance"] < 1.5 and row["landmark_nme"] < 0.2
        assert 0.0 < row["photometric_error"] < 0.3
    assert payload["rank1"]["people"] == 2 and payload["rank1"]["rank1_photo"] == 1.0  # real photos: the ceiling
    assert (out / "plots.png").is_file() and "Rank-1" in (out / "table.md").read_text()
    shapes = payload["shape_consistency"]  # the gallery photos were fitted too; their neutral shapes compared
    assert (out / "fits" / "001_08" / "params.json").is_file() and overall["photos"] == 2
    assert shapes["people"] == 2 and shapes["probes"] == 2 and len(shapes["matches"]) == 2
    assert 0.0 < shapes["same_person_median_mm"] < 10.0 and 0.0 < shapes["different_person_median_mm"] < 10.0
    assert "Shape consistency" in (out / "table.md").read_text()
