"""The photo-job engine: collect -> detect -> prepare -> batch -> process -> outcomes.

A job is a :class:`PhotoTask` (what to do with a batch of prepared photos, and how to tell a photo that is already
done); the engine does everything around it, the same way for ``fit.py``, the dataset builder and ``eval.photos``:

* skip/resume: ``task.check_done`` decides per photo before anything heavy is loaded;
* failure isolation: an unreadable photo, no face, or a crash in one batch fails those photos, never the run;
* batching by ``task.batch_size``; a progress bar;
* Ctrl-C: the photos finished so far are returned with ``interrupted=True`` so the caller writes the summary,
  including those of the interrupted batch whose outputs were complete on disk (``task.recover``);
* sharding: :func:`run_sharded` spreads the photos over processes and machines with Lightning Fabric, each rank a
  disjoint shard (``rank::world``), under Fabric's own launchers (spawned processes, torchrun, SLURM).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ganfit.atomic import atomic_write_json
from ganfit.config.schema import ShardingConfig
from ganfit.fitting.prepare import PreparedPhoto, prepare_photo
from ganfit.image_io import ImageInputError, exif_focal_factor
from ganfit.jobs.inputs import ASTRONAUT, load_photo
from ganfit.landmarks import FaceDetection, NoFaceError, detect_face
from ganfit.threads import apply_thread_policy

logger = logging.getLogger(__name__)

TORCHRUN_ENV = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID")
SLURM_ENV = "SLURM_NTASKS"


@dataclass
class Outcome:
    """What happened to one input photo: status ``fitted``/``kept``/``dropped``/``skipped``/``failed``."""

    name: str
    source: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # the Fabric rank (process across all nodes) that handled the photo; 0 without sharding


@dataclass
class PhotoItem:
    """One photo on its way through the engine: read, detected, cropped; ``extra`` is the task's own."""

    name: str
    source: str
    image: Any  # uint8 [H, W, 3]
    detection: FaceDetection
    photo: PreparedPhoto
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareOptions:
    """How the engine reads and crops photos."""

    landmarks_backend: str = "mediapipe"  # mediapipe | dlib
    face_index: int = 0  # which face of a photo with several (0 = largest)
    resolution: int = 192  # crop side, pixels
    crop_scale: float = 1.8  # crop side / landmark box side
    dense: bool = True  # carry the detector's dense points (mediapipe's mesh) into PreparedPhoto.crop_dense
    exif_focal: bool = True  # PreparedPhoto.focal_factor from the file's EXIF focal length (when it has one)


class PhotoTask(Protocol):
    """What a job does with its photos (see :mod:`ganfit.jobs.fit_job` for fit.py's)."""

    batch_size: int
    prepare_options: PrepareOptions
    progress_label: str

    def check_done(self, name: str, source: str) -> Outcome | None:
        """An outcome for a photo that needs no work (``skipped``), or None to process it."""

    def setup(self) -> None:
        """Load the heavy parts (models); called once, only when some photo needs work."""

    def prepare(self, item: PhotoItem) -> None:
        """Per-photo extras before batching (e.g. a skin mask); may raise to fail the photo."""

    def process(self, items: list[PhotoItem]) -> list[Outcome]:
        """Process a batch; one outcome per item. An exception fails the whole batch's photos."""

    def recover(self, name: str, source: str) -> Outcome | None:
        """After Ctrl-C stopped a batch: the outcome of this photo read back from its done-marker when this run
        finished writing it (Ctrl-C can land after the marker but before ``process`` returns), else None."""


@dataclass
class ShardResult:
    """The outcomes of one shard, and whether Ctrl-C stopped it early."""

    outcomes: list[Outcome]
    interrupted: bool = False


def written_during_run(path: Path, started: float) -> bool:
    """True when ``path`` exists and was last written at or after ``started`` (``time.time()`` seconds)."""
    try:
        return path.stat().st_mtime >= started
    except OSError:
        return False


