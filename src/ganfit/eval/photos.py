"""Real-photo evaluation: ``python -m ganfit.eval.photos image=DIR out=DIR [fitting=fast] [gallery=DIR]``.

Fits the photos with the fitting job (``ganfit.jobs.fit_job.run_fit_job``: batching, skip/resume, summary) into
``out/fits/`` and measures, per photo and overall:

* ``identity_distance``: Euclidean distance of the judge network's descriptors of the photo and of the rendering
  composited over the photo, both aligned by the photo's detected landmarks (dlib's same-person threshold: 0.6);
  ``identity_distance_face_only``: the same with the rendering over flat grey (no photo pixels at all);
* ``landmark_error_px`` / ``landmark_nme``: projected model landmarks vs the detected ones (NME: / inter-ocular);
* ``photometric_error``: mean L1 (RGB, [0, 1]) of rendering vs photo inside the rendered face;
* ``seconds``: fitting time per photo (batched).

With a ``gallery`` (or ``frl_holdout=true``), **rank-1 identification**: each fit's face-only rendering is matched
against the gallery photos of all people (nearest descriptor); the photo-to-photo rate is the ceiling, 1/people
is chance. The judge network is dlib's unless ``judge.name=arcface`` (with an ONNX file): when it is also the loss's
network, the report says so.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ganfit.assets import DATA_DIR
from ganfit.atomic import atomic_write_json, atomic_write_text
from ganfit.config.compose import ConfigUsageError, compose_config
from ganfit.exit_codes import run_command
from ganfit.gan.export import GeneratorFileError
from ganfit.identity import load_identity_network
from ganfit.identity.api import embed_image, embed_photo
from ganfit.jobs.fit_job import fit_job_config, run_fit_job
from ganfit.jobs.inputs import InputSpecError, collect_inputs, load_photo
from ganfit.metrics.scores import identity_distance, landmark_error, masked_photometric_error, rank1
from ganfit.report import write_table_report

logger = logging.getLogger(__name__)

PHOTO_METRICS = (
    "identity_distance",
    "identity_distance_face_only",
    "landmark_error_px",
    "landmark_nme",
    "photometric_error",
    "seconds",
)
"""Per-photo measurements summarised by median and mean."""
GREY = 128


def frl_holdout_lists(out: Path, holdout_file: Path) -> tuple[Path, Path]:
    """List files of the held-out FRL-London people: ``probes.txt`` (neutral) and ``gallery.txt`` (smiling)."""
    photos = os.environ.get("GANFIT_PHOTOS")
    if not photos:
        raise FileNotFoundError("frl_holdout=true needs GANFIT_PHOTOS (the folder holding frl-london/)")
    ids = json.loads(holdout_file.read_text())["holdout_ids"]
    root = Path(photos) / "frl-london"
    probes = [root / "neutral_front" / f"{i}_03.jpg" for i in ids]
    gallery = [root / "smiling_front" / f"{i}_08.jpg" for i in ids]
    missing = [str(p) for p in probes + gallery if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"held-out photos missing under {root}: {missing[:3]} ...")
    out.mkdir(parents=True, exist_ok=True)
    (out / "probes.txt").write_text("".join(f"{p}\n" for p in probes))
    (out / "gallery.txt").write_text("".join(f"{p}\n" for p in gallery))
    return out / "probes.txt", out / "gallery.txt"


def person(stem: str, pattern: str) -> str:
    """The identity of a photo from its file stem (the first match of ``pattern``, or the whole stem)."""
    match = re.search(pattern, stem)
    return match.group(0) if match else stem


def measure_fit(folder: Path, source: str, judge) -> dict[str, Any]:
    """Metrics of one fitted photo (its ``out/fits/<name>/`` folder) and its descriptors."""
    from PIL import Image

    photo = load_photo(source)
    render = np.asarray(Image.open(folder / "render.png").convert("RGBA"))
    marks = json.loads((folder / "landmarks.json").read_text())
    detected, projected = np.asarray(marks["detected"], np.float32), np.asarray(marks["projected"], np.float32)
    k = render.shape[1] / photo.shape[1]
    if render.shape[:2] != photo.shape[:2]:
        photo = np.asarray(Image.fromarray(photo).resize((render.shape[1], render.shape[0]), Image.BILINEAR))
    alpha = render[..., 3:4].astype(np.float32) / 255.0
    overlay = (render[..., :3] * alpha + photo * (1 - alpha) + 0.5).astype(np.uint8)
    face_only = (render[..., :3] * alpha + GREY * (1 - alpha) + 0.5).astype(np.uint8)
    px, nme = landmark_error(projected[None], detected[None])
    photo_descriptor = embed_image(photo, detected * k, judge).descriptor
    overlay_descriptor = embed_image(overlay, detected * k, judge).descriptor
    face_descriptor = embed_image(face_only, detected * k, judge).descriptor
    metrics = json.loads((folder / "metrics.json").read_text())
    return {
        "identity_distance": identity_distance(photo_descriptor, overlay_descriptor)[0],
        "identity_distance_face_only": identity_distance(photo_descriptor, face_descriptor)[0],
        "landmark_error_px": float(px[0]),
        "landmark_nme": float(nme[0]),
        "photometric_error": masked_photometric_error(render[..., :3], photo, alpha[..., 0] > 0.5),
        "seconds": float(metrics.get("seconds", float("nan"))),
        "descriptors": {"photo": photo_descriptor, "overlay": overlay_descriptor, "face_only": face_descriptor},
    }


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit, measure, rank; writes ``out/results.json``, ``out/table.md``, ``out/plots.png``."""
    if int(cfg.get("torch_threads", 0)) > 0:
        torch.set_num_threads(int(cfg.torch_threads))
    out = Path(str(cfg.out))
    image, gallery = cfg.image, cfg.gallery
    if cfg.frl_holdout:
        holdout = Path(str(cfg.holdout_file))
        if not holdout.is_absolute():
            holdout = DATA_DIR / holdout
        image, gallery = frl_holdout_lists(out, holdout)
    if image is None:
        raise ValueError("eval.photos needs image=DIR (or frl_holdout=true)")
    fits = out / "fits"
    summary = run_fit_job(fit_job_config(cfg, image=str(image), out=str(fits), report=False))
    judge = load_identity_network(
        str(cfg.judge.name), **({"onnx_path": cfg.judge.onnx_path} if cfg.judge.onnx_path else {})
    )
    loss_networks = sorted(str(name) for name, node in (cfg.get("identity") or {}).items() if node)
    rows: dict[str, dict[str, Any]] = {}
    for outcome in summary.outcomes:
        if outcome.status not in ("fitted", "skipped"):
            rows[outcome.name] = {"status": outcome.status, "reason": outcome.reason}
            continue
        try:
            rows[outcome.name] = {"status": "ok", **measure_fit(fits / outcome.name, outcome.source, judge)}
        except Exception as error:  # a photo whose fit cannot be measured is reported, not fatal
            logger.exception("could not measure %s", outcome.name)
            rows[outcome.name] = {"status": "unmeasured", "reason": f"{type(error).__name__}: {error}"}
    measured = {name: row for name, row in rows.items() if row["status"] == "ok"}
    keys = PHOTO_METRICS
    overall: dict[str, Any] = {
        f"median_{k}": float(np.median([r[k] for r in measured.values()])) if measured else float("nan") for k in keys
    }
    overall.update(
        {f"mean_{k}": float(np.mean([r[k] for r in measured.values()])) if measured else float("nan") for k in keys}
    )
    overall["fraction_under_0.6"] = (
        float(np.mean([r["identity_distance"] < 0.6 for r in measured.values()])) if measured else float("nan")
    )
    overall["fraction_face_only_under_0.6"] = (
        float(np.mean([r["identity_distance_face_only"] < 0.6 for r in measured.values()]))
        if measured
        else float("nan")
    )
    overall["photos"], overall["measured"] = len(rows), len(measured)
    overall["judge"] = str(cfg.judge.name)
    overall["loss_networks"] = loss_networks
    overall["judge_is_loss_network"] = str(cfg.judge.name) in loss_networks
    identification = None
    if gallery is not None and measured:
        gallery_paths = collect_inputs(str(gallery)).sources
        gallery_desc, gallery_ids = [], []
        for path in gallery_paths:
            gallery_desc.append(embed_photo(path, judge, backend=str(cfg.landmarks.backend)).descriptor)
            gallery_ids.append(person(Path(path).stem, str(cfg.identity_pattern)))
        probe_ids = [person(name, str(cfg.identity_pattern)) for name in measured]
        identification = {"chance": 1.0 / max(1, len(set(gallery_ids))), "people": len(set(gallery_ids))}
        for kind in ("face_only", "overlay", "photo"):
            probes = np.stack([row["descriptors"][kind] for row in measured.values()])
            rate, matches = rank1(probes, np.stack(gallery_desc), probe_ids, gallery_ids)
            identification[f"rank1_{kind}"] = rate
            identification[f"matches_{kind}"] = matches
    payload = {
        "overall": overall,
        "rank1": identification,
        "photos": {name: {k: v for k, v in row.items() if k != "descriptors"} for name, row in rows.items()},
        "fitting": OmegaConf.to_container(cfg.fitting, resolve=True),
        "texture": str(cfg.texture.mode),
    }
    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "table.md", markdown(payload))
    table = [{"photo": name, "image": f"fits/{name}/compare.png", **row} for name, row in payload["photos"].items()]
    write_table_report(out, table, "eval.photos", sort_by="identity_distance")
    plot(measured, out / "plots.png")
    return payload


