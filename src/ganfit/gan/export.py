"""Plain ``generator.pt`` export of the EMA generator, loadable without Lightning.

File format (a dict, readable with ``torch.load(path, weights_only=True)``):

- ``"format"``: ``"ganfit.generator/1"``
- ``"config"``: keyword arguments of :class:`~ganfit.gan.networks.Generator` (ints/bools)
- ``"state_dict"``: the EMA generator's parameters and buffers (float32 CPU tensors, or float16 when exported with
  ``half=True``; ``load_generator`` always rebuilds a float32 generator; ``trained_level`` included)
- ``"level"``, ``"alpha"``, ``"images_seen"``: training progress when exported (alpha < 1 means the top block was
  still fading in; ``load_generator`` then uses the last fully trained level)
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ganfit.gan.networks import Generator

log = logging.getLogger(__name__)

FORMAT = "ganfit.generator/1"

__all__ = ["FORMAT", "GeneratorFileError", "export_generator", "generator_from_checkpoint", "load_generator"]


class GeneratorFileError(ValueError):
    """A ``generator.pt`` is missing or not in the expected format."""


def export_generator(
    generator: Generator,
    path: str | Path,
    level: int | None = None,
    alpha: float = 1.0,
    images_seen: int = 0,
    half: bool = False,
) -> Path:
    """Save ``generator`` (normally the EMA copy) to ``path`` in the plain format above; returns the path.
    ``half=True`` stores floating-point tensors as float16 (half the file size; the shipped default generator)."""
    level = generator.level if level is None else level
    usable = level if alpha >= 1.0 else max(level - 1, 0)
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state["trained_level"] = torch.tensor(usable, dtype=torch.int64)
    payload = {
        "format": FORMAT,
        "config": dict(generator.config),
        "state_dict": state,
        "level": int(level),
        "alpha": float(alpha),
        "images_seen": int(images_seen),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    log.info("exported generator (level %d, %dx%d) to %s", usable, 4 * 2**usable, 4 * 2**usable, path)
    return path


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> Generator:
    """Rebuild the exported generator from ``path``; returns an ``eval()`` :class:`Generator` with frozen weights.

    ``G(z [B, 512]) -> [B, 3, R, R]`` (``R = G.resolution``), ``G.synthesize(z, r)`` for the consistent lower
    resolution ``r``. Raises :class:`GeneratorFileError` for a missing or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise GeneratorFileError(f"generator file {path} does not exist; train one with `python train_texture_gan.py`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle/zip errors differ by torch version
        raise GeneratorFileError(f"cannot read generator file {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GeneratorFileError(f"{path} is not a ganfit generator export (expected format {FORMAT!r})")
    generator = Generator(**payload["config"])
    generator.load_state_dict(payload["state_dict"])  # copies into float32 parameters (float16 files included)
    generator.requires_grad_(False)
    return generator.eval()


def generator_from_checkpoint(ckpt_path: str | Path, ema: bool = True) -> tuple[Generator, dict]:
    """Rebuild the (EMA) generator from a Lightning checkpoint of :class:`~ganfit.gan.module.TextureGAN`.

    Returns ``(generator, progress)`` where ``progress`` is the checkpoint's ``"ganfit"`` entry (images_seen,
    iterations, level, alpha). The generator's ``level`` is the checkpoint's last fully faded-in level.
    Checkpoints hold pickled hyper-parameters, so this uses ``weights_only=False``: only open checkpoints you trust.
    """
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    hp = ckpt["hyper_parameters"]
    generator = Generator(
        hp["resolution"], hp["latent_dim"], hp["fmap_base"], hp["fmap_max"], hp["fmap_min"], hp["use_pixelnorm"]
    )
    prefix = "G_ema." if ema else "G."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    generator.load_state_dict(state)
    progress = dict(ckpt.get("ganfit", {}))
    if "level" in progress:  # mid-fade: the last fully faded-in level, as export_generator
        level = int(progress["level"])
        generator.level = level if float(progress.get("alpha", 1.0)) >= 1.0 else max(level - 1, 0)
    return generator.requires_grad_(False).eval(), progress


def main(argv: list[str] | None = None) -> None:
    """``python -m ganfit.gan export CKPT OUT [--half]``: write ``generator.pt`` (EMA weights) from a checkpoint."""
    import argparse

    parser = argparse.ArgumentParser(description="Export the EMA generator of a TextureGAN checkpoint.")
    parser.add_argument("ckpt", type=Path, help="Lightning checkpoint (.ckpt) of ganfit.gan.module.TextureGAN")
    parser.add_argument("out", type=Path, help="output generator.pt")
    parser.add_argument("--half", action="store_true", help="store the weights as float16 (half the size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generator, progress = generator_from_checkpoint(args.ckpt)
    export_generator(
        generator,
        args.out,
        level=int(progress.get("level", generator.level)),
        alpha=float(progress.get("alpha", 1.0)),
        images_seen=int(progress.get("images_seen", 0)),
        half=args.half,
    )
    print(args.out)


if __name__ == "__main__":
    main()
