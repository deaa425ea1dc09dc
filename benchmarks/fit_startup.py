"""Where the time of the embedded demo (``python fit.py``: the astronaut, default preset, GAN texture) goes.

Two measurements, printed as markdown tables with the machine and its load:

1. **the whole process**, ``python fit.py out=<tmp> overwrite=true progress=false [overrides]``: wall seconds and the
   child's CPU seconds (user + sys, ``os.wait4``), ``--repeats`` times. ``--src DIR`` (repeatable) runs the same
   command against other source trees (``PYTHONPATH=DIR``), **interleaved** (A B A B ...), so a before/after
   comparison sees the same load; ``--discard-first`` runs each once untimed first (fills numba's cache if cold);
2. **the breakdown**: the real ``fit.py`` run in this process (``ganfit.cli.fit_main``) with a timer around each
   step of the engine and the export (the functions are wrapped, nothing is replayed): imports, Hydra, the config
   check, model loads, photo, detection, crop, the fit's stages, the export's parts, the HTML report. Each row gives
   wall and process CPU seconds (all threads); ``(rest)`` rows are a step's own time outside the rows under it.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=... python benchmarks/fit_startup.py [--repeats 3] [--src ../base/src]
        [--skip-process] [--skip-breakdown] [fit.py overrides ...]
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
_C0 = time.process_time()

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import load_line, machine_line  # noqa: E402


@dataclass
class ProcessRun:
    """One whole-process run: wall and CPU (user + sys) seconds, the 1-minute load average before it."""

    wall: float
    cpu: float
    load: float


def run_once(src: str, extra: list[str]) -> ProcessRun:
    """``python fit.py`` in a fresh process with ``PYTHONPATH=src``."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / "fit.py"), f"out={out}", "overwrite=true", "progress=false", *extra]
        env = {**os.environ, "PYTHONPATH": src}
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} (PYTHONPATH={src}) exited {proc.returncode}:\n{errors[-2000:]}")
        return ProcessRun(wall, usage.ru_utime + usage.ru_stime, load)


def whole_process(srcs: list[str], repeats: int, extra: list[str], discard_first: bool) -> dict[str, list[ProcessRun]]:
    """``{src: [runs]}``, the sources' runs interleaved."""
    if discard_first:
        for src in srcs:
            run_once(src, extra)
    runs: dict[str, list[ProcessRun]] = {src: [] for src in srcs}
    for _ in range(repeats):
        for src in srcs:
            runs[src].append(run_once(src, extra))
            print(f"  {src}: {runs[src][-1]}", file=sys.stderr, flush=True)
    return runs


# ------------------------------------------------------------------------------------------------ the breakdown
@dataclass
class Row:
    """A timed step: its label, nesting depth, wall and CPU seconds, calls, and the rows timed inside it."""

    label: str
    depth: int
    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0
    children: list[Row] = field(default_factory=list)


