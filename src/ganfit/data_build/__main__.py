"""``python -m ganfit.data_build image=DIR out=DIR [fitting=fast] [key=value ...]``: build a UV texture dataset.

Exit codes: 0 something kept (or kept earlier), 1 nothing usable, 2 bad usage, 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys

import torch

from ganfit.args import compose_command
from ganfit.config.compose import ConfigUsageError
from ganfit.data_build.builder import run_build
from ganfit.exit_codes import run_command
from ganfit.jobs.inputs import InputSpecError


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    return run_command(lambda: _main(argv), (ConfigUsageError, InputSpecError, OSError))


def _main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("ganfit").setLevel(logging.INFO)
    cfg = compose_command("data_build", argv, prog="ganfit data-build", doc=__doc__.split("\n\n")[0])
    if int(cfg.get("torch_threads", 0)) > 0 and int(cfg.processes) <= 1:
        torch.set_num_threads(int(cfg.torch_threads))
    summary = run_build(cfg)
    print(summary.format())
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
