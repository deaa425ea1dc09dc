"""``ganfit calibrate-judge [networks=[dlib,arcface]]`` (= ``python -m ganfit.tools.calibrate_judge ...``; default:
every network of ``JUDGE_SPECS``): the same-person threshold of each identity network, from
FRL London's people that are NOT held out (neutral vs smiling photo of each; held-out people are never used).

For every network it prints the ROC AUC and the equal-error-rate threshold of its distance (dlib: Euclidean, the
others: cosine distance 1 - cos), the value ``ganfit.metrics.identity.JUDGE_SPECS`` records. Needs GANFIT_PHOTOS.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganfit.args import parse_args
from ganfit.assets import DATA_DIR
from ganfit.exit_codes import run_command
from ganfit.identity import load_identity_network
from ganfit.identity.api import embed_image
from ganfit.image_io import read_image
from ganfit.landmarks import detect_face
from ganfit.metrics.identity import JUDGE_SPECS, judge_distance, roc_auc

logger = logging.getLogger(__spec__.name if __spec__ else __name__)  # the package name under python -m too


def eer_threshold(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """``(threshold, equal error rate)``: the distance at which the false-reject rate of ``same`` equals the
    false-accept rate of ``different`` (both [N] distances; same-person pairs should be smaller). When the two sets
    are separated (EER 0), the middle of the gap between them."""
    if same.max() < different.min():
        return float((same.max() + different.min()) / 2), 0.0
    candidates = np.unique(np.concatenate([same, different]))
    false_reject = np.array([np.mean(same > t) for t in candidates])
    false_accept = np.array([np.mean(different <= t) for t in candidates])
    best = int(np.argmin(np.abs(false_reject - false_accept)))
    return float(candidates[best]), float((false_reject[best] + false_accept[best]) / 2)


def calibrate(network: str, root: Path, holdout: set[str]) -> dict[str, float]:
    """AUC and EER threshold of ``network`` on the non-held-out FRL London people under ``root``."""
    net = load_identity_network(network)
    metric = JUDGE_SPECS[network].metric
    neutral, smiling = [], []
    for path in sorted((root / "neutral_front").glob("*_03.jpg")):
        person = path.stem.split("_")[0]
        other = root / "smiling_front" / f"{person}_08.jpg"
        if person in holdout or not other.is_file():
            continue
        pair = []
        for photo in (path, other):
            image = read_image(photo)
            pair.append(embed_image(image, detect_face(image, name=str(photo)).landmarks, net).descriptor)
        neutral.append(pair[0])
        smiling.append(pair[1])
    count = len(neutral)
    distances = np.array([[judge_distance(a, b, metric) for b in smiling] for a in neutral])
    same = np.diag(distances)
    different = distances[~np.eye(count, dtype=bool)]
    threshold, rate = eer_threshold(same, different)
    return {
        "people": count,
        "auc": roc_auc(same, different),
        "eer": rate,
        "threshold": threshold,
        "same_median": float(np.median(same)),
        "same_max": float(same.max()),
        "different_min": float(different.min()),
        "different_median": float(np.median(different)),
    }


@dataclass
class CalibrateArgs:
    """The keys of ``ganfit calibrate-judge``."""

    networks: list[str] = field(
        default_factory=lambda: sorted(JUDGE_SPECS), metadata={"help": "identity networks to calibrate"}
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = parse_args(CalibrateArgs, argv, prog="ganfit calibrate-judge", doc=__doc__.split("\n\n")[0])
    unknown = sorted(set(args.networks) - set(JUDGE_SPECS))
    if unknown:
        raise SystemExit(f"networks: {unknown} not calibrated networks; choose from {', '.join(sorted(JUDGE_SPECS))}")
    logging.basicConfig(level=logging.WARNING)
    photos = os.environ.get("GANFIT_PHOTOS")
    if not photos or not (Path(photos) / "frl-london").is_dir():
        print("error: set GANFIT_PHOTOS to the folder holding frl-london/", file=sys.stderr)
        return 2
    holdout = set(json.loads((DATA_DIR / "frl_holdout.json").read_text())["holdout_ids"])
    print("| network | distance | people | ROC AUC | EER | threshold | same median / max | different min / median |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for network in args.networks:
        result = calibrate(network, Path(photos) / "frl-london", holdout)
        print(
            f"| {network} | {JUDGE_SPECS[network].metric} | {result['people']} | {result['auc']:.4f} | "
            f"{result['eer']:.3f} | {result['threshold']:.4f} | "
            f"{result['same_median']:.4f} / {result['same_max']:.4f} | "
            f"{result['different_min']:.4f} / {result['different_median']:.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
