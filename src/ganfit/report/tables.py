"""Static HTML pages for evaluation tables (worst cases first) and dataset contact sheets."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ganfit.report.html import esc, fmt, href, page, write_text_atomic

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def _sort_rows(rows: Sequence[Mapping[str, Any]], sort_by: str | None, higher_is_worse: bool) -> list[Mapping]:
    """Rows without a number under ``sort_by`` (failures) first, then the numbers from worst to best."""
    if not sort_by:
        return list(rows)

    def key(row: Mapping[str, Any]) -> tuple[int, float]:
        value = _number(row.get(sort_by))
        if value is None:
            return (0, 0.0)
        return (1, -value if higher_is_worse else value)

    return sorted(rows, key=key)


def write_table_report(
    out_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    title: str,
    *,
    sort_by: str | None = None,
    higher_is_worse: bool = True,
    columns: Sequence[str] | None = None,
    image_key: str = "image",
    link_key: str = "link",
    filename: str = "index.html",
    subtitle: str = "",
) -> Path:
    """Write ``out_dir/filename``: a results table of ``rows`` (one dict per case), worst first; returns its path.

    ``sort_by`` names the column that ranks the cases (``higher_is_worse`` says which end is worst, e.g. True for
    an identity distance, False for a cosine); rows without a finite number there (failed cases) come first.
    ``columns`` fixes the shown columns (default: every key of every row in first-seen order, minus ``image_key``
    and ``link_key``). A row's ``image_key`` value is a path (absolute or relative to ``out_dir``) shown as a
    thumbnail; its ``link_key`` value a path the row's first cell links to. A row whose ``status`` is neither
    ``ok`` nor ``fitted`` (when present) is marked as failed.
    """
    out = Path(out_dir)
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                if key not in (image_key, link_key):
                    seen.setdefault(key, None)
        columns = list(seen)
    has_images = any(row.get(image_key) for row in rows)
    header = "".join(f"<th>{esc(c)}</th>" for c in columns)
    if has_images:
        header = "<th></th>" + header
    lines = [f'<table class="results"><thead><tr><th>#</th>{header}</tr></thead><tbody>']
    for rank, row in enumerate(_sort_rows(rows, sort_by, higher_is_worse), start=1):
        status = str(row.get("status", "ok"))
        css = "" if status in ("ok", "fitted") else ' class="failed"'
        cells = []
        if has_images:
            image = row.get(image_key)
            cell = ""
            if image:
                path = Path(image) if Path(image).is_absolute() else out / Path(image)
                cell = f'<a href="{href(path, out)}"><img src="{href(path, out)}" alt="" loading="lazy"></a>'
            cells.append(f"<td>{cell}</td>")
        for index, column in enumerate(columns):
            value = row.get(column, "")
            text = fmt(value)
            if index == 0 and row.get(link_key):
                link = Path(row[link_key])
                text = f'<a href="{href(link if link.is_absolute() else out / link, out)}">{text}</a>'
            css_cell = ' class="num"' if _number(value) is not None else ""
            cells.append(f"<td{css_cell}>{text}</td>")
        lines.append(f"<tr{css}><td>{rank}</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    if sort_by:
        order = "highest" if higher_is_worse else "lowest"
        subtitle = (subtitle + " &middot; " if subtitle else "") + f"sorted by {esc(sort_by)}, {order} (worst) first"
    path = write_text_atomic(out / filename, page(title, "\n".join(lines), subtitle=subtitle))
    logger.info("wrote the table %s (%d rows)", path, len(rows))
    return path


def write_contact_sheet(
    out_dir: str | Path,
    images: Sequence[str | Path | tuple[str, str | Path]],
    title: str,
    *,
    filename: str = "contact_sheet.html",
    tile: int = 160,
    subtitle: str = "",
) -> Path:
    """Write ``out_dir/filename``: a grid of ``images`` (paths, or ``(caption, path)`` pairs; paths absolute or
    relative to ``out_dir``), each captioned (default caption: the file stem) and linked to the full image; ``tile``
    is the minimum tile width in CSS pixels. Returns the page's path."""
    out = Path(out_dir)
    figures = []
    for item in images:
        caption, image = item if isinstance(item, tuple) else (Path(item).stem, item)
        path = Path(image) if Path(image).is_absolute() else out / Path(image)
        url = href(path, out)
        figures.append(
            f'<figure><a href="{url}"><img src="{url}" alt="{esc(caption)}" loading="lazy"></a>'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    body = f'<div class="sheet" style="--tile: {int(tile)}px">{"".join(figures)}</div>'
    subtitle = (subtitle + " &middot; " if subtitle else "") + f"{len(figures)} images"
    path = write_text_atomic(out / filename, page(title, body, subtitle=subtitle))
    logger.info("wrote the contact sheet %s (%d images)", path, len(figures))
    return path


def image_files(folder: str | Path) -> list[Path]:
    """The images (PNG/JPEG/WebP) directly inside ``folder``, sorted — the usual input of a contact sheet."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
