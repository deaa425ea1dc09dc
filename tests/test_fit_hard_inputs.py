"""Hard real inputs through the real fit job (smoke preset): a face half out of frame, a turned head, dark glasses.
The fit finishes for each, writes every output, and the part of the face the photo does not show comes from the
mirror and the GAN (the detail texture's seen fraction drops for the cut photo)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from omegaconf import DictConfig
from PIL import Image, ImageDraw

from ganfit.fitting.export import OUTPUT_FILES
from ganfit.image_io import read_image
from ganfit.jobs.fit_job import run_fit_job
from ganfit.landmarks import detect_face

TURNED = "mebeauty/images/female_asian__pexels-raka-miftah-3522693.jpg"  # the most turned face found (~35-40 deg)


def _hard_inputs(photos_root: Path, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image = read_image(photos_root / "frl-london" / "neutral_front" / "001_03.jpg")
    landmarks = detect_face(image).landmarks
    paths = {"full": folder / "full.png", "half_out": folder / "half_out.png", "glasses": folder / "glasses.png"}
    Image.fromarray(image).save(paths["full"])
    width = landmarks[:, 0].max() - landmarks[:, 0].min()
    cut = int(landmarks[30, 0] - 0.05 * width)  # the frame starts at the nose: one side of the face is out of frame
    Image.fromarray(np.ascontiguousarray(image[:, cut:])).save(paths["half_out"])
    glasses = Image.fromarray(image)
    draw = ImageDraw.Draw(glasses)
    for eye in (landmarks[36:42], landmarks[42:48]):
        centre, size = eye.mean(0), np.ptp(eye, axis=0)
        rx, ry = 0.9 * size[0], 1.6 * size[1] + 12
        draw.ellipse([centre[0] - rx, centre[1] - ry, centre[0] + rx, centre[1] + ry], fill=(12, 12, 16))
    draw.line([tuple(landmarks[39]), tuple(landmarks[42])], fill=(12, 12, 16), width=8)
    glasses.save(paths["glasses"])
    turned = photos_root / TURNED
    if turned.is_file():
        paths["turned"] = folder / "turned.jpg"
        paths["turned"].write_bytes(turned.read_bytes())
    return paths


@pytest.mark.slow
def test_hard_inputs_fit_and_fill_what_is_unseen(
    photos_root: Path, assets_dir: Path, tmp_path: Path, compose_fit: Callable[..., DictConfig]
) -> None:
    inputs = _hard_inputs(photos_root, tmp_path / "photos")
    listing = tmp_path / "photos.txt"
    listing.write_text("".join(f"{path}\n" for path in inputs.values()))
    out = tmp_path / "out"
    summary = run_fit_job(compose_fit([f"image={listing}", f"out={out}", "fitting.batch_size=4", "report=false"]))
    assert summary.count("fitted") == len(inputs), summary.format()
    seen = {}
    for name in inputs:
        folder = out / name
        for file in OUTPUT_FILES:
            assert (folder / file).is_file(), (name, file)
        metrics = json.loads((folder / "metrics.json").read_text())
        seen[name] = metrics["appearance"]["seen_fraction"]
        texture = np.asarray(Image.open(folder / "texture.png"))
        assert texture.std() > 5, f"{name}: a flat texture"  # filled, not blank
    assert seen["half_out"] < 0.8 * seen["full"], seen  # the cut side is not seen: it comes from mirror + GAN
    assert seen["glasses"] < seen["full"], seen  # the glasses are kept out of the texture
    glasses = json.loads((out / "glasses" / "metrics.json").read_text())["appearance"]
    assert glasses["eye_colour_from_photo"] == [False, False]  # dark lenses are no iris or sclera colour
