"""W&B media, read back from offline run folders: a fit's compare images, GLB meshes and metrics table; the GAN's
SWD curve and per-level fixed-latent grids."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import wandb
from omegaconf import OmegaConf

from gan_helpers import TINY, compose_train, entry_point, make_photo_folder
from ganfit.jobs.fit_job import Summary
from ganfit.jobs.wandb_log import log_fit_run
from ganfit.report.wandb_media import log_fit_media
from report_helpers import mean_face_job


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield


def _offline_run(root: Path) -> Path:
    runs = sorted((root / "wandb").glob("offline-run-*"))
    assert runs, f"no offline W&B run under {root / 'wandb'}"
    return runs[-1] / "files"


def _check_fit_media(files: Path, fitted: list[str], failed: list[str]) -> None:
    """The run folder holds one compare PNG and one GLB per fitted photo, and the table with a row per photo."""
    media = files / "media"
    for name in fitted:
        assert list((media / "images" / "fit" / "compare").glob(f"{name}_*.png")), name
        meshes = list((media / "object3D" / "fit" / "mesh").glob(f"{name}_*.glb"))
        assert meshes and meshes[0].read_bytes()[:4] == b"glTF", name
    tables = list((media / "table").rglob("*.table.json"))
    assert len(tables) == 1, tables
    table = json.loads(tables[0].read_text())
    assert table["columns"][:3] == ["name", "status", "reason"] and "identity_cosine" in table["columns"]
    rows = {row[0]: row for row in table["data"]}
    assert set(rows) == set(fitted) | set(failed)
    cosine = table["columns"].index("identity_cosine")
    for name in fitted:
        assert rows[name][1] == "fitted" and 0.0 < rows[name][cosine] <= 1.0
    for name in failed:
        assert rows[name][1] == "failed" and rows[name][2]


def test_fit_media_of_the_mean_face_job(tmp_path: Path, photos_root: Path, assets_dir: Path) -> None:
    """Fast: log the mean-face job into an offline run and read it back."""

    out = mean_face_job(tmp_path, photos_root)
    run = wandb.init(project="ganfit-test", mode="offline", dir=str(out))
    counts = log_fit_media(run, out)
    run.finish()
    assert counts == {"images": 0, "meshes": 1, "rows": 2}  # that job has no compare.png
    media = _offline_run(out) / "media"
    assert list((media / "object3D" / "fit" / "mesh").glob("mean_face_*.glb"))


def test_the_fit_job_logs_into_its_own_run_while_another_run_is_open(
    tmp_path: Path, photos_root: Path, assets_dir: Path
) -> None:
    """wandb.init's default returns a run already open in the process: the job's media must still land in out/wandb
    (the cause of an order-dependent failure of the slow fit.py media test)."""
    out = mean_face_job(tmp_path, photos_root)
    other = wandb.init(project="ganfit-test", mode="offline", dir=str(tmp_path))
    try:
        log_fit_run(OmegaConf.create({"out": str(out)}), Summary(str(out), []))
    finally:
        other.finish()
    assert list((_offline_run(out) / "media" / "object3D" / "fit" / "mesh").glob("mean_face_*.glb"))


@pytest.mark.slow
def test_fit_media_of_a_real_two_photo_fit(real_fit_out: Path, assets_dir: Path) -> None:
    """The real fit (2 photos + a corrupt file) logged into an offline run opened as ``log_to_wandb`` opens it."""

    out = real_fit_out
    names = sorted(p.parent.name for p in out.glob("*/mesh.glb"))
    media_root = out / "media_run"
    media_root.mkdir(exist_ok=True)
    run = wandb.init(project="ganfit-test", mode="offline", dir=str(media_root), reinit="create_new")
    assert log_fit_media(run, out) == {"images": 2, "meshes": 2, "rows": 3}
    run.finish()
    _check_fit_media(_offline_run(media_root), names, ["broken"])


@pytest.mark.slow
def test_fit_py_wandb_run_holds_the_media(real_fit_out: Path, assets_dir: Path) -> None:
    """``wandb=true`` through ``run_fit_job``: the fit's own offline run in ``out/wandb`` holds the media."""
    out = real_fit_out
    names = sorted(p.parent.name for p in out.glob("*/mesh.glb"))
    _check_fit_media(_offline_run(out), names, ["broken"])


@pytest.mark.slow
def test_gan_training_logs_swd_curve_and_per_level_grids(tmp_path: Path, photos_root: Path) -> None:
    """A tiny W&B-logged training run that grows 8 -> 16 px: the fade shows in per-level grids; the SWD curve."""

    data_root = make_photo_folder(photos_root, tmp_path / "data", count=8, size=32)
    overrides = [
        *TINY,
        "logger=wandb",
        f"data.root={data_root}",
        "gan.start_resolution=8",
        f"gan.swd_real_root={data_root}",
        "gan.swd_every_n_steps=4",
        "gan.swd_num_images=8",
        "gan.sample_every_n_steps=1000",  # periodic grids off in effect: the fade phases still trigger grids
    ]
    cfg = compose_train(tmp_path / "run", overrides)
    threads = torch.get_num_threads()
    try:
        entry_point().train(cfg)
    finally:
        torch.set_num_threads(threads)
        wandb.finish()  # Lightning leaves the run open, and a later WandbLogger would log into it
    runs = list((tmp_path / "run").rglob("offline-run-*"))
    assert runs, "no offline W&B run"
    media = runs[0] / "files" / "media"
    level8 = list((media / "images" / "samples").glob("8px_*.png"))
    level16 = list((media / "images" / "samples").glob("16px_*.png"))
    assert level8 and len(level16) >= 2, (level8, level16)  # 16 px: start/middle of the fade and after it
    curves = list((media / "table" / "eval").rglob("swd_curve*.table.json"))
    assert curves, list(media.rglob("*"))
    table = json.loads(sorted(curves, key=os.path.getmtime)[-1].read_text())
    assert table["columns"] == ["kimg", "resolution", "swd_avg"] and len(table["data"]) >= 1
    assert all(row[2] > 0 for row in table["data"])
