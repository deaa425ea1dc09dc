"""``python -m ganfit.gan export ckpt=CKPT out=OUT [half=true]`` (= ``ganfit gan-export ...``): write a plain
``generator.pt`` from a TextureGAN checkpoint.

The checkpoint is read with ``torch.load(weights_only=True)``: a crafted file cannot run code. Exit codes: 0 written,
2 bad usage (no such action, a missing / foreign / code-carrying checkpoint, an output that cannot be written:
one line, no traceback), 130 Ctrl-C.
"""

from __future__ import annotations

import sys

from ganfit.args import parse_action
from ganfit.exit_codes import run_command
from ganfit.gan.generator_file import EXPORT_DOC, CheckpointFileError, ExportArgs, export_command

ACTIONS = {"export": (ExportArgs, EXPORT_DOC)}


def main(argv: list[str] | None = None) -> int:
    """``python -m ganfit.gan ACTION key=value ...``; returns the exit code."""
    return run_command(
        lambda: export_command(parse_action(ACTIONS, argv, prog="python -m ganfit.gan")[1]),
        (CheckpointFileError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
