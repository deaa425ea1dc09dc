"""The demo's fit queue: uploads become jobs, one worker thread fits them one at a time with the real fit job
(``ganfit.jobs.fit_job.run_fit_job``), so concurrent uploads wait instead of oversubscribing the CPU cores."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganfit.config import compose_config  # the one place the demo composes the fit config
from ganfit.jobs.fit_job import run_fit_job as run_from_config

logger = logging.getLogger(__name__)

PRESETS = ("fast", "default")
EXAMPLES = ("astronaut",)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# Files a job serves and bundles (everything a fit writes except the loss curve's raw data).
BUNDLE_FILES = (
    "mesh.glb",
    "mesh.obj",
    "mesh.mtl",
    "texture.png",
    "render.png",
    "overlay.png",
    "compare.png",
    "loss.png",
    "params.json",
    "metrics.json",
    "landmarks.json",
)
# First guesses of a job's seconds (model loading + detection + fit + export, 2 cores) until jobs were timed here.
FIRST_GUESS_SECONDS = {"fast": 30.0, "default": 40.0}


class JobError(ValueError):
    """A request the queue refuses (unknown preset or example, empty or oversized upload)."""


@dataclass
class Job:
    """One fit request. ``state``: queued -> running -> done | failed; ``message`` is the reason of a failure
    (the fit's ``Outcome.reason`` for a bad photo)."""

    id: str
    name: str
    preset: str
    folder: Path
    source: str  # the photo's path, or an embedded example's name
    state: str = "queued"
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        """The fit's output folder of this photo (``out/<name>/``)."""
        return self.folder / "out" / self.name

    def files(self) -> list[str]:
        """The bundle files this job wrote, plus any extra ``texture*.png``."""
        if self.state != "done":
            return []
        names = [n for n in BUNDLE_FILES if (self.out / n).is_file()]
        extra = sorted(p.name for p in self.out.glob("texture*.png") if p.name not in names)
        return names + extra


def safe_name(filename: str) -> str:
    """A file name safe for the job folder (letters, digits, ``_.-``), keeping the suffix."""
    base = Path(filename or "photo").name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:60] or "photo"
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    return stem + suffix