def markdown(payload: dict[str, Any]) -> str:
    """Per-photo and overall tables (markdown)."""
    lines = [
        "| photo | identity dist (over photo) | identity dist (face only) | landmark err (px) | landmark NME | "
        "photometric L1 | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in payload["photos"].items():
        if row["status"] != "ok":
            lines.append(f"| {name} | {row['status']}: {row.get('reason', '')} | | | | | |")
            continue
        lines.append(
            f"| {name} | {row['identity_distance']:.3f} | {row['identity_distance_face_only']:.3f} | "
            f"{row['landmark_error_px']:.1f} | {row['landmark_nme']:.3f} | {row['photometric_error']:.3f} | "
            f"{row['seconds']:.1f} |"
        )
    o = payload["overall"]
    lines += [
        "",
        f"Overall ({o['measured']} of {o['photos']} photos measured; judge {o['judge']}"
        f"{', the same network as in the loss' if o['judge_is_loss_network'] else ''}):",
        "",
        "| metric | median | mean |",
        "|---|---|---|",
    ]
    for key in PHOTO_METRICS:
        lines.append(f"| {key} | {o['median_' + key]:.3f} | {o['mean_' + key]:.3f} |")
    lines.append(
        f"| identity distance < 0.6 (over photo / face only) | {o['fraction_under_0.6']:.2f} | "
        f"{o['fraction_face_only_under_0.6']:.2f} |"
    )
    if payload.get("rank1"):
        r = payload["rank1"]
        lines += [
            "",
            f"Rank-1 identification against {r['people']} people (chance {r['chance']:.2f}): "
            f"face-only render {r['rank1_face_only']:.2f}, render over photo {r['rank1_overlay']:.2f}, "
            f"the photo itself (ceiling) {r['rank1_photo']:.2f}.",
        ]
    return "\n".join(lines) + "\n"


def plot(measured: dict[str, dict[str, Any]], path: Path) -> None:
    """Histograms of identity distance and landmark NME."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not measured:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    rows = list(measured.values())
    axes[0].hist([r["identity_distance"] for r in rows], bins=15, alpha=0.7, label="render over photo")
    axes[0].hist([r["identity_distance_face_only"] for r in rows], bins=15, alpha=0.7, label="face only")
    axes[0].axvline(0.6, color="k", linestyle="--", label="dlib threshold 0.6")
    axes[0].set_xlabel("identity distance photo <-> render")
    axes[0].legend(fontsize=8)
    axes[1].hist([r["landmark_nme"] for r in rows], bins=15)
    axes[1].set_xlabel("landmark NME (inter-ocular)")
    axes[2].hist([r["photometric_error"] for r in rows], bins=15)
    axes[2].set_xlabel("masked photometric L1")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple)):
        return list(value)
    return str(value)


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_config("eval_photos", list(sys.argv[1:] if argv is None else argv))
    payload = run(cfg)
    print(markdown(payload))
    print(f"results: {Path(str(cfg.out)) / 'results.json'}, plots: {Path(str(cfg.out)) / 'plots.png'}")
    return 0 if payload["overall"]["measured"] > 0 else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m ganfit.eval.photos key=value ...``. Exit codes: 0 some photos measured, 1 none, 2 bad usage
    (unknown key, bad value, missing image=/gallery=: one line), 130 Ctrl-C."""
    return run_command(lambda: _main(argv), (ConfigUsageError, InputSpecError, GeneratorFileError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
