"""texture=gan plumbing: the latent of a frozen generator is fitted and the full-resolution texture exported.

The generator is the shipped, trained one (64x64), re-exported with ganfit.gan's own exporter and given by path
(``texture.generator=...``, as a user's own generator would be): the test checks that wiring (latent search, the
cheap low-resolution path at 32, gradients into the latent, export at the generator's resolution).
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import ganfit.gan as gan
from ganfit.gan.default import resolve_generator
from ganfit.jobs.fit_job import run_fit_job


def test_gan_texture_fit_writes_generator_resolution(tmp_path, photos_root, assets_dir, compose_fit):
    generator = gan.load_generator(resolve_generator(None))
    assert generator.resolution == 64
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
