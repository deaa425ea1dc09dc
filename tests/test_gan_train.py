"""Training through the real Hydra config (composed and shrunk): fast_dev_run, exact mid-fade resume, multirun,
and DDP over 2 CPU processes (gloo)."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import wandb
from hydra.utils import instantiate

from gan_helpers import REPO, TINY, compose_train, entry_point, make_photo_folder
from ganfit.gan.generator_file import load_generator


@pytest.fixture(autouse=True)
def _offline_one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("WANDB_MODE", "offline")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_root(photos_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo_folder(photos_root, tmp_path_factory.mktemp("gan_data"), count=8, size=32)


def test_default_config_is_the_cpu_sized_wandb_setup(tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, ["data.root=x"])
    assert cfg.gan.resolution == 128 and cfg.gan.fmap_max == 128 and cfg.gan.loss == "wgan_gp"
    assert cfg.logger._target_.endswith("WandbLogger")
    paper = compose_train(tmp_path, ["data.root=x", "experiment=paper"])
    assert paper.gan.resolution == 512 and paper.gan.fmap_base == 8192 and paper.data.resolution == 512
    demo = compose_train(tmp_path, ["experiment=frl_crops"])  # presets override train.yaml's own keys too
    assert demo.torch_threads == 1 and demo.checkpoint.every_n_train_steps == 200 and demo.data.resolution == 64
    os.environ.pop("WANDB_API_KEY", None)
    assert cfg.logger.offline is True  # no API key -> offline


def test_fast_dev_run_of_the_real_config(tmp_path: Path, data_root: Path) -> None:
    cfg = compose_train(tmp_path, [*TINY, f"data.root={data_root}", "trainer.fast_dev_run=2"])
    path = entry_point().train(cfg)
    G = load_generator(path)
    assert G(torch.randn(2, 32)).shape[0] == 2
    assert list((tmp_path / "samples").glob("*.png"))


class _Record(pl.Callback):
    def __init__(self) -> None:
        self.start: tuple[int, int, int, float] | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        level, alpha = module.progress()
        self.start = (int(module.images_seen), trainer.global_step, level, alpha)


def _fit(cfg, ckpt: str | None = None) -> tuple[pl.Trainer, pl.LightningModule, _Record]:
    pl.seed_everything(0)
    record = _Record()
    model = instantiate(cfg.gan)
    trainer = instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=[record])
    trainer.fit(model, datamodule=instantiate(cfg.data), ckpt_path=ckpt)
    return trainer, model, record


def test_resume_mid_fade_continues_exactly(tmp_path: Path, data_root: Path) -> None:
    # Schedule (batch 8): 2 iterations at 4x4, then a 4-iteration fade to 8x8; stop after 4 iterations: mid-fade.
    first = compose_train(tmp_path / "a", [*TINY, f"data.root={data_root}", "gan.total_kimg=0.032"])
    trainer, model, _ = _fit(first)
    level, alpha = model.progress()
    assert (int(model.images_seen), level, alpha) == (32, 1, 0.5)
    ckpt = tmp_path / "mid_fade.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["ganfit"] == {"images_seen": 32, "iterations": 4, "level": 1, "alpha": 0.5}

    second = compose_train(tmp_path / "b", [*TINY, f"data.root={data_root}", "gan.total_kimg=0.048"])
    trainer2, model2, record = _fit(second, str(ckpt))
    assert record.start == (32, trainer.global_step, 1, 0.5)  # same images/step/level/alpha at restart
    assert int(model2.iterations) == 6 and model2.progress() == (1, 1.0)
    # The restored EMA generator is the saved one (then trained on): its first state matched the checkpoint.
    assert trainer2.global_step == trainer.global_step + 4  # 2 optimiser steps per iteration


def test_multirun_two_jobs_offline(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python train_texture_gan.py -m ...` with two values: Hydra's basic launcher runs both jobs in-process."""
    sweep = tmp_path / "multirun"
    argv = [
        str(REPO / "train_texture_gan.py"),
        "-m",
        *TINY,
        "gan.total_kimg=0.016",
        f"data.root={data_root}",
        "gan.lr_g=0.001,0.002",
        f"hydra.sweep.dir={sweep}",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(REPO / "train_texture_gan.py"), run_name="__main__")  # = `python train_texture_gan.py`
    for job in ("0", "1"):
        assert (sweep / job / "generator.pt").is_file()
        assert list((sweep / job / "csv").rglob("metrics.csv"))
    assert "gan.lr_g=0.002" in (sweep / "1" / ".hydra" / "overrides.yaml").read_text()