class Recorder:
    """Wraps functions (module or class attributes) with timers that build a tree of :class:`Row`."""

    def __init__(self) -> None:
        self.root = Row("python fit.py", -1)
        self.stack = [self.root]

    def child(self, label: str) -> Row:
        parent = self.stack[-1]
        for row in parent.children:  # repeated calls of one step add up
            if row.label == label:
                return row
        row = Row(label, parent.depth + 1)
        parent.children.append(row)
        return row

    def timed(self, label: str, function: Callable) -> Callable:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            row = self.child(label)
            self.stack.append(row)
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                row.wall += time.perf_counter() - wall
                row.cpu += time.process_time() - cpu
                row.calls += 1
                self.stack.pop()

        return wrapper

    def wrap(self, module: str, attribute: str, label: str) -> None:
        """Replace ``module.attribute`` (``attribute`` may be ``Class.method``) by its timed version; a name that
        does not exist in this source tree is left out."""
        try:
            owner = importlib.import_module(module)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            function = getattr(owner, name)
        except (ImportError, AttributeError):
            return
        setattr(owner, name, self.timed(label, function))

    def marks(self, label: str, steps: list[tuple[str, str, str]]) -> None:
        """Time the phases of one long function (``Fitter.fit``): each ``(module, attribute, phase label)`` starts
        a phase when it is called (the phase runs until the next mark or the end of the function)."""
        phase: dict[str, Row | None] = {"row": None}
        started = {"wall": 0.0, "cpu": 0.0}

        def close() -> None:
            row = phase["row"]
            if row is not None:
                row.wall += time.perf_counter() - started["wall"]
                row.cpu += time.process_time() - started["cpu"]
                row.calls += 1
                phase["row"] = None

        def open_(name: str) -> None:
            close()
            phase["row"] = self.child(name)
            started["wall"], started["cpu"] = time.perf_counter(), time.process_time()

        counts: dict[str, int] = {}
        for module, attribute, names in steps:
            owner = importlib.import_module(module)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            function = getattr(owner, name)
            labels = names.split("|")

            def marked(*args, _function=function, _labels=labels, _key=attribute, **kwargs):
                if len(self.stack) > 1 and self.stack[-1].label == label:
                    count = counts.get(_key, 0)
                    counts[_key] = count + 1
                    if count < len(_labels) and _labels[count]:
                        open_(_labels[count])
                return _function(*args, **kwargs)

            setattr(owner, name, marked)

        module, attribute = "ganfit.fitting.fitter", "Fitter.fit"
        owner = importlib.import_module(module).Fitter
        fit = owner.fit

        @functools.wraps(fit)
        def timed_fit(*args, **kwargs):
            row = self.child(label)
            self.stack.append(row)
            counts.clear()
            wall, cpu = time.perf_counter(), time.process_time()
            open_("init: crops, PnP camera")
            try:
                return fit(*args, **kwargs)
            finally:
                close()
                row.wall += time.perf_counter() - wall
                row.cpu += time.process_time() - cpu
                row.calls += 1
                self.stack.pop()

        owner.fit = timed_fit


def breakdown(extra: list[str], excluded: tuple[float, float] = (0.0, 0.0)) -> Row:
    """The tree of timed steps of one ``fit.py`` run in this process; ``excluded`` (wall, CPU seconds) is time this
    process spent on other things since it started (the whole-process runs), left out of the start-up and the total."""
    recorder = Recorder()
    imports = recorder.child("start-up: interpreter, thread policy, imports (torch, numba, hydra, ganfit.cli)")
    from ganfit.threads import apply_thread_policy

    apply_thread_policy()
    cli = importlib.import_module("ganfit.cli")
    imports.wall = time.perf_counter() - _T0 - excluded[0]
    imports.cpu, imports.calls = time.process_time() - _C0 - excluded[1], 1

    wrap = recorder.wrap
    wrap("ganfit.cli", "fit_task", "fit_task (after Hydra composed the config)")
    wrap("ganfit.cli", "job_config", "schema check of the composed config")
    wrap("ganfit.cli", "check_generator", "generator check")
    wrap("ganfit.cli", "run_fit_job", "run_fit_job")
    wrap("ganfit.jobs.fit_job", "FitTask.__init__", "FitTask (config, settings hash)")
    wrap("ganfit.jobs.fit_job", "FitTask.setup", "models: FitTask.setup")
    wrap("ganfit.face_model", "load_face_model", "face model (cache)")
    wrap("ganfit.jobs.components", "FaceScene", "renderer (FaceScene)")
    wrap("ganfit.jobs.components", "load_generator", "texture generator")
    wrap("ganfit.jobs.components", "build_judges", "identity network (dlib ResNet)")
    wrap("ganfit.jobs.components", "Fitter", "Fitter()")
    wrap("ganfit.jobs.engine", "load_photo", "load the photo")
    wrap("ganfit.jobs.engine", "detect_face", "detection (first call loads mediapipe)")
    wrap("ganfit.jobs.engine", "prepare_photo", "crop the photo")
    recorder.marks(
        "Fitter.fit",
        [
            ("ganfit.fitting.fitter", "_optimizer", "stage 1a rigid|stage 1b align|"),
            ("ganfit.fitting.objective", "Objective.references", "stage 2 set-up: photo descriptors, latent search"),
            ("ganfit.fitting.fitter", "Fitter._init_appearance", ""),
            ("ganfit.fitting.objective", "Objective.evaluate", "stage 2 set-up: evaluation|final evaluation, render"),
            ("ganfit.fitting.objective", "Objective.full_terms", "stage 2 full"),
        ],
    )
    wrap("ganfit.jobs.fit_job", "export_photo", "export_photo")
    wrap("ganfit.fitting.export", "build_detail_texture", "detail texture")
    wrap("ganfit.fitting.export", "eye_colours", "eye colours")
    wrap("ganfit.fitting.export", "_write_meshes", "meshes: OBJ + GLB")
    wrap("ganfit.fitting.export", "render_full", "render at photo resolution (render, overlay)")
    wrap("ganfit.fitting.export", "_loss_plot", "loss.png (matplotlib)")
    wrap("ganfit.fitting.export", "_write_png", "PNG writes")
    wrap("ganfit.fitting.export", "_draw_landmarks", "landmark drawing")
    wrap("ganfit.jobs.fit_job", "write_fit_report", "HTML report")
    wrap("ganfit.jobs.fit_job", "Summary.write", "summary.json")

    fit_main = recorder.timed("fit_main: Hydra, the job, the report", cli.fit_main)
    with tempfile.TemporaryDirectory() as out:
        argv = sys.argv
        sys.argv = ["fit.py", f"out={out}", "overwrite=true", "progress=false", *extra]
        try:
            code = fit_main()
        finally:
            sys.argv = argv
    if code:
        raise RuntimeError(f"fit.py exited {code}")
    recorder.root.wall = time.perf_counter() - _T0 - excluded[0]
    recorder.root.cpu = time.process_time() - _C0 - excluded[1]
    return recorder.root


