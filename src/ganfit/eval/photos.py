"""Real-photo evaluation: ``python -m ganfit.eval.photos image=DIR out=DIR [fitting=fast] [gallery=DIR]``.

Fits the photos with the fitting job (``ganfit.jobs.fit_job.run_fit_job``: batching, skip/resume, summary) into
``out/fits/`` and measures, per photo and overall:

* ``identity_distance``: the judge network's distance between its descriptors of the photo and of the rendering
  composited over the photo, both aligned by the photo's detected landmarks; ``identity_distance_render_alone``:
  the same with the rendering alone on black (no photo pixels: no hair, clothes or background). The judge
  (``judge.name``, default ``faceres``) should never be a network of the loss; its distance (dlib: Euclidean,
  the others: cosine) and same-person threshold are ``ganfit.metrics.identity.JUDGE_SPECS``'s;
* ``landmark_error_px`` / ``landmark_nme``: projected model landmarks vs the detected ones (NME: / inter-ocular,
  outer eye corners);
* ``photometric_error``: mean L1 (RGB, [0, 1]) of rendering vs photo inside the rendered face (alpha > 0.5);
  ``masked_l1`` and ``sharpness_ratio`` (variance of the Laplacian, render / photo) inside the render's opaque
  region (``ganfit.metrics.appearance``), at the photo's resolution (long side capped as render.png);
* ``seconds``: fitting time per photo (batched).

With a ``gallery`` (or ``frl_holdout=true`` / ``frl_all=true``), **rank-1 identification**: each fit's render alone
is matched against the gallery photos of all people (nearest descriptor under the judge's distance); the
photo-to-photo rate is the ceiling, 1/people is chance.

With ``shape_consistency=true`` the gallery photos are fitted too (into the same ``out/fits/``), and the neutral
shapes of probe and gallery fits are compared (``ganfit.metrics.shape_consistency``): same- vs different-person
median distance (similarity-aligned RMS over the face region, mm), their ratio, and shape-only rank-1. No network
judges this: it is a real-photo signal that no loss of the fit sees.
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
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import nn

from ganfit.args import compose_command
from ganfit.assets import DATA_DIR
from ganfit.atomic import atomic_save, atomic_write_json, atomic_write_text
from ganfit.config.compose import ConfigUsageError
from ganfit.exit_codes import UsageError, run_command
from ganfit.gan.generator_file import GeneratorFileError
from ganfit.identity import load_identity_network
from ganfit.identity.api import embed_image, embed_photo
from ganfit.jobs.fit_job import Summary, fit_job_config, run_fit_job
from ganfit.jobs.inputs import InputSpecError, collect_inputs, load_photo
from ganfit.metrics.appearance import appearance_metrics, face_on_black
from ganfit.metrics.identity import JUDGE_SPECS, JudgeSpec, comparable, judge_distance
from ganfit.metrics.scores import face_region, landmark_error, masked_photometric_error, rank1
from ganfit.metrics.shape_consistency import shape_consistency, shape_distances
from ganfit.report import write_table_report

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too

PHOTO_METRICS = (
    "identity_distance",
    "identity_distance_render_alone",
    "landmark_error_px",
    "landmark_nme",
    "photometric_error",
    "masked_l1",
    "sharpness_ratio",
    "seconds",
)
"""Per-photo measurements summarised by median and mean."""
FACE_REGION_MM = 95.0
"""Shape consistency compares the mean-face vertices within this distance of the nose tip (as eval.synthetic)."""


def frl_lists(out: Path, holdout_file: Path | None) -> tuple[Path, Path]:
    """List files of FRL-London people: ``probes.txt`` (neutral, ``NNN_03.jpg``) and ``gallery.txt`` (smiling,
    ``NNN_08.jpg``), for the ids held out in ``holdout_file``, or for every person with both photos when None."""
    photos = os.environ.get("GANFIT_PHOTOS")
    if not photos:
        raise FileNotFoundError("frl_holdout=true / frl_all=true need GANFIT_PHOTOS (the folder holding frl-london/)")
    root = Path(photos) / "frl-london"
    if holdout_file is not None:
        ids = json.loads(holdout_file.read_text())["holdout_ids"]
    else:
        ids = sorted(p.name.split("_")[0] for p in (root / "smiling_front").glob("*_08.jpg"))
        ids = [i for i in ids if (root / "neutral_front" / f"{i}_03.jpg").is_file()]
        if not ids:
            raise FileNotFoundError(
                f"no FRL-London photo pairs (neutral_front/NNN_03.jpg + smiling_front/NNN_08.jpg) in {root}"
            )
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


def measure_fit(folder: Path, source: str, judge: nn.Module, spec: JudgeSpec) -> dict[str, Any]:
    """Metrics of one fitted photo (its ``out/fits/<name>/`` folder) and its descriptors, at the photo's resolution
    (the long side capped as ``render.png`` is)."""
    photo = load_photo(source)
    render = np.asarray(Image.open(folder / "render.png").convert("RGBA"))
    marks = json.loads((folder / "landmarks.json").read_text())
    detected, projected = np.asarray(marks["detected"], np.float32), np.asarray(marks["projected"], np.float32)
    k = render.shape[1] / photo.shape[1]
    if render.shape[:2] != photo.shape[:2]:
        photo = np.asarray(Image.fromarray(photo).resize((render.shape[1], render.shape[0]), Image.BILINEAR))
    alpha = render[..., 3:4].astype(np.float32) / 255.0
    overlay = (render[..., :3] * alpha + photo * (1 - alpha) + 0.5).astype(np.uint8)
    alone = face_on_black(render)
    px, nme = landmark_error(projected[None], detected[None])
    photo_descriptor = embed_image(photo, detected * k, judge).descriptor
    overlay_descriptor = embed_image(overlay, detected * k, judge).descriptor
    alone_descriptor = embed_image(alone, detected * k, judge).descriptor
    metrics = json.loads((folder / "metrics.json").read_text())
    appearance = appearance_metrics(photo, render)
    return {
        "identity_distance": judge_distance(photo_descriptor, overlay_descriptor, spec.metric),
        "identity_distance_render_alone": judge_distance(photo_descriptor, alone_descriptor, spec.metric),
        "landmark_error_px": float(px[0]),
        "landmark_nme": float(nme[0]),
        "photometric_error": masked_photometric_error(render[..., :3], photo, alpha[..., 0] > 0.5),
        "masked_l1": appearance["masked_l1"],
        "sharpness_ratio": appearance["sharpness_ratio"],
        "seconds": float(metrics.get("seconds", float("nan"))),
        "detail": bool(metrics.get("appearance", {}).get("detail", False)),
        "descriptors": {"photo": photo_descriptor, "overlay": overlay_descriptor, "render_alone": alone_descriptor},
    }


def judge_of(cfg: DictConfig) -> tuple[str, nn.Module, JudgeSpec]:
    """The metric's judge network, with its distance and threshold (``judge.threshold`` overrides the recorded one)."""
    name = str(cfg.judge.name)
    options = {key: cfg.judge[key] for key in ("onnx_path", "models_dir") if cfg.judge.get(key)}
    network = load_identity_network(name, **options)
    recorded = JUDGE_SPECS.get(name, JudgeSpec("euclidean", 0.6, "dlib-style default"))
    threshold = cfg.judge.get("threshold")
    spec = recorded if threshold is None else JudgeSpec(recorded.metric, float(threshold), "judge.threshold")
    return name, network, spec


