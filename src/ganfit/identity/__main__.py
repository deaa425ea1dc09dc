"""``python -m ganfit.identity``: compare the faces of two photos, or embed one.

    python -m ganfit.identity compare A.jpg B.jpg [--identity dlib|arcface|mobileface|faceres|faceres-deep]
        [--onnx-path P] [--models-dir DIR] [--landmarks mediapipe|dlib]
    -> distance: 0.412 cosine: 0.915

    python -m ganfit.identity embed PHOTO [--out FILE.npy] [...same options]
    -> prints the descriptor (one line of numbers), or saves it as a float32 .npy

``distance`` is the Euclidean distance between the two raw descriptors, as dlib reports it (dlib's own threshold for
"same person" is 0.6), ``cosine`` the cosine of the angle between them. ``--out`` is written atomically.
Exit codes: 0 done; 2 bad usage or input (unreadable photo, no face, missing weights, an ``--out`` that cannot be
written: one line to stderr, no traceback); 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ganfit.assets import AssetIntegrityError, AssetNotFoundError
from ganfit.atomic import atomic_save
from ganfit.exit_codes import report_usage, run_command
from ganfit.identity import IDENTITY_NETWORKS, load_identity_network
from ganfit.identity.api import compare_descriptors, embed_photo
from ganfit.identity.arcface import ArcFaceOnnxError
from ganfit.identity.dlib_reader import DlibFormatError
from ganfit.identity.dlib_resnet import IdentityWeightsNotFoundError
from ganfit.identity.tfjs_reader import TfjsFormatError
from ganfit.image_io import ImageInputError
from ganfit.landmarks import LandmarkError
from ganfit.landmarks.mediapipe_backend import VERBOSE_ENV, native_stderr_dropped

log = logging.getLogger("ganfit.identity")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganfit.identity", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--identity", choices=IDENTITY_NETWORKS, default="dlib", help="identity network")
    common.add_argument("--onnx-path", type=Path, default=None, help="insightface ArcFace ONNX file (arcface only)")
    common.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="human-models folder (mobileface/faceres; default: GANFIT_HUMAN_MODELS, GANFIT_ASSETS)",
    )
    common.add_argument("--landmarks", choices=("mediapipe", "dlib"), default="mediapipe", help="landmark backend")
    common.add_argument("--face-index", type=int, default=0, help="which face, by size (0 = largest)")
    common.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare", parents=[common], help="identity distance and cosine between two photos")
    compare.add_argument("photo_a", type=Path)
    compare.add_argument("photo_b", type=Path)
    embed = sub.add_parser("embed", parents=[common], help="the identity descriptor of one photo")
    embed.add_argument("photo", type=Path)
    embed.add_argument("--out", type=Path, default=None, help="save the descriptor as a float32 .npy file")
    return parser


def _fail(message: str) -> int:
    return report_usage(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    return run_command(lambda: _main(argv))


def _main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"  # mediapipe's C++ log lines too
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    try:
        net = load_identity_network(args.identity, onnx_path=args.onnx_path, models_dir=args.models_dir)
        if args.command == "compare":
            with native_stderr_dropped():
                a = embed_photo(args.photo_a, net, backend=args.landmarks, face_index=args.face_index)
                b = embed_photo(args.photo_b, net, backend=args.landmarks, face_index=args.face_index)
            distance, cosine = compare_descriptors(a.descriptor, b.descriptor)
            print(f"distance: {distance:.3f} cosine: {cosine:.3f}")
        else:
            with native_stderr_dropped():
                e = embed_photo(args.photo, net, backend=args.landmarks, face_index=args.face_index)
            if args.out is not None:
                descriptor = e.descriptor.astype(np.float32)
                atomic_save(args.out, lambda handle: np.save(handle, descriptor))
                print(f"saved {e.descriptor.size}-d {args.identity} descriptor to {args.out}")
            else:
                print(" ".join(f"{v:.6f}" for v in e.descriptor))
    except (
        ImageInputError,
        LandmarkError,
        IdentityWeightsNotFoundError,
        ArcFaceOnnxError,
        DlibFormatError,
        TfjsFormatError,
        AssetNotFoundError,
        AssetIntegrityError,
    ) as exc:
        return _fail(str(exc))
    except OSError as exc:  # e.g. --out into a missing folder
        return _fail(f"{exc.__class__.__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
