"""``TextureGAN``: the progressive GAN as a LightningModule with manual optimisation of G and D.

One training step = one discriminator update and one generator update on a batch of real textures, at the growing
level and fade-in alpha given by :class:`~ganfit.gan.schedule.GrowthSchedule` from the number of real images seen.
``images_seen`` and ``iterations`` are registered buffers (so a Lightning checkpoint restores the exact level, alpha
and step on ``trainer.fit(..., ckpt_path=...)``); the checkpoint also carries a readable ``"ganfit"`` entry with them.
An exponential moving average of G (``G_ema``) is what gets sampled and exported.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from ganfit.gan.data import find_images, load_square_image
from ganfit.gan.loss import LOSSES, d_loss, g_loss
from ganfit.gan.networks import Discriminator, Generator, level_of, resolution_of, update_ema
from ganfit.gan.schedule import GrowthSchedule
from ganfit.metrics.swd import swd

log = logging.getLogger(__name__)

__all__ = ["InterruptCheckpoint", "TextureGAN", "image_grid"]


class InterruptCheckpoint(pl.Callback):
    """Writes a full, resumable Lightning checkpoint to ``path`` when Ctrl-C stops a one-process run (the state at
    that moment: ``images_seen``, level, alpha, optimisers). Under DDP nothing is written (a rank may be gone, so
    Lightning's save would wait at its barrier); the periodic checkpoints stay."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.saved: Path | None = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1:
            trainer.save_checkpoint(self.path, weights_only=False)  # a full checkpoint: optimisers included
            self.saved = self.path


def image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """``[N, 3, H, W]`` float in [-1, 1] -> uint8 ``[rows*H, nrow*W, 3]`` grid (row-major, 1 px black gaps)."""
    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = torch.zeros(c, rows * (h + 1) - 1, nrow * (w + 1) - 1)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[:, r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = images[i]
    grid = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return grid.permute(1, 2, 0).numpy()


class TextureGAN(pl.LightningModule):
    """Progressive texture GAN (ProGAN) trained with manual optimisation; see the module docstring."""

    def __init__(
        self,
        resolution: int = 128,  # target texture resolution (power of two)
        latent_dim: int = 512,  # Gaussian latent size
        fmap_base: int = 2048,  # width rule numerator (channels = fmap_base / 2**(log2(res) - 1))
        fmap_max: int = 128,  # max channels per block
        fmap_min: int = 1,  # min channels per block
        use_pixelnorm: bool = True,  # pixelnorm in G
        mbstd_group_size: int = 4,  # minibatch-stddev group in D (0 = off)
        loss: str = "wgan_gp",  # "wgan_gp" (paper) or "ns_r1"
        gp_weight: float = 10.0,  # WGAN-GP lambda
        gp_target: float = 1.0,  # WGAN-GP target gradient norm
        drift_weight: float = 1e-3,  # epsilon_drift on D(real)^2
        r1_gamma: float = 10.0,  # R1 weight for "ns_r1"
        lr_g: float = 1e-3,  # Adam learning rate of G
        lr_d: float = 1e-3,  # Adam learning rate of D
        beta1: float = 0.0,  # Adam beta1
        beta2: float = 0.99,  # Adam beta2
        adam_eps: float = 1e-8,  # Adam epsilon
        start_resolution: int = 4,  # resolution training starts at
        stable_kimg: float = 600.0,  # kimg per stabilisation phase
        fade_kimg: float = 600.0,  # kimg per fade-in phase
        total_kimg: float = 12000.0,  # stop after this many thousand real images
        fade_reals: bool = True,  # blend real images across levels during fades (paper)
        ema_kimg: float = 10.0,  # EMA half-life of G in kimg
        sample_every_n_steps: int = 500,  # iterations between logged sample grids (0 = never)
        num_samples: int = 16,  # fixed latents in the sample grid
        sample_seed: int = 1234,  # seed of the fixed latents
        sample_dir: str | None = None,  # where grid PNGs go (default: <trainer.default_root_dir>/samples)
        swd_real_root: str | None = None,  # held-back real images for the periodic SWD (None = off)
        swd_every_n_steps: int = 0,  # iterations between SWD evaluations (0 = only at the end, if a root is set)
        swd_num_images: int = 64,  # images per set for the SWD (real images are reused if fewer)
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"gan.loss must be one of {LOSSES}, got {loss!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.G = Generator(resolution, latent_dim, fmap_base, fmap_max, fmap_min, use_pixelnorm)
        self.D = Discriminator(resolution, fmap_base, fmap_max, fmap_min, mbstd_group_size)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()
        self.schedule = GrowthSchedule(level_of(start_resolution), level_of(resolution), stable_kimg, fade_kimg)
        self.register_buffer("images_seen", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("iterations", torch.tensor(0, dtype=torch.int64))
        gen = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("sample_z", torch.randn(num_samples, latent_dim, generator=gen))
        self._swd_reals: np.ndarray | None = None
        self._swd_history: list[list[float]] = []  # [kimg, resolution, swd_avg] per evaluation (the logged curve)
        self._grid_phase: tuple[int, int] | None = None  # (level, fade bucket) of the last fixed-latent grid
        self._last_time: float | None = None
        self._served_resolution: int | None = None
        self.G.level = self.G_ema.level = self.schedule.start_level

    # ----------------------------------------------------------------------------------------------------------
    def progress(self) -> tuple[int, float]:
        """Current ``(level, alpha)`` from ``images_seen``."""
        return self.schedule.progress(int(self.images_seen.item()))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        opt_g = torch.optim.Adam(self.G.parameters(), lr=hp.lr_g, betas=(hp.beta1, hp.beta2), eps=hp.adam_eps)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=hp.lr_d, betas=(hp.beta1, hp.beta2), eps=hp.adam_eps)
        return [opt_g, opt_d]

    def on_fit_start(self) -> None:
        if self.trainer.world_size > 1:
            # seed_everything gives every rank the same RNG state: decorrelate the latents drawn per rank.
            torch.manual_seed(torch.initial_seed() + 7919 * self.global_rank)
        level, alpha = self.progress()
        log.info(
            "TextureGAN: starting at %d kimg, level %d (%dx%d), alpha %.3f",
            int(self.images_seen) // 1000,
            level,
            resolution_of(level),
            resolution_of(level),
            alpha,
        )

    def _serve_resolution(self, batch_size: int) -> None:
        """Ask the DataModule for batches at the level a few iterations ahead (the loader prefetches batches, and
        a larger batch is pooled down exactly, while a smaller one would have to be upsampled)."""
        ahead = int(self.images_seen) + 4 * batch_size * self.trainer.world_size
        res = resolution_of(self.schedule.progress(ahead)[0])
        if res != self._served_resolution:
            dm = getattr(self.trainer, "datamodule", None)
            if dm is not None and hasattr(dm, "set_resolution"):
                dm.set_resolution(res)
            self._served_resolution = res

    def _prepare_reals(self, real: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
        res = resolution_of(level)
        if real.shape[-1] > res:
            real = F.avg_pool2d(real, real.shape[-1] // res)
        elif real.shape[-1] < res:  # only if the loader ran further ahead than expected
            log.warning("real batch at %dpx for level %dpx: upsampled", real.shape[-1], res)
            real = F.interpolate(real, size=(res, res), mode="nearest")
        if self.hparams.fade_reals and level > 0 and alpha < 1.0:
            low = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2.0, mode="nearest")
            real = torch.lerp(low, real, alpha)
        return real

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        hp = self.hparams
        level, alpha = self.progress()
        res = resolution_of(level)
        self._serve_resolution(batch.shape[0])
        self.G.level = level
        real = self._prepare_reals(batch, level, alpha)
        batch_size = real.shape[0]
        opt_g, opt_d = self.optimizers()

        def critic(x: torch.Tensor) -> torch.Tensor:
            return self.D(x, level, alpha)

        # Discriminator update.
        z = torch.randn(batch_size, hp.latent_dim, device=self.device)
        with torch.no_grad():
            fake = self.G(z, level, alpha)
        loss_d, stats = d_loss(hp.loss, critic, real, fake, hp.gp_weight, hp.gp_target, hp.drift_weight, hp.r1_gamma)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()

        # Generator update.
        z = torch.randn(batch_size, hp.latent_dim, device=self.device)
        loss_g = g_loss(hp.loss, critic, self.G(z, level, alpha))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)  # drop the D gradients the G step produced

        # EMA of G, counters.
        world = self.trainer.world_size
        shown = batch_size * world
        beta = 0.5 ** (shown / max(hp.ema_kimg * 1000.0, 1e-8))
        update_ema(self.G_ema, self.G, beta)
        self.images_seen += shown
        self.iterations += 1

        now = time.perf_counter()
        metrics = {
            "loss/d": loss_d.detach(),
            "loss/g": loss_g.detach(),
            **{f"loss/{k}": v for k, v in stats.items()},
            "progress/level": float(level),
            "progress/alpha": float(alpha),
            "progress/resolution": float(res),
            "progress/kimg": self.images_seen.item() / 1000.0,
        }
        if self._last_time is not None:
            metrics["perf/img_per_s"] = shown / max(now - self._last_time, 1e-9)
        self._last_time = now
        self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=False, batch_size=batch_size)
        self.log("kimg", self.images_seen.item() / 1000.0, prog_bar=True, on_step=True, batch_size=batch_size)

        every = hp.sample_every_n_steps
        phase = (level, 0 if alpha < 0.5 else 1 if alpha < 1.0 else 2)
        if every and (int(self.iterations) % every == 0 or phase != self._grid_phase):
            # also at the start, middle and end of every fade, so each level's fade-in shows in the grids
            self.log_samples()
        self._grid_phase = phase
        every = hp.swd_every_n_steps
        if hp.swd_real_root and every and int(self.iterations) % every == 0:
            self.evaluate_swd()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if int(self.images_seen) >= self.hparams.total_kimg * 1000.0:
            self.trainer.should_stop = True

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        if int(self.images_seen) >= self.hparams.total_kimg * 1000.0:
            self.trainer.should_stop = True
            return -1
        return None

    def on_train_end(self) -> None:
        if self.trainer.world_size > 1:
            self.check_ranks_in_sync()
        if self.hparams.sample_every_n_steps:
            self.log_samples()
        if self.hparams.swd_real_root:
            self.evaluate_swd()

    @torch.no_grad()
    def evaluate_swd(self) -> dict[str, float] | None:
        """Multi-scale SWD (x1e3) of EMA samples vs ``swd_real_root`` at the current level's resolution (rank 0).

        Logged as ``eval/swd_avg`` and ``eval/swd_<res>`` (the sweep metric). Skipped below 16x16 (no SWD level).
        Values are comparable between runs at the same resolution, not across levels.
        """
        if self.trainer.global_rank != 0:
            return None

        level, alpha = self.progress()
        res = resolution_of(level)
        if res < 16:
            return None
        if self._swd_reals is None:
            files = find_images(Path(self.hparams.swd_real_root))
            if not files:
                raise FileNotFoundError(f"gan.swd_real_root={self.hparams.swd_real_root} holds no PNG/JPG images")
            files = [files[i % len(files)] for i in range(self.hparams.swd_num_images)]
            size = self.hparams.resolution
            self._swd_reals = np.stack([load_square_image(f, size).transpose(2, 0, 1) for f in files])
        reals = torch.from_numpy(self._swd_reals).float()
        reals = F.avg_pool2d(reals, reals.shape[-1] // res).round().clamp(0, 255).numpy()
        gen = torch.Generator().manual_seed(int(self.iterations))
        z = torch.randn(len(reals), self.hparams.latent_dim, generator=gen).to(self.device)
        fake = self.G_ema(z, level, alpha).clamp(-1, 1).add(1).mul(127.5).round().cpu().numpy()
        result = swd(reals, fake, seed=0)
        metrics = {f"eval/swd_{r}": v for r, v in zip(result.resolutions, result.per_level, strict=True)}
        metrics["eval/swd_avg"] = result.average
        metrics["eval/kimg"] = int(self.images_seen) / 1000.0
        self._swd_history.append([metrics["eval/kimg"], float(res), float(result.average)])
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)
            if type(logger).__name__ == "WandbLogger":
                self._log_swd_curve(logger)
        log.info("SWD x1e3 at %dpx (%.1f kimg): %s", res, int(self.images_seen) / 1000, result.as_row())
        return metrics

    def _log_swd_curve(self, logger: Any) -> None:
        """The SWD history so far as a W&B line plot ``eval/swd_curve`` (SWD x1e3 against kimg; the table keeps
        the resolution of each point, since values are comparable within one resolution only)."""
        import wandb

        table = wandb.Table(columns=["kimg", "resolution", "swd_avg"], data=[list(r) for r in self._swd_history])
        plot = wandb.plot.line(table, "kimg", "swd_avg", title="SWD x1e3 of EMA samples vs held-back reals")
        logger.experiment.log({"eval/swd_curve": plot, "trainer/global_step": self.global_step})

    @torch.no_grad()
    def check_ranks_in_sync(self) -> float:
        """Under DDP, all-gather a checksum of G and D weights and raise ``RuntimeError`` if the ranks differ
        (that would mean gradients were not synchronised). Returns the relative spread of the checksums."""
        params = [p.detach().double() for p in [*self.G.parameters(), *self.D.parameters()]]
        checksum = torch.stack([torch.stack([p.sum(), p.abs().sum()]) for p in params]).sum(0)
        gathered = self.all_gather(checksum)  # [world, 2]
        spread = float((gathered.max(0).values - gathered.min(0).values).abs().max() / gathered.abs().max())
        if spread > 1e-6:
            raise RuntimeError(f"DDP ranks diverged (relative weight-checksum spread {spread:.2e}): grads not synced")
        log.info("DDP: %d ranks in sync (relative weight-checksum spread %.1e)", self.trainer.world_size, spread)
        return spread

    # ----------------------------------------------------------------------------------------------------------
    def sample_dir(self) -> Path:
        """Folder of sample-grid PNGs."""
        if self.hparams.sample_dir:
            return Path(self.hparams.sample_dir)
        return Path(self.trainer.default_root_dir) / "samples"

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:
        """EMA samples of the fixed latents at the current level/alpha, upsampled (nearest) to the target size."""
        level, alpha = self.progress()
        out = self.G_ema(self.sample_z, level, alpha)
        target = self.hparams.resolution
        if out.shape[-1] != target:
            out = F.interpolate(out, size=(target, target), mode="nearest")
        nrow = int(np.ceil(np.sqrt(out.shape[0])))
        return image_grid(out.cpu(), nrow)

    @torch.no_grad()
    def level_grid(self) -> np.ndarray:
        """EMA samples of the fixed latents at the current level's own resolution (no upsampling)."""
        level, alpha = self.progress()
        out = self.G_ema(self.sample_z, level, alpha)
        return image_grid(out.cpu(), int(np.ceil(np.sqrt(out.shape[0]))))

    def log_samples(self) -> None:
        """Write the fixed-latent grid to ``sample_dir()`` and to the logger (W&B image / TensorBoard image).

        Loggers also get the grid at the level's own resolution under ``samples/<res>px`` (one panel per level,
        its history = that level's fade-in, captioned with alpha and kimg).
        """
        if self.trainer.global_rank != 0:
            return
        grid = self.sample_grid()
        level, alpha = self.progress()
        res = resolution_of(level)
        caption = f"{res}px, alpha {alpha:.2f}, {int(self.images_seen) / 1000:.1f} kimg"
        native = self.level_grid() if self.loggers else None
        step = int(self.iterations)
        folder = self.sample_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"samples_{step:07d}_kimg{int(self.images_seen) // 1000:05d}.png"
        Image.fromarray(grid).save(path)
        for logger in self.loggers:
            name = type(logger).__name__
            if name == "WandbLogger":
                logger.log_image(key="samples", images=[grid], step=self.global_step)
                logger.log_image(key=f"samples/{res}px", images=[native], caption=[caption], step=self.global_step)
            elif name == "TensorBoardLogger":
                logger.experiment.add_image("samples", grid, self.global_step, dataformats="HWC")
                logger.experiment.add_image(f"samples/{res}px", native, self.global_step, dataformats="HWC")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        level, alpha = self.progress()
        checkpoint["ganfit"] = {
            "images_seen": int(self.images_seen),
            "iterations": int(self.iterations),
            "level": level,
            "alpha": alpha,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get("ganfit")
        if info is not None:
            log.info(
                "resuming TextureGAN at %d images, iteration %d, level %d, alpha %.4f",
                info["images_seen"],
                info["iterations"],
                info["level"],
                info["alpha"],
            )