def run(cfg: DictConfig) -> dict[str, Any]:
    """Fit, measure, rank; writes ``out/results.json``, ``out/table.md``, ``out/index.html``, ``out/plots.png``.

    Raises:
        KeyboardInterrupt: Ctrl-C stopped the fits (``out/fits/summary.json`` lists the finished ones).
    """
    if int(cfg.get("torch_threads", 0)) > 0:
        torch.set_num_threads(int(cfg.torch_threads))
    out = Path(str(cfg.out))
    image, gallery = cfg.image, cfg.gallery
    if cfg.frl_holdout and cfg.frl_all:
        raise UsageError("frl_holdout=true and frl_all=true: choose one set of FRL-London people")
    if cfg.frl_holdout:
        holdout = Path(str(cfg.holdout_file))
        if not holdout.is_absolute():
            holdout = DATA_DIR / holdout
        image, gallery = frl_lists(out, holdout)
    elif cfg.frl_all:
        image, gallery = frl_lists(out, None)
    if image is None:
        raise UsageError(
            "image= is required: give image=DIR (a folder, glob or list file of photos), frl_holdout=true or "
            "frl_all=true"
        )
    if cfg.shape_consistency and gallery is None:
        raise UsageError(
            "shape_consistency=true compares probe and gallery fits: give gallery=, frl_holdout or frl_all"
        )
    fits = out / "fits"
    summary = _fit(cfg, image, fits)
    gallery_summary = _fit(cfg, gallery, fits) if cfg.shape_consistency else None
    judge_name, judge, spec = judge_of(cfg)
    loss_networks = sorted(str(name) for name, node in (cfg.get("identity") or {}).items() if node)
    rows: dict[str, dict[str, Any]] = {}
    for outcome in summary.outcomes:
        if outcome.status not in ("fitted", "skipped"):
            rows[outcome.name] = {"status": outcome.status, "reason": outcome.reason}
            continue
        try:
            rows[outcome.name] = {"status": "ok", **measure_fit(fits / outcome.name, outcome.source, judge, spec)}
        except Exception as error:  # a photo whose fit cannot be measured is reported, not fatal
            logger.exception("could not measure %s", outcome.name)
            rows[outcome.name] = {"status": "unmeasured", "reason": f"{type(error).__name__}: {error}"}
    measured = {name: row for name, row in rows.items() if row["status"] == "ok"}
    overall: dict[str, Any] = {}
    for key in PHOTO_METRICS:
        values = [r[key] for r in measured.values() if np.isfinite(r[key])]
        overall[f"median_{key}"] = float(np.median(values)) if values else float("nan")
        overall[f"mean_{key}"] = float(np.mean(values)) if values else float("nan")
    for kind, key in (("overlay", "identity_distance"), ("render_alone", "identity_distance_render_alone")):
        under = [r[key] < spec.threshold for r in measured.values()]
        overall[f"fraction_under_threshold_{kind}"] = float(np.mean(under)) if under else float("nan")
    overall["photos"], overall["measured"] = len(rows), len(measured)
    overall["judge"] = judge_name
    overall["judge_metric"], overall["judge_threshold"], overall["judge_threshold_source"] = (
        spec.metric,
        spec.threshold,
        spec.source,
    )
    overall["loss_networks"] = loss_networks
    overall["judge_is_loss_network"] = judge_name in loss_networks
    overall["detail"] = all(r["detail"] for r in measured.values()) if measured else None
    identification = None
    if gallery is not None and measured:
        gallery_paths = collect_inputs(str(gallery)).sources
        gallery_desc, gallery_ids = [], []
        for path in gallery_paths:
            gallery_desc.append(embed_photo(path, judge, backend=str(cfg.landmarks.backend)).descriptor)
            gallery_ids.append(person(Path(path).stem, str(cfg.identity_pattern)))
        probe_ids = [person(name, str(cfg.identity_pattern)) for name in measured]
        identification = {"chance": 1.0 / max(1, len(set(gallery_ids))), "people": len(set(gallery_ids))}
        gallery_matrix = comparable(np.stack(gallery_desc), spec.metric)
        for kind in ("render_alone", "overlay", "photo"):
            probes = comparable(np.stack([row["descriptors"][kind] for row in measured.values()]), spec.metric)
            rate, matches = rank1(probes, gallery_matrix, probe_ids, gallery_ids)
            identification[f"rank1_{kind}"] = rate
            identification[f"matches_{kind}"] = matches
    consistency = None
    if gallery_summary is not None:
        consistency = fitted_shape_consistency(cfg, fits, summary, gallery_summary)
    payload = {
        "overall": overall,
        "rank1": identification,
        "shape_consistency": consistency,
        "photos": {name: {k: v for k, v in row.items() if k != "descriptors"} for name, row in rows.items()},
        "fitting": OmegaConf.to_container(cfg.fitting, resolve=True),
        "texture": str(cfg.texture.mode),
    }
    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "table.md", markdown(payload))
    table = [{"photo": name, "image": f"fits/{name}/compare.png", **row} for name, row in payload["photos"].items()]
    write_table_report(out, table, "eval.photos", sort_by="identity_distance_render_alone")
    plot(measured, out / "plots.png", spec)
    return payload


