"""The dataset job: photos -> fitted (free texture) -> unwrapped UV albedo textures + confidence masks + metadata.

Reuses the fitting runner's pieces (``collect_inputs``, ``output_names``, ``load_photo``, ``build_fitter``,
``Outcome``/``Summary``) and its behaviour: photos batched through one optimisation, a progress bar, photos already
processed skipped unless ``overwrite``, one bad photo never stops the rest, a summary at the end, and the same job
sharded over CPU processes with Lightning Fabric.

Layout of ``out/``::

    textures/<stem>.png   completed UV albedo texture, RGB uint8, R x R (row 0 = v 0 = top)
    masks/<stem>.png      confidence that each texel was seen in the photo (before mirroring), uint8 L
    meta/<stem>.json      one record per fitted photo (kept or dropped, with reasons and fit metrics); written last
    metadata.jsonl        all records, one JSON per line (rebuilt at the end of every run)
    summary.json          the run's summary (kept / dropped / failed / skipped with reasons); failed photos
                          (unreadable, no face, crashed fit) have no meta record and are retried by a rerun

A photo whose fit is poor (a metric beyond ``Thresholds``) is *dropped*: its record says why and no texture is written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganfit.data_build.skin_mask import skin_mask
from ganfit.data_build.texture import PhotoUnwrapper, UnwrapConfig
from ganfit.fitting.fitter import FittingConfig, light_of
from ganfit.fitting.runner import (
    ASTRONAUT,
    JobOptions,
    Outcome,
    Summary,
    build_fitter,
    collect_inputs,
    load_photo,
    output_names,
    run_sharded,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """A fit beyond any of these is dropped from the dataset (``conf/data_build.yaml`` ``thresholds:``)."""

    max_landmark_error_iod: float = 0.08  # mean landmark error / inter-ocular distance after the fit
    min_identity_cosine: float = 0.0  # identity cosine photo vs render (skipped when no identity network)
    max_pixel_l1: float = 0.12  # mean L1 colour error inside the rendered face, [0, 1] units
    min_visible_fraction: float = 0.15  # fraction of the UV layout seen with confidence > 0.5 (skin-masked)

    def reasons(self, metrics: dict[str, Any]) -> list[str]:
        """Why ``metrics`` fail the thresholds (empty: keep)."""
        out = []
        lm = metrics.get("landmark_error_iod", float("nan"))
        if not np.isfinite(lm) or lm > self.max_landmark_error_iod:
            out.append(f"landmark_error_iod {lm:.3f} > {self.max_landmark_error_iod}")
        cos = metrics.get("identity_cosine")
        if cos is not None and cos < self.min_identity_cosine:
            out.append(f"identity_cosine {cos:.3f} < {self.min_identity_cosine}")
        pix = metrics.get("pixel_l1")
        if pix is not None and pix > self.max_pixel_l1:
            out.append(f"pixel_l1 {pix:.3f} > {self.max_pixel_l1}")
        vis = metrics.get("visible_fraction", 0.0)
        if vis < self.min_visible_fraction:
            out.append(f"visible_fraction {vis:.3f} < {self.min_visible_fraction}")
        return out


@dataclass
class BuildOptions:
    """Everything of a dataset job besides the fitting preset (picklable, for Fabric workers)."""

    job: JobOptions = field(default_factory=JobOptions)
    unwrap: UnwrapConfig = field(default_factory=UnwrapConfig)
    thresholds: Thresholds = field(default_factory=Thresholds)


def _atomic_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] in [0, 1] -> uint8 [H, W, C] (or [H, W] for C = 1)."""
    array = (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return array[..., 0] if array.shape[-1] == 1 else array


def is_done(out: Path, name: str) -> bool:
    """True when ``name`` was already processed (kept or dropped): its ``meta/<name>.json`` exists."""
    return (out / "meta" / f"{name}.json").is_file()


def process_shard(
    sources: list[str],
    names: list[str],
    options: BuildOptions,
    fitting: FittingConfig,
    position: int = 0,
) -> list[Outcome]:
    """Fit, unwrap and write ``sources`` (this process's shard) in batches of ``fitting.batch_size``.

    Outcome statuses: ``kept`` (texture written), ``dropped`` (fit beyond thresholds), ``failed`` (unreadable, no
    face, fit crashed), ``skipped`` (done by an earlier run).
    """
    from tqdm import tqdm

    from ganfit.fitting.photos import prepare_photo
    from ganfit.image_io import ImageInputError
    from ganfit.landmarks import NoFaceError, detect_face

    job = options.job
    out = Path(job.out)
    for sub in ("textures", "masks", "meta"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    pending = []
    for source, name in zip(sources, names, strict=True):
        if not job.overwrite and is_done(out, name):
            record = json.loads((out / "meta" / f"{name}.json").read_text())
            outcomes.append(Outcome(name, source, "skipped", f"already {record.get('status')}", 0.0, record))
        else:
            pending.append((source, name))
    if not pending:
        return outcomes
    torch.manual_seed(job.seed)
    fitter = build_fitter(job, fitting)
    unwrapper = PhotoUnwrapper(fitter.face_model, options.unwrap)
    bar = tqdm(total=len(pending), desc="building", unit="photo", disable=not job.progress, position=position)
    batch: list[tuple[Any, str, torch.Tensor | None]] = []

    def write(photo, source: str, index: int, result, textures, seconds: float) -> Outcome:
        metrics = dict(result.metrics[index])
        metrics["visible_fraction"] = float(textures.visible_fraction()[index])
        reasons = options.thresholds.reasons(metrics)
        record = {
            "name": photo.name,
            "source": source,
            "status": "dropped" if reasons else "kept",
            "reasons": reasons,
            "texture": None if reasons else f"textures/{photo.name}.png",
            "mask": None if reasons else f"masks/{photo.name}.png",
            "metrics": metrics,
            "seconds": seconds,
            "fitting": {
                "resolution": fitting.resolution,
                "steps": [fitting.rigid.steps, fitting.align.steps, fitting.full.steps],
            },
        }
        if not reasons:
            _atomic_png(out / "textures" / f"{photo.name}.png", _to_uint8(textures.albedo[index]))
            _atomic_png(out / "masks" / f"{photo.name}.png", _to_uint8(textures.confidence[index]))
        _atomic_json(out / "meta" / f"{photo.name}.json", record)
        return Outcome(photo.name, source, record["status"], "; ".join(reasons), seconds, record)

    def flush() -> None:
        if not batch:
            return
        photos = [p for p, _, _ in batch]
        masks = [m for _, _, m in batch]
        started = time.perf_counter()
        try:
            result = fitter.fit(photos)
            with torch.no_grad():
                images = [
                    torch.from_numpy(np.array(p.image)).permute(2, 0, 1)[None].float().div(255.0).to(fitter.device)
                    for p in photos
                ]
                from ganfit.fitting.shading import make_light

                textures = unwrapper.unwrap(
                    images,
                    [(p.scale, p.offset) for p in photos],
                    result.vertices,
                    result.params.camera(),
                    make_light({k: v.detach() for k, v in light_of(result.params).items()}),
                    fitting.resolution,
                    pixel_masks=masks if options.unwrap.skin_mask else None,
                )
        except Exception as error:  # a failed batch fails its photos, not the run
            logger.exception("fitting/unwrapping failed for %s", [p.name for p in photos])
            for photo, source, _ in batch:
                outcomes.append(Outcome(photo.name, source, "failed", f"fit failed: {type(error).__name__}: {error}"))
        else:
            seconds = (time.perf_counter() - started) / len(photos)
            for index, (photo, source, _) in enumerate(batch):
                try:
                    outcomes.append(write(photo, source, index, result, textures, seconds))
                except Exception as error:
                    logger.exception("writing failed for %s", photo.name)
                    outcomes.append(Outcome(photo.name, source, "failed", f"{type(error).__name__}: {error}"))
        bar.update(len(batch))
        batch.clear()

    for source, name in pending:
        try:
            image = load_photo(source)
            detection = detect_face(image, backend=job.landmarks_backend, face_index=job.face_index, name=source)
            photo = prepare_photo(
                image,
                detection.landmarks,
                fitting.resolution,
                fitting.crop_scale,
                name=name,
                path=None if source == ASTRONAUT else Path(source),
            )
            mask = None
            if options.unwrap.skin_mask:
                pixels = skin_mask(image.shape[:2], detection.landmarks, detection.dense)
                mask = torch.from_numpy(pixels)[None, None]
        except (ImageInputError, NoFaceError) as error:
            outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
            bar.update(1)
            continue
        except Exception as error:
            logger.exception("could not prepare %s", source)
            outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
            bar.update(1)
            continue
        batch.append((photo, source, mask))
        if len(batch) >= fitting.batch_size:
            flush()
    flush()
    bar.close()
    return outcomes


def write_metadata(out: Path) -> int:
    """Rebuild ``out/metadata.jsonl`` from ``out/meta/*.json`` (sorted by name); returns the line count."""
    records = [json.loads(p.read_text()) for p in sorted((out / "meta").glob("*.json"))]
    tmp = out / "metadata.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r, default=_jsonable) + "\n" for r in records))
    os.replace(tmp, out / "metadata.jsonl")
    return len(records)


def run_build(spec: str | None, options: BuildOptions, fitting: FittingConfig, processes: int = 1) -> Summary:
    """Build the dataset from every photo named by ``spec`` (file, folder, glob, list file) into ``options.job.out``."""
    sources = collect_inputs(spec)
    names = output_names(sources)
    out = Path(options.job.out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = run_sharded(process_shard, sources, names, out, options, fitting, processes)
    write_metadata(out)
    summary = BuildSummary(str(out), outcomes)
    _atomic_json(out / "summary.json", summary.to_json())
    return summary


class BuildSummary(Summary):
    """The fitting runner's summary with the dataset's statuses (kept / dropped / failed / skipped)."""

    def format(self) -> str:
        kept_before = sum(1 for o in self.outcomes if o.status == "skipped" and o.metrics.get("status") == "kept")
        lines = [
            f"kept {self.count('kept')}, dropped {self.count('dropped')}, failed {self.count('failed')}, "
            f"skipped {self.count('skipped')} (of which kept earlier: {kept_before}) -> {self.out}/textures"
        ]
        for outcome in self.outcomes:
            if outcome.status in ("dropped", "failed"):
                lines.append(f"  {outcome.status}: {outcome.source}: {outcome.reason}")
        seconds = [o.seconds for o in self.outcomes if o.status in ("kept", "dropped")]
        if seconds:
            lines.append(f"  seconds per photo: median {np.median(seconds):.1f}, mean {np.mean(seconds):.1f}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            **{status: self.count(status) for status in ("kept", "dropped", "failed", "skipped")},
            "photos": [asdict(o) for o in self.outcomes],
        }
