"""``ganfit report out=OUT [open=true]`` (= ``python -m ganfit.report ...``): write ``OUT/index.html`` for the
finished fit job in ``OUT``.

Exit codes: 0 written; 2 bad usage (``OUT`` holds no fit job's summary.json: one line); 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING

from ganfit.args import parse_args
from ganfit.exit_codes import run_command
from ganfit.report.fit_report import write_fit_report


@dataclass
class ReportArgs:
    """The keys of ``ganfit report``."""

    out: Path = field(default=MISSING, metadata={"help": "a fit job's output folder (holds summary.json)"})
    open: bool = field(default=False, metadata={"help": "open the page in the default browser"})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return run_command(lambda: _main(argv), (OSError,))


def _main(argv: list[str] | None = None) -> int:
    args = parse_args(ReportArgs, argv, prog="ganfit report", doc=__doc__.split("\n\n")[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = write_fit_report(args.out)
    print(path)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(main())