def _fit(cfg: DictConfig, image: Any, fits: Path) -> Summary:
    """The fit job of ``image`` into ``fits`` (finished fits are skipped); Ctrl-C: raises KeyboardInterrupt."""
    summary = run_fit_job(fit_job_config(cfg, image=str(image), out=str(fits), report=False))
    if summary.interrupted:  # the fits so far are in fits/summary.json; measuring waits for a complete set
        raise KeyboardInterrupt(
            f"{summary.count('fitted')} photo(s) fitted, nothing measured; the fits so far are listed in "
            f"{fits / 'summary.json'}; rerun the same command to continue (finished fits are skipped)"
        )
    return summary


def fitted_shape_consistency(cfg: DictConfig, fits: Path, probes: Summary, gallery: Summary) -> dict[str, Any] | None:
    """Shape consistency (``ganfit.metrics.shape_consistency``) of the probe and gallery fits' neutral shapes
    ``fm(ps, 0)`` over the face region; None when a side has no fit."""
    face_model = instantiate(cfg.face_model)
    region = face_region(face_model.mean, face_model.landmark_ids, FACE_REGION_MM)

    def neutral(summary: Summary) -> tuple[torch.Tensor, list[str]]:
        done = [o for o in summary.outcomes if o.status in ("fitted", "skipped")]
        if not done:
            return torch.zeros(0, len(region), 3), []
        ps = torch.tensor([json.loads((fits / o.name / "params.json").read_text())["ps"] for o in done])
        with torch.no_grad():
            shapes = face_model(ps.float(), torch.zeros(len(done), face_model.num_expression))[:, region]
        return shapes, [person(Path(o.source).stem, str(cfg.identity_pattern)) for o in done]

    probe_shapes, probe_ids = neutral(probes)
    gallery_shapes, gallery_ids = neutral(gallery)
    if not probe_ids or not gallery_ids:
        return None
    result = shape_consistency(shape_distances(probe_shapes, gallery_shapes), probe_ids, gallery_ids)
    result["region"] = f"mean-face vertices within {FACE_REGION_MM:.0f} mm of the nose tip"
    return result