def table(root: Row) -> list[str]:
    lines = ["| step | wall s | CPU s | calls |", "|---|---|---|---|"]

    def emit(row: Row) -> None:
        indent = "&nbsp;&nbsp;" * row.depth
        lines.append(f"| {indent}{row.label} | {row.wall:.2f} | {row.cpu:.2f} | {row.calls} |")
        for child in row.children:
            emit(child)
        if row.children:
            wall = row.wall - sum(c.wall for c in row.children)
            cpu = row.cpu - sum(c.cpu for c in row.children)
            if abs(wall) >= 0.005 or abs(cpu) >= 0.005:
                lines.append(f"| {indent}&nbsp;&nbsp;(rest) | {wall:.2f} | {cpu:.2f} | |")

    for row in root.children:
        emit(row)
    lines.append(f"| **whole process** | {root.wall:.2f} | {root.cpu:.2f} | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs per source tree (median)")
    parser.add_argument("--src", action="append", default=None, help="source tree(s) to compare (default: src/)")
    parser.add_argument("--discard-first", action="store_true", help="one untimed whole-process run per tree first")
    parser.add_argument("--skip-process", action="store_true", help="only the in-process breakdown")
    parser.add_argument("--skip-breakdown", action="store_true", help="only the whole-process runs")
    parser.add_argument("overrides", nargs="*", help="fit.py overrides, e.g. fitting=fast")
    args = parser.parse_args()
    print(machine_line())
    process_started = time.perf_counter(), time.process_time()
    if not args.skip_process:
        srcs = args.src or [str(ROOT / "src")]
        runs = whole_process(srcs, args.repeats, args.overrides, args.discard_first)
        print(f"\n`python fit.py {' '.join(args.overrides)}` whole process ({args.repeats} runs each, interleaved):\n")
        print("| source tree | wall s median | CPU s median | wall s runs | CPU s runs | load (1 min) before runs |")
        print("|---|---|---|---|---|---|")
        for src, series in runs.items():
            walls, cpus = [r.wall for r in series], [r.cpu for r in series]
            print(
                f"| {src} | {statistics.median(walls):.1f} | {statistics.median(cpus):.1f} | "
                f"{', '.join(f'{w:.1f}' for w in walls)} | {', '.join(f'{c:.1f}' for c in cpus)} | "
                f"{', '.join(f'{r.load:.1f}' for r in series)} |"
            )
        print(f"\n({load_line()} after the runs)")
    if args.skip_breakdown:
        return
    excluded = (time.perf_counter() - process_started[0], time.process_time() - process_started[1])
    root = breakdown(args.overrides, excluded)
    import torch

    print(f"\nBreakdown of one run in this process ({machine_line()}; torch threads {torch.get_num_threads()}):\n")
    print("\n".join(table(root)))


if __name__ == "__main__":
    main()
