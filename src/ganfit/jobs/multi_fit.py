"""fit.py's shared-identity job (``shared_identity=true``): all photos of one person fitted together.

One shape ``ps`` and one texture (GAN latent / free UV map) per person, a camera, expression and light per photo
(``Fitter.fit(..., shared=True)``). Who is who:

* a list file with labels (``path<TAB>person``): the label; an entry without one, its parent folder's name;
* a folder, a glob or a single file: one person, named after the folder (the photos' common parent).

Outputs per person (``out/<person>/``; ``metrics.json`` last, it marks the person as done)::

    mesh.obj, mesh.mtl, texture.png, mesh.glb   the person's NEUTRAL shape fm(ps, 0) with the shared albedo
    params.json                                 ps, pt, and per photo its name, source and metrics
    metrics.json                                views, their sources' sha256, the settings' sha256
    views/<photo>/                              the per-photo outputs of a single fit (render, overlay, compare,
                                                the expressed mesh with that photo's detail texture, params, ...)

A person is skipped when its ``metrics.json`` lists the same photos (by content) and settings; otherwise the whole
person is refitted. The engine runs once per person (one batch = the person's photos) in this process.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from ganfit.atomic import atomic_write_json
from ganfit.config.schema import FitJobConfig
from ganfit.fitting.export import DONE_MARKER, export_photo
from ganfit.fitting.fitter import Fitter
from ganfit.jobs.components import build_fitter, export_options, fitting_config, job_config, prepare_options, seeded
from ganfit.jobs.engine import Outcome, PhotoItem, run_shard, written_during_run
from ganfit.jobs.inputs import LIST_SUFFIXES, Inputs, collect_inputs, output_names, read_list_file, source_digest

logger = logging.getLogger(__name__)

VIEWS = "views"
PERSON_FILES = ("mesh.obj", "mesh.mtl", "texture.png", "mesh.glb", "params.json")


@dataclass
class Person:
    """One person's photos: ``name`` (output folder), ``sources`` (paths) and their output ``names``."""

    name: str
    sources: list[str]
    names: list[str]


def group_by_person(spec: str | None) -> tuple[list[Person], Inputs]:
    """The people named by ``image=`` (see the module) and the collected inputs, in input order."""
    path = Path(str(spec)) if spec else None
    if path is not None and path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        entries = read_list_file(path)
        inputs = collect_inputs(spec)
        labels = [label or Path(source).parent.name or "person" for source, label in entries]
    else:
        inputs = collect_inputs(spec)
        if path is not None and path.is_dir():
            person = path.resolve().name
        else:
            parents = {str(Path(s).resolve().parent) for s in inputs.sources}
            person = Path(next(iter(parents))).name if len(parents) == 1 else "person"
        labels = [person] * len(inputs.sources)
    order: dict[str, list[str]] = {}
    for source, label in zip(inputs.sources, labels, strict=True):
        order.setdefault(_safe(label), []).append(source)
    return [Person(name, sources, output_names(sources)) for name, sources in order.items()], inputs


