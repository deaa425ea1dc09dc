"""The dataset job: photos -> fitted (free texture) -> unwrapped UV albedo textures + confidence masks + metadata.

A task of the photo-job engine (``ganfit.jobs.engine``), so it behaves like fit.py: photos batched through one
optimisation, a progress bar, photos already processed skipped unless ``overwrite``, one bad photo never stops the
rest, a summary at the end, the same job sharded with Lightning Fabric.

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
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from ganfit.atomic import atomic_save, atomic_write_json, atomic_write_text, to_jsonable
from ganfit.config.compose import parse_bool
from ganfit.config.schema import Thresholds
from ganfit.data_build.skin_mask import skin_mask
from ganfit.data_build.texture import PhotoUnwrapper, UnwrapConfig
from ganfit.exit_codes import UsageError
from ganfit.fitting.shading import make_light
from ganfit.jobs.components import build_fitter, fitting_config, seeded
from ganfit.jobs.engine import Outcome, PhotoItem, PrepareOptions, run_sharded, written_during_run
from ganfit.jobs.fit_job import Summary
from ganfit.jobs.inputs import collect_inputs, output_names
from ganfit.report import image_files, write_contact_sheet

logger = logging.getLogger(__name__)


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] in [0, 1] -> uint8 [H, W, C] (or [H, W] for C = 1)."""
    array = (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return array[..., 0] if array.shape[-1] == 1 else array


def _save_png(path: Path, image: np.ndarray) -> None:
    atomic_save(path, lambda handle: Image.fromarray(image).save(handle, format="PNG"))


def is_done(out: Path, name: str) -> bool:
    """True when ``name`` was already processed (kept or dropped): its ``meta/<name>.json`` exists."""
    return (out / "meta" / f"{name}.json").is_file()


class BuildTask:
    """The engine task of the dataset builder (a composed ``data_build`` config as a plain container)."""

    progress_label = "building"

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg_container = cfg
        self.cfg = OmegaConf.create(cfg)
        self.out = Path(str(self.cfg.out))
        self.overwrite = parse_bool(self.cfg.overwrite, "overwrite")
        self.fitting = fitting_config(self.cfg.fitting)
        self.unwrap_config = UnwrapConfig(**self.cfg_container["build"])
        self.thresholds = Thresholds(**self.cfg_container["thresholds"])
        self.batch_size = max(1, self.fitting.batch_size)
        self.prepare_options = PrepareOptions(
            landmarks_backend=str(self.cfg.landmarks.backend),
            face_index=int(self.cfg.landmarks.face_index),
            resolution=self.fitting.resolution,
            crop_scale=self.fitting.crop_scale,
        )
        self.fitter = None
        self.unwrapper: PhotoUnwrapper | None = None
        self.started = time.time()  # reset in setup; a meta record written after it is this run's

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg_container": self.cfg_container}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg_container"])  # type: ignore[misc]

    def check_done(self, name: str, source: str) -> Outcome | None:
        if self.overwrite or not is_done(self.out, name):
            return None
        record = json.loads((self.out / "meta" / f"{name}.json").read_text())
        return Outcome(name, source, "skipped", f"already {record.get('status')}", 0.0, record)

    def setup(self) -> None:
        self.started = time.time()
        for sub in ("textures", "masks", "meta"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        seeded(int(self.cfg.seed))
        self.fitter = build_fitter(self.cfg)
        self.unwrapper = PhotoUnwrapper(self.fitter.face_model, self.unwrap_config)

    def prepare(self, item: PhotoItem) -> None:
        item.extra["mask"] = None
        if self.unwrap_config.skin_mask:
            pixels = skin_mask(item.image.shape[:2], item.detection.landmarks, item.detection.dense)
            item.extra["mask"] = torch.from_numpy(pixels)[None, None]

    def recover(self, name: str, source: str) -> Outcome | None:
        path = self.out / "meta" / f"{name}.json"
        if not written_during_run(path, self.started):
            return None
        record = json.loads(path.read_text())
        return Outcome(name, source, record["status"], "; ".join(record["reasons"]), record["seconds"], record)

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        assert self.fitter is not None and self.unwrapper is not None
        fitter = self.fitter
        photos = [item.photo for item in items]
        started = time.perf_counter()
        result = fitter.fit(photos)
        with torch.no_grad():
            images = [
                torch.from_numpy(np.array(p.image)).permute(2, 0, 1)[None].float().div(255.0).to(fitter.device)
                for p in photos
            ]
            textures = self.unwrapper.unwrap(
                images,
                [(p.scale, p.offset) for p in photos],
                result.vertices,
                result.params.camera(),
                make_light({k: v.detach() for k, v in result.params.light().items()}),
                self.fitting.resolution,
                pixel_masks=[item.extra["mask"] for item in items] if self.unwrap_config.skin_mask else None,
            )
        seconds = (time.perf_counter() - started) / len(items)
        outcomes = []
        for index, item in enumerate(items):
            try:
                outcomes.append(self._write(item, index, result, textures, seconds))
            except Exception as error:
                logger.exception("writing failed for %s", item.name)
                outcomes.append(Outcome(item.name, item.source, "failed", f"{type(error).__name__}: {error}"))
        return outcomes

    def _write(self, item: PhotoItem, index: int, result, textures, seconds: float) -> Outcome:
        metrics = dict(result.metrics[index])
        metrics["visible_fraction"] = float(textures.visible_fraction()[index])
        reasons = self.thresholds.reasons(metrics)
        name = item.name
        record = {
            "name": name,
            "source": item.source,
            "status": "dropped" if reasons else "kept",
            "reasons": reasons,
            "texture": None if reasons else f"textures/{name}.png",
            "mask": None if reasons else f"masks/{name}.png",
            "metrics": metrics,
            "seconds": seconds,
            "fitting": {
                "resolution": self.fitting.resolution,
                "steps": [self.fitting.rigid.steps, self.fitting.align.steps, self.fitting.full.steps],
            },
        }
        if not reasons:
            _save_png(self.out / "textures" / f"{name}.png", _to_uint8(textures.albedo[index]))
            _save_png(self.out / "masks" / f"{name}.png", _to_uint8(textures.confidence[index]))
        atomic_write_json(self.out / "meta" / f"{name}.json", record)  # last: marks the photo as done
        return Outcome(name, item.source, record["status"], "; ".join(reasons), seconds, record)


def write_metadata(out: Path) -> int:
    """Rebuild ``out/metadata.jsonl`` from ``out/meta/*.json`` (sorted by name); returns the line count."""
    records = [json.loads(p.read_text()) for p in sorted((out / "meta").glob("*.json"))]
    atomic_write_text(out / "metadata.jsonl", "".join(json.dumps(r, default=to_jsonable) + "\n" for r in records))
    return len(records)


class BuildSummary(Summary):
    """The fit job's summary with the dataset's statuses (kept / dropped / failed / skipped)."""

    @property
    def exit_code(self) -> int:
        """0 something was kept or done before; 1 nothing usable (every photo failed or was dropped); 130 Ctrl-C."""
        if self.interrupted:
            return 130
        return 0 if self.count("kept") + self.count("skipped") > 0 else 1

    def format(self) -> str:
        kept_before = sum(1 for o in self.outcomes if o.status == "skipped" and o.metrics.get("status") == "kept")
        lines = [
            f"kept {self.count('kept')}, dropped {self.count('dropped')}, failed {self.count('failed')}, "
            f"skipped {self.count('skipped')} (of which kept earlier: {kept_before}) -> {self.out}/textures"
            + (" — INTERRUPTED, the rest was not started" if self.interrupted else "")
        ]
        for outcome in self.outcomes:
            if outcome.status in ("dropped", "failed"):
                lines.append(f"  {outcome.status}: {outcome.source}: {outcome.reason}")
        seconds = [o.seconds for o in self.outcomes if o.status in ("kept", "dropped")]
        if seconds:
            lines.append(f"  seconds per photo: median {np.median(seconds):.1f}, mean {np.mean(seconds):.1f}")
        return "\n".join(lines)

    def to_json(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "out": self.out,
            "interrupted": self.interrupted,
            **{status: self.count(status) for status in ("kept", "dropped", "failed", "skipped")},
            "photos": [asdict(o) for o in self.outcomes],
        }


def run_build(cfg: DictConfig) -> BuildSummary:
    """Build the dataset of a composed ``data_build`` config (``image=`` photos into ``out=``)."""
    if str(cfg.texture.mode) != "free":
        raise UsageError(
            f"texture={cfg.texture.mode}: the dataset builder fits with texture=free (the unwrapped photo is its data)"
        )
    inputs = collect_inputs(str(cfg.image))
    names = output_names(inputs.sources)
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    task = BuildTask(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    processes = int(cfg.processes)
    progress = parse_bool(cfg.progress, "progress")
    result = run_sharded(
        task, inputs.sources, names, out, processes, progress=progress, torch_threads=int(cfg.torch_threads)
    )
    if result is None:
        return BuildSummary(str(out), [])
    write_metadata(out)
    if (out / "textures").is_dir():
        write_contact_sheet(out, image_files(out / "textures"), "UV textures")
    summary = BuildSummary(str(out), result.outcomes, result.interrupted, inputs.describe_skipped())
    atomic_write_json(out / "summary.json", summary.to_json())
    return summary
