"""``ganfit contact-sheet root=DIR [out=PNG] [columns=N] [size=S] [masks=true]`` (= ``python -m
ganfit.data_build.contact_sheet ...``): tile a dataset's textures (``DIR/textures/*.png``, or the PNGs in ``DIR``
itself) into one labelled PNG (default ``DIR/contact_sheet.png``). With ``masks=true`` each texture is shown beside
its confidence mask."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import MISSING
from PIL import Image, ImageDraw

from ganfit.args import parse_args
from ganfit.exit_codes import run_command


def texture_files(root: Path) -> list[Path]:
    """The texture PNGs of a dataset folder (``root/textures``) or of a plain folder, sorted."""
    folder = root / "textures" if (root / "textures").is_dir() else root
    files = sorted(p for p in folder.glob("*.png") if p.name != "contact_sheet.png")
    if not files:
        raise FileNotFoundError(f"no texture PNGs in {folder} (expected a data_build output folder or a PNG folder)")
    return files


def contact_sheet(files: list[Path], columns: int = 10, size: int = 128, masks: bool = False) -> np.ndarray:
    """uint8 [H, W, 3] grid of ``files`` resized to ``size`` (with their ``../masks/<name>`` beside them when
    ``masks``), each labelled with its file stem."""
    tiles = []
    for path in files:
        image = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BOX)
        if masks:
            mask_path = path.parent.parent / "masks" / path.name
            mask = (
                Image.open(mask_path).convert("RGB").resize((size, size), Image.Resampling.BOX)
                if mask_path.is_file()
                else Image.new("RGB", (size, size))
            )
            both = Image.new("RGB", (2 * size, size))
            both.paste(image, (0, 0))
            both.paste(mask, (size, 0))
            image = both
        ImageDraw.Draw(image).text((3, 2), path.stem, fill=(255, 255, 0))
        tiles.append(np.asarray(image))
    columns = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * th, columns * tw, 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        sheet[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = tile
    return sheet


@dataclass
class ContactSheetArgs:
    """The keys of ``ganfit contact-sheet``."""

    root: Path = field(default=MISSING, metadata={"help": "a data_build output folder, or a folder of PNGs"})
    out: Path | None = field(default=None, metadata={"help": "the PNG to write (default: ROOT/contact_sheet.png)"})
    columns: int = field(default=10, metadata={"help": "tiles per row"})
    size: int = field(default=128, metadata={"help": "tile size in pixels"})
    masks: bool = field(default=False, metadata={"help": "show each texture beside its confidence mask"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None) -> int:
    args = parse_args(ContactSheetArgs, argv, prog="ganfit contact-sheet", doc=__doc__.split("\n\n")[0])
    out = args.out or args.root / "contact_sheet.png"
    files = texture_files(args.root)
    Image.fromarray(contact_sheet(files, columns=args.columns, size=args.size, masks=args.masks)).save(out)
    print(f"contact sheet of {len(files)} textures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