def run_shard(task: PhotoTask, sources: list[str], names: list[str], progress: bool = True, position: int = 0):
    """Run ``task`` over ``sources`` (this process's shard) in batches. Returns a :class:`ShardResult`."""
    outcomes: list[Outcome] = []
    pending: list[tuple[str, str]] = []
    for source, name in zip(sources, names, strict=True):
        done = task.check_done(name, source)
        if done is not None:
            outcomes.append(done)
        else:
            pending.append((source, name))
    if not pending:
        return ShardResult(outcomes)
    bar = tqdm(total=len(pending), desc=task.progress_label, unit="photo", disable=not progress, position=position)
    batch: list[PhotoItem] = []
    options = task.prepare_options

    def flush() -> None:
        if not batch:
            return
        started = time.perf_counter()
        try:
            results = task.process(list(batch))
        except KeyboardInterrupt:
            raise
        except Exception as error:  # a failed batch fails its photos, not the run
            logger.exception("processing failed for %s", [item.name for item in batch])
            results = [Outcome(item.name, item.source, "failed", f"{type(error).__name__}: {error}") for item in batch]
        seconds = (time.perf_counter() - started) / len(batch)
        for result in results:
            result.seconds = result.seconds or seconds
        outcomes.extend(results)
        bar.update(len(batch))
        batch.clear()

    try:
        task.setup()
        for source, name in pending:
            try:
                image = load_photo(source)
                detection = detect_face(
                    image, backend=options.landmarks_backend, face_index=options.face_index, name=source
                )
                photo = prepare_photo(
                    image,
                    detection.landmarks,
                    options.resolution,
                    options.crop_scale,
                    name=name,
                    path=None if source == ASTRONAUT else Path(source),
                    dense=detection.dense if options.dense else None,
                )
                if options.exif_focal and source != ASTRONAUT:
                    photo.focal_factor = exif_focal_factor(source)
                item = PhotoItem(name, source, image, detection, photo)
                task.prepare(item)
            except KeyboardInterrupt:
                raise
            except (ImageInputError, NoFaceError) as error:
                outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
                bar.update(1)
                continue
            except Exception as error:  # anything else about one photo: report and go on
                logger.exception("could not prepare %s", source)
                outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
                bar.update(1)
                continue
            batch.append(item)
            if len(batch) >= task.batch_size:
                flush()
        flush()
    except KeyboardInterrupt:
        bar.close()
        recorded = {outcome.source for outcome in outcomes}
        for item in batch:  # the interrupted batch: keep the photos that were written out before Ctrl-C
            if item.source not in recorded and (finished := task.recover(item.name, item.source)) is not None:
                outcomes.append(finished)
        logger.warning("interrupted: %d photo(s) finished, the rest not started", len(outcomes))
        return ShardResult(outcomes, interrupted=True)
    bar.close()
    return ShardResult(outcomes)


# ------------------------------------------------------------------------------------------------------ sharding
def launched_externally() -> bool:
    """True when this process was started by torchrun or srun as one rank of a job (Fabric reads the environment)."""
    return any(name in os.environ for name in TORCHRUN_ENV) or int(os.environ.get(SLURM_ENV, "1")) > 1


def _strategy(sharding: ShardingConfig) -> str:
    if sharding.strategy != "auto":
        return sharding.strategy
    return "ddp" if launched_externally() else "ddp_spawn"


class _ShardJob:
    """Everything a worker needs, in a plain object (Fabric's ``launch`` walks dataclass arguments)."""

    def __init__(
        self,
        task: PhotoTask,
        out: str,
        sources: list[str],
        names: list[str],
        progress: bool,
        per_node: int,
        torch_threads: int = 0,
    ) -> None:
        self.task, self.out, self.sources, self.names, self.progress = task, out, sources, names, progress
        self.per_node = per_node  # ranks on one node (they share its cores)
        self.torch_threads = torch_threads  # torch threads per rank (0: the thread policy's share)


