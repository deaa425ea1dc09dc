"""Where the time of the embedded demo (``python fit.py``: the astronaut, default preset, GAN texture) goes.

Two measurements, printed as markdown tables with the machine and its load:

1. the whole process, ``python fit.py out=<tmp> overwrite=true progress=false`` run ``--repeats`` times (median;
   warm caches: the first run fills numba's cache if it is cold and is not counted with ``--discard-first``);
2. the same steps replayed in this process with a timer around each, in fit.py's order: imports, config, model
   loads (face model, renderer, identity network, generator), photo, detection (the first call loads the detector;
   a second call times the detection alone), photo preparation, stage 1, stage 2 (from the fit's own metrics),
   export.

    GANFIT_ASSETS=... NUMBA_CACHE_DIR=... python benchmarks/fit_startup.py [--repeats 3] [--skip-process]
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402


def whole_process(repeats: int, extra: list[str]) -> list[float]:
    """Wall seconds of ``python fit.py`` (the demo) per run, in a fresh process each time."""
    seconds = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, str(ROOT / "fit.py"), f"out={out}", "overwrite=true", "progress=false", *extra]
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            seconds.append(time.perf_counter() - t0)
    return seconds


def breakdown(extra: list[str]) -> list[tuple[str, float]]:
    """``[(step, seconds)]`` of the demo's steps replayed in this process."""
    steps: list[tuple[str, float]] = []
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps.append((name, now - mark))
        mark = now

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    lap("import hydra")
    import torch

    lap("import torch")
    from ganfit.fitting.cli import options_from_config
    from ganfit.fitting.runner import build_generator, identity_judge, load_photo

    from ganfit.fitting.export import export_photo
    from ganfit.fitting.fitter import Fitter
    from ganfit.fitting.photos import prepare_photo
    from ganfit.fitting.shading import FaceScene
    from ganfit.landmarks import detect_face

    lap("import ganfit.fitting (+ its dependencies)")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="fit", overrides=extra)
    options, fitting = options_from_config(cfg)
    lap("compose the config")
    torch.manual_seed(options.seed)
    face_model = instantiate(options.face_model)
    lap("load the face model")
    scene = FaceScene(face_model, **options.renderer)
    lap("renderer (FaceScene)")
    identity = identity_judge(instantiate(options.identity), fitting.feature_taps) if options.identity else None
    lap("load the identity network")
    generator = build_generator(options.generator) if options.texture_mode == "gan" else None
    lap("load the texture generator")
    fitter = Fitter(face_model, fitting, scene=scene, identity=identity, generator=generator, device=options.device)
    lap("build the fitter")
    image = load_photo("astronaut")
    lap("load the photo")
    detection = detect_face(image, backend=options.landmarks_backend, face_index=options.face_index, name="astronaut")
    lap("detection, first call (loads the detector)")
    detect_face(image, backend=options.landmarks_backend, face_index=options.face_index, name="astronaut")
    lap("(detection alone, second call: not in fit.py)")
    photo = prepare_photo(image, detection.landmarks, fitting.resolution, fitting.crop_scale, name="astronaut")
    lap("prepare the photo")
    result = fitter.fit([photo])
    fit_seconds = time.perf_counter() - mark
    stage1 = float(result.metrics[0]["stage1_seconds"])
    stage2 = float(result.metrics[0]["stage2_seconds"])
    steps += [
        ("fit: stage 1 (landmarks; incl. first renderer calls)", stage1),
        ("fit: stage 2 (full objective)", stage2),
        ("fit: rest (init, evaluation)", fit_seconds - stage1 - stage2),
    ]
    mark = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        export_photo(fitter, photo, 0, result, Path(out))
        lap("export (mesh, textures, compare.png)")
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs (median reported)")
    parser.add_argument("--discard-first", action="store_true", help="one extra, untimed whole-process run first")
    parser.add_argument("--skip-process", action="store_true", help="only the in-process breakdown")
    parser.add_argument("overrides", nargs="*", help="fit.py overrides, e.g. fitting=fast")
    args = parser.parse_args()
    print(machine_line())
    if not args.skip_process:
        if args.discard_first:
            whole_process(1, args.overrides)
        runs = whole_process(args.repeats, args.overrides)
        print(
            f"\n`python fit.py {' '.join(args.overrides)}` whole process: median {statistics.median(runs):.1f} s "
            f"(runs: {', '.join(f'{s:.1f}' for s in runs)}); {machine_line()}"
        )
    interpreter = time.perf_counter() - _T0
    steps = breakdown(args.overrides)
    total = sum(s for name, s in steps if not name.startswith("("))
    print(f"\nIn-process breakdown ({machine_line()}; this script's own start-up {interpreter:.2f} s not included):\n")
    print("| step | seconds | share |")
    print("|---|---|---|")
    for name, seconds in steps:
        share = "" if name.startswith("(") else f"{100 * seconds / total:.0f}%"
        print(f"| {name} | {seconds:.2f} | {share} |")
    print(f"| **sum** | {total:.2f} | |")
    print(
        f"\ntorch threads {__import__('torch').get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )


if __name__ == "__main__":
    main()
