"""The dataset builder (photos -> UV textures): mirror layout, hole filling, and an end-to-end run on real photos
through the real ``conf/data_build.yaml`` (shrunk)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from PIL import Image

from fit_helpers import SMOKE
from ganfit.config import compose_config
from ganfit.data_build.builder import run_build
from ganfit.data_build.contact_sheet import main
from ganfit.data_build.split import split_dataset
from ganfit.data_build.texture import push_pull_fill, uv_mirror_error
from ganfit.face_model import load_face_model
from ganfit.jobs.inputs import InputSpecError


def test_uv_mirror_is_a_horizontal_flip(assets_dir: Path) -> None:
    fm = load_face_model()
    # the mirror vertex of every vertex has the UV (1 - u, v): mirroring a texture = flipping its image
    assert uv_mirror_error(fm) < 1e-4
    # and the mesh itself is mirror-symmetric through those ids (x -> -x), within a fraction of a mm
    mean = fm.mean
    assert float((mean[fm.mirror_ids] * torch.tensor([-1.0, 1.0, 1.0]) - mean).abs().max()) < 0.5


def test_push_pull_fills_holes_and_keeps_seen_texels() -> None:
    torch.manual_seed(0)
    colour = torch.rand(1, 3, 32, 32)
    weight = torch.zeros(1, 1, 32, 32)
    weight[..., :16, :] = 1.0  # top half seen
    colour[..., 16:, :] = 5.0  # garbage where unseen
    filled = push_pull_fill(colour, weight)
    assert torch.allclose(filled[..., :16, :], colour[..., :16, :])
    assert float(filled[..., 16:, :].max()) <= float(colour[..., :16, :].max()) + 1e-5  # garbage gone
    assert float(filled[..., 16:, :].min()) >= float(colour[..., :16, :].min()) - 1e-5


def _shrunk(out: Path, image: Path, *overrides: str) -> DictConfig:
    """``conf/data_build.yaml`` with the smoke fitting preset, smaller crops and textures, and ``overrides``."""
    return compose_config(
        "data_build",
        [
            f"image={image}",
            f"out={out}",
            *SMOKE,
            "fitting.resolution=96",
            "fitting.batch_size=2",
            "fitting.texture_resolution=64",
            "fitting.full.steps=3",
            "build.texture_resolution=64",
            "build.depth_resolution=128",
            *overrides,
        ],
    )


def test_build_on_real_photos(photos_root: Path, assets_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for stem in ("001_03", "002_03"):
        shutil.copy(photos_root / "frl-london" / "neutral_front" / f"{stem}.jpg", folder / f"{stem}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "uv"
    # the loose threshold keeps both real photos whatever the shrunk fit reaches
    cfg = _shrunk(out, folder, "thresholds.max_landmark_error_iod=1.0")
    summary = run_build(cfg)
    statuses = {Path(o.source).stem: o.status for o in summary.outcomes}
    assert statuses == {"001_03": "kept", "002_03": "kept", "broken": "failed"}
    for stem in ("001_03", "002_03"):
        texture = np.asarray(Image.open(out / "textures" / f"{stem}.png"))
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        assert texture.shape == (64, 64, 3) and mask.shape == (64, 64)
        # the face region is seen, the texture is a face colour (not black, not the mean grey everywhere)
        assert 0.12 < (mask > 127).mean() < 0.6
        # the skin mask keeps the neck (bottom of the layout) and the top of the forehead out
        assert mask[-6:].max() < 30 and mask[:4].max() < 30
        centre = texture[20:44, 20:44].reshape(-1, 3).mean(0)
        assert centre[0] > centre[2] and 60 < centre[0] < 250  # skin: more red than blue
        # left/right halves of a frontal neutral face agree roughly (mirror completion, symmetric layout)
        assert np.abs(texture.astype(float) - texture[:, ::-1].astype(float)).mean() < 40
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert {r["name"]: r["status"] for r in lines} == {"001_03": "kept", "002_03": "kept"}
    kept = next(r for r in lines if r["name"] == "001_03")
    assert kept["source"].endswith("001_03.jpg") and "landmark_error_iod" in kept["metrics"]
    # rerun: fitted photos skipped, the failed one retried (and failing again)
    again = run_build(_shrunk(out, folder))
    assert {Path(o.source).stem: o.status for o in again.outcomes} == {
        "001_03": "skipped",
        "002_03": "skipped",
        "broken": "failed",
    }
    # a strict threshold drops a photo with its reason
    strict = _shrunk(tmp_path / "strict", folder / "001_03.jpg", "thresholds.min_visible_fraction=0.99")
    dropped = run_build(strict)
    assert [o.status for o in dropped.outcomes] == ["dropped"]
    assert "visible_fraction" in dropped.outcomes[0].reason
    assert not (tmp_path / "strict" / "textures" / "001_03.png").exists()


def test_contact_sheet(tmp_path: Path) -> None:
    (tmp_path / "textures").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(3):
        Image.fromarray(np.full((32, 32, 3), 80 * index, np.uint8)).save(tmp_path / "textures" / f"t{index}.png")
        Image.fromarray(np.full((32, 32), 255, np.uint8)).save(tmp_path / "masks" / f"t{index}.png")
    assert main([f"root={tmp_path}", "columns=2", "size=16", "masks=true"]) == 0
    sheet = np.asarray(Image.open(tmp_path / "contact_sheet.png"))
    assert sheet.shape == (32, 64, 3)


def test_missing_photos_give_a_clear_error(tmp_path: Path) -> None:
    cfg = _shrunk(tmp_path / "o", tmp_path / "nowhere")
    with pytest.raises(InputSpecError, match="nowhere"):
        run_build(cfg)


def test_split_by_person(tmp_path: Path) -> None:
    (tmp_path / "textures").mkdir()
    records = []
    for stem, source in (
        ("001_03", "/p/frl-london/neutral_front/001_03.jpg"),
        ("001_08", "/p/frl-london/smiling_front/001_08.jpg"),
        ("002_03", "/p/frl-london/neutral_front/002_03.jpg"),
        ("001f", "/p/frl-canada/001f.jpg"),
    ):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "textures" / f"{stem}.png")
        records.append({"name": stem, "source": source, "status": "kept", "texture": f"textures/{stem}.png"})
    records.append({"name": "003_03", "source": "/p/frl-london/neutral_front/003_03.jpg", "status": "dropped"})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    holdout = tmp_path / "holdout.json"
    holdout.write_text(json.dumps({"set": "frl-london", "holdout_ids": ["001"]}))
    parts = split_dataset(tmp_path, holdout)
    assert sorted(parts["holdout"]) == ["001_03", "001_08"]
    assert sorted(parts["train"]) == ["001f", "002_03"]  # Canada's 001f is another person
    assert (tmp_path / "split" / "train" / "002_03.png").is_file()


@pytest.mark.slow
def test_build_over_two_processes(photos_root: Path, assets_dir: Path, tmp_path: Path) -> None:
    """processes=2 shards the photos over two Fabric CPU processes (the builder's options are frozen dataclasses)."""

    folder = tmp_path / "photos"
    folder.mkdir()
    for stem in ("001_03", "002_03"):
        shutil.copy(photos_root / "frl-london" / "neutral_front" / f"{stem}.jpg", folder / f"{stem}.jpg")
    cfg = _shrunk(tmp_path / "uv", folder, "processes=2", "thresholds.max_landmark_error_iod=1.0")
    summary = run_build(cfg)
    assert sorted(Path(o.source).stem for o in summary.outcomes if o.status == "kept") == ["001_03", "002_03"]
    assert sorted(p.name for p in (tmp_path / "uv" / "textures").iterdir()) == ["001_03.png", "002_03.png"]
