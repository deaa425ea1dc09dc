"""The ``fit.py`` job: resolve photos, detect, batch, fit, export; skip what is done; report failures; shard photos
over processes with Lightning Fabric.

``image=`` accepts a photo file, a folder (searched recursively for photos), a glob pattern (``'dir/*.jpg'``), or a
list file (``.txt``/``.lst``: one path per line, ``#`` comments; relative paths are relative to the list file) —
the list file is the way to pass paths that contain commas or other characters awkward on a command line.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganfit.fitting.export import export_photo, is_done
from ganfit.fitting.fitter import Fitter, FittingConfig, IdentityJudge
from ganfit.fitting.photos import PreparedPhoto, prepare_photo

logger = logging.getLogger(__name__)

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}
ASTRONAUT = "astronaut"


class InputSpecError(ValueError):
    """``image=`` names nothing usable (missing file/folder, empty glob or list)."""


@dataclass
class Outcome:
    """What happened to one input photo."""

    name: str
    source: str
    status: str  # "fitted" | "skipped" | "failed"
    reason: str = ""
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    """End-of-run summary over all photos (all processes)."""

    out: str
    outcomes: list[Outcome]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def format(self) -> str:
        lines = [
            f"fitted {self.count('fitted')}, skipped {self.count('skipped')}, failed {self.count('failed')} "
            f"(outputs in {self.out})"
        ]
        fitted = [o for o in self.outcomes if o.status == "fitted"]
        for outcome in fitted[:10]:
            lines.append(f"  fitted: {outcome.source} -> {Path(self.out) / outcome.name}/ (compare.png, mesh.glb, ...)")
        if len(fitted) > 10:
            lines.append(f"  ... and {len(fitted) - 10} more fitted photos (see {Path(self.out) / 'summary.json'})")
        for outcome in self.outcomes:
            if outcome.status != "fitted":
                lines.append(f"  {outcome.status}: {outcome.source}: {outcome.reason}")
        return "\n".join(lines)

    def scores(self) -> dict[str, float]:
        """Means over the fitted photos (this run's and earlier fits it skipped): identity cosine (before/after
        stage 2), landmark error (IOD), and ``score`` = identity cosine - 5 x landmark error (what sweeps maximise)."""
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

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "fitted": self.count("fitted"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "scores": self.scores(),
            "photos": [asdict(o) for o in self.outcomes],
        }


# ---------------------------------------------------------------------------------------------------- inputs
def collect_inputs(spec: str | os.PathLike[str] | None) -> list[str]:
    """Photo paths named by ``spec`` (file, folder, glob, list file), sorted; ``None`` -> the embedded astronaut.

    Files in a folder are filtered by suffix; a single file or list-file entry is taken as given (so a bad file is
    reported by the reader, not silently dropped).
    """
    if spec is None or str(spec) in ("", ASTRONAUT):
        return [ASTRONAUT]
    path = Path(os.path.expanduser(str(spec)))
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        if not found:
            raise InputSpecError(f"image={spec}: the folder holds no photos ({', '.join(sorted(PHOTO_SUFFIXES))})")
        return found
    if path.is_file():
        if path.suffix.lower() in LIST_SUFFIXES:
            entries = []
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(os.path.expanduser(line))
                    entries.append(str(entry if entry.is_absolute() else path.parent / entry))
            if not entries:
                raise InputSpecError(f"image={spec}: the list file names no photos")
            return entries
        return [str(path)]
    if any(ch in str(spec) for ch in "*?["):
        found = sorted(p for p in glob.glob(os.path.expanduser(str(spec)), recursive=True) if Path(p).is_file())
        if not found:
            raise InputSpecError(f"image={spec}: the glob pattern matches no files")
        return found
    raise InputSpecError(
        f"image={spec}: no such file or folder (give a photo, a folder, a glob like 'dir/*.jpg' or a .txt list file)"
    )


def output_names(sources: list[str]) -> list[str]:
    """One output folder name per source: the file stem, prefixed by parent folders where stems collide."""
    stems = [Path(s).stem for s in sources]
    names = []
    for source, stem in zip(sources, stems, strict=True):
        if stems.count(stem) > 1:
            parent = Path(source).parent.name or "root"
            stem = f"{parent}_{stem}"
        names.append(stem)
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # still colliding (same parent names): number them
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def load_photo(source: str) -> np.ndarray:
    """uint8 [H, W, 3] of a source (a path, or the embedded astronaut portrait)."""
    if source == ASTRONAUT:
        from skimage import data

        return np.ascontiguousarray(data.astronaut()[..., :3])
    from ganfit.image_io import read_image

    return read_image(source)


# ------------------------------------------------------------------------------------------------ components
def identity_judge(network, taps: list[str] | tuple[str, ...] | None = None) -> IdentityJudge:
    """Wrap an identity network of ``ganfit.identity`` with the project's differentiable alignment (its template)."""
    from ganfit.identity.align import estimate_alignment, warp_to_chip

    template = getattr(network, "template", "dlib")
    return IdentityJudge(
        network,
        align=lambda landmarks, size: estimate_alignment(landmarks, size, template),
        warp=warp_to_chip,
        taps=tuple(taps) if taps else None,
    )


