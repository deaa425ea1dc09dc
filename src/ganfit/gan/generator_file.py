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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import MISSING

from ganfit.args import parse_args
from ganfit.atomic import atomic_save
from ganfit.exit_codes import EXIT_OK, run_command
from ganfit.gan.networks import Generator

log = logging.getLogger(__name__)

FORMAT = "ganfit.generator/1"

__all__ = [
    "FORMAT",
    "CheckpointFileError",
    "GeneratorFileError",
    "export_generator",
    "generator_from_checkpoint",
    "load_generator",
    "read_checkpoint",
]


class GeneratorFileError(ValueError):
    """A ``generator.pt`` is missing or not in the expected format."""


class CheckpointFileError(ValueError):
    """A file given as a TextureGAN checkpoint is missing, not a checkpoint, or would need unpickling code."""


def _safe_load(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers and plain values only, never code.

    Raises:
        OSError: the file cannot be opened.
        ValueError: it is not a torch file, or holds objects that only a full unpickler could build (the message
            says so without torch's advice to unpickle it anyway).
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # pickle/zip errors differ by torch version
        kind = type(exc).__name__
        if "Weights only load failed" in str(exc):
            raise ValueError(
                f"{kind}: it holds Python objects other than tensors and plain values, which ganfit never unpickles"
            ) from None
        raise ValueError(f"{kind}: not a file written by torch.save") from None


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
    path = atomic_save(path, lambda handle: torch.save(payload, handle))
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
    hint = "give a generator.pt written by train_texture_gan.py or `python -m ganfit.gan export`"
    try:
        payload = _safe_load(path, map_location)
    except (OSError, ValueError) as exc:
        raise GeneratorFileError(f"cannot read the generator file {path} ({exc}); {hint}") from None
    if isinstance(payload, dict) and "pytorch-lightning_version" in payload:
        raise GeneratorFileError(
            f"{path} is a Lightning training checkpoint, not a generator export; "
            f"write one with `python -m ganfit.gan export ckpt={path} out=generator.pt`"
        )
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GeneratorFileError(f"{path} is not a ganfit generator export (expected format {FORMAT!r}); {hint}")
    try:
        generator = Generator(**payload["config"])
        generator.load_state_dict(payload["state_dict"])  # copies into float32 parameters (float16 files included)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise GeneratorFileError(
            f"the generator file {path} does not match its own network config ({type(exc).__name__}: {first}); "
            f"the file is damaged or was edited; {hint}"
        ) from None
    generator.requires_grad_(False)
    return generator.eval()


def generator_from_checkpoint(ckpt_path: str | Path, ema: bool = True) -> tuple[Generator, dict]:
    """Rebuild the (EMA) generator from a Lightning checkpoint of :class:`~ganfit.gan.module.TextureGAN`.

    Returns ``(generator, progress)`` where ``progress`` is the checkpoint's ``"ganfit"`` entry (images_seen,
    iterations, level, alpha). The generator's ``level`` is the checkpoint's last fully faded-in level.
    The checkpoint is read with ``weights_only=True`` (TextureGAN's hyper-parameters are plain values), so a crafted
    file cannot run code. Raises :class:`CheckpointFileError` for a file that is not such a checkpoint.
    """
    ckpt = read_checkpoint(ckpt_path)
    try:
        hp = ckpt["hyper_parameters"]
        generator = Generator(
            hp["resolution"], hp["latent_dim"], hp["fmap_base"], hp["fmap_max"], hp["fmap_min"], hp["use_pixelnorm"]
        )
        prefix = "G_ema." if ema else "G."
        state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        generator.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointFileError(
            f"{ckpt_path} is not a TextureGAN checkpoint of ganfit ({type(exc).__name__}: {first})"
        ) from None
    progress = dict(ckpt.get("ganfit", {}))
    if "level" in progress:  # mid-fade: the last fully faded-in level, as export_generator
        level = int(progress["level"])
        generator.level = level if float(progress.get("alpha", 1.0)) >= 1.0 else max(level - 1, 0)
    return generator.requires_grad_(False).eval(), progress


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint of :class:`~ganfit.gan.module.TextureGAN`, read with ``weights_only=True``.

    Raises:
        CheckpointFileError: missing, unreadable, holding code, a ganfit ``generator.pt``, or not a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointFileError(f"checkpoint {path} does not exist (or is not a file)")
    try:
        ckpt = _safe_load(path)
    except (OSError, ValueError) as exc:
        raise CheckpointFileError(f"cannot read the checkpoint {path} ({exc})") from None
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        raise CheckpointFileError(
            f"{path} is a ganfit generator export (generator.pt: EMA weights only), not a training checkpoint; "
            "resume from a .ckpt of the run's checkpoints/ folder, or use it as texture.generator= in fit.py"
        )
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or not ({"hyper_parameters", "loops"} & set(ckpt)):
        raise CheckpointFileError(f"{path} is not a Lightning checkpoint (no state_dict and hyper_parameters / loops)")
    return ckpt


@dataclass
class ExportArgs:
    """The keys of ``ganfit gan-export`` (= ``python -m ganfit.gan export``)."""

    ckpt: Path = field(
        default=MISSING, metadata={"help": "Lightning checkpoint (.ckpt) of ganfit.gan.module.TextureGAN"}
    )
    out: Path = field(default=MISSING, metadata={"help": "output generator.pt"})
    half: bool = field(default=False, metadata={"help": "store the weights as float16 (half the size)"})


EXPORT_DOC = "Export the EMA generator of a TextureGAN checkpoint as a plain generator.pt."


def export_command(args: ExportArgs) -> int:
    """``ganfit gan-export ckpt=CKPT out=OUT [half=true]``: write ``generator.pt`` (EMA weights) from a checkpoint.
    Returns 0; raises :class:`CheckpointFileError` / ``OSError`` for the caller's exit-code wrapper."""
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
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """:func:`export_command` with ganfit's exit codes (0 written, 2 a bad checkpoint or output path, 130 Ctrl-C)."""
    return run_command(
        lambda: export_command(parse_args(ExportArgs, argv, prog="ganfit gan-export", doc=EXPORT_DOC)),
        (CheckpointFileError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
