#!/usr/bin/env python
"""Stage 1 entry point: train the progressive texture GAN and export ``generator.pt``.

    python train_texture_gan.py data.root=/path/to/uv_textures
    python train_texture_gan.py experiment=frl_crops logger=csv
    python train_texture_gan.py data.root=DIR resume=outputs/train/<run>/checkpoints/last.ckpt
    python train_texture_gan.py -m sweep=lr_multirun data.root=DIR logger=csv

Composes ``conf/train.yaml`` (see docs/gan.md for every group and key), instantiates the data module, the
TextureGAN module, the logger and the Trainer, fits, and writes the EMA generator to ``export_path``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ganfit.config import CONF_DIR
from ganfit.gan.hydra_support import register_resolvers

register_resolvers()
log = logging.getLogger("train_texture_gan")


def train(cfg: DictConfig) -> Path:
    """Run one training job from a composed config; returns the path of the exported generator."""
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    from ganfit.gan.export import export_generator

    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.gan)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    callbacks = [instantiate(cfg.checkpoint)] if cfg.get("checkpoint") else []
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.resume)
    level, alpha = model.progress()
    path = Path(cfg.export_path)
    if trainer.is_global_zero:
        export_generator(model.G_ema, path, level, alpha, int(model.images_seen))
        log.info("generator: %s (%d kimg, level %d, alpha %.3f)", path, int(model.images_seen) // 1000, level, alpha)
    return path


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
