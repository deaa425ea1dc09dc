"""texture=gan plumbing: the latent of a frozen generator is fitted and the full-resolution texture exported.

The generator here is an UNTRAINED ProGAN exported with ganfit.gan's own exporter: this test checks the wiring
(latent search, the cheap low-resolution path, gradients into the latent, export at the generator's resolution),
not texture quality — the shipped generator comes from the dataset issue.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

import ganfit.gan as gan
from ganfit.jobs.fit_job import run_fit_job


def test_gan_texture_fit_writes_generator_resolution(tmp_path, photos_root, assets_dir, compose_fit):
    torch.manual_seed(0)
    generator = gan.Generator(resolution=64, fmap_base=256, fmap_max=32)
    path = gan.export_generator(generator, tmp_path / "generator.pt")
    photo = sorted((photos_root / "deep3d-examples").glob("*.jpg"))[0]
    cfg = compose_fit(
        [
            f"image={photo}",
            f"out={tmp_path / 'out'}",
            "texture=gan",
            f"texture.generator={path}",
            "detail=false",
            "fitting.texture_resolution=32",  # fitted through G.synthesize(z, 32), exported at 64
        ]
    )
    summary = run_fit_job(cfg)
    assert summary.count("fitted") == 1, summary.format()
    folder = tmp_path / "out" / photo.stem
    assert Image.open(folder / "texture.png").size == (64, 64)
    params = json.loads((folder / "params.json").read_text())
    assert params["texture"] == "gan" and len(params["pt"]) == 512
    metrics = json.loads((folder / "metrics.json").read_text())
    assert np.isfinite(metrics["final_terms"]["latent_prior"])
