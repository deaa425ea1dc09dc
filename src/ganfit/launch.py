"""Console-script launchers: apply the thread policy, then import the command.

``ganfit <command> [key=value ...]`` runs one command of :data:`COMMANDS` (``ganfit`` alone or ``ganfit --help``
lists them; an unknown command exits 2); ``ganfit-fit`` is ``ganfit fit``. Every command takes ``key=value``
arguments (Hydra's override grammar, an action word first where it has several: :mod:`ganfit.args`) and answers
``--help``; ``python -m <module>`` runs the same command.

The passive OpenMP wait policy has to be in the environment before torch's OpenMP runtime loads, i.e. before the
first ``import torch`` (see :mod:`ganfit.threads`), so the command modules are imported only after it, inside these
functions (:func:`fit` imports :mod:`ganfit.cli`: the documented exception to the top-level-imports rule; the table's
modules are named by string and loaded with :func:`importlib.import_module`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ganfit.exit_codes import EXIT_OK, EXIT_USAGE, exit_code_of, report_usage
from ganfit.threads import apply_thread_policy, set_wait_policy_env

__all__ = ["COMMANDS", "Command", "fit", "load_command", "main", "usage"]


@dataclass(frozen=True)
class Command:
    """One ``ganfit`` subcommand: ``module`` holds its ``main`` (``python -m module`` runs the same); ``light``: it
    never imports torch, so only the thread policy's environment is set (no torch import for the full policy)."""

    module: str
    summary: str
    function: str = "main"
    light: bool = False


COMMANDS: dict[str, Command] = {
    "fit": Command("ganfit.cli", "fit photos: shape, texture, pose, light (= fit.py, ganfit-fit)", "fit_main"),
    "train": Command("ganfit.gan.train", "train the texture GAN and export generator.pt (= train_texture_gan.py)"),
    "gan-export": Command("ganfit.gan.generator_file", "write generator.pt from a TextureGAN training checkpoint"),
    "gan-card": Command("ganfit.gan.default", "write the card (sha256, commands, data) of a shipped generator"),
    "data-build": Command("ganfit.data_build.__main__", "build a UV-texture dataset from photos by fitting them"),
    "data-split": Command("ganfit.data_build.split", "split a built dataset by person into train / holdout"),
    "contact-sheet": Command("ganfit.data_build.contact_sheet", "tile a dataset's textures into one PNG"),
    "eval-photos": Command("ganfit.eval.photos", "real-photo evaluation (landmarks, identity, photometric)"),
    "eval-synthetic": Command("ganfit.eval.synthetic", "synthetic benchmark against known shapes"),
    "eval-albedo-light": Command("ganfit.eval.albedo_light", "albedo / lighting separation benchmark"),
    "report": Command("ganfit.report.__main__", "write index.html for a finished fit job", light=True),
    "demo": Command("ganfit.demo.__main__", "the local demo web app"),
    "screenshots": Command("ganfit.demo.screenshots", "remake docs/img/report.png and docs/img/demo.png"),
    "assets": Command("ganfit.assets", "locate, verify or fetch the ICT FaceKit model (= ganfit-assets)", light=True),
    "face-model": Command("ganfit.face_model", "the morphable model: info, or sample random faces as OBJ"),
    "identity": Command("ganfit.identity.__main__", "face-recognition descriptor of a photo, or compare two"),
    "identity-models": Command("ganfit.identity.tfjs_assets", "fetch / locate / verify the TF.js identity models"),
    "landmarks": Command("ganfit.landmarks.__main__", "detect faces and 68 landmarks in photos"),
    "reconstruction-sheet": Command(
        "ganfit.tools.reconstruction_sheet", "one JPEG comparing two fit jobs' reconstructions (docs/img)"
    ),
    "calibrate-judge": Command("ganfit.tools.calibrate_judge", "same-person threshold of each identity network"),
    "derive-mediapipe-map": Command("ganfit.tools.derive_mediapipe_map", "learn the mediapipe-478 -> iBUG-68 table"),
    "learn-landmark-embedding": Command(
        "ganfit.tools.learn_landmark_embedding", "learn where the 68 landmarks lie on the mesh"
    ),
    "learn-dense-embedding": Command(
        "ganfit.tools.learn_dense_embedding", "learn where mediapipe's dense points lie on the mesh"
    ),
}
"""``ganfit <name>`` -> the module whose ``main`` it runs."""


def usage() -> str:
    """``ganfit --help``: every command with its one line."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: ganfit COMMAND [key=value ...]   (ganfit COMMAND --help: its keys)",
        "",
        "commands:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
    ]
    return "\n".join(lines) + "\n"


def load_command(name: str) -> Callable[..., int | None]:
    """The ``main`` of ``ganfit <name>`` (imports its module: call after :func:`apply_thread_policy`)."""
    command = COMMANDS[name]
    return getattr(importlib.import_module(command.module), command.function)


def main(argv: Sequence[str] | None = None) -> int:
    """``ganfit COMMAND [key=value ...]``; returns the command's exit code (2 for an unknown command; ``ganfit``
    alone lists the commands and returns 2, ``ganfit --help`` lists them and returns 0)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return EXIT_OK if args else EXIT_USAGE
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        return report_usage(f"{name!r} is not a ganfit command; `ganfit --help` lists them")
    if COMMANDS[name].light:
        set_wait_policy_env()
    else:
        apply_thread_policy()
    command = load_command(name)
    main_module = sys.modules["__main__"]
    saved = sys.argv, getattr(main_module, "__spec__", None)
    sys.argv = [sys.argv[0], *rest]  # the Hydra commands (fit, train, eval-*, data-build) read sys.argv
    # A re-launcher (Lightning's DDP popen, multiprocessing's spawn) then re-runs `python -m <module> <rest>`, not
    # `ganfit <rest>` (which would lack the command word).
    main_module.__spec__ = importlib.util.find_spec(COMMANDS[name].module)
    try:
        code = command()
    except SystemExit as exit_:
        return exit_code_of(exit_)
    finally:
        sys.argv, main_module.__spec__ = saved
    return EXIT_OK if code is None else int(code)


def fit() -> int:
    """``fit.py`` / ``ganfit-fit``."""
    apply_thread_policy()
    from ganfit.cli import fit_main

    return fit_main()


if __name__ == "__main__":
    sys.exit(main())
