"""Landmark benchmark: detection speed and accuracy of the mediapipe and dlib backends on the shared photos.

    GANFIT_PHOTOS=/path/to/photos python benchmarks/landmarks.py [--repeat 3] [--cnn] [--sections timing,rate]

Prints markdown tables (medians / means over photos):
1. detection time per image and backend (median ms; the detector is built once, warm-up excluded);
2. deep3d-examples (25 photos): faces found, mutual NME of the two backends' 68 points (inter-ocular normalised), and
   NME of each backend's 5 points against ``detections/*.txt`` (another detector's output, not ground truth);
3. frl-london/neutral_front (80 photos): eye-centre error vs the hand-placed pupils (first two ``.tem`` points),
   normalised by the inter-pupil distance; for mediapipe also its iris centres (mesh points 468, 473);
4. detection rate on in-the-wild photos (mebeauty, face-recognition-examples).
Nothing here was used to fit the mediapipe map (fitted on frl-canada only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from ganfit.image_io import ImageInputError, read_image
from ganfit.landmarks import detect_faces, get_detector
from ganfit.landmarks.evaluation import nme, pupil_error, read_five_points, read_tem

BACKENDS = ("mediapipe", "dlib")
REGIONS = {
    "jaw 0-16": slice(0, 17),
    "brows 17-26": slice(17, 27),
    "nose 27-35": slice(27, 36),
    "eyes 36-47": slice(36, 48),
    "outer lip 48-59": slice(48, 60),
    "inner lip 60-67": slice(60, 68),
}
FIVE_NAMES = ("eye (img-left)", "eye (img-right)", "nose tip", "mouth (img-left)", "mouth (img-right)")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _stats(values: list[float]) -> str:
    a = np.asarray(values)
    return f"{a.mean():.4f} | {np.median(a):.4f} | {a.max():.4f}"


def timing(photos: Path, repeat: int, cnn: bool) -> None:
    sets = {
        "deep3d-examples (250-1350 px)": _images(photos / "deep3d-examples")[:10],
        "frl-london (1024x1024)": _images(photos / "frl-london" / "neutral_front")[:10],
    }
    # (label, backend, options, photos per set, repeats, time the huge image)
    configs: list[tuple[str, str, dict, int, int, bool]] = [
        ("mediapipe", "mediapipe", {}, 10, repeat, True),
        ("dlib HOG", "dlib", {}, 10, repeat, True),
    ]
    if cnn:  # seconds per image on CPU: fewer photos, one run each, no 17-megapixel image
        configs.append(("dlib CNN (mmod)", "dlib", {"detector": "cnn"}, 3, 1, False))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n### Detection time per image (median ms, detector built once; {os.cpu_count()} cores, load {load})\n")
    print("| backend | " + " | ".join(sets) + " | 4200x4200 upscaled photo |")
    print("|---|" + "---|" * (len(sets) + 1))
    huge = np.asarray(Image.fromarray(read_image(sets["frl-london (1024x1024)"][0])).resize((4200, 4200)))
    for label, backend, options, count, runs, with_huge in configs:
        get_detector(backend, **options)  # build outside the timing
        cells = []
        for paths in sets.values():
            images = [read_image(p) for p in paths[:count]]
            per_image = [_median_ms(partial(detect_faces, im, backend, **options), runs) for im in images]
            cells.append(f"{statistics.median(per_image):.1f}")
        huge_ms = _median_ms(partial(detect_faces, huge, backend, **options), max(1, runs // 2)) if with_huge else None
        cells.append("-" if huge_ms is None else f"{huge_ms:.1f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def deep3d(photos: Path) -> None:
    folder = photos / "deep3d-examples"
    found = dict.fromkeys(BACKENDS, 0)
    mutual, five = [], {b: [] for b in BACKENDS}
    per_point = {b: [] for b in BACKENDS}
    offsets = {b: [] for b in BACKENDS}
    paths = _images(folder)
    for path in paths:
        image = read_image(path)
        reference = read_five_points(folder / "detections" / f"{path.stem}.txt") + 0.5  # pixel index -> centre
        iod = float(np.linalg.norm(reference[1] - reference[0]))
        faces = {}
        for backend in BACKENDS:
            detected = detect_faces(image, backend)
            found[backend] += bool(detected)
            if detected:
                faces[backend] = detected[0]
                points = detected[0].five_points()
                five[backend].append(nme(points, reference, iod))
                per_point[backend].append(np.linalg.norm(points - reference, axis=1) / iod)
                offsets[backend].append((points - reference) / iod)
        if len(faces) == 2:
            mutual.append(nme(faces["mediapipe"].landmarks, faces["dlib"].landmarks, faces["dlib"].inter_ocular()))
    print(f"\n### deep3d-examples ({len(paths)} photos, all single-face)\n")
    print("| measure | mean | median | max |\n|---|---|---|---|")
    print(f"| faces found: mediapipe {found['mediapipe']}/{len(paths)}, dlib {found['dlib']}/{len(paths)} | | | |")
    print(f"| mutual NME mediapipe vs dlib, 68 points (/ dlib inter-ocular) | {_stats(mutual)} |")
    for backend in BACKENDS:
        print(f"| {backend} 5 points vs detections/*.txt (/ ref eye distance) | {_stats(five[backend])} |")
    print("\nPer point, mean error and mean signed offset (dx, dy) vs detections/*.txt, in reference eye distances:\n")
    print("| point | " + " | ".join(f"{b} error | {b} offset" for b in BACKENDS) + " |")
    print("|---|" + "---|---|" * len(BACKENDS))
    for i, name in enumerate(FIVE_NAMES):
        cells = []
        for backend in BACKENDS:
            err = np.mean([p[i] for p in per_point[backend]])
            off = np.mean([o[i] for o in offsets[backend]], axis=0)
            cells.append(f"{err:.3f} | ({off[0]:+.3f}, {off[1]:+.3f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def london(photos: Path) -> None:
    folder = photos / "frl-london" / "neutral_front"
    errors: dict[str, list[float]] = {"mediapipe": [], "mediapipe iris (468/473)": [], "dlib": []}
    bias: dict[str, list[np.ndarray]] = {k: [] for k in errors}
    missed = dict.fromkeys(BACKENDS, 0)
    paths = _images(folder)
    for path in paths:
        image = read_image(path)
        pupils = read_tem(path.with_suffix(".tem"))[:2]
        ipd = float(np.linalg.norm(pupils[1] - pupils[0]))
        for backend in BACKENDS:
            faces = detect_faces(image, backend)
            if not faces:
                missed[backend] += 1
                continue
            estimates = {backend: faces[0].eye_centres()}
            if backend == "mediapipe":
                estimates["mediapipe iris (468/473)"] = faces[0].dense[[468, 473]]
            for key, eyes in estimates.items():
                errors[key].append(pupil_error(eyes, pupils))
                bias[key].append(((eyes - pupils) / ipd).mean(axis=0))
    print(f"\n### frl-london neutral_front ({len(paths)} photos): eye centres vs hand-placed pupils (/ inter-pupil)\n")
    print(f"Missed faces: mediapipe {missed['mediapipe']}, dlib {missed['dlib']}.\n")
    print("| estimate | mean | median | max | mean offset (dx, dy) |\n|---|---|---|---|---|")
    for key, values in errors.items():
        off = np.mean(bias[key], axis=0)
        print(f"| {key} | {_stats(values)} | ({off[0]:+.4f}, {off[1]:+.4f}) |")


def detection_rate(photos: Path) -> None:
    sets = {
        "mebeauty (in the wild, 1 face each)": (
            _images(photos / "mebeauty" / "images") if (photos / "mebeauty" / "images").is_dir() else []
        ),
        "face-recognition-examples test_images": _images(photos / "face-recognition-examples" / "test_images"),
    }
    print("\n### Detection on other photos (one face each, except where a backend sees more)\n")
    print(
        "| set | photos | mediapipe >= 1 face | dlib >= 1 face | mediapipe > 1 | dlib > 1 "
        "| mutual NME of largest faces: mean / median / max |\n|---|---|---|---|---|---|---|"
    )
    region_rows = []
    for label, paths in sets.items():
        if not paths:
            continue
        hits = dict.fromkeys(BACKENDS, 0)
        several = dict.fromkeys(BACKENDS, 0)
        mutual = []
        regions: list[list[float]] = []
        readable = 0
        for path in paths:
            try:
                image = read_image(path)
            except ImageInputError:
                continue
            readable += 1
            found = {backend: detect_faces(image, backend) for backend in BACKENDS}
            for backend, faces in found.items():
                hits[backend] += bool(faces)
                several[backend] += len(faces) > 1
            if all(found.values()):
                a, b = found["mediapipe"][0], found["dlib"][0]
                mutual.append(nme(a.landmarks, b.landmarks, b.inter_ocular()))
                regions.append([nme(a.landmarks[r], b.landmarks[r], b.inter_ocular()) for r in REGIONS.values()])
        print(
            f"| {label} | {readable} | {hits['mediapipe']} | {hits['dlib']} | {several['mediapipe']} "
            f"| {several['dlib']} | {_stats(mutual).replace(' | ', ' / ')} |"
        )
        region_rows.append((label, np.mean(regions, axis=0)))
    print("\nMutual NME of the largest faces by region (mean, / dlib inter-ocular):\n")
    print("| set | " + " | ".join(REGIONS) + " |\n|---|" + "---|" * len(REGIONS))
    for label, values in region_rows:
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in values) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    photos_root = os.environ.get("GANFIT_PHOTOS")
    parser.add_argument(
        "--photos",
        type=Path,
        default=Path(photos_root) if photos_root else None,
        help="photo root (default: $GANFIT_PHOTOS)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image (median)")
    parser.add_argument("--cnn", action="store_true", help="also time dlib's CNN (MMOD) detector (slow on CPU)")
    parser.add_argument(
        "--sections", default="timing,deep3d,london,rate", help="comma-separated subset of timing,deep3d,london,rate"
    )
    args = parser.parse_args()
    if args.photos is None:
        parser.error("give --photos DIR or set GANFIT_PHOTOS")
    sections = set(args.sections.split(","))
    if "timing" in sections:
        timing(args.photos, args.repeat, args.cnn)
    if "deep3d" in sections:
        deep3d(args.photos)
    if "london" in sections:
        london(args.photos)
    if "rate" in sections:
        detection_rate(args.photos)


if __name__ == "__main__":
    main()
