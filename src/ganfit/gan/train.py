"""Stage 1 entry point: train the progressive texture GAN and export ``generator.pt``.

``train_texture_gan.py`` at the repository root, ``ganfit train`` and ``python -m ganfit.gan.train`` run it:

    python train_texture_gan.py data.root=/path/to/uv_textures
    python train_texture_gan.py experiment=frl_crops logger=csv
    python train_texture_gan.py data.root=DIR resume=outputs/train/<run>/checkpoints/last.ckpt
    python train_texture_gan.py -m sweep=lr_multirun data.root=DIR logger=csv

Composes ``conf/train.yaml`` (see docs/gan.md for every group and key), instantiates the data module, the
TextureGAN module, the logger and the Trainer, fits, and writes the EMA generator to ``export_path``.

``resume=`` takes a local Lightning checkpoint only: a URL is refused before anything connects (ganfit never
downloads at run time), and the file is checked (``torch.load(weights_only=True)``: it cannot run code; a ganfit
``generator.pt`` is named as such) before Lightning sees it, which then reads it with ``weights_only=True`` too.
``trainer.fast_dev_run`` writes no checkpoints. Ctrl-C (SIGINT) stops after writing ``checkpoints/interrupted.ckpt``
(one-process runs; the periodic checkpoints stay either way) and says how far training got and how to continue.

Exit codes: 0 trained and exported; 2 bad usage (unknown key, bad value, missing ``data.root``, a bad ``resume=``:
one line, no traceback); 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ganfit.config import CONF_DIR, ConfigUsageError, parse_bool
from ganfit.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    describe_config_failure,
    hydra_entry,
    one_line,
    report_usage,
)
from ganfit.gan.data import DatasetError
from ganfit.gan.generator_file import CheckpointFileError, export_generator, read_checkpoint
from ganfit.gan.hydra_support import register_resolvers
from ganfit.gan.module import InterruptCheckpoint, TextureGAN

register_resolvers()
log = logging.getLogger("train_texture_gan")

__all__ = ["CONF_DIR", "check_resume", "main", "train", "train_task"]

REMOTE_MARKERS = ("://",)
INTERRUPTED_CHECKPOINT = "interrupted.ckpt"


def fast_dev_run_of(value: object) -> bool | int:
    """``trainer.fast_dev_run`` strictly: a boolean (``no``/``off``/``false``/``0`` are false) or a batch count.

    Raises:
        UsageError: anything else, naming the key.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value >= 0:
        return value
    try:
        return parse_bool(value, "trainer.fast_dev_run")
    except ConfigUsageError:
        raise UsageError(
            f"trainer.fast_dev_run={value!r}: give true/false or a number of batches (e.g. trainer.fast_dev_run=2)"
        ) from None


def check_resume(resume: object) -> Path | None:
    """The local checkpoint file ``resume=`` names, checked before Lightning sees it (None: no resume).

    Raises:
        UsageError: a URL (refused without connecting) or anything that is not a readable local checkpoint.
        CheckpointFileError: the file is not a TextureGAN checkpoint (a ``generator.pt``, code, a foreign file).
    """
    if resume is None or str(resume).strip() == "":
        return None
    text = str(resume)
    if any(marker in text for marker in REMOTE_MARKERS):
        raise UsageError(
            f"resume={text}: only a local checkpoint file is accepted (ganfit never downloads at run time); "
            "download it yourself, check where it comes from, and pass its path"
        )
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"resume={text}: no such checkpoint file (give a .ckpt from a run's checkpoints/ folder)")
    read_checkpoint(path)
    return path


def train(cfg: DictConfig) -> Path:
    """Run one training job from a composed config; returns the path of the exported generator."""
    resume = check_resume(cfg.get("resume"))
    dev_run = fast_dev_run_of(cfg.trainer.fast_dev_run)
    root = cfg.data.get("root") if "root" in cfg.data else None
    if root is not None and not Path(str(root)).expanduser().is_dir():
        raise UsageError(f"data.root={root} is not a folder; point data.root at a folder of PNG/JPG images")
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.gan)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    callbacks = []
    on_interrupt = None
    if cfg.get("checkpoint") and not dev_run:
        on_interrupt = InterruptCheckpoint(Path(str(cfg.checkpoint.dirpath)) / INTERRUPTED_CHECKPOINT)
        callbacks = [instantiate(cfg.checkpoint), on_interrupt]
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks, fast_dev_run=dev_run)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into a graceful shutdown and exit(1): it is 130 here
            raise KeyboardInterrupt(_interrupted_message(model, on_interrupt)) from None
        raise
    finally:
        # Lightning leaves its W&B run open: a later wandb.init in this process (a fit's own run, a notebook's)
        # would get this run back and log into it.
        if isinstance(logger, pl.loggers.WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()
    level, alpha = model.progress()
    path = Path(cfg.export_path)
    if trainer.is_global_zero:
        export_generator(model.G_ema, path, level, alpha, int(model.images_seen))
        log.info("generator: %s (%d kimg, level %d, alpha %.3f)", path, int(model.images_seen) // 1000, level, alpha)
    return path


def _interrupted_message(model: TextureGAN, on_interrupt: InterruptCheckpoint | None) -> str:
    """How far training got when Ctrl-C stopped it, and where to continue from."""
    level, alpha = model.progress()
    done = f"stopped after {int(model.images_seen)} real images (level {level}, alpha {alpha:.3f})"
    if on_interrupt is not None and on_interrupt.saved is not None:
        return f"{done}; saved {on_interrupt.saved}: continue with resume={on_interrupt.saved}"
    return f"{done}; no checkpoint written at the interrupt (the periodic ones, if any, are in the run's checkpoints/)"


def _instantiation_message(error: InstantiationException) -> str | None:
    """The usage error behind Hydra's instantiation wrapper (a missing data.root, ...), or None for a bug."""
    cause = error.__cause__
    if isinstance(cause, (DatasetError, FileNotFoundError, NotADirectoryError, PermissionError)):
        return str(cause)
    text = one_line(error)
    if "Missing mandatory value" in text:
        return text
    return None


def train_task(cfg: DictConfig) -> int:
    """One training job with ganfit's exit codes (usage errors one line, 2; Ctrl-C 130)."""
    try:
        train(cfg)
    except (UsageError, CheckpointFileError, DatasetError, FileNotFoundError, NotADirectoryError) as error:
        return report_usage(error)
    except OmegaConfBaseException as error:  # a missing mandatory value (data.root=???), a bad interpolation
        return report_usage(describe_config_failure(error))
    except InstantiationException as error:
        message = _instantiation_message(error)
        if message is None:
            raise
        return report_usage(message)
    except KeyboardInterrupt as stop:
        print(f"interrupted: {stop}" if str(stop) else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def main() -> int:
    """``python train_texture_gan.py key=value ...`` / ``ganfit train ...`` under Hydra (multirun, sweeps, output
    folders; the arguments are ``sys.argv[1:]``, as ``hydra.main`` reads them)."""
    return hydra_entry(train_task, "train")


if __name__ == "__main__":
    code = main()
    if code:  # no SystemExit(0): runpy-driven callers (tests, sweeps) see a normal return
        sys.exit(code)
