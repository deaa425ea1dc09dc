"""fit.py's job: every photo named by ``image=`` fitted and exported into ``out/<name>/``, on the engine.

A fit's identity on disk: ``out/<name>/metrics.json`` records the sha256 of the photo's bytes and of the settings
that shape a fit (model, renderer, landmarks, identity networks, texture, preset, seed). A rerun skips a photo only
when both match; a *different* photo with the same name is fitted into ``<name>-2/`` (the old fit is kept); a fit
made with other settings is skipped with a message (``overwrite=true`` refits). ``out/summary.json`` lists every
photo in the folder, this run's marked ``latest``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ganfit.atomic import atomic_write_json, remove_stale_staging
from ganfit.config.schema import FitJobConfig
from ganfit.fitting.export import DONE_MARKER, export_photo
from ganfit.fitting.fitter import Fitter
from ganfit.jobs.components import build_fitter, export_options, fitting_config, job_config, prepare_options, seeded
from ganfit.jobs.engine import Outcome, PhotoItem, ShardResult, run_sharded, written_during_run
from ganfit.jobs.inputs import collect_inputs, output_names, source_digest
from ganfit.jobs.multi_fit import run_multi_fit
from ganfit.report import write_fit_report

logger = logging.getLogger(__name__)

SETTINGS_KEYS = ("face_model", "renderer", "landmarks", "identity", "texture", "fitting", "seed", "detail", "eyes")
"""The config parts that shape a fit (a change of any of them is a different fit)."""


def settings_digest(cfg: DictConfig) -> str:
    """sha256 of the settings that shape a fit (:data:`SETTINGS_KEYS`), independent of key order."""
    container = OmegaConf.to_container(cfg, resolve=True)
    settings = {key: container.get(key) for key in SETTINGS_KEYS}  # type: ignore[union-attr]
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _previous(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None


def resolve_names(out: Path, sources: list[str], names: list[str], digests: list[str]) -> list[str]:
    """Final folder names: a name whose finished fit is of a *different* photo moves on to ``<name>-2``,
    ``<name>-3``, ... (the first folder that is free or holds this photo's fit)."""
    final = []
    taken: set[str] = set()
    for name, digest in zip(names, digests, strict=True):
        candidate, number = name, 1
        while True:
            previous = _previous(out / candidate)
            same_photo = previous is None or previous.get("source_sha256", digest) == digest
            if same_photo and candidate not in taken:
                break
            number += 1
            candidate = f"{name}-{number}"
        if candidate != name:
            logger.warning("%s: %s/ holds the fit of a different photo; fitting into %s/", name, name, candidate)
        taken.add(candidate)
        final.append(candidate)
    return final


class FitTask:
    """The engine task of fit.py: fit batches of photos and export each one. Pickles (a plain config)."""

    progress_label = "fitting"

    def __init__(self, cfg: dict[str, Any], digests: dict[str, str]) -> None:
        self.cfg_container = cfg
        self.cfg = OmegaConf.create(cfg)
        self.job: FitJobConfig = job_config(cfg)
        self.out = Path(self.job.out)
        self.digests = digests
        self.settings = settings_digest(self.cfg)
        fitting = fitting_config(self.cfg.fitting)
        self.batch_size = max(1, fitting.batch_size)
        self.prepare_options = prepare_options(self.job, fitting)
        self.fitter: Fitter | None = None
        self.started = time.time()  # reset in setup; a done-marker written after it is this run's

    def __getstate__(self) -> dict[str, Any]:
        return {"cfg_container": self.cfg_container, "digests": self.digests}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cfg_container"], state["digests"])  # type: ignore[misc]

    def check_done(self, name: str, source: str) -> Outcome | None:
        if self.job.overwrite:
            return None
        previous = _previous(self.out / name)
        if previous is None:
            return None
        if "settings_sha256" not in previous:
            reason = "fitted by an earlier ganfit (no settings record; overwrite=true to refit)"
        elif previous["settings_sha256"] != self.settings:
            reason = "already fitted with other settings (overwrite=true to refit with these)"
            logger.warning("%s: %s", name, reason)
        else:
            reason = "already fitted (overwrite=true to redo)"
        return Outcome(name, source, "skipped", reason, 0.0, previous)

    def setup(self) -> None:
        self.started = time.time()
        seeded(self.job.seed)
        self.fitter = build_fitter(self.cfg)
        self.export_options = export_options(self.job)

    def prepare(self, item: PhotoItem) -> None:
        return None

    def recover(self, name: str, source: str) -> Outcome | None:
        marker = self.out / name / DONE_MARKER
        if not written_during_run(marker, self.started) or (previous := _previous(self.out / name)) is None:
            return None
        return Outcome(name, source, "fitted", "", float(previous.get("seconds", 0.0)), previous)

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        assert self.fitter is not None
        started = time.perf_counter()
        result = self.fitter.fit([item.photo for item in items])
        outcomes = []
        for index, item in enumerate(items):
            try:
                if not np.isfinite(result.metrics[index]["landmark_error_iod"]):
                    raise FloatingPointError("the fit diverged (non-finite parameters)")
                extra = {
                    "source": item.source,
                    "source_sha256": self.digests[item.source],
                    "settings_sha256": self.settings,
                }
                export_photo(self.fitter, item.photo, index, result, self.out, extra=extra, options=self.export_options)
                seconds = time.perf_counter() - started
                outcomes.append(Outcome(item.name, item.source, "fitted", "", seconds, result.metrics[index]))
            except Exception as error:
                logger.exception("export failed for %s", item.name)
                outcomes.append(Outcome(item.name, item.source, "failed", f"{type(error).__name__}: {error}"))
        return outcomes


@dataclass
class Summary:
    """The summary of one run (``outcomes``: this run's photos) and of the whole output folder."""

    out: str
    outcomes: list[Outcome]
    interrupted: bool = False
    skipped_inputs: str = ""  # files a folder scan did not read
    run: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def exit_code(self) -> int:
        """0 all done, 1 some photos failed, 130 interrupted (the summary still lists what finished)."""
        if self.interrupted:
            return 130
        return 1 if self.count("failed") else 0

    def format(self) -> str:
        lines = [
            f"fitted {self.count('fitted')}, skipped {self.count('skipped')}, failed {self.count('failed')} "
            f"(outputs in {self.out})" + (" — INTERRUPTED, the rest was not started" if self.interrupted else "")
        ]
        fitted = [o for o in self.outcomes if o.status == "fitted"]
        for outcome in fitted[:10]:
            lines.append(f"  fitted: {outcome.source} -> {Path(self.out) / outcome.name}/ (compare.png, mesh.glb, ...)")
        if len(fitted) > 10:
            lines.append(f"  ... and {len(fitted) - 10} more fitted photos (see {Path(self.out) / 'summary.json'})")
        for outcome in self.outcomes:
            if outcome.status != "fitted":
                lines.append(f"  {outcome.status}: {outcome.source}: {outcome.reason}")
        if self.skipped_inputs:
            lines.append(f"  {self.skipped_inputs}")
        return "\n".join(lines)

    def scores(self) -> dict[str, float]:
        """Means over this run's fitted and skipped photos: identity cosine (before/after stage 2), landmark error
        (IOD), seconds, and ``score`` = identity cosine - 5 x landmark error (what sweeps maximise)."""
        fitted = [o.metrics for o in self.outcomes if o.status in ("fitted", "skipped") and o.metrics]
        if not fitted:
            return {}

        def mean(key: str) -> float:
            values = [m[key] for m in fitted if key in m]
            return float(np.mean(values)) if values else float("nan")

        out = {
            "landmark_error_iod": mean("landmark_error_iod"),
            "identity_cosine": mean("identity_cosine"),
            "identity_cosine_before_stage2": mean("identity_cosine_before_stage2"),
            "seconds_per_photo": mean("seconds"),
        }
        out["score"] = out["identity_cosine"] - 5.0 * out["landmark_error_iod"]
        return out

    def to_json(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """This run's counts and scores, and every photo of the folder (earlier runs' entries kept, this run's
        marked ``latest``)."""
        photos: dict[str, dict[str, Any]] = {
            o.name: {**asdict(o), "run": self.run, "latest": True} for o in self.outcomes
        }
        for entry in (previous or {}).get("photos", []):  # earlier runs' photos, after this run's (in input order)
            if isinstance(entry, dict) and entry.get("name") not in photos and "name" in entry:
                photos[entry["name"]] = {**entry, "latest": False}
        return {
            "out": self.out,
            "run": self.run,
            "interrupted": self.interrupted,
            "fitted": self.count("fitted"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "scores": self.scores(),
            "photos": list(photos.values()),
        }

    def write(self) -> Path:
        """Write ``out/summary.json`` atomically, merged with the folder's earlier summary."""
        path = Path(self.out) / "summary.json"
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = None
        return atomic_write_json(path, self.to_json(previous))


def fit_job_config(cfg: DictConfig, **changes: Any) -> DictConfig:
    """The fit-job part of another entry point's composed config (eval.photos, benchmarks): the keys that
    :class:`FitJobConfig` has, with ``changes``, checked against the schema."""
    container = OmegaConf.to_container(cfg, resolve=True)
    keys = {f for f in FitJobConfig.__dataclass_fields__}
    picked = {k: v for k, v in container.items() if k in keys}  # type: ignore[union-attr]
    picked.update(changes)
    return OmegaConf.merge(OmegaConf.structured(FitJobConfig), picked)  # type: ignore[return-value]


def run_fit_job(cfg: DictConfig) -> Summary:
    """Fit every photo named by ``cfg.image`` into ``cfg.out``; writes ``out/summary.json`` (also on Ctrl-C)."""
    job: FitJobConfig = job_config(cfg)
    inputs = collect_inputs(job.image)
    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_staging(out):
        logger.info("removed %s, left by an interrupted run", stale)
    if job.shared_identity:  # one reconstruction per person (ganfit.jobs.multi_fit)
        outcomes, interrupted, inputs = run_multi_fit(cfg, settings_digest(cfg))
        summary = Summary(str(out), outcomes, interrupted, inputs.describe_skipped())
        summary.write()
        return summary
    digests = {source: source_digest(source) for source in inputs.sources}
    names = output_names(inputs.sources)
    names = resolve_names(out, inputs.sources, names, [digests[s] for s in inputs.sources])
    container = OmegaConf.to_container(cfg, resolve=True)
    task = FitTask(container, digests)  # type: ignore[arg-type]
    result = run_sharded(task, inputs.sources, names, out, job.processes, job.sharding, job.progress, job.torch_threads)
    if result is None:  # another rank of an externally launched job: rank 0 reports
        return Summary(str(out), [], skipped_inputs=inputs.describe_skipped())
    summary = Summary(str(out), result.outcomes, result.interrupted, inputs.describe_skipped())
    summary.write()
    if job.report:
        write_fit_report(out)
    if job.wandb:
        from ganfit.jobs.wandb_log import log_fit_run  # deferred: wandb is a heavy import, needed only here

        log_fit_run(cfg, summary)
    return summary


__all__ = ["FitTask", "ShardResult", "Summary", "fit_job_config", "resolve_names", "run_fit_job", "settings_digest"]
