"""``train_texture_gan.py`` end to end in a subprocess (issue 17): a ``fast_dev_run`` exports the generator, exits 0
and writes no checkpoint; Ctrl-C mid-training exits 130 with a resumable checkpoint; strict values and keys of the
``gan`` / ``data`` / ``trainer`` nodes. The tiny real config of the GAN tests (real frl-london photos, downsized)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cli_helpers import assert_usage_error, run, run_until_then_interrupt
from gan_helpers import TINY, compose_train, entry_point, make_photo_folder
from ganfit.gan.generator_file import read_checkpoint

check_resume = entry_point().check_resume


def test_fast_dev_run_exits_0_and_writes_no_checkpoint(photos_root: Path, tmp_path: Path) -> None:
    data_root = make_photo_folder(photos_root, tmp_path / "data", count=8, size=32)
    run_dir = tmp_path / "run"
    ran = run(
        "train", *TINY, f"data.root={data_root}", "trainer.fast_dev_run=2", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert ran.code == 0, ran.output[-3000:]
    payload = torch.load(run_dir / "generator.pt", weights_only=True)
    assert payload["format"] == "ganfit.generator/1"
    assert not list(run_dir.rglob("*.ckpt")), sorted(run_dir.rglob("*.ckpt"))


@pytest.mark.slow  # ~17 s on 2 loaded cores
def test_sigint_mid_training_exits_130_and_keeps_a_resumable_checkpoint(photos_root: Path, tmp_path: Path) -> None:
    """Ctrl-C once training is under way (a periodic checkpoint exists): exit 130, no traceback, the line says how
    far it got and names ``checkpoints/interrupted.ckpt``, which holds that state and is accepted by ``resume=``."""
    data_root = make_photo_folder(photos_root, tmp_path / "data", count=8, size=32)
    run_dir = tmp_path / "run"
    args = (*TINY, "gan.total_kimg=1000", f"data.root={data_root}", f"hydra.run.dir={run_dir}")
    ran = run_until_then_interrupt(
        "train", *args, ready=lambda: bool(list(run_dir.glob("checkpoints/step*.ckpt"))), cwd=tmp_path, wait=240
    )
    assert ran.code == 130, ran.output[-3000:]
    assert "Traceback" not in ran.stderr
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    lines = [line for line in ran.stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(lines) == 1 and f"continue with resume={saved}" in lines[0], ran.stderr[-3000:]
    ganfit_state = read_checkpoint(saved)["ganfit"]  # weights_only=True: a plain, resumable Lightning checkpoint
    assert ganfit_state["images_seen"] > 0
    assert f"stopped after {ganfit_state['images_seen']} real images" in lines[0]
    assert check_resume(str(saved)) == saved
    assert not (run_dir / "generator.pt").exists()  # an interrupted run exports nothing


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("gan.lr_g=abc", ("gan.lr_g", "Float")),
        ("gan.lrr=0.1", ("gan.lrr", "unknown key", "TextureGANConfig")),
        ("data.mirror=maybe", ("data.mirror", "not a valid bool")),
        ("trainer.enable_progress_bar=sometimes", ("trainer.enable_progress_bar", "not a valid bool")),
        ("trainer.fast_dev_run=maybe", ("trainer.fast_dev_run", "number of batches")),
    ],
)
def test_train_bad_value_or_key_is_one_line_and_exit_2(
    tmp_path: Path, override: str, fragments: tuple[str, ...]
) -> None:
    """Typed gan / data / trainer nodes: a value of the wrong type or a misspelt key fails before any training."""
    (tmp_path / "data").mkdir()
    run_dir = tmp_path / "run"
    ran = run("train", "logger=csv", f"data.root={tmp_path / 'data'}", f"hydra.run.dir={run_dir}", override,
              cwd=tmp_path)  # fmt: skip
    assert_usage_error(ran, *fragments)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "csv").exists()  # nothing started


def test_train_false_words_are_false(tmp_path: Path) -> None:
    """``data.mirror=no`` and ``trainer.enable_progress_bar=off`` compose to False (not ``bool('no')``)."""
    cfg = compose_train(tmp_path, ["data.root=x", "data.mirror=no", "trainer.enable_progress_bar=off"])
    assert cfg.data.mirror is False and cfg.trainer.enable_progress_bar is False