def _safe(label: str) -> str:
    """A folder name for a person label (path separators and leading dots replaced)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label.strip()).lstrip(".")
    return cleaned or "person"


class MultiFitTask:
    """The engine task of one person: its photos are one batch, fitted with a shared identity and exported."""

    progress_label = "fitting (shared identity)"

    def __init__(self, cfg: DictConfig, person: Person, digests: dict[str, str], settings: str, fitter: Fitter):
        self.cfg = cfg
        self.job: FitJobConfig = job_config(cfg)
        self.person = person
        self.folder = Path(self.job.out) / person.name
        self.digests = digests
        self.settings = settings
        self.fitter = fitter
        fitting = fitting_config(cfg.fitting)
        self.batch_size = max(1, len(person.sources))
        self.prepare_options = prepare_options(self.job, fitting)
        self.export_options = export_options(self.job)
        self.started = time.time()  # reset in setup; a done-marker written after it is this run's

    def check_done(self, name: str, source: str) -> Outcome | None:
        return None  # the job decides per person (person_done) before the engine runs

    def setup(self) -> None:
        self.started = time.time()

    def prepare(self, item: PhotoItem) -> None:
        return None

    def recover(self, name: str, source: str) -> Outcome | None:
        """A photo counts as fitted once the person's reconstruction (written after every view) is complete."""
        if not written_during_run(self.folder / DONE_MARKER, self.started):
            return None
        return Outcome(f"{self.person.name}/{VIEWS}/{name}", source, "fitted", "")

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        started = time.perf_counter()
        photos = [item.photo for item in items]
        result = self.fitter.fit(photos, shared=True)
        if not all(np.isfinite(m["landmark_error_iod"]) for m in result.metrics):
            raise FloatingPointError("the shared fit diverged (non-finite parameters)")
        views = self.folder / VIEWS
        outcomes = []
        for index, item in enumerate(items):
            extra = {
                "source": item.source,
                "source_sha256": self.digests[item.source],
                "settings_sha256": self.settings,
                "person": self.person.name,
                "shared_identity": True,
            }
            export_photo(self.fitter, item.photo, index, result, views, extra=extra, options=self.export_options)
            outcomes.append(
                Outcome(
                    f"{self.person.name}/{VIEWS}/{item.name}", item.source, "fitted", "", 0.0, result.metrics[index]
                )
            )
        seconds = time.perf_counter() - started
        self._write_person(items, result, seconds)
        for outcome in outcomes:
            outcome.seconds = seconds / len(items)
        return outcomes

    def _write_person(self, items: list[PhotoItem], result, seconds: float) -> None:
        """The person's reconstruction: neutral mesh with the shared albedo, params.json, metrics.json last."""
        fitter, folder = self.fitter, self.folder
        folder.mkdir(parents=True, exist_ok=True)
        params = result.params
        with torch.no_grad():
            ps = params.ps[:1].detach()
            neutral = fitter.face_model(ps, torch.zeros_like(params.pe[:1]))[0].cpu()
            albedo = result.texture[:1].detach().cpu()
            side = int(self.job.texture.out_resolution)
            if albedo.shape[-1] != side:
                albedo = F.interpolate(albedo, size=(side, side), mode="bilinear", align_corners=False)
            texture = (albedo[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        fitter.face_model.export(folder / "mesh.obj", neutral, texture)  # writes mesh.mtl and the texture image
        fitter.face_model.export(folder / "mesh.glb", neutral, texture)
        _rename_obj_texture(folder, texture)
        views = [
            {"name": item.name, "source": item.source, "folder": f"{VIEWS}/{item.name}", **_brief(result.metrics[k])}
            for k, item in enumerate(items)
        ]
        state = params.state_numpy()
        payload: dict[str, Any] = {
            "person": self.person.name,
            "ps": state["ps"][0].tolist(),
            "pt": state["pt"][0].tolist() if "pt" in state else None,
            "texture": fitter.texture_mode,
            "views": views,
            "units": "ps in standard deviations of the ICT identity modes; the mesh is fm(ps, 0) in mm",
        }
        atomic_write_json(folder / "params.json", payload)
        metrics = {
            "person": self.person.name,
            "shared_identity": True,
            "views": views,
            "sources_sha256": sorted(self.digests[item.source] for item in items),
            "settings_sha256": self.settings,
            "seconds": seconds,
        }
        atomic_write_json(folder / DONE_MARKER, metrics)


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("landmark_error_iod", "identity_cosine", "identity_cosine_before_stage2", "pixel_l1")
    return {key: metrics[key] for key in keys if key in metrics}


def _rename_obj_texture(folder: Path, texture: np.ndarray) -> None:
    """Make mesh.mtl name ``texture.png`` (trimesh names the image after the material) and write it there."""
    from PIL import Image  # PIL is already loaded by the exporter; local to keep this module's imports light

    Image.fromarray(texture).save(folder / "texture.png")
    mtl = folder / "mesh.mtl"
    if not mtl.is_file():
        return
    lines = []
    for line in mtl.read_text().splitlines():
        if line.strip().lower().startswith("map_kd"):
            old = line.split(maxsplit=1)[1].strip()
            if old != "texture.png":
                (folder / old).unlink(missing_ok=True)
            line = "map_Kd texture.png"
        lines.append(line)
    mtl.write_text("\n".join(lines) + "\n")


def person_done(folder: Path, digests: list[str], settings: str) -> dict[str, Any] | None:
    """The person's metrics when ``folder`` holds a finished fit of the same photos and settings, else None."""
    try:
        previous = json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if previous.get("settings_sha256") != settings or previous.get("sources_sha256") != sorted(digests):
        return None
    return previous


def run_multi_fit(cfg: DictConfig, settings: str) -> tuple[list[Outcome], bool, Inputs]:
    """Fit every person named by ``cfg.image`` into ``cfg.out/<person>/``. Returns (outcomes per photo,
    interrupted, inputs). Photos are fitted in this process (``processes`` is not used by the shared fit)."""
    job: FitJobConfig = job_config(cfg)
    if job.processes > 1 or job.sharding.num_nodes > 1:
        logger.warning("shared_identity=true fits in one process; processes/num_nodes are ignored")
    people, inputs = group_by_person(job.image)
    out = Path(job.out)
    digests = {source: source_digest(source) for person in people for source in person.sources}
    outcomes: list[Outcome] = []
    fitter: Fitter | None = None
    for person in people:
        previous = (
            None if job.overwrite else person_done(out / person.name, [digests[s] for s in person.sources], settings)
        )
        if previous is not None:
            outcomes += [
                Outcome(f"{person.name}/{VIEWS}/{name}", source, "skipped", "already fitted (overwrite=true to redo)")
                for source, name in zip(person.sources, person.names, strict=True)
            ]
            continue
        if fitter is None:
            seeded(job.seed)
            fitter = build_fitter(cfg)
        task = MultiFitTask(cfg, person, digests, settings, fitter)
        result = run_shard(task, person.sources, person.names, job.progress)
        for outcome in result.outcomes:
            if outcome.status != "fitted":
                outcome.name = f"{person.name}/{VIEWS}/{outcome.name}"
        outcomes += result.outcomes
        if result.interrupted:
            return outcomes, True, inputs
    return outcomes, False, inputs


__all__ = ["MultiFitTask", "Person", "group_by_person", "person_done", "run_multi_fit"]
