"""The generator shipped with the project: ``data/generators/frl_uv64.pt`` and its card ``frl_uv64.json``.

The card records the file's sha256, the exact commands and config that produced it, how long each step took, the
training data and its licence (Face Research Lab London/Canada sets, CC BY 4.0; see the card's ``attribution``).
``texture.generator=default`` (the default of ``conf/texture/gan.yaml``) resolves to this file; the checksum is
verified on load, so a truncated or replaced file gives a clear error rather than odd textures.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ganfit.assets import DATA_DIR
from ganfit.gan.export import GeneratorFileError

DEFAULT_NAME = "default"
DEFAULT_GENERATOR = DATA_DIR / "generators" / "frl_uv64.pt"
DEFAULT_CARD = DEFAULT_GENERATOR.with_suffix(".json")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_generator_card() -> dict[str, Any]:
    """The card of the shipped generator (``frl_uv64.json``)."""
    if not DEFAULT_CARD.is_file():
        raise GeneratorFileError(f"the default generator's card {DEFAULT_CARD} is missing (a broken checkout?)")
    return json.loads(DEFAULT_CARD.read_text())


def default_generator_path(verify: bool = True) -> Path:
    """Path of the shipped generator; with ``verify`` its sha256 is checked against the card.

    Raises:
        GeneratorFileError: the file or its card is missing, or the checksum differs.
    """
    if not DEFAULT_GENERATOR.is_file():
        raise GeneratorFileError(
            f"the default generator {DEFAULT_GENERATOR} is missing; restore it from the repository (git checkout)"
            " or pass texture.generator=/path/to/generator.pt (train one with `python train_texture_gan.py`)"
        )
    if verify:
        expected = default_generator_card()["sha256"]
        actual = sha256_of(DEFAULT_GENERATOR)
        if actual != expected:
            raise GeneratorFileError(
                f"{DEFAULT_GENERATOR} has sha256 {actual}, but its card {DEFAULT_CARD.name} says {expected}: the file"
                " is damaged or was replaced (git-lfs pointer?); restore it from the repository"
            )
    return DEFAULT_GENERATOR


def resolve_generator(path: str | Path | None) -> Path:
    """``texture.generator`` -> a file: ``"default"`` (or null) is the shipped generator, anything else a path."""
    if path is None or str(path) in ("", DEFAULT_NAME):
        return default_generator_path()
    return Path(path)
