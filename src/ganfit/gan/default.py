"""The generator shipped with the project: ``data/generators/frl_uv64.pt`` and its card ``frl_uv64.json``.

The card records the file's sha256, the exact commands and config that produced it, how long each step took, the
training data and its licence (Face Research Lab London/Canada sets, CC BY 4.0; see the card's ``attribution``).
``texture.generator=default`` (the default of ``conf/texture/gan.yaml``) resolves to this file; the checksum is
verified on load, so a truncated or replaced file gives a clear error rather than odd textures.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from ganfit.args import parse_args
from ganfit.assets import DATA_DIR
from ganfit.exit_codes import run_command
from ganfit.gan.generator_file import GeneratorFileError

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


ATTRIBUTION = (
    "Trained on UV textures made by ganfit.data_build from Face Research Lab photos (CC BY 4.0), via "
    "github.com/debruine/webmorphR.stim @ fa8b78fd: DeBruine, L., & Jones, B. (2017). Face Research Lab London Set "
    "(Version 5). figshare. https://doi.org/10.6084/m9.figshare.5047666.v5 ; DeBruine, L., & Jones, B. (2017). "
    "Young Adult White Faces with Manipulated Versions (Version 1). figshare. "
    "https://doi.org/10.6084/m9.figshare.4220517.v1 . Ten London identities (data/frl_holdout.json) were held out."
)


def write_card(generator_file: Path, run_dir: Path, dataset_dir: Path, steps: dict[str, Any]) -> dict[str, Any]:
    """Write ``<generator_file>.json``: checksum, progress, the run's composed config, dataset counts, step timings.

    Args:
        generator_file: the exported (fp16) ``generator.pt``.
        run_dir: the training run's Hydra folder (``.hydra/config.yaml`` and ``overrides.yaml`` are read).
        dataset_dir: the builder's output (``summary.json`` and ``split/`` are read).
        steps: free-form record of the commands and how long each took (kept as given).
    """
    import torch
    from omegaconf import OmegaConf

    payload = torch.load(generator_file, map_location="cpu", weights_only=True)
    state = payload["state_dict"]
    summary = json.loads((dataset_dir / "summary.json").read_text())
    config = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    card = {
        "file": generator_file.name,
        "sha256": sha256_of(generator_file),
        "bytes": generator_file.stat().st_size,
        "format": payload["format"],
        "dtype": "float16",
        "parameters": int(sum(v.numel() for k, v in state.items() if v.is_floating_point())),
        "resolution": 4 * 2 ** int(state["trained_level"]),
        "images_seen": int(payload["images_seen"]),
        "generator_config": payload["config"],
        "training_overrides": OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")),
        "training_config": {key: config[key] for key in ("gan", "data", "seed", "torch_threads")},
        "dataset": {
            "photos": summary["kept"] + summary["dropped"] + summary["failed"],
            "kept": summary["kept"],
            "train_textures": len(list((dataset_dir / "split" / "train").iterdir())),
            "holdout_textures": len(list((dataset_dir / "split" / "holdout").iterdir())),
        },
        "steps": steps,
        "attribution": ATTRIBUTION,
        "licence": "weights derived from CC BY 4.0 photos: keep this attribution when redistributing",
    }
    card_path = generator_file.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card


@dataclass
class CardArgs:
    """The keys of ``ganfit gan-card`` (= ``python -m ganfit.gan.default``)."""

    generator: Path = field(default=MISSING, metadata={"help": "the exported generator.pt"})
    run_dir: Path = field(default=MISSING, metadata={"help": "the training run's folder"})
    dataset_dir: Path = field(default=MISSING, metadata={"help": "the data_build output it was trained on"})
    steps: Path = field(default=MISSING, metadata={"help": "JSON file of the build steps (command, seconds)"})


def main(argv: list[str] | None = None) -> int:
    """``ganfit gan-card generator=G.pt run_dir=RUN dataset_dir=DATA steps=STEPS.json``: write the generator's
    card (``G.json``)."""
    return run_command(lambda: _main(argv), (OSError, json.JSONDecodeError))


def _main(argv: list[str] | None) -> int:
    args = parse_args(CardArgs, argv, prog="ganfit gan-card", doc="Write the card of an exported generator.")
    card = write_card(args.generator, args.run_dir, args.dataset_dir, json.loads(args.steps.read_text()))
    print(f"{args.generator}: sha256 {card['sha256']}, {card['bytes']} bytes, {card['resolution']} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