def _rank_file(out: Path, rank: int) -> Path:
    return out / f".summary-rank{rank}.json"


def bind_rank_device(device: torch.device) -> None:
    """Make ``device`` (a rank's Fabric device) this process's current CUDA device, so that ``device=cuda`` in the
    config means this rank's own GPU (local rank ``k`` -> ``cuda:k``) rather than every rank's first one. No-op on CPU.
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)


def _shard_worker(fabric, job: _ShardJob) -> None:
    rank, world = fabric.global_rank, fabric.world_size
    apply_thread_policy(processes=job.per_node, torch_threads=job.torch_threads or None)
    bind_rank_device(fabric.device)
    shard = list(range(rank, len(job.sources), world))
    logger.info(
        "rank %d of %d (node %d): %d photo(s): %s",
        rank,
        world,
        fabric.node_rank,
        len(shard),
        ", ".join(job.names[i] for i in shard),
    )
    result = run_shard(
        job.task, [job.sources[i] for i in shard], [job.names[i] for i in shard], job.progress, fabric.local_rank
    )
    for outcome in result.outcomes:
        outcome.rank = rank
    payload = {"interrupted": result.interrupted, "outcomes": [asdict(o) for o in result.outcomes]}
    atomic_write_json(_rank_file(Path(job.out), rank), payload, indent=None)
    fabric.barrier()


def run_sharded(
    task: PhotoTask,
    sources: list[str],
    names: list[str],
    out: Path,
    processes: int = 1,
    sharding: ShardingConfig | None = None,
    progress: bool = True,
    torch_threads: int = 0,
) -> ShardResult | None:
    """Run ``task`` (which must pickle, for spawned processes) over all photos: in this process, or sharded over
    ``processes`` per node x ``num_nodes`` with Lightning Fabric (each rank with ``torch_threads`` torch threads;
    0: the thread policy's share of the node's cores).

    Returns None on a rank other than 0 of an externally launched job (rank 0 collects and reports).
    """
    sharding = sharding or ShardingConfig()
    if processes <= 1 and sharding.num_nodes <= 1 and not launched_externally():
        return run_shard(task, sources, names, progress)
    from datetime import timedelta

    from lightning_fabric import Fabric
    from lightning_fabric.strategies import DDPStrategy

    strategy = _strategy(sharding)
    for stale in out.glob(".summary-rank*.json"):
        stale.unlink()
    fabric = Fabric(
        accelerator=sharding.accelerator,
        devices=processes,
        num_nodes=sharding.num_nodes,
        strategy=DDPStrategy(
            start_method="spawn" if strategy == "ddp_spawn" else "popen",
            timeout=timedelta(seconds=sharding.timeout_s),
        ),
    )
    job = _ShardJob(task, str(out), sources, names, progress, max(1, processes), torch_threads)
    fabric.launch(_shard_worker, job)
    if strategy != "ddp_spawn" and fabric.global_rank != 0:
        return None
    if strategy == "ddp_spawn" and int(os.environ.get("NODE_RANK", os.environ.get("SLURM_NODEID", "0"))) != 0:
        return None  # node 0 collects the rank files (the output folder must be shared between nodes)
    outcomes: list[Outcome] = []
    interrupted = False
    world = fabric.world_size if strategy != "ddp_spawn" else processes * sharding.num_nodes
    for rank in range(world):
        path = _rank_file(out, rank)
        if path.is_file():
            payload = json.loads(path.read_text())
            interrupted |= bool(payload["interrupted"])
            outcomes.extend(Outcome(**o) for o in payload["outcomes"])
            path.unlink()
        else:
            for index in range(rank, len(sources), world):
                outcomes.append(
                    Outcome(names[index], sources[index], "failed", f"process {rank} wrote no summary", rank=rank)
                )
    order = {s: i for i, s in enumerate(sources)}
    outcomes.sort(key=lambda o: order.get(o.source, len(order)))
    return ShardResult(outcomes, interrupted)