def test_sweep_config_turns_on_multirun(tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, ["data.root=x", "sweep=lr_multirun"])
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert set(cfg.hydra.sweeper.params) == {"gan.lr_g", "gan.loss"}


SCRIPT = [str(REPO / "train_texture_gan.py")]
GANFIT_TRAIN = ["-c", "import sys; from ganfit.launch import main; sys.exit(main())", "train"]  # = `ganfit train`


def _ddp_cmd(tmp_path: Path, data_root: Path, extra: list[str], launcher: list[str] = SCRIPT) -> list[str]:
    return [
        sys.executable,
        *launcher,
        *TINY,
        "trainer=ddp_cpu",
        f"data.root={data_root}",
        "data.batch_size=4",
        f"hydra.run.dir={tmp_path / 'ddp'}",
        *extra,
    ]


def test_ddp_two_cpu_processes_forked(tmp_path: Path, data_root: Path) -> None:
    """Fast DDP check: the real trainer=ddp_cpu config with fork start (no re-import), 2 gloo processes through the
    growing schedule with the WGAN-GP double backward; the module raises at the end if the ranks' weights differ."""
    cfg = compose_train(
        tmp_path,
        [
            *TINY,
            "trainer=ddp_cpu",
            "trainer.strategy.start_method=fork",
            f"data.root={data_root}",
            "data.batch_size=4",
            "gan.total_kimg=0.048",
        ],
    )
    path = entry_point().train(cfg)
    payload = torch.load(path, weights_only=True)
    # 48 images at 2 x 4 per iteration: 6 iterations, past the 4x4 phase and into the fade (level 1).
    assert payload["images_seen"] == 48 and payload["level"] == 1
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["ganfit"]["iterations"] == 6  # 6 iterations of 2 x 4 images: two ranks shared the work


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [SCRIPT, GANFIT_TRAIN], ids=["train_texture_gan.py", "ganfit-train"])
def test_ddp_two_cpu_processes_cli(tmp_path: Path, data_root: Path, launcher: list[str]) -> None:
    """The documented CLI paths: `train_texture_gan.py trainer=ddp_cpu` re-launches itself for rank 1 (popen);
    `ganfit train trainer=ddp_cpu` re-launches `python -m ganfit.gan.train` (the launcher names the module)."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = _ddp_cmd(tmp_path, data_root, ["gan.total_kimg=0.048"], launcher)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "2 ranks in sync" in log
    payload = torch.load(tmp_path / "ddp" / "generator.pt", weights_only=True)
    assert payload["images_seen"] == 48 and payload["level"] == 1


def test_tensorboard_logger_receives_sample_grids(tmp_path: Path, data_root: Path) -> None:
    cfg = compose_train(tmp_path, [*TINY, "logger=tensorboard", f"data.root={data_root}", "gan.total_kimg=0.016"])
    entry_point().train(cfg)
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert list((tmp_path / "samples").glob("samples_*.png"))


@pytest.mark.slow
def test_wandb_logger_runs_offline_without_api_key(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_train(tmp_path, [*TINY, "logger=wandb", f"data.root={data_root}", "gan.total_kimg=0.016"])
    assert cfg.logger.offline is True
    entry_point().train(cfg)
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    assert wandb.run is None, "training left its W&B run open: a later wandb.init in this process would log into it"


def test_periodic_swd_against_held_back_images(tmp_path: Path, data_root: Path) -> None:
    """Start directly at 16x16 so an SWD level exists; the metric lands in the logger (the W&B sweep's metric)."""
    cfg = compose_train(
        tmp_path,
        [
            *TINY,
            f"data.root={data_root}",
            "gan.start_resolution=16",
            "gan.total_kimg=0.016",
            f"gan.swd_real_root={data_root}",
            "gan.swd_every_n_steps=1",
            "gan.swd_num_images=8",
        ],
    )
    entry_point().train(cfg)
    text = next((tmp_path / "csv").rglob("metrics.csv")).read_text()
    assert "eval/swd_avg" in text and "eval/swd_16" in text
