"""``ganfit reconstruction-sheet before=FITS after=FITS out=sheet.jpg [names=[...]] [count=8] [tile=128]``
(= ``python -m ganfit.tools.reconstruction_sheet ...``): one JPEG comparing two fit jobs' reconstructions of the same
photos, one row per photo: the photo, then for ``before`` and for ``after`` the render over the photo, the render
alone on black and the texture (``texture.png``). Each tile is cut around the face (the union of both renders'
opaque regions, with a margin), so the pictures stay small enough to commit (``docs/img``).

``before`` and ``after`` are ``out/`` folders of ``fit.py`` (or ``eval.photos``' ``fits/``) holding ``<name>/``
folders with ``render.png``, ``texture.png`` and ``metrics.json``; the photo is read from the fit's recorded source.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ganfit.args import parse_args
from ganfit.atomic import atomic_save
from ganfit.exit_codes import UsageError, run_command
from ganfit.image_io import read_image
from ganfit.metrics.appearance import face_on_black

COLUMNS = ("photo", "overlay", "render alone", "texture")
MARGIN = 0.15  # the face crop's margin around the opaque region, as a fraction of its side


@dataclass
class SheetArgs:
    """The keys of ``ganfit reconstruction-sheet``."""

    before: str = field(default="", metadata={"help": "fit output folder of the 'before' reconstructions (required)"})
    after: str = field(default="", metadata={"help": "fit output folder of the 'after' reconstructions (required)"})
    out: str = field(default="reconstructions.jpg", metadata={"help": "the JPEG to write"})
    names: list[str] = field(default_factory=list, metadata={"help": "fit folder names (default: common ones)"})
    count: int = field(default=8, metadata={"help": "rows when names is empty: the first common names, sorted"})
    tile: int = field(default=128, metadata={"help": "side of each tile, pixels"})
    quality: int = field(default=82, metadata={"help": "JPEG quality"})
    before_label: str = field(default="before", metadata={"help": "caption of the before columns"})
    after_label: str = field(default="after", metadata={"help": "caption of the after columns"})


def _fits(folder: Path) -> set[str]:
    return {p.parent.name for p in folder.glob("*/render.png") if (p.parent / "texture.png").is_file()}


def _photo(fit: Path, size: tuple[int, int]) -> np.ndarray:
    """The fit's source photo, resized to the render's (width, height)."""
    source = json.loads((fit / "metrics.json").read_text()).get("source")
    if not source or not Path(source).is_file():
        raise UsageError(f"{fit}: its source photo {source!r} is not readable")
    photo = read_image(source)
    if (photo.shape[1], photo.shape[0]) != size:
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BILINEAR))
    return photo


def _face_box(alphas: list[np.ndarray]) -> tuple[int, int, int, int]:
    """A square (left, top, right, bottom) around the union of the opaque regions, with ``MARGIN``."""
    mask = np.any([a > 127 for a in alphas], axis=0)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    height, width = mask.shape
    if rows.size == 0:
        return 0, 0, width, height
    centre_y, centre_x = (rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2
    half = max(rows[-1] - rows[0], cols[-1] - cols[0]) * (0.5 + MARGIN)
    return int(centre_x - half), int(centre_y - half), int(centre_x + half), int(centre_y + half)


def _tile(image: np.ndarray, box: tuple[int, int, int, int] | None, side: int) -> Image.Image:
    picture = Image.fromarray(image)
    if box is not None:
        picture = picture.crop(box)  # PIL pads outside the image with black
    return picture.resize((side, side), Image.Resampling.LANCZOS)


def row(name: str, before: Path, after: Path, side: int) -> list[Image.Image]:
    """The tiles of one photo: photo, then overlay / render alone / texture of ``before`` and of ``after``."""
    renders = [np.asarray(Image.open(root / name / "render.png").convert("RGBA")) for root in (before, after)]
    size = (renders[1].shape[1], renders[1].shape[0])
    renders = [r if (r.shape[1], r.shape[0]) == size else np.asarray(Image.fromarray(r).resize(size)) for r in renders]
    photo = _photo(after / name, size)
    box = _face_box([r[..., 3] for r in renders])
    tiles = [_tile(photo, box, side)]
    for root, render in zip((before, after), renders, strict=True):
        alpha = render[..., 3:4].astype(np.float32) / 255.0
        overlay = (render[..., :3] * alpha + photo * (1 - alpha) + 0.5).astype(np.uint8)
        texture = np.asarray(Image.open(root / name / "texture.png").convert("RGB"))
        tiles += [_tile(overlay, box, side), _tile(face_on_black(render), box, side), _tile(texture, None, side)]
    return tiles


def sheet(rows: list[list[Image.Image]], side: int, labels: tuple[str, str]) -> Image.Image:
    """The grid with a caption strip on top."""
    captions = [COLUMNS[0]] + [f"{label}: {column}" for label in labels for column in COLUMNS[1:]]
    strip = 18
    canvas = Image.new("RGB", (side * len(captions), strip + side * len(rows)), "white")
    draw = ImageDraw.Draw(canvas)
    for index, caption in enumerate(captions):
        draw.text((index * side + 4, 3), caption, fill="black")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            canvas.paste(tile, (c * side, strip + r * side))
    return canvas


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 written, 2 bad usage)."""
    return run_command(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = parse_args(SheetArgs, argv, prog="ganfit reconstruction-sheet", doc=__doc__.split("\n\n")[0])
    if not args.before or not args.after:
        raise UsageError("before= and after= are required (two fit output folders)")
    before, after = Path(args.before), Path(args.after)
    common = sorted(_fits(before) & _fits(after))
    names = list(args.names) or common[: args.count]
    missing = [name for name in names if name not in common]
    if missing or not names:
        raise UsageError(f"no fit with render.png and texture.png in both folders for: {missing or 'any photo'}")
    rows = [row(name, before, after, args.tile) for name in names]
    picture = sheet(rows, args.tile, (args.before_label, args.after_label))
    atomic_save(args.out, lambda handle: picture.save(handle, format="JPEG", quality=args.quality, optimize=True))
    print(f"wrote {args.out} ({len(rows)} photos, {Path(args.out).stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
