"""``python -m ganfit.data_build.contact_sheet DIR [out=PNG] [columns=N] [size=S] [masks=true]``: tile a dataset's
textures (``DIR/textures/*.png``, or the PNGs in ``DIR`` itself) into one labelled PNG (default
``DIR/contact_sheet.png``). With ``masks=true`` each texture is shown beside its confidence mask."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or "=" in args[0]:
        print(__doc__)
        return 2
    root = Path(args[0])
    options = dict(arg.split("=", 1) for arg in args[1:])
    unknown = set(options) - {"out", "columns", "size", "masks"}
    if unknown:
        raise SystemExit(f"unknown option(s) {sorted(unknown)}; use out=, columns=, size=, masks=")
    out = Path(options.get("out", root / "contact_sheet.png"))
    sheet = contact_sheet(
        texture_files(root),
        columns=int(options.get("columns", 10)),
        size=int(options.get("size", 128)),
        masks=options.get("masks", "false").lower() in ("1", "true", "yes"),
    )
    Image.fromarray(sheet).save(out)
    print(f"contact sheet of {len(texture_files(root))} textures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
