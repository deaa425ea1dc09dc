"""The shipped default generator (data/generators/frl_uv64.pt): present, verified, small, and it makes face textures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ganfit.gan import GeneratorFileError, load_generator
from ganfit.gan import default as shipped


def test_shipped_file_matches_its_card() -> None:
    card = shipped.default_generator_card()
    path = shipped.default_generator_path()  # verifies the sha256
    assert path.stat().st_size == card["bytes"] <= 8 * 2**20
    assert card["dtype"] == "float16" and "CC BY 4.0" in card["attribution"] and card["steps"]
    payload = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())


def test_default_samples_are_face_textures() -> None:
    generator = load_generator(shipped.resolve_generator("default"))
    z = torch.randn(32, generator.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        textures = (generator(z).clamp(-1, 1) + 1) / 2  # [32, 3, R, R] in [0, 1]
    size = textures.shape[-1]
    assert textures.shape == (32, 3, size, size) and size == shipped.default_generator_card()["resolution"]
    cheeks = textures[..., size // 2 : 3 * size // 4, size // 8 : 3 * size // 8]  # a cheek of the UV layout
    red, green, blue = cheeks.mean(dim=(0, 2, 3))
    assert red > green > blue and 0.3 < float(red) < 0.95  # skin: more red than green than blue, not black/white
    # the UV layout is left/right symmetric: samples are roughly mirror images of themselves ...
    asymmetry = (textures - textures.flip(-1)).abs().mean()
    # ... and they differ between latents (no collapse onto one texture)
    spread = (textures - textures.mean(0, keepdim=True)).abs().mean()
    assert float(asymmetry) < 0.08 and float(spread) > 0.02


def test_damaged_default_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "frl_uv64.pt"
    shutil.copy(shipped.DEFAULT_GENERATOR, copy)
    with open(copy, "r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(shipped, "DEFAULT_GENERATOR", copy)
    with pytest.raises(GeneratorFileError, match="sha256"):
        shipped.default_generator_path()
    monkeypatch.setattr(shipped, "DEFAULT_GENERATOR", tmp_path / "missing.pt")
    with pytest.raises(GeneratorFileError, match="missing"):
        shipped.resolve_generator(None)
