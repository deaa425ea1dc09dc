"""W&B media of a finished fit job: per photo the compare image and the textured mesh, and one table of metrics.

``log_fit_media(run, out_dir)`` reads ``out_dir/summary.json`` and the ``out_dir/<name>/`` folders (nothing of the
fitting code); ``run`` is a ``wandb`` run (online or offline, as ``ganfit.jobs.wandb_log.log_fit_run`` opens it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TABLE_METRICS = (
    "identity_cosine",
    "identity_cosine_before_stage2",
    "landmark_error_iod",
    "landmark_error_px",
    "pixel_l1",
    "seconds",
    "stage2_steps",
)
TABLE_KEY = "fit/photos"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def log_fit_media(run: Any, out_dir: str | Path, max_photos: int = 100) -> dict[str, int]:
    """Log the fit job in ``out_dir`` to ``run``; returns counts ``{"images", "meshes", "rows"}``.

    Per fitted photo (at most ``max_photos``, in summary order): ``fit/compare/<name>`` (``wandb.Image`` of
    ``compare.png``: photo | overlay | render | texture | landmarks) and ``fit/mesh/<name>`` (``wandb.Object3D`` of
    ``mesh.glb``, the textured mesh in mm). One ``wandb.Table`` ``fit/photos`` holds a row per photo (failed ones
    with their reason): name, status, reason, the main metrics, and the compare image.
    """
    import wandb

    out = Path(out_dir)
    summary = json.loads((out / "summary.json").read_text())
    columns = ["name", "status", "reason", *TABLE_METRICS, "compare"]
    table = wandb.Table(columns=columns)
    media: dict[str, Any] = {}
    counts = {"images": 0, "meshes": 0, "rows": 0}
    for photo in summary.get("photos", []):
        name, status = str(photo.get("name")), str(photo.get("status"))
        folder = out / name
        metrics = dict(photo.get("metrics") or {})
        compare_image = None
        fitted = status in ("fitted", "skipped") and folder.is_dir()
        if fitted and counts["meshes"] < max_photos:
            caption = f"{name}: identity cosine {metrics.get('identity_cosine', float('nan')):.3f}"
            if (folder / "compare.png").is_file():
                media[f"fit/compare/{name}"] = wandb.Image(str(folder / "compare.png"), caption=caption)
                # the table gets its own Image: one object logged under two keys is stored under only one of them
                compare_image = wandb.Image(str(folder / "compare.png"), caption=caption)
                counts["images"] += 1
            if (folder / "mesh.glb").is_file():
                media[f"fit/mesh/{name}"] = wandb.Object3D(str(folder / "mesh.glb"), caption=name)
                counts["meshes"] += 1
        row = [name, status, str(photo.get("reason") or "")]
        row += [_number(metrics.get(key)) for key in TABLE_METRICS]
        row.append(compare_image)
        table.add_data(*row)
        counts["rows"] += 1
    media[TABLE_KEY] = table
    run.log(media)
    logger.info("logged %(images)d images, %(meshes)d meshes and a %(rows)d-row table to W&B", counts)
    return counts
