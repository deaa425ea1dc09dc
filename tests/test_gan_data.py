"""TextureFolder / TextureDataModule on real photos: recursive scan, unreadable files skipped, masks, levels."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_helpers import make_photo_folder
from ganfit.gan.data import DatasetError, TextureDataModule, TextureFolder


@pytest.fixture()
def folder(photos_root: Path, tmp_path: Path) -> Path:
    return make_photo_folder(photos_root, tmp_path / "tex", count=4, size=32)


def test_reads_recursively_and_skips_unreadable(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    (folder / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING):
        ds = TextureFolder(folder, 16, mirror=False)
    assert len(ds) == 4 and ds.num_skipped == 2
    assert "skipped 2 unreadable image(s)" in caplog.text and "broken.png" in caplog.text
    x = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert -1.0 <= x.min() and x.max() <= 1.0 and x.std() > 0.05  # a real photo, not a constant
    ds.set_resolution(4)
    low = ds[0]
    assert low.shape == (3, 4, 4)
    torch.testing.assert_close(low, torch.nn.functional.avg_pool2d(x[None], 4)[0])
    with pytest.raises(ValueError, match="divide"):
        ds.set_resolution(32)


def test_masks_fill_invalid_texels(folder: Path) -> None:
    image = sorted((folder / "sub").glob("*.png"))[0]
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 255  # left half valid
    Image.fromarray(mask).save(image.with_name(image.stem + "_mask.png"))
    ds = TextureFolder(folder, 32, mirror=False, mask_suffix="_mask")
    assert len(ds) == 4  # the mask file is not an image of its own
    x = ds[ds.files.index(image)]
    right = x[:, :, 16:]
    assert torch.allclose(right, right[:, :1, :1].expand_as(right))  # constant fill
    torch.testing.assert_close(right[:, 0, 0], x[:, :, :16].mean(dim=(1, 2)))


def test_clear_errors(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(DatasetError, match="is not a folder"):
        TextureFolder(tmp_path / "nope", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no readable PNG/JPG"):
        TextureFolder(tmp_path / "empty", 16)
    dm = TextureDataModule(str(folder), 16, batch_size=8)
    with pytest.raises(DatasetError, match="fewer than data.batch_size=8"):
        dm.setup("fit")