def build_generator(path: str | None):
    """The frozen texture generator from ``generator.pt`` (``ganfit.gan.load_generator``); ``"default"`` or null is
    the shipped one (``ganfit.gan.default``, checksum verified)."""
    from ganfit.gan import load_generator
    from ganfit.gan.default import resolve_generator

    return load_generator(resolve_generator(path))


# ---------------------------------------------------------------------------------------------------- the job
@dataclass
class JobOptions:
    """Plain, picklable options of a fit job (everything but the fitting preset).

    ``face_model`` and ``identity`` are Hydra node dicts with ``_target_`` (instantiated in :func:`build_fitter`,
    in each worker process; ``identity`` may be None: no identity terms); ``renderer`` holds the options of
    ``ganfit.render.pipeline.FaceRenderer.from_face_model`` (the resolution comes from the fitting preset).
    """

    out: str = "outputs/fit"
    overwrite: bool = False
    landmarks_backend: str = "mediapipe"
    face_index: int = 0
    face_model: dict[str, Any] = field(default_factory=lambda: {"_target_": "ganfit.face_model.load_face_model"})
    renderer: dict[str, Any] = field(default_factory=lambda: {"backend": "auto"})
    identity: dict[str, Any] | None = field(
        default_factory=lambda: {"_target_": "ganfit.identity.load_identity_network", "name": "dlib"}
    )
    texture_mode: str = "free"
    generator: str | None = None
    device: str = "cpu"
    seed: int = 0
    progress: bool = True


def build_fitter(options: JobOptions, fitting: FittingConfig) -> Fitter:
    """Instantiate the face model, rasterizer context, identity network and generator, and the fitter."""
    from hydra.utils import instantiate

    from ganfit.fitting.shading import FaceScene

    face_model = instantiate(options.face_model).to(options.device)
    scene = FaceScene(face_model, **options.renderer)
    identity = None
    if options.identity:
        identity = identity_judge(instantiate(options.identity), fitting.feature_taps)
    generator = build_generator(options.generator) if options.texture_mode == "gan" else None
    if generator is not None:
        generator = generator.to(options.device)
    return Fitter(face_model, fitting, scene=scene, identity=identity, generator=generator, device=options.device)


def run_shard(
    sources: list[str],
    names: list[str],
    options: JobOptions,
    fitting: FittingConfig,
    fitter: Fitter | None = None,
    position: int = 0,
) -> list[Outcome]:
    """Fit ``sources`` (already this process's shard) in batches; one bad photo never stops the rest."""
    from tqdm import tqdm

    from ganfit.image_io import ImageInputError
    from ganfit.landmarks import NoFaceError, detect_face

    out = Path(options.out)
    outcomes: list[Outcome] = []
    pending: list[tuple[str, str]] = []
    for source, name in zip(sources, names, strict=True):
        if not options.overwrite and is_done(out / name):
            try:
                previous = json.loads((out / name / "metrics.json").read_text())
            except (OSError, ValueError):
                previous = {}
            outcomes.append(Outcome(name, source, "skipped", "already fitted (overwrite=true to redo)", 0.0, previous))
        else:
            pending.append((source, name))
    if not pending:
        return outcomes
    if fitter is None:
        torch.manual_seed(options.seed)
        fitter = build_fitter(options, fitting)
    bar = tqdm(total=len(pending), desc="fitting", unit="photo", disable=not options.progress, position=position)
    batch: list[tuple[PreparedPhoto, str]] = []

    def flush() -> None:
        if not batch:
            return
        photos = [p for p, _ in batch]
        started = time.perf_counter()
        try:
            result = fitter.fit(photos)
        except Exception as error:  # a failed optimisation fails its batch's photos, not the run
            logger.exception("fitting failed for %s", [p.name for p in photos])
            for photo, source in batch:
                outcomes.append(Outcome(photo.name, source, "failed", f"fit failed: {type(error).__name__}: {error}"))
        else:
            for index, (photo, source) in enumerate(batch):
                try:
                    if not np.isfinite(result.metrics[index]["landmark_error_iod"]):
                        raise FloatingPointError("the fit diverged (non-finite parameters)")
                    export_photo(fitter, photo, index, result, out)
                    outcomes.append(
                        Outcome(photo.name, source, "fitted", "", time.perf_counter() - started, result.metrics[index])
                    )
                except Exception as error:
                    logger.exception("export failed for %s", photo.name)
                    outcomes.append(Outcome(photo.name, source, "failed", f"{type(error).__name__}: {error}"))
        bar.update(len(batch))
        batch.clear()

    for source, name in pending:
        try:
            image = load_photo(source)
            detection = detect_face(
                image, backend=options.landmarks_backend, face_index=options.face_index, name=source
            )
            photo = prepare_photo(
                image,
                detection.landmarks,
                fitting.resolution,
                fitting.crop_scale,
                name=name,
                path=None if source == ASTRONAUT else Path(source),
            )
        except (ImageInputError, NoFaceError) as error:
            outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
            bar.update(1)
            continue
        except Exception as error:  # anything else about one photo: report and go on
            logger.exception("could not prepare %s", source)
            outcomes.append(Outcome(name, source, "failed", f"{type(error).__name__}: {error}"))
            bar.update(1)
            continue
        batch.append((photo, source))
        if len(batch) >= fitting.batch_size:
            flush()
    flush()
    bar.close()
    return outcomes