def markdown(payload: dict[str, Any]) -> str:
    """Per-photo and overall tables (markdown)."""
    o = payload["overall"]
    judge = f"judge {o['judge']} ({o['judge_metric']} distance, threshold {o['judge_threshold']:.3f})"
    lines = [
        f"Identity distances by the {judge}"
        + (": THE SAME NETWORK AS IN THE LOSS (an optimised quantity)" if o["judge_is_loss_network"] else "")
        + f"; loss networks: {', '.join(o['loss_networks']) or 'none'}; detail texture: {o['detail']}.",
        "",
        "| photo | identity dist (over photo) | identity dist (render alone) | landmark NME | masked L1 | "
        "sharpness ratio | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in payload["photos"].items():
        if row["status"] != "ok":
            lines.append(f"| {name} | {row['status']}: {row.get('reason', '')} | | | | | |")
            continue
        lines.append(
            f"| {name} | {row['identity_distance']:.3f} | {row['identity_distance_render_alone']:.3f} | "
            f"{row['landmark_nme']:.3f} | {row['masked_l1']:.3f} | {row['sharpness_ratio']:.2f} | "
            f"{row['seconds']:.1f} |"
        )
    lines += ["", f"Overall ({o['measured']} of {o['photos']} photos measured):", "", "| metric | median | mean |"]
    lines.append("|---|---|---|")
    for key in PHOTO_METRICS:
        lines.append(f"| {key} | {o['median_' + key]:.3f} | {o['mean_' + key]:.3f} |")
    lines.append(
        f"| fraction under the judge's threshold (over photo / render alone) | "
        f"{o['fraction_under_threshold_overlay']:.2f} | {o['fraction_under_threshold_render_alone']:.2f} |"
    )
    if payload.get("rank1"):
        r = payload["rank1"]
        lines += [
            "",
            f"Rank-1 identification against {r['people']} people's other photos (chance {r['chance']:.3f}): "
            f"render alone {r['rank1_render_alone']:.2f}, render over photo {r['rank1_overlay']:.2f}, "
            f"the photo itself (ceiling) {r['rank1_photo']:.2f}.",
        ]
    if payload.get("shape_consistency"):
        c = payload["shape_consistency"]
        lines += [
            "",
            f"Shape consistency ({c['probes']} probe fits against {c['people']} people's gallery fits; neutral shapes, "
            f"similarity-aligned RMS): same person {c['same_person_median_mm']:.2f} mm, different people "
            f"{c['different_person_median_mm']:.2f} mm (ratio {c['ratio']:.2f}); shape-only rank-1 {c['rank1']:.2f} "
            f"(chance and the mean face {c['chance']:.3f}).",
        ]
    return "\n".join(lines) + "\n"


def plot(measured: dict[str, dict[str, Any]], path: Path, spec: JudgeSpec) -> None:
    """Histograms of identity distance, landmark NME and masked L1."""
    if not measured:
        return
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    rows = list(measured.values())
    axes[0].hist([r["identity_distance"] for r in rows], bins=15, alpha=0.7, label="render over photo")
    axes[0].hist([r["identity_distance_render_alone"] for r in rows], bins=15, alpha=0.7, label="render alone")
    axes[0].axvline(spec.threshold, color="k", linestyle="--", label=f"threshold {spec.threshold:.3f}")
    axes[0].set_xlabel(f"identity distance photo <-> render ({spec.metric})")
    axes[0].legend(fontsize=8)
    axes[1].hist([r["landmark_nme"] for r in rows], bins=15)
    axes[1].set_xlabel("landmark NME (inter-ocular)")
    axes[2].hist([r["masked_l1"] for r in rows], bins=15)
    axes[2].set_xlabel("masked L1 (opaque region)")
    fig.tight_layout()
    atomic_save(path, lambda handle: fig.savefig(handle, dpi=90, format="png"))


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_command("eval_photos", argv, prog="ganfit eval-photos", doc=__doc__.split("\n\n")[0])
    payload = run(cfg)
    print(markdown(payload))
    print(f"results: {Path(str(cfg.out)) / 'results.json'}, plots: {Path(str(cfg.out)) / 'plots.png'}")
    return 0 if payload["overall"]["measured"] > 0 else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m ganfit.eval.photos key=value ...``. Exit codes: 0 some photos measured, 1 none, 2 bad usage
    (unknown key, bad value, missing image=/gallery=: one line), 130 Ctrl-C (while fitting: after ``fits/summary.json``
    lists the finished fits; no ``results.json``)."""
    return run_command(lambda: _main(argv), (ConfigUsageError, InputSpecError, GeneratorFileError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
