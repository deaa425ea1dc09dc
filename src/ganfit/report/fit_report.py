"""``out/index.html`` for a fit job: one card per photo from ``out/summary.json`` and the ``out/<name>/`` folders.

A fitted card shows the photo, the overlay, the render alone and every ``texture*.png`` of the folder, the main
metrics, links to all files, and an interactive 3D view of ``mesh.glb`` (orbit, zoom, light toggle); a failed card
shows the reason. The page and its ``index_files/`` folder (viewer bundle, photo thumbnails, one data script per
mesh) open from disk: nothing is fetched from the network, no server is needed.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from PIL import Image

from ganfit.report.html import esc, fmt, href, page, write_text_atomic
from ganfit.report.static import install_viewer, write_glb_script

logger = logging.getLogger(__name__)

FILES_FOLDER = "index_files"
MAIN_METRICS = (
    ("identity_cosine", "identity cosine (after stage 2)"),
    ("identity_cosine_before_stage2", "identity cosine (before stage 2)"),
    ("landmark_error_iod", "landmark error (inter-ocular)"),
    ("landmark_error_px", "landmark error (px)"),
    ("pixel_l1", "photometric L1"),
    ("texture", "texture"),
    ("stage2_steps", "stage-2 steps"),
    ("seconds", "seconds (optimisation)"),
)
SCORE_LABELS = {
    "identity_cosine": "identity cosine",
    "identity_cosine_before_stage2": "identity cosine before stage 2",
    "landmark_error_iod": "landmark error (IOD)",
    "seconds_per_photo": "s / photo",
    "score": "score",
}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "photo"


def _photo_thumbnail(folder: Path, target: Path, height: int = 384) -> bool:
    """Cut the photo panel (the first of ``compare.png``'s five, all ``height`` tall) into ``target`` (JPEG).

    The panel's width follows from the photo's size in ``params.json``; the source photo itself may be anywhere
    (or gone), the compare image is always in the folder. Returns False when the inputs are missing.
    """
    compare, params = folder / "compare.png", folder / "params.json"
    if not compare.is_file():
        return False
    try:
        width, tall = json.loads(params.read_text())["camera"]["image_size_wh"]
        panel = max(1, round(width * height / tall))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    with Image.open(compare) as image:
        if image.height != height or panel > image.width:
            return False
        image.convert("RGB").crop((0, 0, panel, height)).save(target, format="JPEG", quality=88)
    return True


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = [
        f'<tr><td>{esc(label)}</td><td class="value">{fmt(metrics[key])}</td></tr>'
        for key, label in MAIN_METRICS
        if key in metrics
    ]
    return f'<table class="metrics">{"".join(rows)}</table>' if rows else ""


def _figure(src: str, caption: str, link: str | None = None) -> str:
    image = f'<img src="{src}" alt="{esc(caption)}" loading="lazy">'
    if link:
        image = f'<a href="{link}">{image}</a>'
    return f"<figure>{image}<figcaption>{esc(caption)}</figcaption></figure>"


def _fitted_card(out: Path, photo: dict[str, Any], files: Path) -> str:
    name = str(photo["name"])
    folder = out / name
    slug = _slug(name)
    figures = []
    thumb = files / f"{slug}.photo.jpg"
    if _photo_thumbnail(folder, thumb):
        figures.append(_figure(href(thumb, out), "photo"))
    for file, caption in (("overlay.png", "overlay"), ("render.png", "render alone")):
        if (folder / file).is_file():
            figures.append(_figure(href(folder / file, out), caption, href(folder / file, out)))
    for texture in sorted(folder.glob("texture*.png")):
        caption = "UV texture" if texture.stem == "texture" else texture.stem.replace("_", " ")
        figures.append(_figure(href(texture, out), caption, href(texture, out)))

    viewer = ""
    if (folder / "mesh.glb").is_file():
        script = write_glb_script(folder / "mesh.glb", files / f"{slug}.glb.js", name)
        viewer = (
            f'<div class="ganfit-viewer" data-glb-script="{href(script, out)}" data-glb-id="{esc(name)}" '
            f'title="drag to turn, wheel to zoom, right-drag to pan"></div>'
        )
    metrics = dict(photo.get("metrics") or {})
    if not metrics and (folder / "metrics.json").is_file():
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except ValueError:
            metrics = {}
    links = " ".join(
        f'<a href="{href(path, out)}">{esc(path.name)}</a>'
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    )
    status = str(photo.get("status", "fitted"))
    badge = "fitted" if status == "fitted" else "earlier run"
    return (
        f'<section class="card fitted" id="{esc(slug)}">'
        f'<h2>{esc(name)}<span class="badge fitted">{esc(badge)}</span></h2>'
        f'<p class="source">{esc(photo.get("source", ""))}</p>'
        f'<div class="body">{viewer}<div class="details"><div class="thumbs">{"".join(figures)}</div>'
        f'{_metrics_table(metrics)}<div class="files">files: {links}</div></div></div></section>'
    )


def _failed_card(photo: dict[str, Any]) -> str:
    name = str(photo.get("name", "?"))
    return (
        f'<section class="card failed" id="{esc(_slug(name))}">'
        f'<h2>{esc(name)}<span class="badge failed">{esc(photo.get("status", "failed"))}</span></h2>'
        f'<p class="source">{esc(photo.get("source", ""))}</p>'
        f'<p class="reason">{esc(photo.get("reason") or "no reason recorded")}</p></section>'
    )


def write_fit_report(out_dir: str | Path, title: str = "ganfit fit report") -> Path:
    """Write ``out_dir/index.html`` (and ``out_dir/index_files/``) for the fit job whose ``summary.json`` is in
    ``out_dir``; returns the page's path.

    Photos appear in the summary's order; failed ones first would hide the results, so they keep their place and
    are marked. Raises ``FileNotFoundError`` when ``out_dir/summary.json`` is missing.
    """
    out = Path(out_dir)
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} is missing: write_fit_report reads a finished fit job's output")
    summary = json.loads(summary_path.read_text())
    files = out / FILES_FOLDER
    viewer = install_viewer(files)
    cards = []
    for photo in summary.get("photos", []):
        fitted = photo.get("status") in ("fitted", "skipped") and (out / str(photo.get("name"))).is_dir()
        cards.append(_fitted_card(out, photo, files) if fitted else _failed_card(photo))
    scores = summary.get("scores") or {}
    score_text = ", ".join(f"{SCORE_LABELS.get(k, k)} {fmt(v)}" for k, v in scores.items())
    subtitle = (
        f"fitted {summary.get('fitted', 0)}, skipped {summary.get('skipped', 0)}, failed {summary.get('failed', 0)}"
        + (f" &middot; means: {esc(score_text)}" if score_text else "")
        + " &middot; drag a face to turn it, wheel to zoom"
    )
    head = f'<script src="{href(viewer, out)}"></script>\n'
    body = "\n".join(cards) or "<p>No photos in this run.</p>"
    body += "\n<script>GanfitViewer.watch(document);</script>"
    path = write_text_atomic(out / "index.html", page(title, body, head=head, subtitle=subtitle))
    logger.info("wrote the report %s (%d photos)", path, len(cards))
    return path