ShardFn = Callable[..., list[Outcome]]
"""``shard_fn(sources, names, options, fitting, position) -> outcomes``: process one shard of photos."""


class _ShardJob:
    """Everything a worker process needs, in a plain object: Fabric's ``launch`` walks dataclass arguments (and
    refuses frozen ones), so the job's options travel opaquely inside this wrapper."""

    def __init__(self, shard_fn: ShardFn, out: str, sources: list[str], names: list[str], options, fitting) -> None:
        self.shard_fn, self.out, self.sources, self.names = shard_fn, out, sources, names
        self.options, self.fitting = options, fitting


def _shard_worker(fabric, job: _ShardJob) -> None:
    rank, world = fabric.global_rank, fabric.world_size
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    shard = list(range(rank, len(job.sources), world))
    outcomes = job.shard_fn(
        [job.sources[i] for i in shard], [job.names[i] for i in shard], job.options, job.fitting, rank
    )
    path = Path(job.out) / f".summary-rank{rank}.json"
    path.write_text(json.dumps([asdict(o) for o in outcomes], default=_jsonable))
    fabric.barrier()


def run_sharded(
    shard_fn: ShardFn, sources: list[str], names: list[str], out: Path, options, fitting, processes: int = 1
) -> list[Outcome]:
    """Run ``shard_fn`` over all photos, in this process or sharded over ``processes`` CPU processes with Lightning
    Fabric (DDP, gloo). Outcomes come back in the order of ``sources``; a process that wrote nothing is a failure."""
    if processes <= 1:
        return shard_fn(sources, names, options, fitting, 0)
    from lightning_fabric import Fabric

    for stale in out.glob(".summary-rank*.json"):
        stale.unlink()
    fabric = Fabric(accelerator="cpu", devices=processes, strategy="ddp_spawn")
    fabric.launch(_shard_worker, _ShardJob(shard_fn, str(out), sources, names, options, fitting))
    outcomes = []
    for rank in range(processes):
        path = out / f".summary-rank{rank}.json"
        if path.is_file():
            outcomes.extend(Outcome(**o) for o in json.loads(path.read_text()))
            path.unlink()
        else:
            outcomes.append(Outcome(f"rank{rank}", "-", "failed", f"process {rank} wrote no summary"))
    order = {s: i for i, s in enumerate(sources)}
    outcomes.sort(key=lambda o: order.get(o.source, len(order)))
    return outcomes


def _fit_shard(sources, names, options: JobOptions, fitting: FittingConfig, position: int) -> list[Outcome]:
    return run_shard(sources, names, options, fitting, position=position)


def run_job(spec: str | None, options: JobOptions, fitting: FittingConfig, processes: int = 1) -> Summary:
    """Fit every photo named by ``spec`` into ``options.out``; ``processes > 1`` shards photos over CPU processes
    with Lightning Fabric (DDP, gloo)."""
    sources = collect_inputs(spec)
    names = output_names(sources)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = run_sharded(_fit_shard, sources, names, out, options, fitting, processes)
    summary = Summary(str(out), outcomes)
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary.to_json(), indent=2, default=_jsonable))
    os.replace(tmp, out / "summary.json")
    return summary


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Iterable):
        return list(value)
    return str(value)
