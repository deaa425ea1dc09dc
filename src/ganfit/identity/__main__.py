"""``ganfit identity`` (= ``python -m ganfit.identity``): compare the faces of two photos, or embed one.

    ganfit identity compare photo_a=A.jpg photo_b=B.jpg [identity=dlib|arcface|mobileface|faceres|faceres-deep]
        [onnx_path=P] [models_dir=DIR] [landmarks=mediapipe|dlib] [face_index=0] [verbose=true]
    -> distance: 0.412 cosine: 0.915

    ganfit identity embed photo=PHOTO [out=FILE.npy] [...same keys]
    -> prints the descriptor (one line of numbers), or saves it as a float32 .npy

``distance`` is the Euclidean distance between the two raw descriptors, as dlib reports it (dlib's own threshold for
"same person" is 0.6), ``cosine`` the cosine of the angle between them. ``out=`` is written atomically.
Exit codes: 0 done; 2 bad usage or input (unreadable photo, no face, missing weights, an ``out=`` that cannot be
written: one line to stderr, no traceback); 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import MISSING

from ganfit.args import parse_action
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


@dataclass
class IdentityArgs:
    """The keys both actions take."""

    identity: str = field(default="dlib", metadata={"help": "identity network", "choices": IDENTITY_NETWORKS})
    onnx_path: Path | None = field(default=None, metadata={"help": "insightface ArcFace ONNX file (arcface only)"})
    models_dir: Path | None = field(
        default=None,
        metadata={"help": "human-models folder (mobileface/faceres; default: GANFIT_HUMAN_MODELS, GANFIT_ASSETS)"},
    )
    landmarks: str = field(default="mediapipe", metadata={"help": "landmark backend", "choices": ("mediapipe", "dlib")})
    face_index: int = field(default=0, metadata={"help": "which face, by size (0 = largest)"})
    verbose: bool = field(default=False, metadata={"help": "log progress to stderr"})


@dataclass
class CompareArgs(IdentityArgs):
    photo_a: Path = field(default=MISSING, metadata={"help": "first photo"})
    photo_b: Path = field(default=MISSING, metadata={"help": "second photo"})


@dataclass
class EmbedArgs(IdentityArgs):
    photo: Path = field(default=MISSING, metadata={"help": "the photo"})
    out: Path | None = field(default=None, metadata={"help": "save the descriptor as a float32 .npy file"})


ACTIONS = {
    "compare": (CompareArgs, "identity distance and cosine between two photos"),
    "embed": (EmbedArgs, "the identity descriptor of one photo"),
}


def _fail(message: str) -> int:
    return report_usage(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    return run_command(lambda: _main(argv))


def _main(argv: Sequence[str] | None = None) -> int:
    command, args = parse_action(ACTIONS, argv, prog="ganfit identity", doc=__doc__.split("\n\n")[0])
    if args.verbose:
        os.environ[VERBOSE_ENV] = "1"  # mediapipe's C++ log lines too
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    try:
        net = load_identity_network(args.identity, onnx_path=args.onnx_path, models_dir=args.models_dir)
        if command == "compare":
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
    except OSError as exc:  # e.g. out= into a missing folder
        return _fail(f"{exc.__class__.__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
