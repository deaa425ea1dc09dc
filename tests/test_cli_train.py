"""``train_texture_gan.py`` end to end in a subprocess: a ``fast_dev_run`` exports the generator, exits 0 and
writes no checkpoint (issue 17); the tiny real config of the GAN tests (real frl-london photos, downsized)."""

from __future__ import annotations

from pathlib import Path

import torch

from cli_helpers import run
from gan_helpers import TINY, make_photo_folder


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
