"""Shared inputs of the report, browser, demo and W&B-media tests (no tests here).

- :func:`mean_face_job`: a fit-job output folder in seconds, from real parts only: the ICT model's mean face exported
  with ``FaceModel.export`` (as ``fit.py`` does) and textured by the shipped generator, a real photo, and a
  ``summary.json`` written from the real ``Summary``/``Outcome`` classes, with a corrupt file's real read error.
- :func:`real_fit_job`: the real fit (``run_fit_job``, ``fitting=smoke``) on 2 real photos and a
  corrupt file (~40 s on one core); tests get it once per session through the ``real_fit_out`` fixture.
- :func:`require_chromium`, :func:`changed_fraction`: browser checks.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from asset_helpers import missing_asset
from fit_helpers import SMOKE, deep3d_photos
from ganfit.config import compose_config
from ganfit.face_model import load_face_model
from ganfit.gan import load_generator
from ganfit.gan.default import resolve_generator
from ganfit.image_io import ImageInputError, read_image
from ganfit.jobs.engine import Outcome
from ganfit.jobs.fit_job import Summary, run_fit_job
from ganfit.report.browser import find_chromium


def corrupt_file(folder: Path) -> Path:
    """A 'photo' that is not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken.jpg"
    path.write_bytes(b"this is not a JPEG file")
    return path


def no_face_jpeg() -> bytes:
    """A real photo without a face: scikit-image's coffee cup (CC0)."""

    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG")
    return buffer.getvalue()


def mean_face_job(root: Path, photos_root: Path) -> Path:
    """A fit-job folder ``root/out`` with one 'fitted' mean face and one failed corrupt file (see module doc)."""

    out = root / "out"
    folder = out / "mean_face"
    folder.mkdir(parents=True, exist_ok=True)
    model = load_face_model()
    generator = load_generator(resolve_generator(None))
    with torch.no_grad():
        uv = generator.synthesize(torch.randn(1, generator.latent_dim, generator=torch.Generator().manual_seed(0)))
    texture = ((uv[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    model.export(folder / "mesh.glb", model.mean, texture)
    Image.fromarray(texture).save(folder / "texture.png")
    photo = Image.open(deep3d_photos(photos_root, 1)[0]).convert("RGB")
    photo.save(folder / "overlay.png")
    metrics = {"identity_cosine": 0.5, "landmark_error_iod": 0.1, "texture": "gan"}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    broken = corrupt_file(root / "inputs")
    try:
        read_image(broken)
        raise AssertionError("the corrupt file was read")
    except ImageInputError as error:
        reason = f"{type(error).__name__}: {error}"
    outcomes = [
        Outcome("mean_face", "ICT mean face", "fitted", "", 1.0, metrics),
        Outcome("broken", str(broken), "failed", reason),
    ]
    (out / "summary.json").write_text(json.dumps(Summary(str(out), outcomes).to_json(), indent=2))
    return out


def real_fit_job(tmp_path_factory: pytest.TempPathFactory, photos_root: Path) -> Path:
    """``out`` of one real shrunk fit of 2 deep3d photos + a corrupt file, with ``wandb=true`` (offline run in
    ``out/wandb``). Tests take it through the session fixture ``real_fit_out`` (conftest.py), which runs it once."""
    root = tmp_path_factory.mktemp("report_fit")
    listing = root / "photos.txt"
    files = [*deep3d_photos(photos_root, 2), corrupt_file(root / "inputs")]
    listing.write_text("\n".join(str(f) for f in files) + "\n")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    cfg = compose_config(
        "fit",
        [f"image={listing}", f"out={root / 'out'}", "fitting.batch_size=2", "wandb=true", "torch_threads=1", *SMOKE],
    )
    threads = torch.get_num_threads()
    try:
        summary = run_fit_job(cfg)
    finally:
        torch.set_num_threads(threads)
    assert summary.count("fitted") == 2 and summary.count("failed") == 1, summary.format()
    return root / "out"


def require_chromium() -> str:
    """The Chromium executable; skips locally (fails on CI) when there is none."""

    found = find_chromium()
    if not found:
        missing_asset("no chromium on PATH (install it: `make browser`, i.e. apt-get install chromium)")
    return found


def changed_fraction(png: bytes, background: tuple[int, int, int], box: float = 0.5, tolerance: int = 24) -> float:
    """Fraction of pixels of the central ``box`` x ``box`` region of a screenshot that differ from ``background``
    (sum of absolute RGB differences above ``tolerance``)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
    h, w = image.shape[:2]
    top, left = int(h * (1 - box) / 2), int(w * (1 - box) / 2)
    region = image[top : h - top, left : w - left]
    return float((np.abs(region - np.asarray(background)).sum(-1) > tolerance).mean())


def viewer_background() -> tuple[int, int, int]:
    """The 3D view's clear colour (``GanfitViewer.BACKGROUND`` in static/src/viewer.js)."""
    return (0x2B, 0x2F, 0x36)
