"""Image-folder data for the texture GAN: UV texture maps (or any square-croppable images) read recursively.

``TextureFolder(root, resolution)`` finds ``*.png|*.jpg|*.jpeg`` under ``root`` (recursively, sorted), decodes each
once at set-up (files that cannot be decoded are skipped with a warning; ``num_skipped`` counts them), centre-crops to
a square, box-resizes to ``resolution`` and keeps them as uint8 in memory (``cache=True``) or re-reads them on access.
Items are float32 ``[3, r, r]`` in [-1, 1] at the *current* resolution ``r`` (``set_resolution``), area-downsampled
from the stored resolution, optionally mirrored (the face model's UV layout is left-right symmetric).

Optional masks: with ``mask_suffix="_mask"``, ``a/b.png`` pairs with ``a/b_mask.png`` (grayscale, > 127 = valid
texel); invalid texels are filled with the image's mean valid colour, and mask files are not used as images.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

__all__ = ["TextureDataModule", "TextureFolder", "find_images", "load_square_image"]


class DatasetError(ValueError):
    """The configured data folder cannot be used (missing, empty, or smaller than a batch)."""


def find_images(root: Path, mask_suffix: str | None = None) -> list[Path]:
    """Sorted image files under ``root`` (recursive), excluding mask files when ``mask_suffix`` is set."""
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if mask_suffix:
        files = [p for p in files if not p.stem.endswith(mask_suffix)]
    return sorted(files)


def load_square_image(path: Path, resolution: int, mode: str = "RGB") -> np.ndarray:
    """Decode ``path``, centre-crop to a square and box-resize: uint8 ``[R, R, 3]`` (RGB) or ``[R, R]`` (L).

    Raises ``OSError``/``UnidentifiedImageError``/``ValueError`` when the file cannot be decoded.
    """
    with Image.open(path) as im:
        im = im.convert(mode)
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
        if s != resolution:
            im = im.resize((resolution, resolution), Image.Resampling.BOX)
        return np.asarray(im, dtype=np.uint8).copy()


class TextureFolder(Dataset):
    """Square images from a folder tree; items are float32 ``[3, r, r]`` in [-1, 1] (see module docstring)."""

    def __init__(
        self,
        root: str | Path,  # folder searched recursively for PNG/JPG images
        resolution: int,  # stored (maximum) resolution; must be a power of two
        mirror: bool = True,  # random horizontal flips (valid for the symmetric UV layout)
        mask_suffix: str | None = None,  # e.g. "_mask": a/b.png pairs with a/b_mask.png
        cache: bool = True,  # keep decoded uint8 images in memory
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"data.root={self.root} is not a folder; point data.root at a folder of PNG/JPG images")
        self.stored_resolution = resolution
        self.resolution = resolution
        self.mirror = mirror
        self.mask_suffix = mask_suffix
        self.cache = cache
        self.files: list[Path] = []
        self.num_skipped = 0
        self._images: list[np.ndarray] = []
        self._masks: list[np.ndarray | None] = []
        for path in find_images(self.root, mask_suffix):
            try:
                img = load_square_image(path, resolution)
                mask = self._load_mask(path)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                self.num_skipped += 1
                log.warning("skipping unreadable image %s: %s", path, exc)
                continue
            self.files.append(path)
            if cache:
                self._images.append(img)
                self._masks.append(mask)
        if self.num_skipped:
            log.warning("skipped %d unreadable image(s) under %s", self.num_skipped, self.root)
        if not self.files:
            raise DatasetError(f"data.root={self.root} holds no readable PNG/JPG images")
        log.info("TextureFolder: %d images from %s at %dx%d", len(self.files), self.root, resolution, resolution)

    def _load_mask(self, path: Path) -> np.ndarray | None:
        if not self.mask_suffix:
            return None
        for suffix in (path.suffix, ".png"):
            mask_path = path.with_name(path.stem + self.mask_suffix + suffix)
            if mask_path.is_file():
                return load_square_image(mask_path, self.stored_resolution, mode="L") > 127
        return None

    def set_resolution(self, resolution: int) -> None:
        """Serve items at ``resolution`` (a power-of-two divisor of the stored resolution)."""
        if resolution > self.stored_resolution or self.stored_resolution % resolution:
            raise ValueError(f"resolution must divide {self.stored_resolution}, got {resolution}")
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.cache:
            img, mask = self._images[index], self._masks[index]
        else:
            img = load_square_image(self.files[index], self.stored_resolution)
            mask = self._load_mask(self.files[index])
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0  # [3, R, R] in [-1, 1]
        if mask is not None:
            m = torch.from_numpy(mask)
            if m.any():
                fill = x[:, m].mean(dim=1)
                x = torch.where(m[None], x, fill[:, None, None])
        if self.resolution != self.stored_resolution:
            x = F.avg_pool2d(x[None], self.stored_resolution // self.resolution)[0]
        if self.mirror and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x


class TextureDataModule(pl.LightningDataModule):
    """Lightning DataModule over :class:`TextureFolder`; the GAN module calls ``set_resolution`` when it grows."""

    def __init__(
        self,
        root: str,  # folder of training textures (recursive PNG/JPG)
        resolution: int,  # stored resolution = the GAN's target resolution
        batch_size: int = 16,  # images per optimisation step and process
        num_workers: int = 0,  # DataLoader worker processes (0: load in the training process)
        mirror: bool = True,  # random horizontal flips
        mask_suffix: str | None = None,  # optional mask files beside the images
        cache: bool = True,  # keep decoded images in memory
    ) -> None:
        super().__init__()
        self.root = root
        self.resolution = resolution
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.mirror = mirror
        self.mask_suffix = mask_suffix
        self.cache = cache
        self.dataset: TextureFolder | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            self.dataset = TextureFolder(self.root, self.resolution, self.mirror, self.mask_suffix, self.cache)
            if len(self.dataset) < self.batch_size:
                raise DatasetError(
                    f"data.root={self.root} has {len(self.dataset)} readable images, fewer than "
                    f"data.batch_size={self.batch_size}; lower data.batch_size or add images"
                )

    def set_resolution(self, resolution: int) -> None:
        """Serve batches at ``resolution`` from now on (effective immediately with ``num_workers=0``)."""
        if self.dataset is not None:
            self.dataset.set_resolution(resolution)

    def train_dataloader(self) -> DataLoader:
        assert self.dataset is not None, "call setup() first"
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