class FitQueue:
    """Jobs in ``root/jobs/<id>/``, fitted one at a time by a daemon worker thread.

    ``overrides`` are extra Hydra overrides of the ``fit`` config for every job (e.g. ``torch_threads=1``).
    """

    def __init__(self, root: str | Path, overrides: Sequence[str] = ()) -> None:
        self.root = Path(root)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self.overrides = list(overrides)
        self.jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._durations: dict[str, list[float]] = {p: [] for p in PRESETS}
        self._worker = threading.Thread(target=self._work, name="ganfit-demo-fit", daemon=True)
        self._worker.start()

    # -------------------------------------------------------------------------------------------------- submit
    def submit_upload(self, data: bytes, filename: str, preset: str) -> Job:
        """Queue a fit of uploaded photo bytes (any content: the fit itself reports unreadable files)."""
        if not data:
            raise JobError("the upload is empty: choose a photo file")
        if len(data) > MAX_UPLOAD_BYTES:
            raise JobError(f"the upload is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
        name = safe_name(filename)
        job = self._new_job(Path(name).stem, preset)
        photo = job.folder / "input" / name
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.write_bytes(data)
        job.source = str(photo)
        return self._enqueue(job)

    def submit_example(self, example: str, preset: str) -> Job:
        """Queue a fit of a bundled example photo (``astronaut``: scikit-image's public-domain portrait)."""
        if example not in EXAMPLES:
            raise JobError(f"unknown example {example!r} (choose one of {', '.join(EXAMPLES)})")
        job = self._new_job(example, preset)
        job.source = example
        return self._enqueue(job)

    def _new_job(self, name: str, preset: str) -> Job:
        if preset not in PRESETS:
            raise JobError(f"unknown preset {preset!r} (choose one of {', '.join(PRESETS)})")
        ident = uuid.uuid4().hex[:12]
        folder = self.root / "jobs" / ident
        folder.mkdir(parents=True)
        return Job(ident, name, preset, folder, source="")

    def _enqueue(self, job: Job) -> Job:
        with self._lock:
            self.jobs[job.id] = job
            self._order.append(job.id)
        self._queue.put(job.id)
        logger.info("queued job %s (%s, preset %s)", job.id, job.name, job.preset)
        return job

    # -------------------------------------------------------------------------------------------------- status
    def position(self, job: Job) -> int:
        """How many jobs run or wait before ``job`` (0 when it runs or is finished)."""
        if job.state != "queued":
            return 0
        with self._lock:
            ahead = self._order[: self._order.index(job.id)]
        return sum(1 for i in ahead if self.jobs[i].state in ("queued", "running"))

    def expected_seconds(self, preset: str) -> float:
        """The median of this server's finished jobs of ``preset``, or a first guess."""
        done = sorted(self._durations.get(preset, []))
        return done[len(done) // 2] if done else FIRST_GUESS_SECONDS.get(preset, 40.0)

    def status(self, job: Job) -> dict[str, Any]:
        """The JSON view of a job for the page: state, message, queue position, elapsed seconds, an estimated
        progress in [0, 1] (elapsed over the expected duration, capped at 0.95 while running) and result files."""
        now = time.time()
        elapsed = (job.finished or now) - job.started if job.started else 0.0
        if job.state in ("done", "failed"):
            progress = 1.0
        elif job.state == "running":
            progress = min(0.95, elapsed / max(self.expected_seconds(job.preset), 1.0))
        else:
            progress = 0.0
        return {
            "id": job.id,
            "name": job.name,
            "preset": job.preset,
            "state": job.state,
            "message": job.message,
            "position": self.position(job),
            "elapsed": round(elapsed, 1),
            "progress": round(progress, 3),
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "metrics": job.metrics,
            "files": job.files(),
        }

    def wait(self, job: Job, timeout: float) -> bool:
        """Block until ``job`` is finished (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while job.state not in ("done", "failed"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def bundle(self, job: Job) -> Path:
        """``<job>/<name>.zip`` with the job's mesh (GLB, OBJ/MTL), textures, images and JSON files."""
        path = job.folder / f"{job.name}.zip"
        if not path.is_file():
            tmp = path.with_suffix(".zip.tmp")
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name in job.files():
                    archive.write(job.out / name, f"{job.name}/{name}")
            tmp.replace(path)
        return path

    def close(self) -> None:
        """Stop the worker after the running job (queued jobs are dropped)."""
        self._queue.put(None)

    # -------------------------------------------------------------------------------------------------- worker
    def _work(self) -> None:
        while True:
            ident = self._queue.get()
            if ident is None:
                return
            job = self.jobs[ident]
            job.state, job.started = "running", time.time()
            try:
                self._fit(job)
            except Exception as error:  # any failure of a job is shown on its page; the server goes on
                logger.exception("demo job %s failed", job.id)
                job.state, job.message = "failed", f"{type(error).__name__}: {error}"
            job.finished = time.time()
            if job.state == "done":
                self._durations[job.preset].append(job.finished - job.started)

    def _fit(self, job: Job) -> None:
        overrides = [
            f"image={job.source}",
            f"out={job.folder / 'out'}",
            f"fitting={job.preset}",
            "progress=false",
            "wandb=false",
            *self.overrides,
        ]
        cfg = compose_config("fit", overrides)
        summary = run_from_config(cfg)
        outcome = summary.outcomes[0] if summary.outcomes else None
        if outcome is None:
            job.state, job.message = "failed", "the fit job returned no result"
        elif outcome.status == "fitted":
            job.state, job.metrics = "done", dict(outcome.metrics)
            if outcome.name != job.name:  # the runner names the folder after the photo's stem
                job.name = outcome.name
        else:
            job.state, job.message = "failed", outcome.reason
